"""`magi-studio generate`: prompts to mp4 from the command line, with clear errors."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from engine.bundle import save_native_bundle
from engine.video_io import probe_video, read_video
from magi_studio.cli import main
from tests.engine.factories import tiny_bundle


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "tiny"
    save_native_bundle(tiny_bundle(), folder)
    return folder


def test_one_prompt_per_chunk_makes_a_video(model_dir, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    code = main(["generate", "--model", str(model_dir), "--prompt", "a red ball falls", "--prompt",
                 "the blue square moves left", "--seed", "3", "-o", str(out)])
    assert code == 0
    info = probe_video(out)
    assert (info.frames, info.width, info.height, round(info.fps)) == (48, 64, 64, 24)
    assert "wrote 48 frames" in capsys.readouterr().err


def test_same_seed_same_video_and_image_prompt(model_dir, tmp_path):
    image = tmp_path / "ref.png"
    cv2.imwrite(str(image), np.full((100, 150, 3), (20, 40, 200), np.uint8))
    paths = []
    for name in ("a.mp4", "b.mp4"):
        paths.append(tmp_path / name)
        assert main(["generate", "--model", str(model_dir), "--prompt", "a green triangle grows", "--image",
                     str(image), "-q", "-o", str(paths[-1])]) == 0
    assert np.array_equal(read_video(paths[0]), read_video(paths[1]))


def test_prefix_video_output_holds_only_new_frames(model_dir, tmp_path):
    prefix = tmp_path / "prefix.mp4"
    assert main(["generate", "--model", str(model_dir), "--prompt", "a red ball falls", "-q", "-o", str(prefix)]) == 0
    out = tmp_path / "continued.mp4"
    assert main(["generate", "--model", str(model_dir), "--video", str(prefix), "--prompt", "it keeps falling",
                 "--prompt", "it stops", "-q", "-o", str(out)]) == 0
    assert probe_video(out).frames == 48  # the 24-frame prefix is one whole chunk of context, not repeated


@pytest.mark.parametrize("args, message", [
    (["--model", "no/such/model"], "neither a folder nor a known model"),
    (["--size", "65x64"], "multiple of 16"),
    (["--steps", "7"], "num_steps must be one of"),
    (["--image", "README.md"], "not an image"),
    (["--device", "cuda"], "No CUDA GPU is available"),
])
def test_bad_input_gets_one_clear_sentence_and_exit_code_1(model_dir, tmp_path, capsys, args, message):
    argv = ["generate", "--model", str(model_dir), "--prompt", "x", "-q", "-o", str(tmp_path / "x.mp4")]
    argv[argv.index("--model"):argv.index("--model") + 2] = []
    argv += args if args[0] == "--model" else ["--model", str(model_dir), *args]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "x.mp4").exists()


def test_console_entry_point_runs_without_a_display(model_dir, tmp_path):
    out = tmp_path / "cli.mp4"
    result = subprocess.run([sys.executable, "-m", "magi_studio.cli", "generate", "--model", str(model_dir),
                             "--prompt", "a red ball falls", "-o", str(out)], capture_output=True, text=True,
                            timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, cwd=str(tmp_path.parent))
    assert result.returncode == 0, result.stderr
    assert probe_video(out).frames == 24
