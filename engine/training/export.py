"""Export a trained run as the shipped studio-mini model (our bundle format: int8 DiT matrices, fp16 rest).

    python -m engine.training.export RUN_DIR resources/models/studio-mini

Uses the EMA weights of the DiT and text encoder, the trained VAE with its measured latent scale,
fits the cheap latent->RGB preview projection, and writes model.json + three safetensors files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors import safe_open

from engine.bundle import ModelBundle, save_native_bundle
from engine.dit.model import MagiDiT
from engine.text.tiny import WordTextEncoder
from engine.training import studio_mini
from engine.training.train_vae import load_trained_vae
from engine.vae import fit_latent_rgb_projection


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


def main(run: Path, destination: Path) -> None:
    bundle = build_bundle(run)
    save_native_bundle(bundle, destination, dtype=torch.float16, int8_dit=True)
    info = {}
    with safe_open(str(run / "dit_state.safetensors"), "pt") as handle:
        info = json.loads((handle.metadata() or {}).get("info", "{}"))
    sizes = {p.name: p.stat().st_size for p in destination.glob("*.safetensors")}
    print(json.dumps({"step": info.get("step"), "files": sizes, "total_mb": round(sum(sizes.values()) / 2**20, 2)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
