"""Deepen a trained DiT (or the VAE's decoder) without changing what it computes, so training
continues from its skills.

    python -m lab.training.grow RUN_DIR          # to studio_mini.DIT.num_layers; no-op when equal

New layers are copies of the layer before them (a trained starting point for their weights) whose
two post-norms have an effective gain of zero (`weight` = -1 under the 1 + weight convention, bias 0):
their attention and MLP branches then add exactly nothing to the residual stream, so the deeper model
starts as the same function. The gains still receive gradients (the normalised branch output is not
zero), so the new layers open up as training needs them. Copies are spread evenly between the old
layers. The raw and EMA DiT of a training state both grow; the optimiser state is dropped (its slots
no longer match) and the trainer re-warms its learning rate.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from magi_engine.errors import CheckpointError

_LAYER = re.compile(r"^layers\.(\d+)\.(.*)$")
SILENCED = ("attn_post_norm", "mlp_post_norm")


def layer_count(state: dict[str, torch.Tensor]) -> int:
    found = {int(m.group(1)) for m in map(_LAYER.match, state) if m}
    return max(found) + 1 if found else 0


def copied_after(old: int, new: int) -> list[int]:
    """Indices of the old layers that get a silent copy after them (evenly spread, the last included)."""
    extra = new - old
    if extra < 0 or extra > old:
        raise ValueError(f"can grow {old} layers to between {old} and {2 * old}, not {new}")
    return sorted({old - 1 - int(k * old / extra) for k in range(extra)}) if extra else []


def grow_state(state: dict[str, torch.Tensor], new_layers: int) -> dict[str, torch.Tensor]:
    """A MagiDiT state dict with `new_layers` layers computing the same function as `state`."""
    old_layers = layer_count(state)
    copies = set(copied_after(old_layers, new_layers))
    order: list[tuple[int, bool]] = []  # (source layer, silent copy?)
    for i in range(old_layers):
        order.append((i, False))
        if i in copies:
            order.append((i, True))
    grown = {k: v for k, v in state.items() if not _LAYER.match(k)}
    for position, (source, silent) in enumerate(order):
        prefix = f"layers.{source}."
        for key, value in state.items():
            if not key.startswith(prefix):
                continue
            name = key[len(prefix):]
            value = value.clone()
            if silent and name.split(".")[0] in SILENCED:
                value.fill_(-1.0 if name.endswith("weight") else 0.0)
            grown[f"layers.{position}.{name}"] = value
    return grown


def grow_run(run: Path, new_layers: int) -> bool:
    """Grow the raw and EMA DiT in `run`/dit_state.safetensors in place; False if already that deep."""
    path = run / "dit_state.safetensors"
    if not path.is_file():
        raise CheckpointError(f"No training state at {path}.")
    with safe_open(str(path), "pt") as handle:
        metadata = dict(handle.metadata() or {})
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    modules = {}
    for name in ("dit", "ema_dit"):
        prefix = f"model.{name}."
        modules[name] = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    depth = layer_count(modules["dit"])
    if depth == new_layers:
        return False
    kept = {k: v for k, v in tensors.items() if not k.startswith(("model.dit.", "model.ema_dit.", "optim."))}
    for name, state in modules.items():
        kept.update({f"model.{name}.{k}": v for k, v in grow_state(state, new_layers).items()})
    info = json.loads(metadata.get("info", "{}"))
    info.update(resumed_without_optimizer=True, grown=info.get("grown", []) + [[info.get("step"), depth, new_layers]])
    save_file(kept, str(path), metadata={"info": json.dumps(info)})
    return True


_DECODER_BLOCK = re.compile(r"^decoder\.blocks\.(\d+)\.(.*)$")
#: The VAE block's two residual branches end in these layers: zeroed, the block adds nothing.
VAE_BRANCH_OUTPUTS = ("attn.proj.", "mlp.fc2.")


def grow_vae_decoder_state(state: dict[str, torch.Tensor], new_blocks: int) -> dict[str, torch.Tensor]:
    """A VideoVAE state dict whose decoder has `new_blocks` blocks and decodes exactly as `state` does.

    New blocks are appended copies of the decoder's last block with the output layers of both residual
    branches zeroed (weights and biases): the block passes its input through unchanged. Those output
    layers get gradients at once (their inputs are not zero), so the new blocks open up in training.
    """
    old_blocks = 1 + max((int(m.group(1)) for m in map(_DECODER_BLOCK.match, state) if m), default=-1)
    if old_blocks == 0:
        raise CheckpointError("The VAE state has no decoder blocks to grow from.")
    if new_blocks < old_blocks:
        raise ValueError(f"can grow the decoder's {old_blocks} blocks, not shrink them to {new_blocks}")
    grown = dict(state)
    last = f"decoder.blocks.{old_blocks - 1}."
    for position in range(old_blocks, new_blocks):
        for key, value in state.items():
            if key.startswith(last):
                name = key[len(last):]
                grown[f"decoder.blocks.{position}.{name}"] = (torch.zeros_like(value) if name.startswith(VAE_BRANCH_OUTPUTS)
                                                              else value.clone())
    return grown


if __name__ == "__main__":
    from lab.training import studio_mini

    run_dir = Path(sys.argv[1])
    layers = studio_mini.DIT.num_layers
    print(f"grew {run_dir} to {layers} layers" if grow_run(run_dir, layers) else f"{run_dir} already has {layers} layers")
