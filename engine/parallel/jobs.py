"""Rank 0's messages to the other ranks: commands, and a generation job as tensors plus a JSON header.

Everything travels as tensors through torch.distributed broadcasts (no pickles): a command is an int64
pair (command, payload length); a job's header is UTF-8 JSON in a uint8 tensor, naming the shapes of
the float32 tensors that follow (each chunk's noise and text, the negative texts of the chunks that
have one, the clean context chunks, the held first frames).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from magi_engine.config import SamplingConfig
from magi_engine.parallel.runtime import ParallelRuntime
from magi_engine.sampler.loop import ChunkPlan

#: VAE: a tiled encode or decode whose tiles every rank shares (payload: vae_tiles.DIRECTIONS index).
JOB, STEP, STOP, QUIT, VAE = 1, 2, 3, 4, 5


@dataclass
class Job:
    sampling: SamplingConfig
    plans: list[ChunkPlan]
    context: list[tuple[int, torch.Tensor]]
    first_frames: torch.Tensor | None


def send_command(runtime: ParallelRuntime, command: int, payload: int = 0) -> None:
    runtime.broadcast(torch.tensor([command, payload], dtype=torch.int64, device=runtime.device), 0, kind="control")


def receive_command(runtime: ParallelRuntime) -> tuple[int, int]:
    message = torch.zeros(2, dtype=torch.int64, device=runtime.device)
    runtime.broadcast(message, 0, kind="control")
    return int(message[0]), int(message[1])


def send_job(runtime: ParallelRuntime, job: Job) -> None:
    negatives = [p.negative_text is not None for p in job.plans]
    tensors = [t for p in job.plans for t in (p.noise, p.text)]
    tensors += [p.negative_text for p in job.plans if p.negative_text is not None]
    tensors += [latent for _, latent in job.context]
    if job.first_frames is not None:
        tensors.append(job.first_frames)
    header = json.dumps({
        "sampling": job.sampling.to_dict(),
        "chunks": [p.index for p in job.plans],
        "negatives": negatives,
        "context": [index for index, _ in job.context],
        "first_frames": job.first_frames is not None,
        "shapes": [list(t.shape) for t in tensors],
    }).encode("utf-8")
    send_command(runtime, JOB, len(header))
    runtime.broadcast(torch.frombuffer(bytearray(header), dtype=torch.uint8).to(runtime.device), 0, kind="job")
    for t in tensors:
        runtime.broadcast(t.to(device=runtime.device, dtype=torch.float32).contiguous(), 0, kind="job")


def receive_job(runtime: ParallelRuntime, header_bytes: int) -> Job:
    raw = torch.empty(header_bytes, dtype=torch.uint8, device=runtime.device)
    runtime.broadcast(raw, 0, kind="job")
    header = json.loads(bytes(raw.cpu().tolist()).decode("utf-8"))
    tensors = []
    for shape in header["shapes"]:
        t = torch.empty(shape, dtype=torch.float32, device=runtime.device)
        runtime.broadcast(t, 0, kind="job")
        tensors.append(t)
    rest = tensors[2 * len(header["chunks"]):]
    negatives = iter(rest[: sum(header["negatives"])])
    rest = rest[sum(header["negatives"]):]
    plans = [ChunkPlan(index, tensors[2 * j], tensors[2 * j + 1], next(negatives) if has_negative else None)
             for j, (index, has_negative) in enumerate(zip(header["chunks"], header["negatives"]))]
    context = list(zip(header["context"], rest[: len(header["context"])]))
    first_frames = rest[-1] if header["first_frames"] else None
    return Job(SamplingConfig.from_dict(header["sampling"]), plans, context, first_frames)
