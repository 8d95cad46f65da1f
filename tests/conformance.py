"""Where the tests find the MAGI-1 conformance data (golden vectors made by the official code):
$MAGI_CONFORMANCE_DIR, else ../shared/conformance beside the checkout.

A test whose data is missing is skipped locally, with one line saying where it looked (a fresh clone has
no ../shared). In CI (the CI environment variable set, as CI services do: CI=true) it fails instead, so a
CI machine without the data cannot pass by skipping every comparison with the official outputs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def conformance_root() -> Path:
    return Path(os.environ.get("MAGI_CONFORMANCE_DIR") or REPO.parent / "shared" / "conformance")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def conformance_path(*parts: str) -> Path:
    """The conformance file or folder `parts` (e.g. "vae_tiny", "model.safetensors"); skips the test when
    it is missing, or fails it in CI."""
    path = conformance_root().joinpath(*parts)
    if not path.exists():
        reason = f"MAGI-1 conformance data not found: {path} (set MAGI_CONFORMANCE_DIR to its folder)"
        if in_ci():
            pytest.fail(f"{reason}; CI is set, so missing conformance data fails the run", pytrace=False)
        pytest.skip(reason)
    return path
