"""MAGI-1's ViT video autoencoder: model, tiled encode/decode and a cheap latent preview."""

from engine.vae.config import VAEConfig
from engine.vae.model import VideoVAE
from engine.vae.preview import LatentRGBProjection, fit_latent_rgb_projection

__all__ = ["VAEConfig", "VideoVAE", "LatentRGBProjection", "fit_latent_rgb_projection"]
