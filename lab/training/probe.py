"""Probe videos during training: held-out prompts through the real sampler, saved as a PNG strip."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from magi_engine.bundle import ModelBundle
from magi_engine.events import ChunkFinished
from magi_engine.requests import ChunkSpec, GenerationRequest
from magi_engine.session import GenerationSession
from lab.training import studio_mini
from lab.world.captions import storyboard_captions
from lab.world.storyboard import random_storyboard

log = logging.getLogger(__name__)

PROBE_SEEDS = (20_000_001, 20_000_002, 20_000_003, 20_000_004)


def probe_bundle(dit, text, vae) -> ModelBundle:
    return ModelBundle(name=studio_mini.NAME, label=studio_mini.LABEL, dit=dit, vae=vae, text_encoder=text,
                       sampling=studio_mini.SAMPLING, width=studio_mini.WIDTH, height=studio_mini.HEIGHT)


def write_probe(path: Path, dit, text, vae, device, chunks: int = 3) -> list[str]:
    session = GenerationSession(probe_bundle(dit, text, vae))
    rows, prompts = [], []
    for seed in PROBE_SEEDS:
        board = random_storyboard(np.random.default_rng(seed), chunks)
        captions = storyboard_captions(board, seed, heldout=True)
        prompts.append(" | ".join(captions))
        request = GenerationRequest(chunks=tuple(ChunkSpec(c, seed + i) for i, c in enumerate(captions)),
                                    width=studio_mini.WIDTH, height=studio_mini.HEIGHT, previews=False)
        frames = [e.frames for e in session.generate(request) if isinstance(e, ChunkFinished)]
        if len(frames) != chunks:
            log.warning("probe %d did not finish", seed)
            continue
        video = np.concatenate(frames)
        truth = board.render()
        rows.append(np.concatenate([np.concatenate(list(video[::12]), axis=1),
                                    np.concatenate(list(truth[::12]), axis=1)], axis=0))
    if rows:
        cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    log.info("probe %s: %s", path.name, " || ".join(prompts))
    return prompts
