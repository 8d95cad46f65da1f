"""`magi-studio generate --ranks N --dist-backend gloo`: the several-GPU path on CPU processes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from magi_engine.bundle import save_native_bundle
from magi_engine.video_io import read_video
from magi_studio.cli import main
from tests.engine.factories import tiny_bundle


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_two_ranks_make_the_video_one_process_makes(tmp_path, capsys, one_thread):
    folder = tmp_path / "tiny"
    save_native_bundle(tiny_bundle(distilled=False), folder)
    common = ["generate", "--model", str(folder), "--prompt", "a red ball falls", "--prompt",
              "the blue square moves left", "--seed", "3"]
    assert main([*common, "-q", "-o", str(tmp_path / "one.mp4")]) == 0
    assert main([*common, "--ranks", "2", "--parallel", "sequence", "-o", str(tmp_path / "two.mp4")]) == 0
    assert "2 ranks (gloo): 2-way sequence split" in capsys.readouterr().err
    one, two = read_video(tmp_path / "one.mp4"), read_video(tmp_path / "two.mp4")
    assert one.shape == two.shape == (48, 64, 64, 3)
    # float32 results equal to 1e-6: at most a rounding step in a few pixels, through the same encoder.
    assert np.abs(one.astype(int) - two.astype(int)).mean() < 0.05


@pytest.mark.parametrize("args, message", [
    (["--gpus", "2", "--ranks", "2"], "not both"),
    (["--ranks", "4", "--parallel", "guidance"], "at most 3 guidance passes"),
])
def test_impossible_splits_are_one_sentence(tmp_path, capsys, args, message):
    folder = tmp_path / "tiny"
    save_native_bundle(tiny_bundle(distilled=False), folder)
    code = main(["generate", "--model", str(folder), "--prompt", "x", "-q", "-o", str(tmp_path / "o.mp4"), *args])
    assert code == 1
    assert message in capsys.readouterr().err
