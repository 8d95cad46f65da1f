"""Resumable training checkpoints in safetensors (never pickle): modules, optimiser state, step, RNG.

One file per checkpoint: every tensor under a prefixed name ("model.<name>.<param>",
"optim.<name>.<index>.<slot>"), and a JSON header in the safetensors metadata with the step, the
optimiser's param groups and anything else the trainer wants back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from magi_engine.errors import CheckpointError


def save_training_state(path: str | Path, *, modules: Mapping[str, torch.nn.Module],
                        optimizers: Mapping[str, torch.optim.Optimizer], info: Mapping[str, Any]) -> None:
    tensors: dict[str, torch.Tensor] = {}
    groups: dict[str, Any] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"model.{name}.{key}"] = value.detach().cpu().contiguous()
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        groups[name] = state["param_groups"]
        for index, slots in state["state"].items():
            for slot, value in slots.items():
                tensors[f"optim.{name}.{index}.{slot}"] = torch.as_tensor(value).detach().cpu().contiguous()
    metadata = {"info": json.dumps(dict(info)), "param_groups": json.dumps(groups)}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def load_training_state(path: str | Path, *, modules: Mapping[str, torch.nn.Module],
                        optimizers: Mapping[str, torch.optim.Optimizer] | None = None) -> dict[str, Any]:
    """Restore modules (and optimisers when given) in place; returns the saved info."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No training checkpoint at {path}.")
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata() or {}
        keys = list(handle.keys())
        for name, module in modules.items():
            prefix = f"model.{name}."
            state = {k[len(prefix):]: handle.get_tensor(k) for k in keys if k.startswith(prefix)}
            module.load_state_dict(state)
        for name, optimizer in (optimizers or {}).items():
            groups = json.loads(metadata.get("param_groups", "{}")).get(name)
            if groups is None:
                continue
            prefix = f"optim.{name}."
            state: dict[int, dict[str, torch.Tensor]] = {}
            for key in keys:
                if key.startswith(prefix):
                    index, slot = key[len(prefix):].split(".", 1)
                    state.setdefault(int(index), {})[slot] = handle.get_tensor(key)
            optimizer.load_state_dict({"state": state, "param_groups": groups})
    return json.loads(metadata.get("info", "{}"))


def saved_step(path: str | Path) -> int:
    """The step a checkpoint was saved at, read from its header alone."""
    with safe_open(str(path), "pt") as handle:
        return int(json.loads((handle.metadata() or {}).get("info", "{}"))["step"])


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] != ["step"] or len(sys.argv) != 3:
        sys.exit("usage: python -m lab.training.checkpoint step CHECKPOINT")
    print(saved_step(sys.argv[2]))
