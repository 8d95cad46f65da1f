"""GenerationSession: the engine's one API to generate video, which the studio, the command line and the tests use.

    session = GenerationSession.load("studio-mini")
    for event in session.generate(GenerationRequest(chunks=..., width=..., height=...), cancel=token):
        ...

`generate` is a generator of typed events (magi_engine.events). It checks the cancel token between
denoising steps, delivers every chunk (decoded frames and clean latents) the moment it is clean, and
ends with exactly one of Finished, Cancelled or Failed — errors become a Failed event with a typed
EngineError, never an exception out of the generator.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from typing import Iterator

import numpy as np
import torch

from magi_engine.bundle import ModelBundle
from magi_engine.config import CHUNK_FRAMES, CHUNK_LATENT_FRAMES, RuntimeConfig, SamplingConfig, model_sampling
from magi_engine.errors import EngineError, OutOfMemory
from magi_engine.events import (CancelToken, Cancelled, ChunkFinished, ChunkStarted, Event, Failed, Finished,
                           GenerationStarted, StepProgress)
from magi_engine.requests import GenerationRequest
from magi_engine.sampler.loop import ChunkDone, ChunkEntered, ChunkPlan, StepDone, chunk_noise, sample_chunks
from magi_engine.sampler.window import total_steps
from magi_engine.video_io import fit_image

log = logging.getLogger(__name__)


class GenerationSession:
    def __init__(self, bundle: ModelBundle) -> None:
        self.bundle = bundle
        self._text_cache: dict[tuple[str, int], torch.Tensor] = {}

    @classmethod
    def load(cls, model: str = "studio-mini", *, device: str = "auto", dtype: str | None = None,
             text_on_cpu: bool = False, progress=None, cancel=None, runtime: RuntimeConfig | None = None,
             width: int | None = None, height: int | None = None, window: int | None = None,
             chunks: int | None = None) -> "GenerationSession":
        """`runtime`: compiled layers / native FP8; None lets the engine choose for the device. `width`,
        `height`, `window`, `chunks`: what the loader fits the memory to (None: the model's defaults;
        magi_engine.loading.memory.MemoryTarget)."""
        from magi_engine.models import load_model

        return cls(load_model(model, device=device, dtype=dtype, text_on_cpu=text_on_cpu, progress=progress,
                              cancel=cancel, runtime=runtime, width=width, height=height, window=window,
                              chunks=chunks))

    # Information --------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.bundle.device

    @property
    def default_sampling(self) -> SamplingConfig:
        return self.bundle.sampling

    def sampling_for(self, request: GenerationRequest) -> SamplingConfig:
        return model_sampling(request.sampling, self.bundle.sampling, distilled=bool(self.bundle.dit.config.distilled),
                              label=self.bundle.label)

    # Encoding helpers (also used by the studio) ------------------------------------------------
    def encode_prompt(self, prompt: str, chunks_remaining: int) -> torch.Tensor:
        key = (prompt, chunks_remaining)
        if key not in self._text_cache:
            with torch.inference_mode():
                self._text_cache[key] = self.bundle.text_encoder.encode(prompt, chunks_remaining).float().cpu()
        return self._text_cache[key]

    def _text_encoder_resident(self, request: GenerationRequest, sampling: SamplingConfig):
        """An offloaded text encoder visits the GPU once for all the request's new prompts, and not at all
        when every prompt was encoded before (a regeneration)."""
        encoder = self.bundle.text_encoder
        resident, known = getattr(encoder, "resident", None), getattr(encoder, "is_cached", lambda prompt: False)
        wanted = [(prompt, request.total_chunks_in_shot - (request.start_chunk + j))
                  for j, spec in enumerate(request.chunks)
                  for prompt in (spec.prompt, spec.negative_prompt if _uses_negative(spec, sampling) else None)
                  if prompt is not None]
        new = any(key not in self._text_cache and not known(key[0]) for key in wanted)
        return resident() if new and resident is not None else nullcontext()

    def encode_image(self, image: np.ndarray, width: int, height: int) -> torch.Tensor:
        """uint8 [H, W, 3] -> the latent first frame [16, 1, height/8, width/8] (image fitted by cover-crop)."""
        fitted = fit_image(image, width, height, mode="cover")
        with torch.inference_mode():
            vae = self.bundle.vae
            return vae.image_to_latent(torch.from_numpy(np.ascontiguousarray(fitted)).to(vae.device),
                                       runner=self._tile_runner()).float().cpu()

    def encode_video(self, frames: np.ndarray, width: int, height: int) -> torch.Tensor:
        """uint8 [T, H, W, 3] (T a multiple of 4) -> latents [16, T/4, height/8, width/8]."""
        fitted = np.stack([fit_image(f, width, height, mode="cover") for f in frames])
        with torch.inference_mode():
            vae = self.bundle.vae
            return vae.pixels_to_latents(torch.from_numpy(fitted).to(vae.device), runner=self._tile_runner()).float().cpu()

    def decode(self, latent: torch.Tensor) -> np.ndarray:
        """Latents [16, T, h, w] -> uint8 frames [4T, 8h, 8w, 3]."""
        with torch.inference_mode():
            vae = self.bundle.vae
            # The memory plan's budget, where the card is tight: tiles that fit beside the DiT.
            frames = vae.latents_to_pixels(latent.to(device=vae.device, dtype=vae.dtype), runner=self._tile_runner(),
                                           budget_bytes=self.bundle.vae_decode_budget)
        return frames.cpu().numpy()

    def _tile_runner(self):
        """The VAE's TileRunner: None computes every tile here (a ParallelSession spreads them over its ranks)."""
        return None

    # Generation ---------------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, cancel: CancelToken | None = None) -> Iterator[Event]:
        started = time.perf_counter()
        finished: list[int] = []
        try:
            yield from self._generate(request, cancel, started, finished)
        except EngineError as error:
            yield Failed(error, tuple(finished))
        except torch.OutOfMemoryError:
            yield Failed(OutOfMemory(f"{self.bundle.label} ran out of memory at {request.width}x{request.height}. "
                                     "Choose a smaller size, a window of 1, or a smaller model."), tuple(finished))
        except Exception as exc:  # a bug: report it as an event, keep the details in the log
            log.exception("generation failed")
            yield Failed(EngineError(f"Generation stopped by an internal error ({type(exc).__name__}: {exc}). "
                                     "Finished chunks are kept."), tuple(finished))

    def _generate(self, request: GenerationRequest, cancel: CancelToken | None, started: float,
                  finished: list[int]) -> Iterator[Event]:
        bundle = self.bundle
        sampling = self.sampling_for(request)
        width, height = request.width, request.height

        context, first_frames, prefix_frames, offset = self._conditioning(request, sampling)
        plans = []
        with self._text_encoder_resident(request, sampling):
            for j, spec in enumerate(request.chunks):
                index = request.start_chunk + j
                remaining = request.total_chunks_in_shot - index
                # A negative prompt matters only to guidance passes: distilled models have none.
                negative = (self.encode_prompt(spec.negative_prompt, remaining)
                            if _uses_negative(spec, sampling) else None)
                plans.append(ChunkPlan(index + offset, chunk_noise(spec.seed, height, width),
                                       self.encode_prompt(spec.prompt, remaining), negative))
        null_text = bundle.dit.null_text()

        steps_total = total_steps(len(plans), sampling.num_steps, sampling.window)
        yield GenerationStarted(tuple(p.index - offset for p in plans), steps_total)
        loop = self._sample(sampling, plans, null_text, context, first_frames)
        done_steps = 0
        while True:
            if cancel is not None and cancel.is_set():
                loop.close()
                yield Cancelled(tuple(finished), time.perf_counter() - started)
                return
            with torch.inference_mode():
                event = next(loop, None)
            if event is None:
                break
            if isinstance(event, ChunkEntered):
                yield ChunkStarted(event.index - offset)
            elif isinstance(event, StepDone):
                done_steps += 1
                yield self._progress(event, done_steps, sampling, request, offset, started)
            elif isinstance(event, ChunkDone):
                chunk = event.index - offset
                latent = event.latent[0].float().cpu()
                frames = self.decode(latent) if request.decode else None
                finished.append(chunk)
                yield ChunkFinished(chunk, frames, latent, prefix_frames if chunk == request.start_chunk else 0,
                                    time.perf_counter() - started)
        yield Finished(tuple(finished), time.perf_counter() - started)

    def _sample(self, sampling: SamplingConfig, plans: list[ChunkPlan], null_text: torch.Tensor, context,
                first_frames: torch.Tensor | None) -> Iterator:
        """The sampler's events for this run (magi_engine.parallel runs it on several ranks instead)."""
        return sample_chunks(self.bundle.dit, sampling, plans, null_text, context=context, first_frames=first_frames)

    def _conditioning(self, request: GenerationRequest, sampling: SamplingConfig):
        """Clean context chunks, held first frames, prefix frames in the first chunk, index offset."""
        keep = sampling.cache_chunks
        if request.prefix_video is not None:
            # The last whole groups of 4 frames (the VAE's step), at most the cache's chunks.
            usable = min(len(request.prefix_video), keep * CHUNK_FRAMES) // 4 * 4
            frames = request.prefix_video[len(request.prefix_video) - usable:]
            latents = self.encode_video(frames, request.width, request.height)  # [16, L, h, w]
            whole, rest = divmod(latents.shape[1], CHUNK_LATENT_FRAMES)
            step = CHUNK_LATENT_FRAMES
            context = [(request.start_chunk + c, latents[None, :, c * step:(c + 1) * step]) for c in range(whole)]
            first = latents[None, :, whole * CHUNK_LATENT_FRAMES:] if rest else None
            return context, first, rest * 4, whole
        context = []
        given = request.context_latents[-keep:]
        for j, latent in enumerate(given):
            context.append((request.start_chunk - len(given) + j, latent[None].float()))
        first = None
        if request.reference_image is not None:
            first = self.encode_image(request.reference_image, request.width, request.height)[None]
        return context, first, 0, 0

    def _progress(self, event: StepDone, done: int, sampling: SamplingConfig, request: GenerationRequest, offset: int,
                  started: float) -> StepProgress:
        chunk_steps = {c - offset: k + 1 for c, k in zip(event.step.chunks, event.step.steps)}
        previews = None
        if request.previews and self.bundle.preview is not None:
            previews = {c - offset: _as_numpy(self.bundle.preview.to_rgb(latent[0].float().cpu()))
                        for c, latent in event.predicted_clean.items()}
        return StepProgress(done, event.total_steps, chunk_steps, sampling.num_steps, time.perf_counter() - started,
                            previews)


def _uses_negative(spec, sampling: SamplingConfig) -> bool:
    return bool(spec.negative_prompt.strip()) and sampling.guidance.mode != "distilled"


def _as_numpy(frames) -> np.ndarray:
    return frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
