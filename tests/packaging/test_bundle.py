"""The packaged app: Linux desktop metadata and icons (fast), and the PyInstaller bundle itself (slow).

The bundle tests build dist/magi-studio/ with packaging/build_bundle.sh, unless the last build (its
dist/magi-studio.build-info) started after every source file and the venv last changed, and run it the
way a user without Python would: `env -i` with only PATH, HOME and QT_QPA_PLATFORM=offscreen, so
nothing of the venv or the checkout can leak in. It must generate the chunk the checkout generates,
render a project, say what went wrong in one line, and start the app, which must create its new
project and settings in the empty HOME, stay up, and end cleanly (exit 0) on SIGTERM.

Measured on 2 cores (Debian 12, torch 2.13 CPU; other work sharing the cores): the build takes
128-132 s and gives a 1.14 GB folder (446 MB as .tar.gz, which these tests do not make); the four
bundle tests then take 14 s. In one `make test` of 356 s that is 142 s, 40 % of the suite, in a
clean clone (CI) every time. They run there on purpose: the build is the only check that the spec
still collects everything the app imports. `-m "not slow"` leaves them out; MAGI_BUNDLE_REUSE=1 runs
them on the existing bundle whatever its age. See packaging/README.md.
"""

from __future__ import annotations

import configparser
import fcntl
import os
import shutil
import struct
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from tests.packaging.app_process import wait_for_untitled_project

REPO = Path(__file__).resolve().parents[2]
LINUX = REPO / "packaging" / "linux"
APP_ID = "io.github.magistudio.MagiStudio"
DESKTOP = LINUX / f"{APP_ID}.desktop"
METAINFO = LINUX / f"{APP_ID}.metainfo.xml"
HICOLOR = REPO / "resources" / "icons" / "hicolor"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

BUNDLE = REPO / "dist" / "magi-studio"
EXE = BUNDLE / "magi-studio"
BUILD_INFO = REPO / "dist" / "magi-studio.build-info"
LOCK = REPO / "build" / ".bundle.lock"
LOCK_WAIT_S = 1800
SOURCES = ("engine", "magi_studio", "resources", "packaging", "pyproject.toml")


# ------------------------------------------------------------------------------------------ desktop files


def desktop_entry() -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(DESKTOP, encoding="utf-8")
    return dict(parser["Desktop Entry"])


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def test_icons_exist_in_every_size():
    for size in ICON_SIZES:
        path = HICOLOR / f"{size}x{size}" / "apps" / "magi-studio.png"
        assert path.is_file(), f"{path} is missing: run packaging/render_icons.py"
        assert png_size(path) == (size, size)


def test_desktop_file_launches_the_app_with_an_existing_icon():
    entry = desktop_entry()
    assert entry["Type"] == "Application" and entry["Name"] == "MAGI Studio"
    assert entry["Exec"].split()[0] == "magi-studio" and entry["TryExec"] == "magi-studio"
    assert entry["Terminal"] == "false"
    assert {"AudioVideo", "Video", "Graphics"} <= set(filter(None, entry["Categories"].split(";")))
    icon = entry["Icon"]
    assert all((HICOLOR / f"{s}x{s}" / "apps" / f"{icon}.png").is_file() for s in ICON_SIZES), icon


def test_metainfo_matches_the_desktop_file_and_the_project():
    root = ET.parse(METAINFO).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("launchable") == DESKTOP.name
    assert root.findtext("project_license") == "MIT"
    assert root.findtext("name") and root.findtext("summary") and root.find("description/p") is not None
    assert root.findtext("icon") == desktop_entry()["Icon"]
    assert root.find("content_rating") is not None
    images = [image.text for image in root.iterfind("screenshots/screenshot/image")]
    assert images and all("/main/docs/screenshots/" in image for image in images)
    for image in images:  # the published URLs point at files of this repository
        assert (REPO / "docs" / "screenshots" / image.rsplit("/", 1)[1]).is_file(), image
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert root.find("releases/release").get("version") == project["version"]


@pytest.mark.parametrize("command", [["desktop-file-validate", str(DESKTOP)],
                                     ["appstreamcli", "validate", "--no-net", str(METAINFO)]],
                         ids=["desktop-file-validate", "appstreamcli"])
def test_validators_accept_the_files(command):
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed (Debian: desktop-file-utils, appstream)")
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------------ the build lock

FAKE_PYTHON = """#!/bin/bash
# Stands in for the venv's python: PyInstaller is installed; "building" makes a tiny bundle.
case "$*" in
  *"m.version('pyinstaller')"*) echo 6.22.3 ;;
  *"-m PyInstaller"*) mkdir -p dist/magi-studio && echo bundle > dist/magi-studio/magi-studio && date +%s.%N > built-at ;;
  *) exit 3 ;;
esac
"""


@pytest.fixture
def build_copy(tmp_path) -> tuple[Path, dict[str, str]]:
    """build_bundle.sh in a scratch checkout with a fake venv: the real script, no real build."""
    (tmp_path / "packaging").mkdir()
    shutil.copy(REPO / "packaging" / "build_bundle.sh", tmp_path / "packaging")
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "VENV": str(tmp_path / "venv"), "TARBALL": "0"}
    return tmp_path, env


@pytest.mark.skipif(shutil.which("flock") is None, reason="flock (util-linux) is not installed")
def test_a_second_build_waits_for_the_lock_and_records_what_it_built(build_copy):
    root, env = build_copy
    (root / "build").mkdir()
    with open(root / "build" / ".bundle.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a build (or a bundle test) of this checkout is running
        process = subprocess.Popen(["bash", "packaging/build_bundle.sh"], cwd=root, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(1.5)
        assert process.poll() is None and not (root / "dist" / "magi-studio").exists(), "it did not wait"
        released = time.time()
        fcntl.flock(lock, fcntl.LOCK_UN)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert "another build of this checkout is running; waiting" in output
    assert float((root / "built-at").read_text()) >= released
    info = dict(line.split("=", 1) for line in (root / "dist" / "magi-studio.build-info").read_text().splitlines())
    assert int(info["started"]) >= int(released) and int(info["bytes"]) > 0 and info["tarball"] == ""


def test_a_caller_holding_the_lock_builds_at_once(build_copy):
    root, env = build_copy
    (root / "build").mkdir()
    with open(root / "build" / ".bundle.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run(["bash", "packaging/build_bundle.sh"], cwd=root, env={**env, "BUNDLE_LOCK_HELD": "1"},
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "waiting" not in result.stdout and (root / "dist" / "magi-studio" / "magi-studio").is_file()


# ------------------------------------------------------------------------------------------ the bundle


def build_info() -> dict[str, str]:
    """dist/magi-studio.build-info (written by build_bundle.sh after a successful build), or {}."""
    if not BUILD_INFO.is_file():
        return {}
    return dict(line.split("=", 1) for line in BUILD_INFO.read_text().splitlines() if "=" in line)


def newest_input_mtime(venv: Path) -> float:
    """The newest file the bundle is made from: our sources and the venv's install stamp (`make setup`)."""
    newest = 0.0
    for path in [*(REPO / name for name in SOURCES), venv / ".magi-studio-installed"]:
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            newest = max([newest, *(p.stat().st_mtime for p in path.rglob("*") if p.is_file()
                                    and "__pycache__" not in p.parts and not (path.name == "packaging"
                                                                             and p.suffix == ".md"))])
    return newest


def bundle_is_current(venv: Path) -> bool:
    started = build_info().get("started")
    return EXE.is_file() and started is not None and float(started) > newest_input_mtime(venv)


@pytest.fixture(scope="module")
def bundle() -> Path:
    """dist/magi-studio, built now unless the last build started after every input last changed.

    The module holds build/.bundle.lock (the lock build_bundle.sh takes) from the check to its last test:
    a `make bundle` or a second test run started meanwhile waits instead of replacing the bundle under
    a running test, and then finds it current. MAGI_BUNDLE_REUSE=1 runs the tests on an existing bundle
    whatever its age (to work on these tests; the result says nothing about the current sources).
    """
    if not sys.platform.startswith("linux"):
        pytest.skip("the bundle test runs on Linux")
    venv = Path(sys.prefix)
    LOCK.parent.mkdir(exist_ok=True)
    with open(LOCK, "a") as lock:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, f"{LOCK} stayed locked for {LOCK_WAIT_S} s: is a build hanging?"
                time.sleep(1)
        reuse = os.environ.get("MAGI_BUNDLE_REUSE") == "1" and EXE.is_file()
        if not reuse and not bundle_is_current(venv):
            env = {**os.environ, "TARBALL": "0", "BUNDLE_LOCK_HELD": "1"}
            if sys.prefix != sys.base_prefix:  # build from the venv that runs the tests
                env["VENV"] = sys.prefix
            result = subprocess.run(["bash", str(REPO / "packaging" / "build_bundle.sh")], cwd=REPO, env=env,
                                    capture_output=True, text=True, timeout=1500)
            assert result.returncode == 0, f"build_bundle.sh failed:\n{(result.stdout + result.stderr)[-4000:]}"
            # Built from the sources as they were when it started (files edited meanwhile make it stale again).
            assert EXE.is_file() and build_info().get("started")
        yield BUNDLE


def clean_env(home: Path) -> dict[str, str]:
    """What a user's desktop session would at least have; no PYTHON*, no venv, no LD_LIBRARY_PATH, no locale."""
    home.mkdir(exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}


def run_bundle(bundle: Path, tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(bundle / "magi-studio"), *args], env=clean_env(tmp_path / "home"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_bundle_holds_the_resources_and_leaves_out_the_rest(bundle):
    internal = bundle / "_internal"
    assert (internal / "magi_resources" / "models" / "studio-mini" / "model.json").is_file()
    assert (internal / "magi_resources" / "icons" / "magi-studio.svg").is_file()
    assert (internal / "magi_resources" / "fonts" / "DejaVuSans.ttf").is_file()
    assert not [name for name in ("engine", "resources", "lab") if (internal / name).exists()]
    assert (internal / "docs" / "user-guide.md").is_file() and (internal / "docs" / "screenshots").is_dir()
    assert list((internal / "imageio_ffmpeg" / "binaries").glob("ffmpeg-*"))
    for left_out in ("torch/test", "torch/include", "nvidia", "PySide6/Qt/lib/libQt6Quick.so.6",
                     "PySide6/Qt/lib/libQt6Qml.so.6"):
        assert not (internal / left_out).exists(), f"{left_out} should not be in the bundle"


@pytest.mark.slow
def test_bundle_generates_the_same_chunk_as_the_checkout_in_a_clean_environment(bundle, tmp_path):
    from magi_engine.video_io import read_video
    from magi_studio.cli import main

    out = tmp_path / "bundle.mp4"
    result = run_bundle(bundle, tmp_path, "generate", "--model", "studio-mini", "--prompt", "a red ball falls",
                        "--seed", "5", "--output", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wrote 24 frames (128x128)" in result.stderr and "Traceback" not in result.stderr
    frames = read_video(out)
    assert frames.shape == (24, 128, 128, 3) and frames.std() > 10  # a picture, not a flat frame
    reference = tmp_path / "checkout.mp4"
    assert main(["generate", "--model", "studio-mini", "--prompt", "a red ball falls", "--seed", "5", "-q",
                 "--device", "cpu", "-o", str(reference)]) == 0
    difference = np.abs(frames.astype(np.int16) - read_video(reference).astype(np.int16))
    assert difference.max() <= 2, "the bundle's studio-mini should make the checkout's video"


@pytest.mark.slow
def test_bundle_renders_a_project_and_says_what_went_wrong_in_one_line(bundle, tmp_path):
    from magi_engine.video_io import probe_video
    from magi_studio.document.model import new_project
    from magi_studio.document.store import ProjectStore

    project = new_project()
    project.shots[0].chunks[0].prompt = "a blue square moves left"
    store = ProjectStore.create(tmp_path / "Film")
    store.save(project)
    out = tmp_path / "film.mp4"
    result = run_bundle(bundle, tmp_path, "render", str(store.path), "-o", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert probe_video(out).frames == 24

    result = run_bundle(bundle, tmp_path, "generate", "--model", str(tmp_path / "no-such-folder"), "--prompt", "x",
                        "-q", "-o", str(tmp_path / "x.mp4"))
    assert result.returncode == 1 and result.stderr.startswith("error: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.slow
def test_bundle_gui_starts_offscreen_in_a_clean_environment(bundle, tmp_path):
    home = tmp_path / "home"
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen([str(bundle / "magi-studio")], env=clean_env(home), cwd=tmp_path,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            wait_for_untitled_project(process, home / ".local" / "share")
            time.sleep(3)  # studio-mini loads on the engine thread meanwhile
            alive = process.poll() is None
        finally:
            process.terminate()
            try:
                code = process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
    errors = stderr_path.read_text(errors="replace")
    assert alive, f"the app exited with {process.returncode}:\n{errors}"
    assert code == 0, f"the app did not end cleanly on SIGTERM within 15 s (exit {code}):\n{errors}"
    for bad in ("Traceback", "Could not load the Qt platform plugin", "Detected locale", "Error"):
        assert bad not in errors, errors
    assert list(home.glob(".config/**/MAGI Studio.ini")), "the settings file is written in the user's HOME"
