"""The wheel `pip install magi-studio` gets: what it holds, and that it works outside the checkout (issue 5).

The wheel is built with the venv's own setuptools (`pip wheel --no-build-isolation --no-index`: no
network), from a copy of the files a clone of this checkout would have (`git ls-files`, tracked and
untracked but not ignored). An in-tree build would write build/ and *.egg-info into the checkout, and
setuptools would pack whatever stale modules an earlier build left in build/lib.

* Contents: every file of resources/ (icons, styles, fonts, studio-mini's weights and model card) as the
  package magi_resources, every module of engine/ as magi_engine and of magi_studio/, the
  `magi-studio = magi_studio.cli:main` console script, metadata matching pyproject.toml; no top-level
  `engine`, `resources` or `lab` (names another distribution may take; the lab is not shipped), no tests/,
  build/, dist/, egg-info, __pycache__ or .pyc.
* Installed with `pip install --no-deps --target SITE`, then the `magi-studio` script pip wrote runs
  `generate` on studio-mini with the venv's python under `-S`, in an empty folder, with PYTHONPATH =
  SITE and the venv's site-packages (for torch, numpy, ...). `-S` keeps site.py from running the venv's
  .pth files, so the editable install of this checkout (`make setup`) cannot answer an import. Every
  module of magi_engine/magi_studio/magi_resources must come from SITE, none may be imported by a folder's
  name (engine, resources, lab), studio-mini must load from SITE's magi_resources, no file of the
  checkout may be opened, and the mp4 must hold 24 frames at the model's size.

Measured on 2 cores shared with other work (torch 2.13 CPU): 19-39 s for the module, by the load: the
build and the content checks 2-3 s, the install 1 s, the rest the one studio-mini chunk (8 steps).
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
# Installed package -> its folder in the checkout (pyproject.toml's package-dir).
PACKAGES = {"magi_engine": "engine", "magi_studio": "magi_studio", "magi_resources": "resources"}
FOLDER_NAMES = ("engine", "resources", "lab")  # never installed or imported under these names
JUNK_DIRS = {"tests", "build", "dist", "__pycache__", ".pytest_cache", ".git", ".venv", "benchmarks", "docs",
             "scripts", "packaging"}
SCRIPT = "magi-studio"
ENTRY_POINT = "magi_studio.cli:main"

# Runs in the subprocess: the installed console script, with what it imported, loaded and opened recorded.
DRIVER = r"""
import json, os, runpy, sys

script, argv = sys.argv[1], sys.argv[2:]
opened = []

def audit(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        opened.append(os.fsdecode(args[0]))

sys.addaudithook(audit)

from magi_engine.session import GenerationSession

loaded = []
load = GenerationSession.load.__func__

def recording_load(cls, *args, **kwargs):
    session = load(cls, *args, **kwargs)
    loaded.append(session.bundle.source)
    return session

GenerationSession.load = classmethod(recording_load)
sys.argv = [script, *argv]
try:
    runpy.run_path(script, run_name="__main__")
    code = 0
except SystemExit as exit:
    code = exit.code
modules = {name: getattr(module, "__file__", None) for name, module in sys.modules.items()
           if name.split(".")[0] in ("magi_engine", "magi_studio", "magi_resources", "engine", "resources", "lab")}
print(json.dumps({"code": code, "loaded": loaded, "modules": modules, "opened": opened, "sys_path": sys.path}))
"""


def checkout_files(package: str, pattern: str = "*") -> set[str]:
    """Files of an installed package's folder in REPO as wheel paths (package/...), without caches."""
    folder = REPO / PACKAGES[package]
    return {f"{package}/{path.relative_to(folder).as_posix()}" for path in folder.rglob(pattern)
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")}


def in_checkout_packages(path: str) -> bool:
    """Whether `path` lies in the checkout's engine/, magi_studio/, resources/ or lab/ (the venv may live in REPO)."""
    resolved = Path(path).resolve()
    return any(resolved.is_relative_to(REPO / folder) for folder in [*PACKAGES.values(), "lab"])


def clone_files() -> list[str]:
    """What a clone of this checkout holds, with the working tree's changes."""
    result = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, timeout=60)
    if result.returncode == 0:
        return [name for name in result.stdout.decode().split("\0") if name and (REPO / name).is_file()]
    # Not a git checkout (an unpacked source archive): everything but what .gitignore keeps out.
    return [path.relative_to(REPO).as_posix() for path in REPO.rglob("*")
            if path.is_file() and not JUNK_DIRS.intersection(path.relative_to(REPO).parts[:1])
            and "__pycache__" not in path.parts and not any(part.endswith(".egg-info") for part in path.parts)
            and path.suffix not in (".pyc", ".mp4", ".part")]


def pip(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    result = subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"pip {args[0]} failed:\n{(result.stdout + result.stderr)[-4000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """magi_studio-*.whl, built from a copy of the checkout with the venv's setuptools, offline."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    for name in clone_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name, follow_symlinks=False)
    # --check-build-dependencies: the venv's setuptools must satisfy [build-system] requires.
    pip("wheel", "--no-deps", "--no-build-isolation", "--check-build-dependencies", "--no-index",
        "-w", str(root / "dist"), str(source), cwd=root)
    wheels = list((root / "dist").glob("magi_studio-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def dist_info(names: list[str]) -> str:
    folders = {name.split("/")[0] for name in names if name.split("/")[0].endswith(".dist-info")}
    assert len(folders) == 1, folders
    return folders.pop()


@pytest.mark.slow
def test_wheel_holds_the_packages_the_resources_and_the_entry_point_and_nothing_else(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = dist_info(names)
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
        metadata = HeaderParser().parsestr(archive.read(f"{info}/METADATA").decode())
    files = set(names)

    resources = checkout_files("magi_resources")
    assert {"magi_resources/__init__.py", "magi_resources/models/studio-mini/model.json",
            "magi_resources/models/studio-mini/dit.safetensors", "magi_resources/styles/dark.qss",
            "magi_resources/icons/magi-studio.svg", "magi_resources/fonts/DejaVuSans.ttf"} <= resources
    missing = sorted(resources - files)
    assert not missing, f"files of resources/ the installed app would not find (see package-data): {missing}"
    extra = sorted(name for name in files if name.startswith("magi_resources/") and name not in resources)
    assert not extra, f"the wheel's magi_resources/ holds files the checkout does not: {extra}"
    for package in ("magi_engine", "magi_studio"):  # their other files (data, scripts) are not run by the app
        modules = checkout_files(package, "*.py")
        assert f"{package}/__init__.py" in modules
        missing = sorted(modules - files)
        assert not missing, f"{package} files missing from the wheel (see packages in pyproject.toml): {missing}"

    tops = {name.split("/")[0] for name in names}
    assert not tops & set(FOLDER_NAMES), f"the wheel installs {sorted(tops & set(FOLDER_NAMES))}"
    assert tops == {*PACKAGES, info}, f"unexpected top-level entries: {sorted(tops - {*PACKAGES, info})}"
    junk = [name for name in names if JUNK_DIRS.intersection(name.split("/")[:-1])
            or name.endswith((".pyc", ".pyo")) or ".egg-info/" in name or "/." in f"/{name}"]
    assert not junk, f"the wheel carries junk: {junk[:20]}"

    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(entry_points)
    assert parser.has_section("console_scripts"), entry_points
    assert dict(parser["console_scripts"]) == {SCRIPT: ENTRY_POINT}, entry_points

    project = PYPROJECT["project"]
    assert metadata["Name"] == project["name"] and metadata["Version"] == project["version"]
    assert metadata["Requires-Python"] == project["requires-python"]
    def normal(requirement: str) -> str:  # setuptools may respell names (huggingface_hub) and markers' quotes
        return str(Requirement(requirement)).replace(" ", "").replace("_", "-").replace("'", '"').lower()

    requires = [normal(req) for req in metadata.get_all("Requires-Dist") if "extra==" not in normal(req)]
    assert requires == [normal(req) for req in project["dependencies"]], "Requires-Dist is not [project] dependencies"


@pytest.mark.slow
def test_installed_wheel_generates_a_chunk_on_its_own_studio_mini_outside_the_checkout(wheel, tmp_path):
    from magi_engine.video_io import iter_video, probe_video

    target = tmp_path / "site"
    pip("install", "--no-deps", "--no-index", "--target", str(target), str(wheel), cwd=tmp_path)
    script = target / "bin" / SCRIPT
    assert script.is_file(), f"pip wrote no {SCRIPT} script: {sorted(p.name for p in target.glob('bin/*'))}"
    assert (target / "magi_resources" / "models" / "studio-mini" / "model.json").is_file()
    assert not [name for name in FOLDER_NAMES if (target / name).exists()]

    # torch, numpy, imageio-ffmpeg... come from the venv; its .pth files (the editable install) stay unread.
    user_site = [site.getusersitepackages()] if site.ENABLE_USER_SITE else []
    venv_site = [path for path in [*site.getsitepackages(), *user_site] if Path(path).is_dir()]
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(target), *venv_site]), "PYTHONNOUSERSITE": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "2"}
    out = tmp_path / "ball.mp4"
    result = subprocess.run([sys.executable, "-S", "-c", DRIVER, str(script), "generate", "--model", "studio-mini",
                             "--prompt", "a red ball falls", "--device", "cpu", "--output", str(out), "-q"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, result.stderr[-4000:]
    assert "Traceback" not in result.stderr, result.stderr

    # Nothing came from the checkout: not on sys.path, no module of ours, no file opened there.
    site_dir = target.resolve()
    assert not [p for p in report["sys_path"] if p and (Path(p).resolve() == REPO or in_checkout_packages(p))], \
        report["sys_path"]
    assert {"magi_engine", "magi_studio", "magi_studio.cli", "magi_resources"} <= set(report["modules"])
    assert not [name for name in report["modules"] if name.split(".")[0] in FOLDER_NAMES], report["modules"]
    strays = {name: file for name, file in report["modules"].items()
              if file is None or not Path(file).resolve().is_relative_to(site_dir)}
    assert not strays, f"imported from outside the installed wheel (the checkout?): {strays}"
    assert [Path(p).resolve() for p in report["loaded"]] == [site_dir / "magi_resources" / "models" / "studio-mini"]
    from_checkout = [p for p in report["opened"] if Path(p).is_absolute() and in_checkout_packages(p)]
    assert not from_checkout, f"the installed app read files of the checkout: {from_checkout}"
    assert any(Path(p).name == "model.json" for p in report["opened"]), "studio-mini's model.json was not read"

    manifest = json.loads((target / "magi_resources" / "models" / "studio-mini" / "model.json").read_text())
    width, height = manifest["width"], manifest["height"]
    info = probe_video(out)
    assert (info.frames, info.width, info.height) == (24, width, height), info
    frames = list(iter_video(out))
    assert len(frames) == 24 and all(frame.shape == (height, width, 3) for frame in frames)
    assert max(float(frame.std()) for frame in frames) > 10, "a picture, not a flat frame"
