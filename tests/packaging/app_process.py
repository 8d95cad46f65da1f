"""Waiting on a real app process started by a packaging test."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def wait_for_untitled_project(process: subprocess.Popen, data_folder: Path, timeout_s: float = 90) -> None:
    """Return once the new project's untitled bundle exists under `data_folder` (Studio.start has run),
    or once the process has ended; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and not list(data_folder.glob("**/Untitled-*.magi")):
        assert time.monotonic() < deadline, f"no untitled project after {timeout_s:.0f} s"
        time.sleep(0.2)
