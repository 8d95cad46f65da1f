"""Train studio-mini's DiT and text encoder on latent storyboards of the world (flow matching), resumable.

    python -m lab.training.train_dit --out runs/mini --minutes 9

Needs <out>/vae.safetensors and vae.json (train_vae). The first run renders and encodes the training
storyboards into <out>/data.safetensors (+ data_captions.json) and reuses them afterwards. Every run
continues from <out>/dit_state.safetensors when it exists. EMA weights are what gets shipped.
Loss is logged per quarter of the noise schedule; probe videos of held-out prompts are written as
PNG strips (<out>/probe_<step>.png) so progress can be looked at, not only read.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from magi_engine.config import CHUNK_LATENT_FRAMES
from magi_engine.dit.model import ChunkText, MagiDiT
from magi_engine.text.tiny import WordTextEncoder
from lab.training import studio_mini
from lab.training.checkpoint import load_training_state, save_training_state
from lab.training.data import cosine_lr, encode_storyboards
from lab.training.dit_batches import TrainingBatch, make_batch, sample_structure
from lab.training.train_vae import load_trained_vae

log = logging.getLogger("train_dit")


def load_or_build_data(out: Path, vae, device, count: int, chunks: int, workers: int, first: int = 0,
                       two_objects: float | None = None) -> dict:
    tensors, captions = out / "data.safetensors", out / "data_captions.json"
    if tensors.is_file() and captions.is_file():
        stored = load_file(str(tensors))
        if "object_cells" in stored:
            meta = json.loads(captions.read_text())
            log.info("loaded %d stored storyboards", stored["latents"].shape[0])
            return {**stored, "captions": meta["captions"], "seeds": meta["seeds"]}
        log.info("stored storyboards predate object cells: rendering them again")
    started = time.perf_counter()
    data = encode_storyboards(vae, first=first, count=count, chunks=chunks, device=device, workers=workers,
                              two_objects=two_objects)
    save_file({k: data[k].contiguous() for k in ("latents", "images", "object_cells")}, str(tensors))
    captions.write_text(json.dumps({"captions": data["captions"], "seeds": data["seeds"]}))
    log.info("rendered and encoded %d storyboards in %.0f s", count, time.perf_counter() - started)
    return data


def batch_text(batch: TrainingBatch, text: WordTextEncoder, dit: MagiDiT, device) -> ChunkText:
    """Per chunk features [B, K, L, C]: null caption for clean and caption-dropped chunks."""
    s = batch.structure
    n_batch = len(batch.prompts)
    null = dit.caption_embed.null_caption[: dit.config.null_caption_tokens]  # trained too
    wanted = [(b, j) for b, row in enumerate(batch.prompts) for j, p in enumerate(row) if p is not None]
    length = null.shape[0]
    encoded = mask = None
    if wanted:
        encoded, mask = text.encode_batch([batch.prompts[b][j] for b, j in wanted],
                                          [batch.durations[b][j] for b, j in wanted])
        length = max(length, encoded.shape[1])
    pad = length - null.shape[0]
    features = torch.nn.functional.pad(null, (0, 0, 0, pad))[None].expand(n_batch * s.chunks, -1, -1).clone()
    valid = torch.zeros(n_batch * s.chunks, length, dtype=torch.bool, device=device)
    valid[:, : null.shape[0]] = True
    if wanted:
        rows = torch.tensor([b * s.chunks + s.prefix + j for b, j in wanted], device=device)
        features[rows] = torch.nn.functional.pad(encoded, (0, 0, 0, length - encoded.shape[1])).to(features.dtype)
        valid[rows] = torch.nn.functional.pad(mask, (0, length - mask.shape[1]))
    return ChunkText(features.view(n_batch, s.chunks, length, -1), valid.view(n_batch, s.chunks, length))


def training_loss(dit: MagiDiT, text: WordTextEncoder, batch: TrainingBatch, device) -> tuple[torch.Tensor, torch.Tensor]:
    s = batch.structure
    tokens = dit.config.tokens_per_chunk(*batch.latents.shape[-2:])
    layout = s.layout(tokens, studio_mini.SAMPLING.attention_spans)
    out = dit(batch.latents, batch.t, batch_text(batch, text, dit, device), batch.caption_present, layout).velocity
    squared = (out[:, :, s.prefix * CHUNK_LATENT_FRAMES:].float() - batch.target) ** 2
    weights = batch.loss_mask.expand_as(squared)
    # Logged per chunk unweighted (held frames left out), so runs with and without object weight compare.
    unweighted = squared * (batch.loss_mask > 0)
    per_chunk = unweighted.unflatten(2, (s.noisy, CHUNK_LATENT_FRAMES)).mean(dim=(0, 1, 3, 4, 5))  # [noisy]
    return (squared * weights).sum() / weights.sum(), per_chunk.detach()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=40_000, help="schedule end (the run may stop earlier)")
    parser.add_argument("--schedule-start", type=int, default=0,
                        help="step where the learning-rate schedule (warm-up, cosine) starts, e.g. after growing")
    parser.add_argument("--minutes", type=float, default=9.0, help="training time (rendering data not counted)")
    parser.add_argument("--wall-minutes", type=float,
                        help="also stop when this much time has passed since the start, rendering included "
                             "(a lent machine's call has a hard limit, and a fresh one renders first)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--storyboards", type=int, default=16_000)
    parser.add_argument("--data-first", type=int, default=0, help="seed of the first training storyboard")
    parser.add_argument("--two-objects", type=float, help="share of two-object storyboards (default: the world's)")
    parser.add_argument("--object-weight", type=float, default=0.0,
                        help="extra loss weight on the latent cells an object covers during a chunk (0: none)")
    parser.add_argument("--context-noise", type=float, default=0.0,
                        help="largest standard deviation of the noise on clean prefix chunks (0: none)")
    parser.add_argument("--unknown-words", type=float, default=0.2,
                        help="share of captions given words the vocabulary lacks (1 to --max-unknown), to learn to "
                             "pass over them")
    parser.add_argument("--max-unknown", type=int, default=1, help="most unknown words put into one caption")
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--probe-every", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="a tiny model and data set (for a CPU smoke test)")
    args = parser.parse_args(argv)
    process_started = time.perf_counter()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    vae = load_trained_vae(args.out, device, torch.bfloat16 if device.type == "cuda" else torch.float32)
    data = load_or_build_data(args.out, vae, device, args.storyboards, 8, args.workers, args.data_first,
                              args.two_objects)
    # A few GB at most: on the GPU, a batch is gathered there instead of copied from host memory each step.
    for key in ("latents", "images", "object_cells"):
        data[key] = data[key].to(device)
    sampling = studio_mini.SAMPLING
    torch.manual_seed(args.seed)
    dit_config = studio_mini.DIT if not args.tiny else studio_mini.DIT.__class__(
        **{**studio_mini.DIT.to_dict(), "num_layers": 1, "hidden_size": 64, "ffn_hidden_size": 64, "num_heads": 1,
           "num_kv_groups": 1})
    dit = MagiDiT(dit_config).to(device)
    dit.masked_attention = True  # training batches are short sequences: one attention call per layer
    text = WordTextEncoder(studio_mini.text_config()).to(device)
    ema_dit, ema_text = copy.deepcopy(dit).eval(), copy.deepcopy(text).eval()
    params = list(dit.parameters()) + list(text.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01)
    modules = {"dit": dit, "text": text, "ema_dit": ema_dit, "ema_text": ema_text}
    state_path = args.out / "dit_state.safetensors"
    step, rewarm_from = 0, None
    if state_path.is_file():
        info = load_training_state(state_path, modules=modules, optimizers={"adam": optimizer})
        step = int(info["step"])
        if info.get("resumed_without_optimizer"):
            rewarm_from = step  # fresh Adam moments: ramp the learning rate up again
        log.info("resumed at step %d%s", step, " (new optimiser state)" if rewarm_from is not None else "")

    rng = np.random.default_rng(args.seed * 1_000_003 + step)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    started, losses, quarter_losses = time.perf_counter(), [], {q: [] for q in range(4)}
    ema_pairs = (list(ema_dit.parameters()) + list(ema_text.parameters()), params)
    while True:
        structure = sample_structure(rng, 8)
        batch = make_batch(rng, data, args.batch, structure, sampling, device, object_weight=args.object_weight,
                           context_noise=args.context_noise, unknown_words=args.unknown_words,
                           max_unknown=args.max_unknown)
        rewarm = 1.0 if rewarm_from is None else min(1.0, (step - rewarm_from + 1) / 200)
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step - args.schedule_start, args.steps - args.schedule_start, 500, args.lr) * rewarm
        with autocast:
            loss, per_chunk = training_loss(dit, text, batch, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        with torch.no_grad():
            decay = min(args.ema, (1 + step) / (10 + step))  # warm-up: early EMA follows the model closely
            torch._foreach_lerp_(ema_pairs[0], ema_pairs[1], 1 - decay)
        step += 1
        losses.append(loss.item())
        for quarter, value in zip(structure.quarters(), per_chunk.tolist()):
            quarter_losses[quarter].append(value)
        if step % 100 == 0:
            by_quarter = " ".join(f"q{q} {np.mean(v):.3f}" for q, v in quarter_losses.items() if v)
            log.info("step %d  loss %.4f  [%s]  %.1f min", step, np.mean(losses), by_quarter,
                     (time.perf_counter() - started) / 60)
            losses, quarter_losses = [], {q: [] for q in range(4)}
        now = time.perf_counter()
        done = step >= args.steps or now - started > args.minutes * 60 or (
            args.wall_minutes is not None and now - process_started > args.wall_minutes * 60)
        if step % 1000 == 0 or done:
            save_training_state(state_path, modules=modules, optimizers={"adam": optimizer}, info={"step": step})
        if step % args.probe_every == 0 or done:
            from lab.training.probe import write_probe

            write_probe(args.out / f"probe_{step:06d}.png", ema_dit, ema_text, vae, device)
        if done:
            break
    log.info("stopped at step %d after %.1f min", step, (time.perf_counter() - started) / 60)


if __name__ == "__main__":
    main()
