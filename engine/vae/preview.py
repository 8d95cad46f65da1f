"""Cheap latent -> RGB preview: one linear map per latent pixel, no VAE decode.

While a chunk is being denoised the GUI shows a low-resolution preview of the current latents
(one RGB pixel per latent pixel and latent frame). The map is fitted once per VAE by least squares
on synthetic clips pushed through the real encoder (the same idea as the hand-made latent-to-RGB
factors other diffusion UIs ship), and stored as plain numbers in the model's JSON.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import torch
import torch.nn.functional as F

from magi_engine.errors import ConfigError, InputError

if TYPE_CHECKING:
    from magi_engine.vae.model import VideoVAE

LOG = logging.getLogger(__name__)

#: Grey levels (in [-1, 1] units) of the solid-colour clips: every combination over R, G and B.
SOLID_LEVELS = (-1.0, 0.0, 1.0)


def _as_float_tuple(values: Any) -> tuple[float, ...]:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().tolist()
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class LatentRGBProjection:
    """rgb = weight @ latent + bias, with rgb in [-1, 1] units and latents as the DiT sees them (scaled)."""

    weight: tuple[tuple[float, ...], ...]  # [3][z]
    bias: tuple[float, float, float]

    def __post_init__(self) -> None:
        rows = self.weight.detach().cpu().tolist() if isinstance(self.weight, torch.Tensor) else self.weight
        weight = tuple(_as_float_tuple(row) for row in rows)
        bias = _as_float_tuple(self.bias)
        if len(weight) != 3 or len(bias) != 3 or len({len(row) for row in weight}) != 1 or not weight[0]:
            raise ConfigError("LatentRGBProjection needs weight [3][channels] and bias [3], got "
                              f"{[len(row) for row in weight]} rows and {len(bias)} biases")
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "bias", bias)

    @property
    def channels(self) -> int:
        return len(self.weight[0])

    def to_rgb(self, latents: torch.Tensor) -> torch.Tensor:
        """latents [z, T, h, w] -> uint8 frames [T, h, w, 3] on the same device."""
        if latents.dim() != 4 or latents.shape[0] != self.channels:
            raise InputError(f"Preview needs latents [{self.channels}, frames, height, width], "
                             f"got {tuple(latents.shape)}.")
        weight = torch.tensor(self.weight, dtype=torch.float32, device=latents.device)  # [3, z]
        bias = torch.tensor(self.bias, dtype=torch.float32, device=latents.device)  # [3]
        rgb = torch.einsum("cz,zthw->thwc", weight, latents.float()) + bias  # [T, h, w, 3]
        return (rgb * 127.5 + 127.5).round().clamp(0, 255).to(torch.uint8)

    def to_dict(self) -> dict[str, Any]:
        return {"weight": [list(row) for row in self.weight], "bias": list(self.bias)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LatentRGBProjection":
        if set(data) != {"weight", "bias"}:
            raise ConfigError(f"LatentRGBProjection: expected keys ['bias', 'weight'], got {sorted(data)}")
        return cls(weight=data["weight"], bias=data["bias"])


def synthetic_clips(size: int = 64, frames: int = 4, seed: int = 0) -> torch.Tensor:
    """Static clips [B, 3, frames, size, size] in [-1, 1]: solid colours, ramps and random blocks.

    Solid colours pin down the map itself; ramps and blocks put each colour next to different
    neighbours, so the fit does not rely on what attention does with uniform frames.
    """
    generator = torch.Generator().manual_seed(seed)
    levels = torch.tensor(SOLID_LEVELS)
    solids = torch.cartesian_prod(levels, levels, levels)[:, :, None, None].expand(-1, -1, size, size)
    ramp = torch.linspace(-1.0, 1.0, size)
    across, down = ramp.expand(size, size), ramp[:, None].expand(size, size)
    ramps = []
    for channel in range(3):
        for pattern in (across, down, -across):
            image = torch.zeros(3, size, size)
            image[channel] = pattern
            ramps.append(image)
    ramps.append(torch.stack([across, down, -across]))
    ramps.append(torch.stack([down, -down, across]))
    block = 16
    coarse = torch.rand(12, 3, size // block, size // block, generator=generator) * 2 - 1
    blocks = coarse.repeat_interleave(block, dim=2).repeat_interleave(block, dim=3)
    images = torch.cat([solids, torch.stack(ramps), blocks])  # [B, 3, size, size]
    return images[:, :, None].expand(-1, -1, frames, -1, -1).contiguous()


@torch.inference_mode()
def fit_latent_rgb_projection(vae: "VideoVAE", *, device: torch.device | str | None = None,
                              dtype: torch.dtype | None = None, clip_size: int = 64, seed: int = 0,
                              batch_size: int = 8) -> LatentRGBProjection:
    """Least-squares fit of latent (scaled) -> mean RGB of its 4x8x8 pixel block, through `vae`'s encoder.

    `device` / `dtype` say where the synthetic clips are built; `vae.encode` then runs them where
    the VAE lives. Defaults: the VAE's own device and dtype. The solve runs on the CPU in float64.
    """
    config = vae.config
    device = vae.device if device is None else torch.device(device)
    dtype = vae.dtype if dtype is None else dtype
    clips = synthetic_clips(clip_size, config.patch_length, seed)  # [B, 3, pt, S, S]
    block = (config.patch_length, config.patch_size, config.patch_size)
    targets = F.avg_pool3d(clips.double(), kernel_size=block)  # [B, 3, 1, S/8, S/8]
    latents = torch.cat([
        vae.encode(batch.to(device=device, dtype=dtype), tiled=False).double().cpu()
        for batch in clips.split(batch_size)
    ]) * config.scale_factor  # [B, z, 1, S/8, S/8]
    inputs = latents.movedim(1, -1).reshape(-1, config.z_chans)  # [M, z]
    inputs = torch.cat([inputs, torch.ones(inputs.shape[0], 1, dtype=inputs.dtype)], dim=1)  # [M, z+1]
    outputs = targets.movedim(1, -1).reshape(-1, 3)  # [M, 3]
    solution = torch.linalg.lstsq(inputs, outputs, driver="gelsd").solution  # [z+1, 3]
    rms = (inputs @ solution - outputs).pow(2).mean().sqrt().item()
    LOG.info("fitted latent->RGB preview on %d latent pixels, rms error %.4f (in [-1, 1] units)",
             inputs.shape[0], rms)
    return LatentRGBProjection(weight=solution[:-1].T, bias=solution[-1])
