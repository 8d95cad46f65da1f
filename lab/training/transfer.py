"""Moving a training run between machines in small files (the GPU machines keep nothing).

    python -m lab.training.transfer pack RUN_DIR OUT_DIR     # after training, on the GPU machine
    python -m lab.training.transfer unpack IN_DIR RUN_DIR    # before training, anywhere
    python -m lab.training.transfer complete IN_DIR BUNDLE   # fill IN_DIR's missing parts from a bundle
    python -m lab.training.transfer receive OUT_DIR BUNDLE RUN_IN  # after a call: export, refresh the carry
    python -m lab.training.transfer seed BUNDLE RUN_IN STEP [TEXT]   # a carry from a bundle alone

Each file (`<part>.safetensors`) stays under 16 MB: VAE encoder and decoder, DiT weights, DiT EMA
weights, text encoder (weights and EMA). The DiT and VAE parts hold their matrices in int8 with per-row
scales (engine/loading/int8.py, as the shipped bundle does), everything else is fp16. The VAE and the EMA DiT
are exactly what the shipped bundle holds, so a call may carry only the raw DiT and the text encoder
and take the rest from resources/models/studio-mini (the lent machine takes at most 64 MB of files).
The optimiser state does not travel (it is 4x the weights); the trainer re-warms its learning rate
after a resume without it. The int8 rounding of the raw weights (about 1% of a row's spread) is a few
optimiser steps' worth of change.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from magi_engine.loading.int8 import dequantize_int8, quantize_int8

PARTS = {
    "vae_encoder": ("vae.safetensors", ("encoder.",)),
    "vae_decoder": ("vae.safetensors", ("decoder.",)),
    "dit": ("dit_state.safetensors", ("model.dit.",)),
    "dit_ema": ("dit_state.safetensors", ("model.ema_dit.",)),
    "text": ("dit_state.safetensors", ("model.text.", "model.ema_text.")),
}


INT8_PARTS = ("dit", "dit_ema", "vae_encoder", "vae_decoder")


def _half(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}


def _stored(part: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return quantize_int8(tensors) if part in INT8_PARTS else _half(tensors)


def part_file(folder: Path, part: str) -> Path:
    return folder / f"{part}.safetensors"


def pack(run: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    info = {}
    for part, (filename, prefixes) in PARTS.items():
        source = run / filename
        if not source.is_file():
            continue
        with safe_open(str(source), "pt") as handle:
            tensors = {k: handle.get_tensor(k) for k in handle.keys() if k.startswith(prefixes)}
            if filename == "dit_state.safetensors":
                info = json.loads((handle.metadata() or {}).get("info", "{}"))
        save_file(_stored(part, tensors), str(part_file(out, part)))
    manifest = {"info": info}
    if (run / "vae.json").is_file():
        manifest["vae"] = json.loads((run / "vae.json").read_text())
    (out / "run.json").write_text(json.dumps(manifest))


def unpack(source: Path, run: Path) -> None:
    run.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((source / "run.json").read_text())
    loaded = {part: dequantize_int8(load_file(str(part_file(source, part)))) for part in PARTS
              if part_file(source, part).is_file()}
    if "vae_encoder" in loaded:
        vae = {**loaded["vae_encoder"], **loaded["vae_decoder"]}
        save_file({k: v.float() for k, v in vae.items()}, str(run / "vae.safetensors"))
        (run / "vae.json").write_text(json.dumps(manifest["vae"], indent=1))
    if "dit" in loaded:
        state = {k: v.float() for part in ("dit", "dit_ema", "text") for k, v in loaded.get(part, {}).items()}
        info = dict(manifest.get("info", {}))
        info["resumed_without_optimizer"] = True
        save_file(state, str(run / "dit_state.safetensors"), metadata={"info": json.dumps(info)})


def complete(source: Path, bundle: Path) -> None:
    """Write the VAE and EMA DiT parts that `source` lacks from an exported bundle of the same run."""
    if not part_file(source, "vae_encoder").is_file():
        vae = dequantize_int8(load_file(str(bundle / "vae.safetensors")))
        for part in ("vae_encoder", "vae_decoder"):
            prefix = PARTS[part][1][0]
            save_file(_stored(part, {k: v for k, v in vae.items() if k.startswith(prefix)}),
                      str(part_file(source, part)))
    if not part_file(source, "dit_ema").is_file():
        ema = dequantize_int8(load_file(str(bundle / "dit.safetensors")))
        save_file(_stored("dit_ema", {PARTS["dit_ema"][1][0] + k: v for k, v in ema.items()}),
                  str(part_file(source, "dit_ema")))


CARRIED = ("dit", "text")


def seed(bundle: Path, run_in: Path, step: int, text: Path | None = None) -> None:
    """A carry made from an exported bundle alone, for when its run's raw parts are gone: the shipped EMA
    DiT becomes the raw DiT too, and the bundle's text encoder (or the encoder file `text`, e.g. one
    carried to rotary positions) both the raw and the EMA encoder. The trainer resumes at `step` with a
    fresh optimiser (the EMA restarts from the weights it is given)."""
    from magi_engine.text.tiny import WordTextEncoder

    run_in.mkdir(parents=True, exist_ok=True)
    dit = load_file(str(bundle / "dit.safetensors"))  # int8 codes and scales, as a "dit" part stores them
    save_file({PARTS["dit"][1][0] + k: v for k, v in dit.items()}, str(part_file(run_in, "dit")))
    encoder = WordTextEncoder.load(text if text is not None else bundle / "text_encoder.safetensors")
    weights = encoder.state_dict()
    save_file(_half({prefix + k: v for prefix in PARTS["text"][1] for k, v in weights.items()}),
              str(part_file(run_in, "text")))
    vae_config = json.loads((bundle / "model.json").read_text())["vae"]  # as a packed run's vae.json holds it
    (run_in / "run.json").write_text(json.dumps({"info": {"step": int(step), "seeded_from": str(bundle)},
                                                 "vae": vae_config}))


def receive(out: Path, bundle: Path, run_in: Path) -> None:
    """After a call: export its EMA weights over `bundle` and make its raw parts the next call's carry.

    The carry is refreshed after every call, also when the next call is meant to find the machine
    warm: a fresh machine trains from whatever `run_in` holds.
    """
    from lab.training import export

    with tempfile.TemporaryDirectory() as tmp:
        unpack(out, Path(tmp))
        export.main(Path(tmp), bundle)
    staged = run_in.with_name(run_in.name + ".new")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    for part in CARRIED:
        shutil.copyfile(part_file(out, part), part_file(staged, part))
    shutil.copyfile(out / "run.json", staged / "run.json")
    shutil.rmtree(run_in, ignore_errors=True)
    staged.rename(run_in)


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    if command == "seed":
        bundle_dir, carry_dir, step_arg, *text_file = arguments
        seed(Path(bundle_dir), Path(carry_dir), int(step_arg), *map(Path, text_file))
    else:
        {"pack": pack, "unpack": unpack, "complete": complete, "receive": receive}[command](*map(Path, arguments))
