"""MAGI-1's text encoder: T5 v1.1 XXL (encoder only) behind the engine's `TextEncoder` interface.

Follows MAGI-1's `inference/model/t5/t5_model.py` and `inference/pipeline/prompt_process.py`:
the prompt is cleaned twice (`magi_engine.text.clean`), tokenised to at most 800 tokens with the EOS
token appended and padded to 800, run through transformers' `T5EncoderModel`, and the
`last_hidden_state` rows of the valid (mask = 1) tokens are kept as float32. Then MAGI-1's special
tokens (HQ, and DURATION for the number of chunks still to generate) go in front and the sequence is
cut back to 800 rows (`magi_engine.text.special_tokens`).

Weights are read from a local folder as safetensors only; pickled checkpoints (pytorch_model.bin,
*.pt, ...) are refused, and nothing is ever downloaded (`local_files_only=True`).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from magi_engine.errors import CheckpointError, ConfigError, DeviceError, OutOfMemory
from magi_engine.text.clean import clean_caption
from magi_engine.text.special_tokens import SpecialTokens

__all__ = ["T5TextEncoder", "MAX_TOKENS"]

log = logging.getLogger(__name__)

#: MAGI-1's `caption_max_length`: tokens per chunk, special tokens included.
MAX_TOKENS = 800

_PICKLE_PATTERNS = ("pytorch_model*.bin", "pytorch_model*.bin.index.json", "*.pt", "*.pth", "*.pkl", "*.ckpt")
_TOKENIZER_FILES = ("tokenizer.json", "spiece.model")


def _convert_hint(folder: Path) -> str:
    return ("Convert it once, in a Python where you trust the file, with: python -c \"from transformers import "
            f"T5EncoderModel as M; M.from_pretrained(r'{folder}').save_pretrained(r'{folder}', "
            "safe_serialization=True)\" and then delete the pickled files.")


def _check_folder(folder: Path) -> None:
    """Raise CheckpointError naming what is missing before transformers sees the folder."""
    if not folder.exists():
        raise CheckpointError(f"T5 folder {folder} does not exist. Choose the folder that holds the "
                              "T5 encoder's config.json, model.safetensors and tokenizer.")
    if not folder.is_dir():
        raise CheckpointError(f"T5 path {folder} is a file; choose the folder that contains it.")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"T5 folder {folder} lacks config.json; the download is incomplete.")
    try:
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError) as error:
        raise CheckpointError(f"T5 folder {folder}: config.json cannot be read ({error}).") from None
    if model_type != "t5":
        raise CheckpointError(f"T5 folder {folder} holds a '{model_type}' model, not a T5 encoder.")

    index_file = folder / "model.safetensors.index.json"
    if index_file.is_file():
        try:
            shards = sorted(set(json.loads(index_file.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError) as error:
            raise CheckpointError(f"T5 folder {folder}: {index_file.name} cannot be read ({error}).") from None
        missing = [name for name in shards if not (folder / name).is_file()]
        if missing:
            raise CheckpointError(f"T5 folder {folder} lacks the weight shard(s) {missing} listed in "
                                  f"{index_file.name}; the download is incomplete.")
    elif not (folder / "model.safetensors").is_file():
        pickled = sorted({p.name for pattern in _PICKLE_PATTERNS for p in folder.glob(pattern)})
        if pickled:
            raise CheckpointError(f"T5 folder {folder} only has pickled weights ({', '.join(pickled)}); pickled "
                                  "checkpoints are refused because loading them can run code. "
                                  + _convert_hint(folder))
        raise CheckpointError(f"T5 folder {folder} lacks its weights (model.safetensors or "
                              "model.safetensors.index.json with its shards).")
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise CheckpointError(f"T5 folder {folder} lacks its tokenizer ({' or '.join(_TOKENIZER_FILES)}).")
    if not (folder / "tokenizer.json").is_file() and not _protobuf_available():
        # transformers converts spiece.model to its fast tokenizer with protobuf; without it the
        # failure surfaces as an unrelated "tiktoken is required" message.
        raise CheckpointError(
            f"T5 folder {folder} has only spiece.model, and reading it needs the 'protobuf' package. Install "
            "protobuf, or write tokenizer.json once where it is installed: python -c \"from transformers import "
            f"AutoTokenizer; AutoTokenizer.from_pretrained(r'{folder}').save_pretrained(r'{folder}')\"")


def _protobuf_available() -> bool:
    try:
        return importlib.util.find_spec("google.protobuf") is not None
    except ModuleNotFoundError:  # not even the "google" namespace
        return False


class T5TextEncoder:
    """`TextEncoder` for MAGI-1: T5 features of the valid tokens, with special tokens in front."""

    def __init__(self, model, tokenizer, *, special_tokens: SpecialTokens | None = None,
                 max_tokens: int = MAX_TOKENS, cache_size: int = 32, pad_to_max_length: bool = True,
                 clean_prompts: bool = True) -> None:
        """`model` is a transformers T5EncoderModel, `tokenizer` its tokenizer.

        pad_to_max_length: pad every prompt to `max_tokens` as MAGI-1 does. False pads nothing,
        which is much faster on a CPU; the masked padding does not change the valid rows except for
        floating-point summation order.
        """
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise ConfigError(f"T5TextEncoder.max_tokens must be a positive integer, got {max_tokens!r}")
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError(f"T5TextEncoder.cache_size must be an integer >= 0, got {cache_size!r}")
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.embed_dim = int(model.config.d_model)
        self.max_tokens = max_tokens
        if special_tokens is not None and special_tokens.embed_dim != self.embed_dim:
            raise CheckpointError(f"The special tokens ({special_tokens.source or 'in memory'}) are "
                                  f"{special_tokens.embed_dim} wide but the T5 encoder gives {self.embed_dim}; "
                                  "they belong to a different model.")
        if special_tokens is None:
            log.info("T5 text encoder without special tokens: MAGI-1 checkpoints expect HQ and DURATION tokens")
        self.special_tokens = special_tokens
        self.pad_to_max_length = pad_to_max_length
        self.clean_prompts = clean_prompts
        self.cache_size = cache_size
        # Cleaned prompt -> T5 rows (without special tokens), so a prompt repeated over many chunks
        # runs T5 once whatever its chunks_remaining.
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        # Offloading: the weights live in CPU memory (`_host`) and visit `_compute_device` while encoding.
        self._compute_device: torch.device | None = None
        self._host: dict[str, torch.Tensor] = {}
        self._resident_depth = 0
        #: Times the weights were copied to the compute device (tests, benchmarks).
        self.uploads = 0

    @classmethod
    def from_folder(cls, path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                    special_tokens: SpecialTokens | None = None, offload_to: str | torch.device | None = None,
                    **options) -> "T5TextEncoder":
        """Load a T5 encoder and tokenizer from a local folder (safetensors only, never downloads).

        MAGI-1 runs T5 in float32; `options` go to the constructor (cache_size, pad_to_max_length...).
        `offload_to`: keep the weights on `device` (the CPU) and run each encoding on this device
        (see `offload`).
        """
        from safetensors import SafetensorError
        from transformers import AutoTokenizer, T5EncoderModel  # heavy: only when a T5 is loaded

        folder = Path(path).expanduser()
        _check_folder(folder)
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise DeviceError(f"Unknown device {device!r} for the T5 encoder ({error}).") from None
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            model = T5EncoderModel.from_pretrained(folder, dtype=dtype, use_safetensors=True, local_files_only=True)
        except (torch.OutOfMemoryError, MemoryError):
            raise OutOfMemory("The T5 encoder does not fit in memory. Close other programs or load it in "
                              "bfloat16.") from None
        except (OSError, ValueError, KeyError, RuntimeError, ImportError, SafetensorError) as error:
            raise CheckpointError(f"T5 folder {folder} cannot be loaded: {error}") from None
        try:
            model = model.to(device)
        except torch.OutOfMemoryError:
            raise OutOfMemory(f"The T5 encoder does not fit in the memory of {device}. Run it on the CPU "
                              "or in bfloat16.") from None
        except (RuntimeError, AssertionError) as error:
            raise DeviceError(f"The T5 encoder cannot run on {device}: {error}") from None
        log.info("loaded T5 encoder from %s (width %d, %s, %s)", folder, int(model.config.d_model), dtype, device)
        encoder = cls(model, tokenizer, special_tokens=special_tokens, **options)
        if offload_to is not None:
            encoder.offload(offload_to)
        return encoder

    # Offloading ------------------------------------------------------------------------------------
    def offload(self, compute_device: str | torch.device) -> None:
        """Keep the weights in CPU memory (pinned where possible, for fast copies) and copy them to
        `compute_device` only while prompts are encoded; they leave it as soon as encoding ends, so the
        GPU holds T5 for seconds per new prompt instead of for the whole session."""
        self._compute_device = torch.device(compute_device)
        self._host = {}
        for name, tensor in self._weights():
            host = tensor.detach().to("cpu")
            if self._compute_device.type == "cuda":
                try:
                    host = host.pin_memory()
                except RuntimeError as error:  # no page-locked memory to spare: plain copies, slower
                    log.warning("T5 weights not pinned (%s); copies to the GPU will be slower", error)
            self._host[name] = host
            tensor.data = host

    @property
    def offloaded(self) -> bool:
        return self._compute_device is not None

    @contextmanager
    def resident(self) -> Iterator[None]:
        """While inside, an offloaded encoder's weights stay on the compute device (encode several
        prompts for one copy); a no-op for an encoder that is not offloaded. Nests."""
        if self._compute_device is None:
            yield
            return
        if self._resident_depth == 0:
            self.uploads += 1
            for name, tensor in self._weights():
                tensor.data = self._host[name].to(self._compute_device, non_blocking=True)
        self._resident_depth += 1
        try:
            yield
        finally:
            self._resident_depth -= 1
            if self._resident_depth == 0:
                for name, tensor in self._weights():
                    tensor.data = self._host[name]
                if self._compute_device.type == "cuda":
                    torch.cuda.empty_cache()  # give the freed blocks back for the DiT's activations

    def _weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        yield from self.model.named_parameters()
        yield from self.model.named_buffers()

    # TextEncoder -----------------------------------------------------------------------------------
    def encode(self, prompt: str, chunks_remaining: int = 1) -> torch.Tensor:
        """float32 CPU [tokens, embed_dim]: [special tokens..., valid T5 tokens incl. EOS], <= max_tokens."""
        if not isinstance(chunks_remaining, int) or chunks_remaining < 1:
            raise ConfigError(f"chunks_remaining must be an integer >= 1 (the chunk itself counts), "
                              f"got {chunks_remaining!r}")
        text = self.prepare(prompt)
        features = self._cached_features(text)  # [L, C]
        if self.special_tokens is not None:
            features = self.special_tokens.prepend(features, chunks_remaining)  # new tensor
        else:
            features = features.clone()  # callers may write into it; the cache must not change
        return features[: self.max_tokens]

    def prepare(self, prompt: str) -> str:
        """The text T5 actually sees: cleaned twice, as in MAGI-1 (or lower-cased if cleaning is off)."""
        if self.clean_prompts:
            return clean_caption(clean_caption(prompt))
        return str(prompt).lower().strip()

    # Internals -------------------------------------------------------------------------------------
    def is_cached(self, prompt: str) -> bool:
        """Whether encoding `prompt` would run no T5 forward."""
        with self._lock:
            return self.prepare(prompt) in self._cache

    def _cached_features(self, text: str) -> torch.Tensor:
        with self._lock:
            if text in self._cache:
                self._cache.move_to_end(text)
                return self._cache[text]
        with self.resident():
            features = self._run_t5(text)
        if self.cache_size:
            with self._lock:
                self._cache[text] = features
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return features

    @property
    def device(self) -> torch.device:
        """Where the encoder computes (an offloaded one: where its weights go while encoding)."""
        return self._compute_device or next(self.model.parameters()).device

    def _run_t5(self, text: str) -> torch.Tensor:
        batch = self.tokenizer([text], max_length=self.max_tokens,
                               padding="max_length" if self.pad_to_max_length else "longest",
                               truncation=True, add_special_tokens=True, return_attention_mask=True,
                               return_tensors="pt")
        device = self.device
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)  # [1, T]
        try:
            with torch.no_grad():
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state  # [1, T, C]
        except torch.OutOfMemoryError:
            raise OutOfMemory(f"Encoding a prompt with T5 ran out of memory on {device}.") from None
        valid = hidden[0][mask[0].bool()]  # [L, C], padding dropped
        if valid.shape[0] == 0:
            # Only possible with a tokenizer that adds no EOS; keep one row so the DiT gets a token.
            log.warning("T5 tokenizer produced no token for %r; using the first position", text)
            valid = hidden[0, :1]
        if not torch.isfinite(valid).all():
            # T5 v1.1 is known to overflow in float16; NaN features would silently ruin the video.
            raise ConfigError(f"T5 produced non-finite features in {hidden.dtype}. Load the text encoder in "
                              "bfloat16 or float32.")
        return valid.float().cpu()
