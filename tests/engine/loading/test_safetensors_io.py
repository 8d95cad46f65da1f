"""CheckpointReader / save_sharded: round trips, the errors users meet on disk, and lazy reading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from magi_engine.errors import CheckpointError
from magi_engine.loading.safetensors_io import CheckpointReader, save_sharded


def _state_dict() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "embed.weight": torch.randn(64, 32, generator=g),  # fp32, 8 KiB
        "block.0.linear.weight": torch.randn(48, 32, generator=g).bfloat16(),
        "block.0.fp8.weight": (torch.randn(1, 40, 32, generator=g) * 10).to(torch.float8_e4m3fn),
        "block.0.fp8.weight_scale": torch.tensor([0.02]),
        "block.1.norm.bias": torch.randn(32, generator=g).bfloat16(),
        "steps": torch.arange(7, dtype=torch.int64),
    }


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):  # compare bit patterns (no == for float8)
        return torch.equal(a.view(torch.uint8), b.view(torch.uint8))
    return torch.equal(a, b)


def test_sharded_round_trip_bf16_fp32_fp8(tmp_path: Path) -> None:
    sd = _state_dict()
    index = save_sharded(sd, tmp_path, max_shard_bytes=4096)
    assert index.name == "model.safetensors.index.json"
    with CheckpointReader(tmp_path) as reader:
        assert len(reader.files) > 1  # the small limit really split the checkpoint
        assert sorted(reader.keys()) == sorted(sd)
        for key, tensor in sd.items():
            assert reader.shape(key) == tuple(tensor.shape)
            assert reader.dtype(key) == tensor.dtype
            assert _same(reader.get(key), tensor), key
        assert reader.nbytes() == sum(t.numel() * t.element_size() for t in sd.values())
        assert reader.get("embed.weight", dtype=torch.bfloat16).dtype == torch.bfloat16
    assert not list(tmp_path.glob(".*tmp")), "temporary files left behind"


def test_single_file_folder_and_file_path(tmp_path: Path) -> None:
    sd = _state_dict()
    save_file(sd, str(tmp_path / "model.safetensors"))
    for path in (tmp_path, tmp_path / "model.safetensors"):
        with CheckpointReader(path) as reader:
            assert reader.files == [tmp_path / "model.safetensors"]
            assert all(_same(reader.get(k), v) for k, v in sd.items())


def test_vae_layout_single_and_indexed(tmp_path: Path) -> None:
    sd = {"encoder.cls_token": torch.randn(1, 1, 8), "decoder.proj_in.weight": torch.randn(8, 4)}
    single = tmp_path / "single"
    single.mkdir()
    save_file(sd, str(single / "diffusion_pytorch_model.safetensors"))
    with CheckpointReader(single) as reader:
        assert sorted(reader.keys()) == sorted(sd)
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    save_file({"encoder.cls_token": sd["encoder.cls_token"]}, str(sharded / "a.safetensors"))
    save_file({"decoder.proj_in.weight": sd["decoder.proj_in.weight"]}, str(sharded / "b.safetensors"))
    (sharded / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"encoder.cls_token": "a.safetensors", "decoder.proj_in.weight": "b.safetensors"}}))
    with CheckpointReader(sharded) as reader:
        assert torch.equal(reader.get("decoder.proj_in.weight"), sd["decoder.proj_in.weight"])
        assert len(reader.files) == 2


def test_truncated_shard_is_named(tmp_path: Path) -> None:
    save_sharded(_state_dict(), tmp_path, max_shard_bytes=4096)
    shard = sorted(tmp_path.glob("model-*.safetensors"))[0]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match="truncated") as info:
        CheckpointReader(tmp_path)
    assert shard.name in str(info.value)


def test_corrupt_header_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x0c\x00\x00\x00\x00\x00\x00\x00{not json!!}")
    with pytest.raises(CheckpointError, match="corrupt") as info:
        CheckpointReader(tmp_path)
    assert "model.safetensors" in str(info.value)
    tiny = tmp_path / "tiny.safetensors"
    tiny.write_bytes(b"\x01\x02")
    with pytest.raises(CheckpointError, match="tiny.safetensors"):
        CheckpointReader(tiny)


def test_missing_shard_named_with_key_count(tmp_path: Path) -> None:
    save_sharded(_state_dict(), tmp_path, max_shard_bytes=4096)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shard = sorted(set(index["weight_map"].values()))[-1]
    n_keys = sum(1 for v in index["weight_map"].values() if v == shard)
    (tmp_path / shard).unlink()
    with pytest.raises(CheckpointError) as info:
        CheckpointReader(tmp_path)
    assert shard in str(info.value) and f"{n_keys} tensors" in str(info.value)


@pytest.mark.parametrize("content", [
    "{not json",
    json.dumps({"metadata": {}}),
    json.dumps({"weight_map": ["a", "b"]}),
    json.dumps({"weight_map": {"a": 3}}),
    json.dumps({"weight_map": {"a": "../outside.safetensors"}}),
])
def test_malformed_index(tmp_path: Path, content: str) -> None:
    save_file({"a": torch.zeros(2)}, str(tmp_path / "model-00001-of-00001.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text(content)
    with pytest.raises(CheckpointError, match="model.safetensors.index.json"):
        CheckpointReader(tmp_path)


def test_index_naming_a_key_its_shard_lacks(tmp_path: Path) -> None:
    save_file({"a": torch.zeros(2)}, str(tmp_path / "s.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "s.safetensors",
                                                                                       "b": "s.safetensors"}}))
    with pytest.raises(CheckpointError, match="s.safetensors"):
        CheckpointReader(tmp_path)


def test_pickle_only_folder_refused(tmp_path: Path) -> None:
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    (tmp_path / "extra.pt").write_bytes(b"\x80\x04")
    with pytest.raises(CheckpointError, match="pickled weights are refused"):
        CheckpointReader(tmp_path)
    with pytest.raises(CheckpointError, match="pickled weights are refused"):
        CheckpointReader(tmp_path / "extra.pt")


def test_zstd_shards_explained(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors.zst").write_bytes(b"(\xb5/\xfd")
    with pytest.raises(CheckpointError, match="zstd -d"):
        CheckpointReader(tmp_path)
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    (sharded / "model-00001-of-00001.safetensors.zst").write_bytes(b"(\xb5/\xfd")
    (sharded / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model-00001-of-00001.safetensors"}}))
    with pytest.raises(CheckpointError, match="zstd -d .*model-00001-of-00001.safetensors.zst"):
        CheckpointReader(sharded)


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        CheckpointReader(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no safetensors"):
        CheckpointReader(tmp_path)


def test_reading_one_tensor_reads_no_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_sharded(_state_dict(), tmp_path, max_shard_bytes=4096)
    reads: list[str] = []
    original = CheckpointReader._read_tensor

    def counting(self, file, key):
        reads.append(key)
        return original(self, file, key)

    monkeypatch.setattr(CheckpointReader, "_read_tensor", counting)
    with CheckpointReader(tmp_path) as reader:
        assert reads == []  # opening reads headers only
        reader.shape("embed.weight"), reader.dtype("steps"), reader.nbytes()
        assert reads == []
        reader.get("block.1.norm.bias")
        assert reads == ["block.1.norm.bias"]
        assert len(reader._handles) == 1  # only the shard holding it was opened


def test_close_releases_handles(tmp_path: Path) -> None:
    save_sharded(_state_dict(), tmp_path, max_shard_bytes=4096)
    reader = CheckpointReader(tmp_path)
    reader.get("steps")
    reader.close()
    assert reader._handles == {}
    with pytest.raises(RuntimeError, match="closed"):
        reader.get("steps")


def test_save_sharded_replaces_previous_checkpoint(tmp_path: Path) -> None:
    save_sharded(_state_dict(), tmp_path, max_shard_bytes=2048)
    many = set(p.name for p in tmp_path.glob("model-*.safetensors"))
    sd = {"x": torch.ones(3)}
    save_sharded(sd, tmp_path, max_shard_bytes=2**20)
    left = set(p.name for p in tmp_path.glob("model-*.safetensors"))
    assert left == {"model-00001-of-00001.safetensors"} and len(many) > 1
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert index["metadata"]["total_size"] == 12
    with CheckpointReader(tmp_path) as reader:
        assert reader.keys() == ["x"]


def test_save_sharded_handles_tied_tensors(tmp_path: Path) -> None:
    shared = torch.randn(4, 4)
    save_sharded({"a": shared, "b": shared}, tmp_path)
    with CheckpointReader(tmp_path) as reader:
        assert torch.equal(reader.get("a"), reader.get("b"))


def test_save_sharded_never_writes_through_a_link_or_over_a_fifo(tmp_path: Path) -> None:
    import os

    from magi_engine.errors import ExportError

    outside = tmp_path / "outside.txt"
    outside.write_text("not yours")
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / ".model-00001-of-00001.safetensors.tmp").symlink_to(outside)  # planted where the shard is staged
    save_sharded({"w": torch.ones(3)}, folder)
    assert outside.read_text() == "not yours"
    with CheckpointReader(folder) as reader:
        assert torch.equal(reader.get("w"), torch.ones(3))
    os.unlink(folder / "model-00001-of-00001.safetensors")
    os.mkfifo(folder / "model-00001-of-00001.safetensors")
    with pytest.raises(ExportError, match="named pipe"):
        save_sharded({"w": torch.ones(3)}, folder)
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []
