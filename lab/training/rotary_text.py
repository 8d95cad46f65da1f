"""Carry a trained word text encoder from learned absolute positions to rotary ones, by distillation.

    python -m lab.training.rotary_text OLD_ENCODER OUT_ENCODER [--minutes 4] [--storyboards 2000]

studio-mini's encoder up to v5 added a learned vector per absolute position, so a phrase meant
something else when a prompt put words before it ("Over the grass, a red ball rises": the held-out
sentence shape the model followed worst). A rotary encoder sees only the distance between words.
Switching would throw away what the DiT has learned to read, so the rotary student starts from the
teacher's token embeddings and layers (the position table is dropped) and is trained, on the CPU in
minutes, to give the teacher's features for training captions, token by token: the DiT then reads
the student as it read the teacher, and the joint training that follows (train_dit) starts close.
Captions are the trainer's own: fresh storyboards from training seeds, every wording variant, any
duration token, and the trainer's share of unknown words.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch

from magi_engine.text.tiny import WordTextEncoder
from lab.training.data import caption_variants
from lab.training.dit_batches import with_unknown_words
from lab.world.storyboard import random_storyboard

log = logging.getLogger("rotary_text")


def training_captions(first_seed: int, storyboards: int, chunks: int = 8) -> list[str]:
    """Every wording variant of every chunk of `storyboards` training storyboards."""
    captions = []
    for seed in range(first_seed, first_seed + storyboards):
        board = random_storyboard(np.random.default_rng(seed), chunks)
        for variant in caption_variants(board, seed, board.tracks()):
            captions += variant
    return captions


def rotary_student(teacher: WordTextEncoder) -> WordTextEncoder:
    """A rotary encoder holding the teacher's weights, all but its absolute position table."""
    student = WordTextEncoder(dataclasses.replace(teacher.config, positions="rotary"))
    weights = {k: v for k, v in teacher.state_dict().items() if k != "position_embedding"}
    student.load_state_dict(weights, strict=True)
    return student


def feature_error(student: WordTextEncoder, teacher: WordTextEncoder, prompts: list[str],
                  durations: list[int]) -> torch.Tensor:
    """Mean squared difference of the two encoders' features over the prompts' real tokens."""
    with torch.no_grad():
        target, mask = teacher.encode_batch(prompts, durations)
    features, _ = student.encode_batch(prompts, durations)
    valid = mask.unsqueeze(-1).to(features.dtype)
    return ((features - target) ** 2 * valid).sum() / (valid.sum() * features.shape[-1])


def distill(teacher: WordTextEncoder, captions: list[str], *, minutes: float, batch: int, lr: float,
            unknown_words: float, seed: int, max_steps: int | None = None) -> tuple[WordTextEncoder, dict]:
    rng = np.random.default_rng(seed)
    teacher = teacher.eval().requires_grad_(False)
    student = rotary_student(teacher).train()
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.0)
    held_out = [captions[i] for i in rng.integers(len(captions), size=512)]  # the same for every report
    held_durations = [int(d) for d in rng.integers(1, 9, size=len(held_out))]

    def report() -> float:
        with torch.no_grad():
            return float(feature_error(student.eval(), teacher, held_out, held_durations))

    first = report()
    log.info("start: feature error %.5f (teacher's feature variance %.5f)", first,
             float(teacher.encode_batch(held_out, held_durations)[0].var()))
    started, step = time.perf_counter(), 0
    while time.perf_counter() - started < minutes * 60 and (max_steps is None or step < max_steps):
        student.train()
        prompts = [with_unknown_words(captions[i], rng, unknown_words) for i in rng.integers(len(captions), size=batch)]
        durations = [int(d) for d in rng.integers(1, 9, size=batch)]
        for group in optimizer.param_groups:  # linear decay to a tenth over the planned time
            group["lr"] = lr * max(0.1, 1 - (time.perf_counter() - started) / (minutes * 60))
        loss = feature_error(student, teacher, prompts, durations)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step % 200 == 0:
            log.info("step %d  loss %.5f  held-out %.5f  %.1f min", step, loss.item(), report(),
                     (time.perf_counter() - started) / 60)
    summary = {"steps": step, "feature_error_start": first, "feature_error_end": report(),
               "minutes": round((time.perf_counter() - started) / 60, 2)}
    return student.eval(), summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("teacher", type=Path, help="the learned-position encoder (text_encoder.safetensors)")
    parser.add_argument("out", type=Path, help="where to write the rotary encoder")
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--storyboards", type=int, default=2000, help="training storyboards whose captions are used")
    parser.add_argument("--first-seed", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--unknown-words", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.manual_seed(args.seed)
    teacher = WordTextEncoder.load(args.teacher)
    if teacher.config.positions != "learned":
        parser.error(f"{args.teacher} already has {teacher.config.positions} positions")
    captions = training_captions(args.first_seed, args.storyboards)
    log.info("%d training captions", len(captions))
    student, summary = distill(teacher, captions, minutes=args.minutes, batch=args.batch, lr=args.lr,
                               unknown_words=args.unknown_words, seed=args.seed)
    student.save(args.out)
    log.info("wrote %s: %s", args.out, summary)


if __name__ == "__main__":
    main()
