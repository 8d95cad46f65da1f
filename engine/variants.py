"""Every released MAGI-1 variant, with exact hyperparameters and default sampling settings.

Values follow the official example configs (SandAI-org/MAGI-1 example/{4.5B,24B}/*_config.json) and
the hub layout `sand-ai/MAGI-1: ckpt/magi/<variant>/inference_weight{,.distill,.fp8.distill}`.
Distilled variants sample with one pass and the step-size embedding; fp8 variants store most
linears of layers 1..L-2 in float8 and are dequantised on load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from magi_engine.config import DiTConfig, GuidanceConfig, SamplingConfig
from magi_engine.errors import ConfigError
from magi_engine.vae.config import VAEConfig

HUB_REPO = "sand-ai/MAGI-1"

MAGI_4_5B = DiTConfig(num_layers=34, hidden_size=3072, ffn_hidden_size=12288, num_heads=24, num_kv_groups=8)
MAGI_24B = DiTConfig(num_layers=48, hidden_size=6144, ffn_hidden_size=16384, num_heads=48, num_kv_groups=8,
                     gated_mlp=True, half_channel_vae=True, x_rescale_factor=0.1)

#: The released VAE (ckpt/vae/config.json holds the authoritative values; these are for estimates).
MAGI_VAE = VAEConfig()

#: T5-v1.1-XXL encoder parameters (for memory estimates).
T5_XXL_ENCODER_PARAMS = 4_762_310_656


@dataclass(frozen=True)
class MagiVariant:
    name: str
    label: str
    dit: DiTConfig
    sampling: SamplingConfig
    weight_subdir: str
    fp8: bool
    width: int
    height: int

    @property
    def hub_folder(self) -> str:
        return f"ckpt/magi/{self.name}/{self.weight_subdir}"


def _variant(name: str, label: str, base: DiTConfig, *, distilled: bool, fp8: bool, steps: int, size: tuple[int, int]):
    subdir = "inference_weight" + (".fp8" if fp8 else "") + (".distill" if distilled else "")
    guidance = GuidanceConfig(mode="distilled" if distilled else "cfg3")
    return MagiVariant(name, label, dataclasses.replace(base, distilled=distilled),
                       SamplingConfig(num_steps=steps, window=4, guidance=guidance), subdir, fp8, *size)


MAGI_VARIANTS: dict[str, MagiVariant] = {v.name: v for v in (
    _variant("4.5B_base", "MAGI-1 4.5B", MAGI_4_5B, distilled=False, fp8=False, steps=64, size=(720, 720)),
    _variant("4.5B_distill", "MAGI-1 4.5B distilled", MAGI_4_5B, distilled=True, fp8=False, steps=64, size=(720, 720)),
    _variant("4.5B_distill_quant", "MAGI-1 4.5B distilled fp8", MAGI_4_5B, distilled=True, fp8=True, steps=64,
             size=(720, 720)),
    _variant("24B_base", "MAGI-1 24B", MAGI_24B, distilled=False, fp8=False, steps=32, size=(1280, 720)),
    _variant("24B_distill", "MAGI-1 24B distilled", MAGI_24B, distilled=True, fp8=False, steps=16, size=(1280, 720)),
    _variant("24B_distill_quant", "MAGI-1 24B distilled fp8", MAGI_24B, distilled=True, fp8=True, steps=16,
             size=(1280, 720)),
)}


def magi_variant(name: str) -> MagiVariant:
    key = name.removeprefix("magi-1-").replace("b_", "B_").replace("b-", "B_")
    for candidate in (name, key):
        if candidate in MAGI_VARIANTS:
            return MAGI_VARIANTS[candidate]
    raise ConfigError(f"Unknown MAGI-1 variant {name!r}; choose one of {', '.join(MAGI_VARIANTS)}")


def tiny_dit_config(*, distilled: bool = False, gated: bool = False, caption_channels: int = 32) -> DiTConfig:
    """A 2-layer model of the MAGI-1 architecture for tests: builds and runs in milliseconds on a CPU."""
    return DiTConfig(num_layers=2, hidden_size=64, ffn_hidden_size=96, num_heads=2, num_kv_groups=1, head_dim=32,
                     caption_channels=caption_channels, caption_max_length=16, null_caption_tokens=8,
                     gated_mlp=gated, half_channel_vae=gated, x_rescale_factor=0.1 if gated else 1.0,
                     distilled=distilled)
