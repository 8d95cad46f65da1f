"""Typed errors of the engine.

Every failure the engine can predict is one of these classes, with a message written for the person
at the keyboard: one sentence on what happened, one on what to do. They travel to the GUI and the CLI
as a `Failed` event (see magi_engine.events), never as a stack trace.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class: a failure the engine can explain to the user."""

    #: Short, stable label used by the GUI to group messages ("Checkpoint problem", ...).
    title = "Engine error"


class ConfigError(EngineError, ValueError):
    """A setting is outside what the model or the sampler accepts."""

    title = "Invalid setting"


class CheckpointError(EngineError):
    """A checkpoint is missing, incomplete, corrupt or does not fit the chosen model."""

    title = "Checkpoint problem"


class InputError(EngineError, ValueError):
    """A reference image, prefix video or prompt cannot be used."""

    title = "Unusable input"


class OutOfMemory(EngineError, MemoryError):
    """The chosen model or resolution does not fit the device's memory."""

    title = "Not enough memory"


class DownloadError(EngineError):
    """A hub download failed or is impossible (offline mode, missing repository, ...)."""

    title = "Download problem"


class DeviceError(EngineError):
    """The requested device does not exist or cannot run the model."""

    title = "Device problem"


class ExportError(EngineError):
    """A video or project file could not be written (full disk, no permission, encoder failure)."""

    title = "Export problem"


class RemoteError(EngineError):
    """The remote engine cannot be reached, refuses this client, or lost the run."""

    title = "Remote engine problem"


class ProtocolError(RemoteError, ValueError):
    """A message between the studio and a remote engine breaks the protocol (malformed, too large, unknown)."""

    title = "Remote engine problem"


class RankFailed(EngineError):
    """One rank of a several-device run stopped; every rank was stopped with it."""

    title = "Multi-GPU problem"
