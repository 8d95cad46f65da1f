"""The denoiser adapter: DiT + KV cache + MAGI-1 guidance -> velocities of the window's chunks.

Base models (cfg3) take three passes per step (MAGI-1 `forward_3cfg`):
  1. history + each chunk's text, adaLN flag "text present";
  2. history + null text, flag "dropped" (the pass whose keys MAGI-1 writes to its cache);
  3. each chunk alone, null text, flag "dropped";
and combine them per chunk as (1-h)·v3 + (h-s)·v2 + s·v1 with (h, s) from the chunk's t bin.
Passes whose weight is zero for every chunk are skipped; that changes no bit of the result.

A negative prompt is our extension (MAGI-1 has no negative-prompt text, only its learned null
caption): a chunk that has one gets that text instead of the null text in passes 2 and 3, with the
flag "text present" there, so both guidance terms push away from what the negative prompt describes
(v2 and v3 become the model's velocity for the negative prompt, with and without history). Chunks
without one keep the null text and the "dropped" flag, bit for bit as before.

Distilled models take one pass (history + text, flag "present", plus the step-size input); while
the oldest chunk is in its last quarter (t > 0.3) an isolated copy of it is appended to the same
forward and its velocity becomes 0.7·v(with history) + 0.3·v(alone).

A finished chunk enters the cache once, encoded alone at t = clean_t with the null text, using the
flag of the cache-writing pass ("dropped" for cfg3, "present" for distilled). MAGI-1 re-encodes it
inside the first forward of the next stage, so in cfg3 pass 1 of that step sees the chunk's keys
computed with the "present" flag; we compute that version too and use it for exactly that pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Protocol

import torch

from magi_engine.config import CHUNK_LATENT_FRAMES, SamplingConfig
from magi_engine.dit.attention import ChunkLayout
from magi_engine.dit.kv_cache import concat_contexts, kv_cache_for
from magi_engine.dit.model import ChunkText, KVContext, MagiDiT
from magi_engine.sampler.schedule import attention_span, guidance_scales, shortcut_step_sizes
from magi_engine.sampler.window import WindowStep


@dataclass(frozen=True)
class GuidancePass:
    """One forward of a step's guidance: the velocity it yields has `shape` (float32)."""

    shape: tuple[int, ...]
    compute: Callable[[], torch.Tensor]


class PassRunner(Protocol):
    """Runs a step's guidance passes. `separate` says the distilled near-clean copy is a pass of its
    own (magi_engine.parallel runs passes on different ranks) instead of riding in the window's forward."""

    separate: bool

    def run(self, passes: dict[str, GuidancePass]) -> dict[str, torch.Tensor]: ...


class LocalPasses:
    """Every pass on this device, one after the other."""

    separate = False

    def run(self, passes: dict[str, GuidancePass]) -> dict[str, torch.Tensor]:
        return {name: p.compute() for name, p in passes.items()}


class WindowDenoiser:
    def __init__(self, dit: MagiDiT, sampling: SamplingConfig, schedule: torch.Tensor, texts: Mapping[int, torch.Tensor],
                 null_text: torch.Tensor, tokens_per_chunk: int,
                 negative_texts: Mapping[int, torch.Tensor] | None = None, passes: PassRunner | None = None) -> None:
        self.dit = dit
        self.passes = passes or LocalPasses()
        self.sampling = sampling
        self.schedule = schedule
        self.texts = texts
        self.null_text = null_text
        self.negative_texts = dict(negative_texts or {})
        self.tokens_per_chunk = tokens_per_chunk
        self.cache = kv_cache_for(dit, sampling.cache_chunks)
        self.distilled = sampling.guidance.mode == "distilled"
        self.step_sizes = shortcut_step_sizes(sampling.num_steps, sampling.shortcut_mode)
        self._present_version: tuple[int, KVContext] | None = None
        self._device = dit.device

    # Clean chunks -----------------------------------------------------------------------------
    def encode_clean(self, index: int, latent: torch.Tensor, caption_present: bool) -> KVContext:
        t = torch.full((1, 1), self.sampling.clean_t, device=self._device)
        out = self.dit(latent.to(self._device), t, self._text([self.null_text]), caption_present,
                       ChunkLayout.isolated(index, 1, self.tokens_per_chunk),
                       step_size=self._step_size_tensor([0]), collect_kv=True)
        return KVContext(index, 1, out.kv)

    def span(self, step_index: int) -> int:
        return attention_span(step_index, self.sampling.num_steps, self.sampling.attention_spans)

    def add_clean_chunk(self, index: int, latent: torch.Tensor) -> None:
        """Put a finished (or given) chunk into the cache, ready for the next step."""
        cached = self.encode_clean(index, latent, caption_present=self.distilled)
        self.cache.put(index, cached.layers)
        self._present_version = None if self.distilled else (index, self.encode_clean(index, latent, True))

    # Velocities -------------------------------------------------------------------------------
    def velocity(self, x: torch.Tensor, step: WindowStep) -> torch.Tensor:
        """x [1, 16, chunks·6, H, W] of the active chunks (oldest first) -> their velocities."""
        t_values = [float(self.schedule[k]) for k in step.steps]
        if self.distilled:
            return self._distilled_velocity(x, step, t_values)
        return self._cfg3_velocity(x, step, t_values)

    def _cfg3_velocity(self, x: torch.Tensor, step: WindowStep, t_values: list[float]) -> torch.Tensor:
        scales = [guidance_scales(t, self.sampling.guidance) for t in t_values]
        layout = self._history_layout(step)
        context = self._context(layout)
        t = torch.tensor([t_values], device=self._device)
        n = len(step.chunks)
        null_texts, null_flags = self._guidance_text(step.chunks)

        passes = {"history": GuidancePass(tuple(x.shape), lambda: self.dit(x, t, null_texts, null_flags, layout,
                                                                        context=context).velocity)}
        if any(s != 0 for _, s in scales):
            text_context = context
            fresh = self._present_version
            if step.stage_start and fresh is not None and fresh[0] == step.oldest - 1:
                text_context = self._with_present_version(layout, fresh[1])
            cond_texts = self._text([self.texts[c] for c in step.chunks])
            passes["text"] = GuidancePass(tuple(x.shape), lambda: self.dit(x, t, cond_texts, True, layout,
                                                                         context=text_context).velocity)
        needs_uncond = [j for j, (h, _) in enumerate(scales) if 1 - h != 0]
        if needs_uncond:
            lo = needs_uncond[0]  # chunks needing it are the youngest, a contiguous suffix of the window
            x_young = x[:, :, lo * CHUNK_LATENT_FRAMES:]
            alone = ChunkLayout.isolated(step.chunks[lo], n - lo, self.tokens_per_chunk)
            texts, flags = self._guidance_text(step.chunks[lo:])
            passes["uncond"] = GuidancePass(tuple(x_young.shape), lambda: self.dit(x_young, t[:, lo:], texts, flags,
                                                                                  alone).velocity)
        velocities = self.passes.run(passes)
        v_history, v_text, v_uncond = velocities["history"], velocities.get("text"), velocities.get("uncond")

        parts = []
        for j, (h, s) in enumerate(scales):
            frames = slice(j * CHUNK_LATENT_FRAMES, (j + 1) * CHUNK_LATENT_FRAMES)
            v = (h - s) * v_history[:, :, frames]
            if 1 - h != 0:
                u = v_uncond[:, :, (j - needs_uncond[0]) * CHUNK_LATENT_FRAMES:][:, :, :CHUNK_LATENT_FRAMES]
                v = (1 - h) * u + v
            if s != 0:
                v = v + s * v_text[:, :, frames]
            parts.append(v)
        return torch.cat(parts, dim=2)

    def _distilled_velocity(self, x: torch.Tensor, step: WindowStep, t_values: list[float]) -> torch.Tensor:
        guidance = self.sampling.guidance
        n = len(step.chunks)
        layout = self._history_layout(step)
        texts = [self.texts[c] for c in step.chunks]
        steps = list(step.steps)
        near_clean = t_values[0] > guidance.near_clean_threshold
        w = guidance.near_clean_history_weight
        if near_clean and self.passes.separate:
            # The isolated copy as a forward of its own, at the position it has in the joined forward.
            t = torch.tensor([t_values], device=self._device)
            copy_layout = ChunkLayout.isolated(layout.first_chunk + n, 1, layout.tokens_per_chunk)
            x_oldest = x[:, :, :CHUNK_LATENT_FRAMES]
            passes = {
                "history": GuidancePass(tuple(x.shape), lambda: self.dit(
                    x, t, self._text(texts), True, layout, context=self._context(layout),
                    step_size=self._step_size_tensor(steps)).velocity),
                "alone": GuidancePass(tuple(x_oldest.shape), lambda: self.dit(
                    x_oldest, t[:, :1], self._text(texts[:1]), True, copy_layout,
                    step_size=self._step_size_tensor(steps[:1])).velocity),
            }
            out = self.passes.run(passes)
            v, alone = out["history"], out["alone"]
            oldest = v[:, :, :CHUNK_LATENT_FRAMES] * w + alone * (1 - w)
            return torch.cat([oldest, v[:, :, CHUNK_LATENT_FRAMES:]], dim=2)
        if near_clean:
            # The isolated copy sits after the window (positions continue), attending only to itself.
            x = torch.cat([x, x[:, :, :CHUNK_LATENT_FRAMES]], dim=2)
            t_values = t_values + t_values[:1]
            texts.append(texts[0])
            steps.append(steps[0])
            layout = ChunkLayout(layout.first_chunk, n + 1, layout.tokens_per_chunk,
                                 layout.key_starts + (layout.first_chunk + n,), layout.context_first)
        t = torch.tensor([t_values], device=self._device)
        passes = {"history": GuidancePass(tuple(x.shape), lambda: self.dit(
            x, t, self._text(texts), True, layout, context=self._context(layout),
            step_size=self._step_size_tensor(steps)).velocity)}
        v = self.passes.run(passes)["history"]
        if not near_clean:
            return v
        oldest = v[:, :, :CHUNK_LATENT_FRAMES] * w + v[:, :, n * CHUNK_LATENT_FRAMES:] * (1 - w)
        return torch.cat([oldest, v[:, :, CHUNK_LATENT_FRAMES : n * CHUNK_LATENT_FRAMES]], dim=2)

    # Helpers ----------------------------------------------------------------------------------
    def _history_layout(self, step: WindowStep) -> ChunkLayout:
        lowest = self.cache.chunk_indices.start if len(self.cache) else step.oldest
        starts = []
        for c, k in zip(step.chunks, step.steps):
            starts.append(max(lowest, c - self.span(k) + 1))
        context_first = min(starts + [step.oldest])
        return ChunkLayout(step.oldest, len(step.chunks), self.tokens_per_chunk, tuple(starts), context_first)

    def _context(self, layout: ChunkLayout) -> KVContext | None:
        if layout.context_chunks == 0:
            return None
        return self.cache.context(layout.context_first, layout.first_chunk)

    def _with_present_version(self, layout: ChunkLayout, present: KVContext) -> KVContext | None:
        if layout.context_chunks == 0:
            return None
        older = None
        if layout.context_first < present.first_chunk:
            older = self.cache.context(layout.context_first, present.first_chunk)
        return concat_contexts(older, present)

    def _guidance_text(self, chunks) -> tuple[ChunkText, torch.Tensor | bool]:
        """Text and adaLN flags of the guidance passes (2 and 3) for `chunks`: the null text ("dropped"),
        or a chunk's negative text ("present")."""
        if not any(c in self.negative_texts for c in chunks):
            return self._text([self.null_text] * len(chunks)), False
        texts = [self.negative_texts.get(c, self.null_text) for c in chunks]
        flags = torch.tensor([[c in self.negative_texts for c in chunks]], device=self._device)
        return self._text(texts), flags

    def _text(self, sequences: list[torch.Tensor]) -> ChunkText:
        return ChunkText.from_sequences(sequences, device=self._device)

    def _step_size_tensor(self, steps: list[int]) -> torch.Tensor | None:
        if not self.distilled:
            return None
        return torch.tensor([[self.step_sizes[k] for k in steps]], device=self._device)
