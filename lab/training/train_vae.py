"""Train studio-mini's ViT VAE on world clips (reconstruction + a light KL term), resumable.

    python -m lab.training.train_vae --out runs/mini --minutes 6
    python -m lab.training.train_vae --out runs/decoder --init runs/mini --decoder-only
    python -m lab.training.train_vae --out runs/deeper --init resources/models/studio-mini --decoder-only --decoder-depth 3

Writes <out>/vae.safetensors (weights, float32), <out>/vae.json (config, with the latent scale
factor measured after training so the DiT sees unit-variance latents) and <out>/vae_state.safetensors
(everything needed to resume). Logs reconstruction PSNR as it goes.

--decoder-only goes on from a trained VAE (--init) with its encoder frozen: the latents, their scale
factor and so every DiT trained on them stay valid, while the decoder alone trains on.
--decoder-depth N (with --init) first deepens the decoder to N blocks without changing what it decodes
(lab/training/grow.py), so that the extra capacity trains from the decoder it was.
--motion-weight W weighs the squared error (1 + W)-fold where a clip moves inside a latent frame: how
v7's decoder learned to draw that motion instead of holding each latent frame's four frames in one place.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch.utils.data import DataLoader

from lab.training import studio_mini
from lab.training.checkpoint import load_training_state, save_training_state
from lab.training.data import VAEClips, cosine_lr, latent_std
from magi_engine.vae import VideoVAE
from magi_engine.vae.config import VAEConfig

log = logging.getLogger("train_vae")


#: A pixel is "in motion inside its latent frame" when it differs from that latent frame's mean by more
#: than this ([-1, 1] units: about 13 grey levels).
MOTION_THRESHOLD = 0.1


def motion_inside_latent_frames(pixels: torch.Tensor, frames_per_latent: int) -> torch.Tensor:
    """bool [B, 1, T, H, W]: where a clip [B, 3, T, H, W] changes within a latent frame's `frames_per_latent`
    frames (moving edges); a decoder that draws the latent frame's frames in one place is wrong exactly there."""
    b, c, t, h, w = pixels.shape
    groups = pixels.reshape(b, c, t // frames_per_latent, frames_per_latent, h, w)
    deviation = (groups - groups.mean(dim=3, keepdim=True)).abs().amax(dim=1, keepdim=True)
    return (deviation > MOTION_THRESHOLD).reshape(b, 1, t, h, w)


def vae_loss(vae: VideoVAE, pixels: torch.Tensor, kl_weight: float, motion_weight: float = 0.0
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """pixels [B, 3, T, H, W] in [-1, 1] -> (loss, mse).

    `motion_weight` > 0 weighs the squared error (1 + motion_weight)-fold where the clip moves inside a
    latent frame (`motion_inside_latent_frames`): the same optimum, with the few pixels that carry the
    motion inside a latent frame no longer outweighed by the still rest of the clip.
    """
    mean, logvar = vae.encode_moments(pixels).float().chunk(2, dim=1)
    logvar = logvar.clamp(-30.0, 20.0)
    z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
    recon = vae.decode(z.to(pixels.dtype), tiled=False).float()
    target = pixels.float()
    squared = (recon - target).square()
    mse = squared.mean()
    weighted = mse
    if motion_weight:
        weights = 1.0 + motion_weight * motion_inside_latent_frames(target, vae.config.patch_length).float()
        weighted = (squared * weights).mean()
    kl = 0.5 * (mean.pow(2) + logvar.exp() - logvar - 1).mean()
    return weighted + 0.3 * F.l1_loss(recon, target) + kl_weight * kl, mse


def psnr(mse: float) -> float:
    return 10 * math.log10(4.0 / max(mse, 1e-12))  # pixel range [-1, 1] spans 2


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=20_000, help="schedule length (the run may stop earlier)")
    parser.add_argument("--minutes", type=float, default=6.0, help="stop after this much training time")
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument("--kl", type=float, default=1e-6)
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--config", choices=["studio-mini", "tiny"], default="studio-mini")
    parser.add_argument("--init", type=Path,
                        help="start from the VAE in this folder: a run's (vae.safetensors, vae.json) or a model's (model.json)")
    parser.add_argument("--decoder-only", action="store_true",
                        help="train the decoder alone (needs --init): latents and their scale factor stay as they are")
    parser.add_argument("--decoder-depth", type=int,
                        help="deepen the --init VAE's decoder to this many blocks, decoding as before")
    parser.add_argument("--threads", type=int, help="torch CPU threads (CPU runs)")
    parser.add_argument("--motion-weight", type=float, default=0.0,
                        help="extra weight of the squared error where a clip moves inside a latent frame")
    args = parser.parse_args(argv)
    if args.decoder_only and args.init is None:
        parser.error("--decoder-only needs --init (a trained VAE whose encoder stays)")
    if args.decoder_depth is not None and args.init is None:
        parser.error("--decoder-depth needs --init (the VAE whose decoder grows)")
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = studio_mini.VAE if args.config == "studio-mini" else dataclasses.replace(
        studio_mini.VAE, embed_dim=256, num_heads=4)
    torch.manual_seed(args.seed)
    if args.init is not None:
        vae = load_trained_vae(args.init, device, decoder_depth=args.decoder_depth).train()
        config = vae.config
    else:
        vae = VideoVAE(config).to(device)
    if args.decoder_only:
        vae.encoder.requires_grad_(False)
    trained = [p for p in vae.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01)
    args.out.mkdir(parents=True, exist_ok=True)
    state_path = args.out / "vae_state.safetensors"
    step = 0
    if state_path.is_file():
        step = int(load_training_state(state_path, modules={"vae": vae}, optimizers={"vae": optimizer})["step"])
        log.info("resumed at step %d", step)

    loader = DataLoader(VAEClips(args.seed * 100_003 + step), batch_size=args.batch, num_workers=args.workers,
                        pin_memory=device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    started, recent = time.perf_counter(), []
    for clips in loader:
        pixels = clips.to(device, non_blocking=True).permute(0, 4, 1, 2, 3).float() / 127.5 - 1
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, args.steps, 300, args.lr)
        with autocast:
            loss, mse = vae_loss(vae, pixels, args.kl, args.motion_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        step += 1
        recent.append(mse.item())
        if step % 100 == 0:
            log.info("step %d  loss %.5f  psnr %.2f dB  %.1f min", step, loss.item(), psnr(sum(recent) / len(recent)),
                     (time.perf_counter() - started) / 60)
            recent = []
        if step % 1000 == 0:
            save_training_state(state_path, modules={"vae": vae}, optimizers={"vae": optimizer}, info={"step": step})
        if step >= args.steps or time.perf_counter() - started > args.minutes * 60:
            break

    save_training_state(state_path, modules={"vae": vae}, optimizers={"vae": optimizer}, info={"step": step})
    vae.eval()
    if args.decoder_only:  # the encoder is the one the DiT was trained on: its scale stays
        std, final = 1.0 / config.scale_factor, config
    else:
        std = latent_std(vae, device)
        final = dataclasses.replace(config, scale_factor=round(1.0 / std, 5))
    save_file({k: v.detach().cpu().contiguous() for k, v in vae.state_dict().items()}, str(args.out / "vae.safetensors"))
    (args.out / "vae.json").write_text(json.dumps(final.to_dict(), indent=1))
    log.info("done at step %d; latent std %.4f -> scale factor %.5f", step, std, final.scale_factor)


def load_trained_vae(folder: Path, device: torch.device, dtype: torch.dtype = torch.float32,
                     decoder_depth: int | None = None) -> VideoVAE:
    """The VAE trained in `folder` (vae.safetensors + vae.json) or the one an exported model folder holds
    (model.json); with `decoder_depth`, its decoder deepened to that many blocks (same function)."""
    from safetensors.torch import load_file

    from magi_engine.model_files import is_native_bundle, read_manifest
    from magi_engine.loading.int8 import dequantize_int8
    from lab.training.grow import grow_vae_decoder_state

    if is_native_bundle(folder):
        config = VAEConfig.from_dict(read_manifest(folder)["vae"])
        state = {k: v.float() for k, v in dequantize_int8(load_file(str(folder / "vae.safetensors"))).items()}
    else:
        config = VAEConfig.from_dict(json.loads((folder / "vae.json").read_text()))
        state = load_file(str(folder / "vae.safetensors"))
    if decoder_depth is not None and decoder_depth != config.decoder_blocks:
        state = grow_vae_decoder_state(state, decoder_depth)
        config = dataclasses.replace(config, decoder_depth=decoder_depth)
    vae = VideoVAE(config)
    vae.load_state_dict(state)
    return vae.to(device=device, dtype=dtype).eval()


if __name__ == "__main__":
    main()
