"""MAGI-1's ViT video autoencoder: model, tiled encode/decode and a cheap latent preview.

`magi_engine.vae.config` costs no torch; the model and preview load on first use of their names (PEP 562).
"""

import importlib

from magi_engine.vae.config import VAEConfig

_HOME_OF = {"VideoVAE": "magi_engine.vae.model", "LatentRGBProjection": "magi_engine.vae.preview",
            "fit_latent_rgb_projection": "magi_engine.vae.preview"}

__all__ = ["VAEConfig", "VideoVAE", "LatentRGBProjection", "fit_latent_rgb_projection"]


def __getattr__(name: str):
    if name in _HOME_OF:
        return getattr(importlib.import_module(_HOME_OF[name]), name)
    raise AttributeError(f"module 'magi_engine.vae' has no attribute {name!r}")
