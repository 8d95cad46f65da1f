"""Settings shared by the whole test suite.

* Qt runs offscreen unless the caller chose a platform (e.g. xcb under Xvfb for screenshots).
* The hub is offline: no test may reach the network (set HF_HUB_OFFLINE=0 yourself to override).
* torch uses at most two threads, like CI, so timings and float reductions are comparable.
* `no_ffmpeg_binary`: imageio-ffmpeg as it is when its ffmpeg binary is missing.
* Where Triton is installed but no CUDA GPU is, Triton kernels run in its interpreter (TRITON_INTERPRET=1, read
  when triton is first imported, which torch._dynamo does): the engine's kernel tests then run on the CPU.

The `slow` marker is registered in pyproject.toml ([tool.pytest.ini_options] markers).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402  (after the environment above, which libraries read at import)

torch.set_num_threads(min(2, os.cpu_count() or 1))
if not torch.cuda.is_available() and importlib.util.find_spec("triton") is not None:
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_ffmpeg_binary(monkeypatch):
    """imageio-ffmpeg installed without its binary (a platform with no wheel): it raises RuntimeError."""
    import imageio_ffmpeg

    def no_binary():
        raise RuntimeError("No ffmpeg exe could be found.")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", no_binary)
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
