"""MAGI Studio's engine: our PyTorch implementation of MAGI-1 and the session API the app uses.

Plain PyTorch, never Qt. The public API:

    from magi_engine import GenerationSession, GenerationRequest, ChunkSpec, CancelToken
    session = GenerationSession.load("studio-mini")
    for event in session.generate(GenerationRequest(chunks=(ChunkSpec("a red ball falls", seed=1),),
                                                    width=256, height=256)):
        ...

Every name below loads with its module on first use (PEP 562): importing `engine`, or one of its small
modules (magi_engine.config, magi_engine.errors, magi_engine.requests, magi_engine.events), costs no torch and no numpy;
`GenerationSession` brings torch, the DiT, the VAE and cv2 when a model is about to load.
"""

import importlib

_HOMES = {
    "magi_engine.config": ("DiTConfig", "GuidanceConfig", "SamplingConfig"),
    "magi_engine.errors": ("CheckpointError", "ConfigError", "DeviceError", "DownloadError", "EngineError", "ExportError",
                      "InputError", "OutOfMemory"),
    "magi_engine.events": ("CancelToken", "Cancelled", "ChunkFinished", "ChunkStarted", "Event", "Failed", "Finished",
                      "GenerationStarted", "StepProgress"),
    "magi_engine.requests": ("ChunkSpec", "GenerationRequest"),
    "magi_engine.session": ("GenerationSession",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "GenerationSession", "GenerationRequest", "ChunkSpec", "CancelToken",
    "Event", "GenerationStarted", "ChunkStarted", "StepProgress", "ChunkFinished", "Finished", "Cancelled", "Failed",
    "DiTConfig", "SamplingConfig", "GuidanceConfig",
    "EngineError", "ConfigError", "CheckpointError", "InputError", "OutOfMemory", "DownloadError", "DeviceError",
    "ExportError",
]


def __getattr__(name: str):
    if name in _HOME_OF:
        return getattr(importlib.import_module(_HOME_OF[name]), name)
    raise AttributeError(f"module 'magi_engine' has no attribute {name!r}")
