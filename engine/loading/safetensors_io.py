"""Reading and writing checkpoints in the safetensors format (never pickle).

A `CheckpointReader` opens what MAGI-1 and Hugging Face ship: a single `*.safetensors` file, a folder
holding `model.safetensors` (or the VAE's `diffusion_pytorch_model.safetensors`), or a sharded folder
described by `<name>.safetensors.index.json` (the standard HF `weight_map`). It reads only headers when
opened and each tensor lazily through `safetensors.safe_open`, so asking for one tensor never reads
another. Every problem a user can meet on disk (missing folder, pickled weights, a zstd-compressed shard,
a missing or truncated shard, a broken index) becomes a `CheckpointError` that names the file.

`save_sharded` writes our own checkpoints (and test fixtures) in the same layout, atomically.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path
from typing import Iterator, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from magi_engine.errors import CheckpointError
from magi_engine.output_files import check_output_file, fsync_dir, replace_output_file

log = logging.getLogger(__name__)

#: Index files looked for, in order, in a checkpoint folder (DiT / T5 first, then the diffusers VAE).
INDEX_NAMES = ("model.safetensors.index.json", "diffusion_pytorch_model.safetensors.index.json")
#: Single-file names looked for when a folder has no index.
SINGLE_NAMES = ("model.safetensors", "diffusion_pytorch_model.safetensors")
#: The largest header the safetensors library reads (its own limit): a bigger claim is damage.
MAX_HEADER_BYTES = 100_000_000
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")

# safetensors header dtype names → torch dtypes (only those torch can represent).
_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}
for _name, _attr in (("U16", "uint16"), ("U32", "uint32"), ("U64", "uint64"), ("F8_E8M0", "float8_e8m0fnu")):
    if hasattr(torch, _attr):
        _DTYPES[_name] = getattr(torch, _attr)


def _fail(what: str, todo: str) -> CheckpointError:
    return CheckpointError(f"{what} {todo}")


def _zst_error(path: Path) -> CheckpointError:
    return _fail(f"{path.name} is zstd-compressed, which the engine does not read.",
                 f"Decompress it first with `zstd -d {path}` (it writes {path.name[:-4]} beside it), then try again.")


def _read_header(path: Path) -> dict[str, dict]:
    """Parse and check one file's header: the tensors it promises must fit in the bytes on disk.

    safetensors would also refuse most broken files, but only with a generic message; checking here lets
    us say which file is short and by how much (the usual result of an interrupted copy or download).
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            prefix = fh.read(8)
            if len(prefix) < 8:
                raise _fail(f"{path} is not a safetensors file (only {size} bytes).",
                            "Download or copy it again.")
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > MAX_HEADER_BYTES:  # what the safetensors library itself accepts
                raise _fail(f"{path} is corrupt: its header claims {header_len} bytes, more than a safetensors "
                            f"header may hold ({MAX_HEADER_BYTES}).", "Download or copy it again.")
            if header_len > size - 8:
                raise _fail(f"{path} is truncated or corrupt: its header claims {header_len} bytes but the file "
                            f"has {size}.", "Download or copy it again.")
            raw = fh.read(header_len)
    except OSError as exc:
        raise _fail(f"Cannot read {path} ({exc.strerror or exc}).", "Check the file's permissions and the disk.") from exc
    try:
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        data_end = 0
        tensors = {}
        for key, info in header.items():
            if key == "__metadata__":
                continue
            start, end = info["data_offsets"]
            data_end = max(data_end, int(end))
            tensors[key] = {"dtype": str(info["dtype"]), "shape": tuple(int(s) for s in info["shape"]),
                            "nbytes": int(end) - int(start)}
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # RecursionError: JSON nested too deep
        raise _fail(f"{path} is corrupt: its header cannot be parsed ({exc}).", "Download or copy it again.") from exc
    expected = 8 + header_len + data_end
    if size < expected:
        raise _fail(f"{path} is truncated: its header describes {expected} bytes but the file has only {size}.",
                    "Download or copy it again (an interrupted download leaves files like this).")
    return tensors


def refuse_pickled_only(folder: str | os.PathLike[str], depth: int = 5, limit: int = 10_000) -> None:
    """CheckpointError when `folder` (looked at `depth` levels down, `limit` entries at most) holds pickled
    weights and no safetensors file: say why it is refused rather than that nothing was found."""
    pickles: list[str] = []
    level, seen = [Path(folder)], 0
    for _ in range(depth):
        below = []
        for current in level:
            try:
                entries = list(os.scandir(current))
            except OSError:
                continue
            for entry in entries:
                seen += 1
                if seen > limit:
                    break
                if entry.name.endswith(".safetensors"):
                    return
                if entry.is_dir(follow_symlinks=False):
                    below.append(Path(entry.path))
                elif Path(entry.name).suffix in PICKLE_SUFFIXES:
                    pickles.append(entry.name)
        level = below
    if pickles:
        raise _fail(f"{folder} holds only pickled weights ({', '.join(sorted(pickles)[:5])}); pickled weights are "
                    "refused because loading them can run arbitrary code.",
                    "Use the safetensors version of this model (.safetensors files).")


class CheckpointReader:
    """Lazy, read-only view of a safetensors checkpoint (file, folder, or sharded folder with an index).

    Use as a context manager (or call `close()`): each shard is opened on first use and kept open until
    the reader is closed.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._index: dict[str, Path] = {}  # key → file holding it
        self._info: dict[str, dict] = {}  # key → dtype / shape / nbytes from the header
        self._handles: dict[Path, object] = {}
        self._closed = False
        try:
            files = self._locate(self.path)
        except (OSError, ValueError) as exc:  # a name too long, a NUL, a folder that cannot be listed
            raise _fail(f"Checkpoint {self.path} cannot be read ({exc}).", "Check the path and its permissions.") from exc
        self.files: list[Path] = files
        self._scan(files)

    # Finding the files -------------------------------------------------------------------------
    def _locate(self, path: Path) -> list[Path]:
        if not path.exists():
            raise _fail(f"Checkpoint {path} does not exist.", "Check the path, or download the model first.")
        if path.is_file():
            return self._locate_file(path)
        for name in INDEX_NAMES:
            if (path / name).is_file():
                return self._read_index(path / name)
        for name in SINGLE_NAMES:
            if (path / name).is_file():
                return [path / name]
            if (path / (name + ".zst")).is_file():
                raise _zst_error(path / (name + ".zst"))
        indexes = sorted(path.glob("*.safetensors.index.json"))
        if len(indexes) == 1:
            return self._read_index(indexes[0])
        singles = sorted(path.glob("*.safetensors"))
        if len(singles) == 1 and not indexes:
            return singles
        if indexes or singles:
            names = ", ".join(p.name for p in (indexes or singles)[:5])
            raise _fail(f"{path} holds several checkpoints ({names}) and no model.safetensors.index.json.",
                        "Point at one file, or add an index that lists the shards.")
        zst = sorted(path.glob("*.safetensors.zst"))
        if zst:
            raise _zst_error(zst[0])
        pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise _fail(f"{path} holds only pickled weights ({', '.join(pickles[:5])}); pickled weights are refused "
                        "because loading them can run arbitrary code.",
                        "Use the safetensors version of this checkpoint, or convert it with a trusted tool.")
        raise _fail(f"{path} holds no safetensors checkpoint.",
                    "Point at the folder that contains model.safetensors or model.safetensors.index.json.")

    def _locate_file(self, path: Path) -> list[Path]:
        name = path.name
        if name.endswith(".safetensors"):
            return [path]
        if name.endswith(".index.json"):
            return self._read_index(path)
        if name.endswith(".zst"):
            raise _zst_error(path)
        if path.suffix in PICKLE_SUFFIXES:
            raise _fail(f"{path} is a pickled checkpoint; pickled weights are refused because loading them can "
                        "run arbitrary code.", "Use the safetensors version of this checkpoint.")
        raise _fail(f"{path} is not a safetensors checkpoint.",
                    "Point at a .safetensors file or at the folder that holds the checkpoint.")

    def _read_index(self, index_path: Path) -> list[Path]:
        folder = index_path.parent
        try:
            data = json.loads(index_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise _fail(f"The index {index_path} cannot be read ({exc}).", "Download or copy it again.") from exc
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict) or not weight_map or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
            raise _fail(f"The index {index_path} is malformed: it needs a non-empty \"weight_map\" of "
                        "tensor name → shard file.", "Download or copy it again.")
        per_shard: dict[str, list[str]] = {}
        for key, shard in weight_map.items():
            per_shard.setdefault(shard, []).append(key)
        files, missing = [], []
        for shard, keys in per_shard.items():
            shard_path = folder / shard
            # A shard name must stay inside the folder: an index is data, not a licence to read anywhere.
            if Path(shard).is_absolute() or ".." in Path(shard).parts:
                raise _fail(f"The index {index_path} is malformed: shard name {shard!r} points outside the folder.",
                            "Download or copy the checkpoint again.")
            if not shard or "\0" in shard or any(len(part.encode()) > 255 for part in Path(shard).parts):
                raise _fail(f"The index {index_path} is malformed: {shard[:80]!r} is not a usable shard file name.",
                            "Download or copy the checkpoint again.")
            if not shard_path.is_file():
                if (folder / (shard + ".zst")).is_file():
                    raise _zst_error(folder / (shard + ".zst"))
                missing.append(f"{shard} ({len(keys)} tensors)")
                continue
            files.append(shard_path)
            for key in keys:
                self._index[key] = shard_path
        if missing:
            raise _fail(f"Checkpoint {folder} is incomplete: missing shard(s) {', '.join(missing)} named in "
                        f"{index_path.name}.", "Download the missing files again.")
        return files

    def _scan(self, files: list[Path]) -> None:
        from_index = bool(self._index)
        for file in files:
            header = _read_header(file)
            if from_index:
                wanted = [k for k, f in self._index.items() if f == file]
                absent = [k for k in wanted if k not in header]
                if absent:
                    raise _fail(f"{file} does not contain {len(absent)} tensor(s) its index assigns to it "
                                f"(e.g. {absent[0]}).", "The index and the shards do not belong together; "
                                "download the checkpoint again.")
                for key in wanted:
                    self._info[key] = header[key]
            else:
                for key, info in header.items():
                    if key in self._info:
                        raise _fail(f"Tensor {key} appears in two files.", "Remove the duplicate file.")
                    self._info[key] = info
                    self._index[key] = file

    # Reading -------------------------------------------------------------------------------------
    def keys(self) -> list[str]:
        return list(self._info)

    def __contains__(self, key: object) -> bool:
        return key in self._info

    def __len__(self) -> int:
        return len(self._info)

    def __iter__(self) -> Iterator[str]:
        return iter(self._info)

    def _entry(self, key: str) -> dict:
        try:
            return self._info[key]
        except KeyError:
            raise KeyError(f"{key!r} is not in checkpoint {self.path}") from None

    def shape(self, key: str) -> tuple[int, ...]:
        return self._entry(key)["shape"]

    def dtype(self, key: str) -> torch.dtype:
        name = self._entry(key)["dtype"]
        if name not in _DTYPES:
            raise _fail(f"Tensor {key} in {self._index[key].name} has dtype {name}, which this PyTorch cannot hold.",
                        "Upgrade PyTorch or convert the checkpoint.")
        return _DTYPES[name]

    def nbytes(self) -> int:
        """Bytes of tensor data in the checkpoint (what loading it at its stored dtypes costs)."""
        return sum(info["nbytes"] for info in self._info.values())

    def _handle(self, file: Path):
        if self._closed:
            raise RuntimeError(f"CheckpointReader for {self.path} is closed")
        handle = self._handles.get(file)
        if handle is None:
            try:
                handle = safe_open(str(file), framework="pt", device="cpu")
                handle.__enter__()
            except (SafetensorError, OSError) as exc:
                raise _fail(f"{file} is corrupt or unreadable ({exc}).", "Download or copy it again.") from exc
            self._handles[file] = handle
        return handle

    def _read_tensor(self, file: Path, key: str) -> torch.Tensor:
        try:
            return self._handle(file).get_tensor(key)
        except (SafetensorError, OSError) as exc:
            raise _fail(f"Tensor {key} in {file} cannot be read ({exc}).", "Download or copy the file again.") from exc

    def get(self, key: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> torch.Tensor:
        """Read one tensor (only that one) and move / cast it."""
        self._entry(key)
        tensor = self._read_tensor(self._index[key], key)
        if dtype is not None or torch.device(device).type != "cpu":
            tensor = tensor.to(device=device, dtype=dtype)
        return tensor

    def close(self) -> None:
        for handle in self._handles.values():
            try:
                handle.__exit__(None, None, None)
            except Exception:  # closing must not mask the error that led here
                log.debug("closing a safetensors handle failed", exc_info=True)
        self._handles.clear()
        self._closed = True

    def __enter__(self) -> "CheckpointReader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CheckpointReader({str(self.path)!r}, {len(self)} tensors in {len(self.files)} file(s))"


# Writing -----------------------------------------------------------------------------------------
def _write_synced(write, final: Path) -> None:
    """Write through `write(tmp_path)`, flush it to disk, then rename it into place (over a regular file only)."""
    tmp = final.with_name(f".{final.name}.tmp")
    check_output_file(final, "checkpoint")
    try:
        tmp.unlink(missing_ok=True)  # a leftover, or a link planted there: never written through
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        replace_output_file(tmp, final, "checkpoint")
    finally:
        if tmp.exists():
            tmp.unlink()


def save_sharded(state_dict: Mapping[str, torch.Tensor], folder: str | os.PathLike[str],
                 max_shard_bytes: int = 5 * 2**30, *, metadata: Mapping[str, str] | None = None) -> Path:
    """Write `state_dict` as `model-0000i-of-0000n.safetensors` shards plus `model.safetensors.index.json`.

    Shards are filled greedily in key order up to `max_shard_bytes` (a larger tensor gets a shard of its
    own). Every file is written to a temporary name, fsynced and renamed; the index is written last, so
    a reader never sees an index whose shards are not complete. Shards of a previous index in the same
    folder that the new one no longer names are removed afterwards. Returns the index path.
    """
    if max_shard_bytes <= 0:
        raise ValueError("max_shard_bytes must be positive")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    groups: list[list[str]] = [[]]
    size = 0
    for key, tensor in state_dict.items():
        nbytes = tensor.numel() * tensor.element_size()
        if groups[-1] and size + nbytes > max_shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append(key)
        size += nbytes
    count = len(groups)
    weight_map: dict[str, str] = {}
    seen_storages: set[int] = set()
    for number, keys in enumerate(groups, start=1):
        name = f"model-{number:05d}-of-{count:05d}.safetensors"
        shard = {}
        for key in keys:
            tensor = state_dict[key].detach().to("cpu").contiguous()
            # safetensors refuses tensors that share memory (tied weights); give each its own copy.
            ptr = tensor.untyped_storage().data_ptr()
            if ptr in seen_storages and tensor.numel():
                tensor = tensor.clone()
            seen_storages.add(tensor.untyped_storage().data_ptr())
            shard[key] = tensor
            weight_map[key] = name
        _write_synced(lambda tmp, shard=shard: save_file(shard, str(tmp), metadata=dict(metadata or {})),
                      folder / name)
    index_path = folder / INDEX_NAMES[0]
    old_shards: set[str] = set()
    if index_path.is_file():
        try:
            old_shards = set(json.loads(index_path.read_text(encoding="utf-8")).get("weight_map", {}).values())
        except (OSError, ValueError, AttributeError):
            old_shards = set()
    total = sum(t.numel() * t.element_size() for t in state_dict.values())
    index = {"metadata": {"total_size": total, **dict(metadata or {})}, "weight_map": weight_map}
    _write_synced(lambda tmp: tmp.write_text(json.dumps(index, indent=2, sort_keys=True), encoding="utf-8"),
                  index_path)
    fsync_dir(folder)
    for stale in old_shards - set(weight_map.values()):
        stale_path = folder / stale
        if stale_path.parent == folder and stale_path.is_file():
            stale_path.unlink()
    log.info("saved %d tensors (%d bytes) in %d shard(s) to %s", len(weight_map), total, count, folder)
    return index_path
