"""What a new user meets: the first start of the app, and the errors of a first session (issue 5).

The app runs for real in a subprocess (tests/packaging/app_driver.py calls magi_studio.app.run_app as the
`magi-studio` command does) with a fresh HOME and XDG folders, offscreen: no test fixture, no faked
prompts, no settings file. The driver closes and records any modal dialog, and quits through
File > Quit once the engine has settled.

* First start: a new untitled project of one chunk on studio-mini, loaded and ready; the welcome banner
  (what MAGI Studio is, how to point it at MAGI-1 weights) above it; no dialog, no other window;
  File > Quit exits with 0.
* The errors a new user meets — no GPU, an incomplete checkpoint folder, not enough memory for the chosen
  model, a missing ffmpeg — are each one message on what happened and what to do: in the app's error
  banner (the app keeps running and quits cleanly afterwards) and as one `error: ...` line from
  `magi-studio generate` (exit code 1, no traceback, no video file left behind).
  A missing ffmpeg shows in the app only at export (the export dialog's message; its error path is
  tested in tests/magi_studio/dialogs/test_export_dialog.py), so it is checked on the command line here.

About 3 s per app start on 2 cores (torch import, studio-mini load), 15 s for the module.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from html import unescape
from pathlib import Path

import pytest
import torch

from magi_engine.variants import MAGI_VARIANTS
from magi_studio.cli import main as cli_main
from tests.packaging.app_process import wait_for_untitled_project

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("app_driver.py")


def fresh_env(tmp_path: Path) -> dict[str, str]:
    """A new user's session: an empty HOME and XDG folders, no display, nothing of this shell."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "QT_QPA_PLATFORM": "offscreen",
            "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_CACHE_HOME": str(home / ".cache"), "XDG_RUNTIME_DIR": str(tmp_path)}


def run_app(tmp_path: Path, *args: str) -> dict:
    result = subprocess.run([sys.executable, str(DRIVER), *args], env=fresh_env(tmp_path), cwd=tmp_path,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ test folders


def incomplete_checkpoint(root: Path) -> Path:
    """A MAGI-1 download that stopped after the DiT folder: no VAE, no T5."""
    (root / MAGI_VARIANTS["4.5B_distill"].hub_folder).mkdir(parents=True)
    return root


def checkpoint_too_large(root: Path) -> Path:
    """The layout of a 24B download (empty files: the memory check comes before any weight is read)."""
    (root / MAGI_VARIANTS["24B_base"].hub_folder).mkdir(parents=True)
    for sub in ("ckpt/vae", "ckpt/t5/t5-v1_1-xxl"):
        (root / sub).mkdir(parents=True)
        (root / sub / "config.json").write_text("{}")
    return root


# ------------------------------------------------------------------------------------------ first start


@pytest.mark.slow
def test_first_start_opens_a_new_project_on_studio_mini_with_the_welcome_and_no_dialog(tmp_path):
    report = run_app(tmp_path)
    assert report["modal_dialogs"] == [], "a first start must not block on a dialog"
    assert report["visible_windows"] == ["MainWindow"]
    assert report["model"] == "studio-mini" and report["chunks_per_shot"] == [1]
    assert report["title"].startswith("Untitled") and "ready" in report["engine_status"]
    assert report["seconds_to_settle"] < 60
    assert report["welcome_visible"] and report["welcome_title"] == "Welcome to MAGI Studio"
    welcome = unescape(report["welcome_body"])
    for words in ("studio-mini", "CPU", "MAGI-1", "Settings", "checkpoint folder", "4.5B_distill"):
        assert words in welcome, f"the welcome should mention {words!r}: {welcome}"
    assert len(welcome.split()) < 90, "the welcome should stay short"
    assert not report["error_visible"]
    assert report["exit_code"] == 0
    # Settings and untitled work went to the new user's XDG folders.
    assert (tmp_path / "home" / ".config" / "MAGI Studio" / "MAGI Studio.ini").is_file()


# ------------------------------------------------------------------------------------------ errors: the app


def one_sentence_pair(message: str) -> None:
    """What happened and what to do: one short message of at most two sentences, on one line."""
    assert message and "\n" not in message and "Traceback" not in message, message
    assert len(message) < 400 and message.count(". ") <= 2, message


@pytest.mark.slow
@pytest.mark.parametrize("case", ["no-gpu", "incomplete-checkpoint", "not-enough-memory"])
def test_new_user_errors_reach_the_banner_and_the_app_keeps_running(tmp_path, case):
    if case == "no-gpu":
        if torch.cuda.is_available():
            pytest.skip("this machine has a CUDA GPU")
        args, title, advice = ["--device", "cuda"], "Device problem", ["No CUDA GPU", "Choose 'cpu'"]
    elif case == "incomplete-checkpoint":
        folder = incomplete_checkpoint(tmp_path / "MAGI-1")
        args, title, advice = ["--model", str(folder)], "Checkpoint problem", ["No VAE found", "Download the VAE"]
    else:
        folder = checkpoint_too_large(tmp_path / "MAGI-1")
        args = ["--model", str(folder), "--free-memory-gib", "16"]
        title, advice = "Not enough memory", ["needs about", "16 GiB", "Choose a distilled or 4.5B variant"]
    report = run_app(tmp_path, *args)
    assert report["modal_dialogs"] == [] and report["visible_windows"] == ["MainWindow"]
    assert report["error_visible"] and report["error_title"] == title
    body = unescape(report["error_body"])
    one_sentence_pair(body)
    for words in advice:
        assert words in body, body
    assert "No model loaded" in report["engine_status"]
    assert report["window_alive_after_error"] and report["exit_code"] == 0


# ------------------------------------------------------------------------------------------ errors: the CLI


def generate_argv(out: Path, *extra: str) -> list[str]:
    return ["generate", "--prompt", "a red ball falls", "-q", "-o", str(out), *extra]


def assert_one_error_line(stderr: str, *words: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    one_sentence_pair(lines[0].removeprefix("error: "))
    for word in words:
        assert word in lines[0], lines[0]


def test_cli_no_gpu_in_a_fresh_session(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    out = tmp_path / "x.mp4"
    result = subprocess.run([sys.executable, "-m", "magi_studio.cli", *generate_argv(out, "--device", "cuda")],
                            env=fresh_env(tmp_path), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert_one_error_line(result.stderr, "No CUDA GPU is available", "Choose 'cpu'")
    assert not out.exists()


def test_cli_incomplete_checkpoint_folder(tmp_path, capsys):
    out = tmp_path / "x.mp4"
    folder = incomplete_checkpoint(tmp_path / "MAGI-1")
    assert cli_main(generate_argv(out, "--model", str(folder), "--device", "cpu")) == 1
    assert_one_error_line(capsys.readouterr().err, "No VAE found", "Download the VAE")
    assert not out.exists()


def test_cli_not_enough_memory(tmp_path, capsys, monkeypatch):
    out = tmp_path / "x.mp4"
    folder = checkpoint_too_large(tmp_path / "MAGI-1")
    monkeypatch.setattr("magi_engine.loading.memory.device_memory_bytes", lambda device: 16 * 2**30)
    assert cli_main(generate_argv(out, "--model", str(folder), "--device", "cpu")) == 1
    err = capsys.readouterr().err
    assert_one_error_line(err, "needs about", "16 GiB", "Choose")
    assert len(re.findall(r"\d+\s*[x×]\s*\d+", err)) == 1, f"the size is named once: {err!r}"
    assert not out.exists()


def test_cli_missing_ffmpeg(tmp_path, capsys, no_ffmpeg_binary):
    out = tmp_path / "x.mp4"
    assert cli_main(generate_argv(out, "--model", "studio-mini", "--device", "cpu")) == 1
    assert_one_error_line(capsys.readouterr().err, "ffmpeg is not available", "Reinstall MAGI Studio")
    assert not out.exists()


def test_cli_missing_ffmpeg_leaves_no_partial_file(tmp_path, no_ffmpeg_binary):
    assert cli_main(generate_argv(tmp_path / "x.mp4", "--model", "studio-mini", "--device", "cpu")) == 1
    assert [p.name for p in tmp_path.iterdir()] == []


# ------------------------------------------------------------------------------------------ quitting


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_end_the_app_cleanly(tmp_path, signum):
    """Ctrl-C in the terminal quits like File > Quit; SIGTERM (logout, kill) too, without a question."""
    data = tmp_path / "home" / ".local" / "share"
    process = subprocess.Popen([sys.executable, "-c", "import sys; from magi_studio.cli import main; sys.exit(main([]))"],
                               env=fresh_env(tmp_path), cwd=tmp_path, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_untitled_project(process, data)
        time.sleep(1)  # the event loop is running
        assert process.poll() is None, process.stderr.read()
        process.send_signal(signum)
        code = process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    errors = process.stderr.read()
    assert code == 0 and "Traceback" not in errors, f"exit {code}:\n{errors}"
    leftover_locks = [p for p in data.glob("**/*") if p.name.endswith(".lock") or p.name == "lock"]
    assert leftover_locks == [], "the project must be released on the way out"
