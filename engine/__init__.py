"""MAGI Studio's engine: our PyTorch implementation of MAGI-1 and the session API the app uses.

Plain PyTorch, never Qt. The public API:

    from engine import GenerationSession, GenerationRequest, ChunkSpec, CancelToken
    session = GenerationSession.load("studio-mini")
    for event in session.generate(GenerationRequest(chunks=(ChunkSpec("a red ball falls", seed=1),),
                                                    width=256, height=256)):
        ...

Importing the package, its types, errors and events costs no torch: `GenerationSession` (and with it torch, the
DiT, the VAE and cv2) loads on first use of the name (PEP 562), when a model is about to load.
"""

from engine.config import DiTConfig, GuidanceConfig, SamplingConfig
from engine.errors import (CheckpointError, ConfigError, DeviceError, DownloadError, EngineError, ExportError,
                           InputError, OutOfMemory)
from engine.events import (CancelToken, Cancelled, ChunkFinished, ChunkStarted, Event, Failed, Finished,
                           GenerationStarted, StepProgress)
from engine.requests import ChunkSpec, GenerationRequest

__all__ = [
    "GenerationSession", "GenerationRequest", "ChunkSpec", "CancelToken",
    "Event", "GenerationStarted", "ChunkStarted", "StepProgress", "ChunkFinished", "Finished", "Cancelled", "Failed",
    "DiTConfig", "SamplingConfig", "GuidanceConfig",
    "EngineError", "ConfigError", "CheckpointError", "InputError", "OutOfMemory", "DownloadError", "DeviceError",
    "ExportError",
]


def __getattr__(name: str):
    if name == "GenerationSession":
        from engine.session import GenerationSession

        return GenerationSession
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
