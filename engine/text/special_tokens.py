"""MAGI-1's learned "special tokens": extra feature rows prepended to a chunk's T5 sequence.

They ship as `special_tokens.npz` (MAGI-1 `example/assets/`) with three float64 arrays:
`caption_token` [1, C], `logo_token` [1, C] and `other_tokens` [100, C] (C = 4096), of which rows
0 TRANS, 1 HQ, 2 STATIC_FIRST_FRAMES, 3 DYNAMIC_FIRST_FRAMES, 4 BORDERNESS, 7..14 DURATION_1..8,
15 THREE_D_MODEL and 16 TWO_D_ANIME are used. MAGI-1 (`inference/pipeline/prompt_process.py`) casts
them to float16 on load, then to the feature dtype, and prepends the enabled positive tokens one at a
time, each time cutting the sequence back to 800 rows. Its run scripts enable HQ and DURATION, so a
chunk's sequence is [DURATION_k, HQ, text tokens...], where k = chunks still to generate counting this
one, capped at 8. The negative tokens (CAPTION, LOGO, TRANS, BORDERNESS) belong to the null caption
when MAGI-1's NEG_PROMPT switch is on; `negative_prefix` gives them in the order they end up in.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from magi_engine.errors import CheckpointError, ConfigError

__all__ = ["SpecialTokens", "find_special_tokens", "SPECIAL_TOKENS_FILENAME", "POSITIVE_TOKENS",
           "DEFAULT_ENABLED"]

log = logging.getLogger(__name__)

SPECIAL_TOKENS_FILENAME = "special_tokens.npz"

#: Rows of `other_tokens` with a known meaning.
_OTHER_ROWS = {"TRANS": 0, "HQ": 1, "STATIC_FIRST_FRAMES": 2, "DYNAMIC_FIRST_FRAMES": 3, "BORDERNESS": 4,
               "THREE_D_MODEL": 15, "TWO_D_ANIME": 16}
_DURATION_FIRST_ROW = 7
MAX_DURATION = 8
_REQUIRED_OTHER_ROWS = max(max(_OTHER_ROWS.values()), _DURATION_FIRST_ROW + MAX_DURATION - 1) + 1

#: Positive tokens in the order MAGI-1 prepends them (each goes in front of the previous ones, so
#: the last one, DURATION, ends up first).
POSITIVE_TOKENS = ("STATIC_FIRST_FRAMES", "DYNAMIC_FIRST_FRAMES", "BORDERNESS", "HQ", "THREE_D_MODEL",
                   "TWO_D_ANIME", "DURATION")
#: What MAGI-1's shipped run scripts enable (PAD_HQ=1, PAD_DURATION=1).
DEFAULT_ENABLED = ("HQ", "DURATION")
#: Negative tokens in the order MAGI-1 prepends them to the null caption.
_NEGATIVE_ORDER = ("CAPTION", "LOGO", "TRANS", "BORDERNESS")


def _check_settings(enabled: tuple[str, ...], max_length: int) -> tuple[str, ...]:
    """Validate the runtime choices; return `enabled` in the official order."""
    unknown = sorted(set(enabled) - set(POSITIVE_TOKENS))
    if unknown:
        raise ConfigError(f"SpecialTokens.enabled has unknown token(s) {unknown}; allowed are {list(POSITIVE_TOKENS)}")
    if not isinstance(max_length, int) or max_length < 1:
        raise ConfigError(f"SpecialTokens.max_length must be a positive integer, got {max_length!r}")
    return tuple(name for name in POSITIVE_TOKENS if name in enabled)


@dataclass(frozen=True, eq=False)
class SpecialTokens:
    """The special-token table plus the choice of enabled positive tokens.

    Tensors are float32 holding float16-rounded values (MAGI-1 rounds them through float16).
    """

    caption: torch.Tensor  # [1, C]
    logo: torch.Tensor  # [1, C]
    other: torch.Tensor  # [rows >= 17, C]
    enabled: tuple[str, ...] = DEFAULT_ENABLED
    max_length: int = 800
    source: Path | None = None

    def __post_init__(self) -> None:
        # Keep the official order whatever order the caller listed them in.
        object.__setattr__(self, "enabled", _check_settings(self.enabled, self.max_length))
        width = self.other.shape[-1] if self.other.ndim == 2 else -1
        if (width < 1 or self.other.shape[0] < _REQUIRED_OTHER_ROWS
                or tuple(self.caption.shape) != (1, width) or tuple(self.logo.shape) != (1, width)):
            raise ConfigError(
                f"SpecialTokens need caption/logo [1, C] and other [>= {_REQUIRED_OTHER_ROWS}, C], got "
                f"{tuple(self.caption.shape)}, {tuple(self.logo.shape)}, {tuple(self.other.shape)}")

    # Loading ----------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, *, enabled: tuple[str, ...] = DEFAULT_ENABLED,
             max_length: int = 800) -> "SpecialTokens":
        """Read `special_tokens.npz` (no pickle) and round the rows through float16 as MAGI-1 does."""
        _check_settings(enabled, max_length)  # a wrong setting is not the file's fault
        path = Path(path).expanduser()
        if not path.is_file():
            raise CheckpointError(f"Special-token file {path} does not exist. "
                                  f"Point the engine at MAGI-1's {SPECIAL_TOKENS_FILENAME}.")
        arrays = {}
        try:
            data = np.load(path, allow_pickle=False)  # a pickled file raises ValueError here...
            if not hasattr(data, "files"):
                raise CheckpointError(f"Special-token file {path} holds a single array, not an .npz archive "
                                      "with caption_token, logo_token and other_tokens.")
            with data:
                for name in ("caption_token", "logo_token", "other_tokens"):
                    if name not in data.files:
                        raise CheckpointError(
                            f"Special-token file {path} lacks the array '{name}' (it has {sorted(data.files)}). "
                            f"Use MAGI-1's {SPECIAL_TOKENS_FILENAME}.")
                    try:
                        arrays[name] = data[name]  # ...and an object array in an archive here
                    except ValueError:
                        raise CheckpointError(
                            f"Special-token file {path}: array '{name}' is stored as pickled Python objects, "
                            "and pickled data is refused. Re-save it as a plain numeric array.") from None
        except ValueError as error:
            raise CheckpointError(f"Special-token file {path} needs pickle to load ({error}); pickled data "
                                  "is refused. Re-save the arrays as plain numeric .npz arrays.") from None
        except (OSError, zipfile.BadZipFile, EOFError) as error:
            raise CheckpointError(f"Special-token file {path} cannot be read ({error}). "
                                  "Download it again.") from None
        tensors = {}
        for name, array in arrays.items():
            if array.dtype.kind not in "fiu":
                raise CheckpointError(f"Special-token file {path}: array '{name}' has dtype {array.dtype}, "
                                      "expected floating point numbers.")
            # float16 first, as MAGI-1 does: the DiT was trained on these rounded values.
            tensors[name] = torch.from_numpy(array.astype(np.float16)).float()
        try:
            tokens = cls(tensors["caption_token"], tensors["logo_token"], tensors["other_tokens"],
                         enabled=enabled, max_length=max_length, source=path)
        except ConfigError as error:
            raise CheckpointError(f"Special-token file {path} has unexpected shapes: {error}") from None
        log.info("loaded special tokens from %s (width %d, enabled %s)", path, tokens.embed_dim, tokens.enabled)
        return tokens

    # Lookup ----------------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        return int(self.other.shape[-1])

    def token(self, name: str) -> torch.Tensor:
        """One token by name ("HQ", "TRANS", "CAPTION", "DURATION_3", ...) as [1, C]."""
        if name == "CAPTION":
            return self.caption
        if name == "LOGO":
            return self.logo
        if name in _OTHER_ROWS:
            row = _OTHER_ROWS[name]
            return self.other[row:row + 1]
        suffix = name.removeprefix("DURATION_")
        if suffix != name and suffix.isdigit() and 1 <= int(suffix) <= MAX_DURATION:
            return self.duration(int(suffix))
        raise ConfigError(f"unknown special token {name!r}; known are CAPTION, LOGO, "
                          f"{', '.join(_OTHER_ROWS)}, DURATION_1..DURATION_{MAX_DURATION}")

    def duration(self, chunks_remaining: int) -> torch.Tensor:
        """DURATION_k as [1, C], k = min(chunks_remaining, 8); chunks_remaining counts the chunk itself."""
        if not isinstance(chunks_remaining, int) or chunks_remaining < 1:
            raise ConfigError(f"chunks_remaining must be an integer >= 1 (the chunk itself counts), "
                              f"got {chunks_remaining!r}")
        row = _DURATION_FIRST_ROW + min(chunks_remaining, MAX_DURATION) - 1
        return self.other[row:row + 1]

    def prefix(self, chunks_remaining: int = 1) -> torch.Tensor:
        """The enabled positive tokens in the order they end up in front of the text, [n, C]."""
        rows = [self.duration(chunks_remaining) if name == "DURATION" else self.token(name)
                for name in self.enabled]
        if not rows:
            return self.other.new_zeros(0, self.embed_dim)
        return torch.cat(rows[::-1], dim=0)  # prepended one by one: the last enabled comes first

    def prepend(self, features: torch.Tensor, chunks_remaining: int = 1) -> torch.Tensor:
        """[L, C] valid text features -> [min(L + n, max_length), C] with the positive tokens in front.

        MAGI-1 cuts after each prepended token; cutting once at the end keeps the same rows because
        every cut removes rows from the tail only.
        """
        if features.ndim != 2 or features.shape[-1] != self.embed_dim:
            raise ConfigError(f"special tokens have width {self.embed_dim}; features must be [tokens, "
                              f"{self.embed_dim}], got {tuple(features.shape)}")
        prefix = self.prefix(chunks_remaining).to(device=features.device, dtype=features.dtype)
        return torch.cat([prefix, features], dim=0)[: self.max_length]  # [L', C]

    def negative_prefix(self) -> torch.Tensor:
        """MAGI-1's negative tokens as they end up in front of the null caption: BORDERNESS, TRANS,
        LOGO, CAPTION ([4, C]); the null caption's first 50 rows stay the valid ones."""
        return torch.cat([self.token(name) for name in reversed(_NEGATIVE_ORDER)], dim=0)


def find_special_tokens(*folders: str | Path | None) -> Path | None:
    """The first `special_tokens.npz` found in `folders` (or one of them is the file itself)."""
    for folder in folders:
        if folder is None:
            continue
        folder = Path(folder).expanduser()
        if folder.is_file() and folder.name == SPECIAL_TOKENS_FILENAME:
            return folder
        candidate = folder / SPECIAL_TOKENS_FILENAME
        if candidate.is_file():
            return candidate
    log.debug("no %s in %s", SPECIAL_TOKENS_FILENAME, [str(f) for f in folders])
    return None
