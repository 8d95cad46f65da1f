"""MAGI-1-style training batches for the DiT: one window of chunks at staggered noise levels.

A batch shares one structure, drawn to look like what the sampler shows the model at inference:
  * P clean prefix chunks (the KV cache: t = clean_t, null text, "dropped" flag, attending to itself);
  * n noisy chunks of a window of w (1, 2 or 4) at monotonically increasing noise — the oldest
    cleanest — each at grid position u = age/w + (quarter offset + d)/4 (d shared by the sample's
    chunks, as the sub-step is at inference), noise level t = warp(u) with MAGI-1's shift-3 warp, so
    the noisiest chunk of every window sits in the pure-noise region from the first step;
  * each noisy chunk attends back as far as its quarter's span (5, 4, 3, 2 chunks), like the sampler.
Sometimes the first noisy chunk is the video's first chunk (text-to-video start), sometimes with its
first latent frame held to the encoded first image (image-to-video), and some samples drop the
captions (null text, "dropped" flag) so that text guidance works.

The loss can weigh the cells an object covers during a chunk more than the background (object_weight):
objects take a few percent of the frame, yet their colour, shape and path are all the prompt asks for.
The clean prefix chunks can carry a little noise while still labelled clean (context_noise: each
sample's standard deviation drawn up to it), so that the model learns to continue from a context that
is not exactly a real video, as its own chunks are not at inference.
Some captions get words the vocabulary lacks (unknown_words: the share of captions with one to
`max_unknown` <unk> put in at random places), so that a word a person types which the world never
says ("watch the red ball...", "please") is passed over rather than read as noise, and meaning does
not hang on a word's position in the sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from magi_engine.config import CHUNK_LATENT_FRAMES, SamplingConfig
from magi_engine.dit.attention import ChunkLayout
from magi_engine.sampler.schedule import warp_time
from magi_engine.text.tiny import UNK


@dataclass(frozen=True)
class BatchStructure:
    window: int
    noisy: int
    prefix: int
    youngest_age: int
    quarter_offset: int
    start: int  # first chunk of the sequence within the stored storyboard
    image_to_video: bool

    @property
    def chunks(self) -> int:
        return self.prefix + self.noisy

    def ages(self) -> list[int]:
        """Age of each noisy chunk, oldest (cleanest) first."""
        return [self.youngest_age + self.noisy - 1 - j for j in range(self.noisy)]

    def quarters(self) -> list[int]:
        return [age * (4 // self.window) + self.quarter_offset for age in self.ages()]

    def layout(self, tokens_per_chunk: int, spans: tuple[int, ...]) -> ChunkLayout:
        starts = list(range(self.prefix))  # clean chunks attend only to themselves
        for j, quarter in enumerate(self.quarters()):
            own = self.prefix + j
            starts.append(max(0, own - spans[quarter] + 1))
        return ChunkLayout(0, self.chunks, tokens_per_chunk, tuple(starts), 0)


def sample_structure(rng: np.random.Generator, stored_chunks: int) -> BatchStructure:
    window = int(rng.choice([1, 2, 4], p=[0.3, 0.2, 0.5]))
    noisy = window if rng.random() < 0.6 else int(rng.integers(1, window + 1))
    youngest_age = int(rng.integers(0, window - noisy + 1))
    quarter_offset = int(rng.integers(0, 4 // window))
    kind = rng.random()
    if kind < 0.15:  # image-to-video: the first chunk of a video, its first frame given
        return BatchStructure(window, noisy, 0, youngest_age, quarter_offset, 0, True)
    if kind < 0.50:  # text-to-video: the first chunk of a video, nothing before it (where identity is decided)
        return BatchStructure(window, noisy, 0, youngest_age, quarter_offset, 0, False)
    prefix = int(rng.choice([1, 2, 3, 4], p=[0.5, 0.2, 0.15, 0.15]))
    start = int(rng.integers(0, stored_chunks - prefix - noisy + 1))
    return BatchStructure(window, noisy, prefix, youngest_age, quarter_offset, start, False)


@dataclass
class TrainingBatch:
    latents: torch.Tensor  # model input [B, 16, chunks·6, h, w]
    t: torch.Tensor  # [B, chunks]
    target: torch.Tensor  # velocity target of the noisy chunks [B, 16, noisy·6, h, w]
    loss_mask: torch.Tensor  # [1, 1, noisy·6, 1, 1] (0 on held frames), or [B, 1, noisy·6, h, w] with object weight
    caption_present: torch.Tensor  # [B, chunks] bool
    prompts: list[list[str | None]]  # [B][noisy] (None = dropped)
    durations: list[list[int]]
    structure: BatchStructure


def with_unknown_words(prompt: str, rng: np.random.Generator, probability: float, max_unknown: int = 1) -> str:
    """`prompt`, or with `probability` the same words with 1..`max_unknown` <unk> put in at random places."""
    if probability <= 0 or rng.random() >= probability:
        return prompt
    words = prompt.split()
    for _ in range(int(rng.integers(1, max_unknown + 1))):
        words.insert(int(rng.integers(len(words) + 1)), UNK)
    return " ".join(words)


def make_batch(rng: np.random.Generator, data: dict, batch: int, structure: BatchStructure, sampling: SamplingConfig,
               device: torch.device, caption_dropout: float = 0.12, object_weight: float = 0.0,
               context_noise: float = 0.0, unknown_words: float = 0.0, max_unknown: int = 1) -> TrainingBatch:
    latents_all, images, captions = data["latents"], data["images"], data["captions"]
    index = rng.integers(0, latents_all.shape[0], size=batch)
    f = CHUNK_LATENT_FRAMES
    s = structure
    clean = latents_all[index, :, s.start * f:(s.start + s.chunks) * f].to(device, torch.float32)  # [B,16,K·6,h,w]
    generator = torch.Generator(device=device).manual_seed(int(rng.integers(2**62)))
    noise = torch.randn(clean[:, :, s.prefix * f:].shape, device=device, generator=generator)
    d = torch.from_numpy(rng.random(batch, dtype=np.float32)).to(device)  # shared by a sample's chunks
    u = torch.stack([age / s.window + (s.quarter_offset + d) / 4 for age in s.ages()], dim=1)  # [B, n]
    t_noisy = warp_time(u.clamp(max=0.9999), sampling.shift)
    t_per_frame = t_noisy.repeat_interleave(f, dim=1)[:, None, :, None, None]
    x1 = clean[:, :, s.prefix * f:]
    x_t = t_per_frame * x1 + (1 - t_per_frame) * noise
    loss_mask = torch.ones(1, 1, s.noisy * f, 1, 1, device=device)
    if s.image_to_video:
        x_t[:, :, :1] = images[index].to(device, torch.float32)
        loss_mask[:, :, :1] = 0
    if object_weight:
        cells = data["object_cells"][index, s.start + s.prefix:s.start + s.chunks].to(device, torch.float32)
        loss_mask = loss_mask * (1 + object_weight * cells.repeat_interleave(f, dim=1)[:, None])
    context = clean[:, :, :s.prefix * f]
    if context_noise and s.prefix:
        sigma = torch.from_numpy(rng.random(batch, dtype=np.float32) * context_noise).to(device)
        context = context + sigma[:, None, None, None, None] * torch.randn(context.shape, device=device,
                                                                        generator=generator)
    model_input = torch.cat([context, x_t], dim=2)
    t = torch.cat([torch.full((batch, s.prefix), sampling.clean_t, device=device), t_noisy], dim=1)

    dropped = rng.random(batch) < caption_dropout
    present = torch.zeros(batch, s.chunks, dtype=torch.bool, device=device)
    present[:, s.prefix:] = torch.from_numpy(~dropped).to(device)[:, None]
    prompts, durations = [], []
    for b, i in enumerate(index):
        variant = captions[i][rng.integers(len(captions[i]))]
        chunks = range(s.start + s.prefix, s.start + s.chunks)
        prompts.append([None if dropped[b] else with_unknown_words(variant[c], rng, unknown_words, max_unknown)
                        for c in chunks])
        durations.append([int(rng.integers(1, 9)) for _ in chunks])  # the model learns to expect any length
    return TrainingBatch(model_input, t, x1 - noise, loss_mask, present, prompts, durations, structure)
