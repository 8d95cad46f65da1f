"""Export a trained run as the shipped studio-mini model (our bundle format: int8 matrices, fp16 rest).

    python -m lab.training.export RUN_DIR resources/models/studio-mini
    python -m lab.training.export --decoder VAE_RUN resources/models/studio-mini

The second form puts a decoder trained on alone (train_vae --decoder-only) into an exported model: the
encoder must be the model's own, so that the latents its DiT was trained on stay what they were.

Uses the EMA weights of the DiT and text encoder, the trained VAE with its measured latent scale,
fits the cheap latent->RGB preview projection, and writes model.json + three safetensors files.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import torch
from safetensors import safe_open

from magi_engine.bundle import ModelBundle, load_native_bundle, save_native_bundle
from magi_engine.errors import CheckpointError
from magi_engine.dit.model import MagiDiT
from magi_engine.text.tiny import WordTextEncoder
from lab.training import studio_mini
from lab.training.train_vae import load_trained_vae
from magi_engine.vae import fit_latent_rgb_projection


def load_ema(run: Path) -> tuple[MagiDiT, WordTextEncoder]:
    dit, text = MagiDiT(studio_mini.DIT), WordTextEncoder(studio_mini.text_config())
    with safe_open(str(run / "dit_state.safetensors"), "pt") as handle:
        keys = list(handle.keys())
        dit.load_state_dict({k.removeprefix("model.ema_dit."): handle.get_tensor(k) for k in keys
                             if k.startswith("model.ema_dit.")})
        text.load_state_dict({k.removeprefix("model.ema_text."): handle.get_tensor(k) for k in keys
                              if k.startswith("model.ema_text.")})
    return dit.eval(), text.eval()


def build_bundle(run: Path) -> ModelBundle:
    vae = load_trained_vae(run, torch.device("cpu"))
    dit, text = load_ema(run)
    return ModelBundle(name=studio_mini.NAME, label=studio_mini.LABEL, dit=dit, vae=vae, text_encoder=text,
                       sampling=studio_mini.SAMPLING, width=studio_mini.WIDTH, height=studio_mini.HEIGHT,
                       preview=fit_latent_rgb_projection(vae), source=str(run))


def with_decoder(bundle: ModelBundle, vae_run: Path) -> ModelBundle:
    """`bundle` with the VAE trained in `vae_run`, whose encoder must be the bundle's own."""
    vae = load_trained_vae(vae_run, torch.device("cpu"))
    ours, theirs = bundle.vae.encoder.state_dict(), vae.encoder.state_dict()
    # The bundle's encoder went through fp16 or int8 storage (int8 moves a weight by under 1% of its row's
    # spread); another encoder differs by the size of its weights.
    if ours.keys() != theirs.keys() or any(
            (ours[k].float() - theirs[k]).norm() > 0.02 * theirs[k].norm() + 1e-6 for k in ours):
        raise CheckpointError(f"The VAE in {vae_run} has another encoder than the model's: its DiT would get "
                              "latents it was not trained on. Train the decoder with --decoder-only from this model's VAE.")
    if vae.config.scale_factor != bundle.vae.config.scale_factor:
        raise CheckpointError(f"The VAE in {vae_run} scales latents by {vae.config.scale_factor}, the model by "
                              f"{bundle.vae.config.scale_factor}.")
    return dataclasses.replace(bundle, vae=vae, preview=fit_latent_rgb_projection(vae), source=str(vae_run))


def main(run: Path, destination: Path) -> None:
    with safe_open(str(run / "dit_state.safetensors"), "pt") as handle:
        info = json.loads((handle.metadata() or {}).get("info", "{}"))
    write(build_bundle(run), destination, step=info.get("step"))


def write(bundle: ModelBundle, destination: Path, **report) -> None:
    save_native_bundle(bundle, destination, dtype=torch.float16, int8_matrices=True)
    sizes = {p.name: p.stat().st_size for p in destination.glob("*.safetensors")}
    print(json.dumps({**report, "files": sizes, "total_mb": round(sum(sizes.values()) / 2**20, 2)}))


if __name__ == "__main__":
    if sys.argv[1] == "--decoder":
        folder = Path(sys.argv[3])
        write(with_decoder(load_native_bundle(folder, torch.device("cpu"), torch.float32), Path(sys.argv[2])), folder,
              decoder=sys.argv[2])
    else:
        main(Path(sys.argv[1]), Path(sys.argv[2]))
