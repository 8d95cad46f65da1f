"""Downloading the official MAGI-1 checkpoints from the Hugging Face Hub (repo `sand-ai/MAGI-1`).

Only what a variant needs is fetched: its DiT weight folder (`ckpt/magi/<variant>/inference_weight...`),
and optionally the VAE (`ckpt/vae/`) and the T5 encoder with its tokenizer (`ckpt/t5/t5-v1_1-xxl/`), and
of those only safetensors, json and tokenizer files, never pickles. The hub's cache and offline mode are
respected: offline (HF_HUB_OFFLINE, read at call time, or `local_files_only=True`) a cached snapshot is
returned without touching the network. Byte progress and cooperative cancellation go through a small
tqdm stand-in handed to `snapshot_download(tqdm_class=...)`.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Callable

import huggingface_hub
from huggingface_hub import constants as hf_constants

from magi_engine.errors import ConfigError, DownloadError

log = logging.getLogger(__name__)

REPO_ID = "sand-ai/MAGI-1"
#: Variant → its weight folder (the official `inference_weight` + `.fp8` if quantised + `.distill` if distilled).
VARIANTS: dict[str, str] = {
    "4.5B_base": "inference_weight",
    "4.5B_distill": "inference_weight.distill",
    "4.5B_distill_quant": "inference_weight.fp8.distill",
    "24B_base": "inference_weight",
    "24B_distill": "inference_weight.distill",
    "24B_distill_quant": "inference_weight.fp8.distill",
}
VAE_DIR = "ckpt/vae"
T5_DIR = "ckpt/t5/t5-v1_1-xxl"
#: Never downloaded: pickled weights (and other frameworks' formats we do not read).
IGNORE_PATTERNS = ["*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle", "*.msgpack", "*.h5", "*.ot"]


class DownloadCancelled(Exception):
    """The user cancelled a download; files already complete stay in the cache for next time."""


class _CancelRequested(BaseException):
    # A BaseException, like KeyboardInterrupt, so that no `except Exception` inside huggingface_hub's
    # download loop or its worker threads swallows it on the way out.
    pass


def weight_dir(variant: str) -> str:
    """Repository path of a variant's DiT weights, e.g. "ckpt/magi/24B_distill/inference_weight.distill"."""
    if variant not in VARIANTS:
        raise ConfigError(f"Unknown MAGI-1 variant {variant!r}; choose one of {', '.join(VARIANTS)}.")
    return f"ckpt/magi/{variant}/{VARIANTS[variant]}"


def allow_patterns_for(variant: str, include_vae: bool = True, include_t5: bool = True) -> list[str]:
    """Glob patterns (huggingface_hub's fnmatch rules) of the files `variant` needs."""
    patterns = [f"{weight_dir(variant)}/*.safetensors", f"{weight_dir(variant)}/*.json"]
    if include_vae:
        patterns += [f"{VAE_DIR}/*.safetensors", f"{VAE_DIR}/*.json"]
    if include_t5:
        # T5 tokenizer: spiece.model (sentencepiece) plus tokenizer.json / *_config.json / special tokens.
        patterns += [f"{T5_DIR}/*.safetensors", f"{T5_DIR}/*.json", f"{T5_DIR}/*.model"]
    return patterns


def _offline_now() -> bool:
    """HF_HUB_OFFLINE as it is now: huggingface_hub reads the variable once at import, the user may set it later."""
    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(hf_constants.HF_HUB_OFFLINE) or env.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _cache_dir_now(cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("HF_HUB_CACHE")
    return Path(env).expanduser() if env else Path(hf_constants.HF_HUB_CACHE)


def _progress_class(progress: Callable[[int, int], None] | None, cancel: Callable[[], bool] | None):
    """A tqdm stand-in bound to one download's callbacks.

    huggingface_hub (2.x) creates, per snapshot: a file-count bar, a "Downloading bytes" bar (network
    bytes) and a "Reconstructing" bar (bytes written to disk, whose total grows as each file announces
    its size and which also receives resumed bytes). Reported progress is the latter, (done, total) in
    bytes, from download threads. Every update checks `cancel()`; cancellation therefore lands within a
    chunk on the plain HTTP path and at the latest at the next finished file on the Xet path.
    """
    lock = threading.Lock()
    state = {"reporter": None}

    class _HubProgress:
        def __init__(self, iterable=None, *args, desc: str | None = None, total: float | None = None,
                     initial: float = 0, unit: str = "it", **kwargs) -> None:
            self.iterable = iterable
            self.desc = desc or ""
            self.total = total
            self.n = initial or 0
            self.unit = unit
            self.format_dict: dict = {"rate": None}
            self._check_cancel()
            with lock:
                is_bytes = unit == "B"
                reporter = state["reporter"]
                # Prefer the on-disk ("Reconstructing") bytes bar; fall back to the first bytes bar.
                if is_bytes and (reporter is None or (self.desc.startswith("Reconstructing")
                                                      and not reporter.desc.startswith("Reconstructing"))):
                    state["reporter"] = self

        @staticmethod
        def _check_cancel() -> None:
            if cancel is not None and cancel():
                raise _CancelRequested()

        def update(self, n: float | None = 1) -> None:
            with lock:
                self.n += n or 0
                done, total = int(self.n), int(self.total or 0)
                report = state["reporter"] is self
            if report and progress is not None:
                progress(done, max(total, done))
            self._check_cancel()

        def refresh(self, *args, **kwargs) -> None:
            self._check_cancel()

        def __iter__(self):
            for item in self.iterable or ():
                yield item
                self.update(1)

        def __enter__(self):
            return self

        def __exit__(self, *exc_info) -> None:
            self.close()

        # The rest of tqdm's surface that huggingface_hub touches; nothing to display here.
        def close(self) -> None:
            pass

        def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
            self.desc = desc or ""

        set_description_str = set_description

        def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
            pass

        def reset(self, total: float | None = None) -> None:
            self.n, self.total = 0, total

    return _HubProgress


def _check_present(root: Path, variant: str, include_vae: bool, include_t5: bool) -> list[str]:
    """Parts of the variant that the snapshot folder lacks (no safetensors where weights belong)."""
    wanted = [weight_dir(variant)] + ([VAE_DIR] if include_vae else []) + ([T5_DIR] if include_t5 else [])
    return [part for part in wanted if not any((root / part).glob("*.safetensors"))]


def download_variant(variant: str, *, cache_dir: str | os.PathLike[str] | None = None, revision: str | None = None,
                     progress: Callable[[int, int], None] | None = None, cancel: Callable[[], bool] | None = None,
                     local_files_only: bool | None = None, include_vae: bool = True,
                     include_t5: bool = True) -> Path:
    """Fetch (or find in the cache) what `variant` needs and return the snapshot root folder.

    `progress(done_bytes, total_bytes)` is called from download threads; `cancel()` is polled on every
    progress update and a true result raises `DownloadCancelled`. `local_files_only=None` follows
    HF_HUB_OFFLINE. Failures raise `DownloadError`.
    """
    allow = allow_patterns_for(variant, include_vae=include_vae, include_t5=include_t5)
    offline = _offline_now() if local_files_only is None else bool(local_files_only)
    cache = _cache_dir_now(cache_dir)
    if cancel is not None and cancel():
        raise DownloadCancelled(f"Download of MAGI-1 {variant} was cancelled before it started.")
    log.info("fetching MAGI-1 %s (%s) into %s%s", variant, ", ".join(allow), cache, " (offline)" if offline else "")
    try:
        root = huggingface_hub.snapshot_download(
            REPO_ID, revision=revision, cache_dir=str(cache), allow_patterns=allow, ignore_patterns=IGNORE_PATTERNS,
            local_files_only=offline, tqdm_class=_progress_class(progress, cancel))
    except _CancelRequested:
        raise DownloadCancelled(f"Download of MAGI-1 {variant} was cancelled; finished files stay in the cache.") from None
    except Exception as exc:  # every failure of the hub client is a download problem for the user
        log.debug("snapshot_download failed", exc_info=True)
        if offline:
            raise DownloadError(f"MAGI-1 {variant} is not in the Hugging Face cache ({cache}) and offline mode is on. "
                                "Turn offline mode off (unset HF_HUB_OFFLINE) to download it, or copy the "
                                "files into that cache.") from exc
        raise DownloadError(f"Downloading MAGI-1 {variant} from {REPO_ID} failed ({type(exc).__name__}: {exc}). "
                            "Check the internet connection and the free disk space, then try again.") from exc
    root = Path(root)
    missing = _check_present(root, variant, include_vae, include_t5)
    if missing:
        if offline:
            raise DownloadError(f"MAGI-1 {variant} is not in the Hugging Face cache ({cache}) and offline mode is on "
                                f"(missing: {', '.join(missing)}). Turn offline mode off (unset HF_HUB_OFFLINE) "
                                "to download it.")
        raise DownloadError(f"{REPO_ID} offers no safetensors weights in {', '.join(missing)}. "
                            "Pickled weights are never downloaded; fetch a safetensors copy of that part yourself.")
    return root
