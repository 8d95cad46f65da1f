"""Files shipped with MAGI Studio: icons, styles, fonts and the studio-mini model weights.

This folder is a Python package only so that its files travel as package data: from a checkout, an
installed wheel or a frozen bundle, `resource_path` finds them the same way. It imports nothing (no Qt,
no torch), so both engine/ and magi_studio/ may use it. Large or generated files do not belong here:
shipped weights stay small (safetensors only).

    from magi_resources import resource_path
    resource_path("models", "studio-mini", "config.json")
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def resource_path(*parts: str) -> Path:
    """Absolute path of a shipped file or folder (whether it exists is the caller's question)."""
    return ROOT.joinpath(*parts)
