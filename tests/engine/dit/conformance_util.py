"""Shared helpers for tests that compare our DiT with the official MAGI-1 golden vectors."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from magi_engine.config import DiTConfig
from magi_engine.dit.model import ChunkText, MagiDiT
from magi_engine.dit.official_keys import official_key_plan
from tests.conformance import conformance_path


def load_case_folder(name: str, distilled: bool = False) -> tuple[MagiDiT, dict, dict, dict]:
    folder = conformance_path(name)
    meta = json.loads((folder / "config.json").read_text())
    config = DiTConfig.from_official(meta["config"]["model_config"], distilled=distilled)
    official = {k: v.float() for k, v in load_file(folder / "model.safetensors").items()}
    model = MagiDiT(config)
    state = {name: source.build(official.__getitem__) for name, source in official_key_plan(config).items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, load_file(folder / "inputs.safetensors"), load_file(folder / "outputs.safetensors"), meta


def chunk_text(y: torch.Tensor, mask: torch.Tensor) -> ChunkText:
    """Official y [chunks, 1, L, C] + mask [chunks, 1, L] -> ChunkText with only the valid tokens."""
    return ChunkText.from_sequences([y[j, 0][mask[j, 0].bool()] for j in range(y.shape[0])])
