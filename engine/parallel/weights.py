"""What a follower rank loads: the DiT, and the VAE for its share of the tiles, straight to its device.

Rank 0 loads the whole model (it encodes the prompts and owns the video); the other ranks run DiT
forwards and a share of the VAE's tiles, so they skip the text encoder. Tensors are built on the meta
device and filled one by one on the rank's device, as for a single device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from magi_engine.config import RuntimeConfig
from magi_engine.dit.model import MagiDiT


@dataclass(frozen=True)
class DiTSource:
    """A picklable recipe for a follower's DiT (it crosses the process start)."""

    model: str
    dtype: str | None = None
    runtime: RuntimeConfig | None = None

    def __call__(self, device: torch.device) -> MagiDiT:
        return load_dit(self.model, device, self.dtype, self.runtime)


@dataclass(frozen=True)
class VAESource:
    """A picklable recipe for a follower's VAE."""

    model: str
    dtype: str | None = None

    def __call__(self, device: torch.device):
        return load_vae(self.model, device, self.dtype)


def load_vae(spec: str, device: torch.device, dtype: str | None):
    """The model's VideoVAE alone, in the dtype rank 0's whole-model load gives it."""
    from magi_engine.device import parse_dtype
    from magi_engine.loading import CheckpointReader, load_into_module
    from magi_engine.loading.int8 import int8_dequantized_tensors
    from magi_engine.magi_checkpoint import load_magi_vae
    from magi_engine.model_files import locate_magi_checkpoint, read_manifest
    from magi_engine.models import download_magi, resolve_model
    from magi_engine.vae import VideoVAE
    from magi_engine.vae.config import VAEConfig

    source = resolve_model(spec)
    torch_dtype = parse_dtype(dtype, device)
    if source.kind == "native":
        with torch.device("meta"):
            vae = VideoVAE(VAEConfig.from_dict(read_manifest(source.path)["vae"]))
        with CheckpointReader(source.path / "vae.safetensors") as reader:
            load_into_module(vae, int8_dequantized_tensors(reader), device=device, dtype_for=lambda name: torch_dtype)
        return vae.eval()
    root = download_magi(source.variant) if source.kind == "hub" else source.path
    return load_magi_vae(locate_magi_checkpoint(root, source.variant).vae, device, torch_dtype)


def load_dit(spec: str, device: torch.device, dtype: str | None, runtime: RuntimeConfig | None) -> MagiDiT:
    from magi_engine.model_files import read_manifest
    from magi_engine.config import DiTConfig
    from magi_engine.device import parse_dtype
    from magi_engine.dit.compiled import apply_runtime, resolve_runtime
    from magi_engine.dit.model import is_float32_island
    from magi_engine.loading import CheckpointReader, load_into_module
    from magi_engine.loading.int8 import int8_dequantized_tensors
    from magi_engine.magi_checkpoint import load_magi_dit
    from magi_engine.model_files import locate_magi_checkpoint
    from magi_engine.models import download_magi, resolve_model

    source = resolve_model(spec)
    torch_dtype = parse_dtype(dtype, device)
    choice = resolve_runtime(runtime, device)
    if source.kind == "native":
        config = DiTConfig.from_dict(read_manifest(source.path)["dit"])
        with torch.device("meta"):
            dit = MagiDiT(config)
        with CheckpointReader(source.path / "dit.safetensors") as reader:
            load_into_module(dit, int8_dequantized_tensors(reader), device=device,
                             dtype_for=lambda name: torch.float32 if is_float32_island(name) else torch_dtype)
        dit = dit.eval()
    else:
        root = download_magi(source.variant) if source.kind == "hub" else source.path
        checkpoint = locate_magi_checkpoint(root, source.variant)
        dit = load_magi_dit(checkpoint.weights, checkpoint.variant, device, torch_dtype, native_fp8=choice.native_fp8,
                            quantize_fp8=choice.quantize_fp8)
    apply_runtime(dit, choice)
    return dit


def dit_config_of(spec: str):
    """The DiT's config of a model, read without loading weights (to plan the split before loading)."""
    from magi_engine.model_files import read_manifest
    from magi_engine.config import DiTConfig
    from magi_engine.model_files import locate_magi_checkpoint
    from magi_engine.models import resolve_model
    from magi_engine.variants import magi_variant

    source = resolve_model(spec)
    if source.kind == "native":
        return DiTConfig.from_dict(read_manifest(source.path)["dit"])
    if source.kind == "hub":
        return magi_variant(source.variant).dit
    return locate_magi_checkpoint(source.path).variant.dit
