"""The frozen request the GUI snapshots and the engine runs.

A request describes one contiguous run of chunks of one shot. Chunk indices are positions in the
shot: `start_chunk` is the index of `chunks[0]`. Regenerating from chunk N passes start_chunk = N and
the clean latents of the chunks just before N (`context_latents`, at most the last four are used);
continuing a previous shot passes that shot's last latents the same way. A reference image becomes
the first frame of chunk `start_chunk`; a prefix video is encoded and its last whole chunks become
the context, any remainder the first frames of the first new chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from magi_engine.config import CHUNK_LATENT_FRAMES, SamplingConfig
from magi_engine.errors import ConfigError, InputError

if TYPE_CHECKING:  # annotations only: importing the engine's types must not load torch (nor numpy)
    import numpy as np
    import torch

MAX_SEED = 2**63 - 1
MAX_PROMPT_CHARS = 4000
MIN_SIZE, MAX_SIZE = 64, 4096


@dataclass(frozen=True)
class ChunkSpec:
    prompt: str
    seed: int
    #: What the chunk should not look like. Base (CFG) models use it in place of the null caption in
    #: their guidance passes; "" keeps the null caption (MAGI-1's own behaviour, bit for bit).
    #: Distilled models have no guidance pass and ignore it.
    negative_prompt: str = ""

    def __post_init__(self) -> None:
        for name, label in (("prompt", "A chunk prompt"), ("negative_prompt", "A negative prompt")):
            text = getattr(self, name)
            if not isinstance(text, str):
                raise InputError(f"{label} must be text, got {type(text).__name__}")
            if len(text) > MAX_PROMPT_CHARS:
                raise InputError(f"{label} is {len(text)} characters long; the limit is {MAX_PROMPT_CHARS}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"A chunk seed must be an integer from 0 to {MAX_SEED}, got {self.seed!r}")


@dataclass(frozen=True)
class GenerationRequest:
    chunks: tuple[ChunkSpec, ...]
    width: int
    height: int
    #: None: the model's default sampling settings.
    sampling: SamplingConfig | None = None
    start_chunk: int = 0
    #: Clean latents [16, 6, H/8, W/8] of the chunks right before `start_chunk`, oldest first.
    context_latents: tuple[torch.Tensor, ...] = ()
    #: uint8 [H, W, 3] image: the first frame of chunk `start_chunk` (image-to-video).
    reference_image: np.ndarray | None = None
    #: uint8 [T, H, W, 3] frames to continue (video continuation).
    prefix_video: np.ndarray | None = None
    #: Chunks in the whole shot (MAGI-1's duration token counts the chunks that remain); default: up to the last.
    shot_length: int | None = None
    previews: bool = True
    decode: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "chunks", tuple(self.chunks))
        object.__setattr__(self, "context_latents", tuple(self.context_latents))
        if not self.chunks:
            raise InputError("The request has no chunks to generate.")
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not MIN_SIZE <= value <= MAX_SIZE or value % 16:
                raise ConfigError(f"Video {name} must be a multiple of 16 from {MIN_SIZE} to {MAX_SIZE} pixels, "
                                  f"got {value!r}.")
        if self.start_chunk < 0:
            raise ConfigError(f"start_chunk must be 0 or more, got {self.start_chunk}")
        if self.shot_length is not None and self.shot_length < self.end_chunk:
            raise ConfigError(f"shot_length {self.shot_length} is shorter than the chunks requested (up to {self.end_chunk})")
        if len(self.context_latents) > self.start_chunk:
            raise ConfigError(f"{len(self.context_latents)} context chunks given before chunk {self.start_chunk}")
        latent_shape = (16, CHUNK_LATENT_FRAMES, self.height // 8, self.width // 8)
        for latent in self.context_latents:
            if tuple(latent.shape) != latent_shape:
                raise InputError(f"A context latent has shape {tuple(latent.shape)}; this video needs {latent_shape}. "
                                 "Regenerate the earlier chunks at this resolution first.")
        if self.reference_image is not None or self.prefix_video is not None:
            import numpy as np  # whoever made the arrays loaded it: the CLI's --help need not
        if self.reference_image is not None:
            image = self.reference_image
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise InputError("The reference image must be an RGB uint8 array [height, width, 3].")
        if self.prefix_video is not None:
            video = self.prefix_video
            if not isinstance(video, np.ndarray) or video.dtype != np.uint8 or video.ndim != 4 or video.shape[3] != 3:
                raise InputError("The prefix video must be RGB uint8 frames [frames, height, width, 3].")
            if video.shape[0] < 4:
                raise InputError(f"The prefix video has {video.shape[0]} frames; at least 4 are needed.")
            if self.context_latents:
                raise InputError("Give either a prefix video or context latents, not both.")
            if self.reference_image is not None:
                raise InputError("Give either a reference image or a prefix video, not both.")

    @property
    def end_chunk(self) -> int:
        return self.start_chunk + len(self.chunks)

    @property
    def total_chunks_in_shot(self) -> int:
        return self.shot_length if self.shot_length is not None else self.end_chunk
