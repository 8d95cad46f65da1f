"""The layering rule, checked by machine: engine/ never imports Qt, qasync or magi_studio, and nothing the
app runs (engine/, magi_studio/) imports the lab (lab/: studio-mini's training and procedural world).

The engine must run headless (CLI, CI, a render farm) and stay testable without a display, so the
studio depends on the engine and never the other way round. The lab is left out of the wheel and the
bundle, so an import of it from the app would fail only in an installed copy. Three checks:

1. a static scan of every .py under engine/ and lab/ (import statements and importlib calls with a literal name);
2. a subprocess that blocks those packages at import time, then imports engine and every submodule;
3. a static scan of every .py under engine/ and magi_studio/ for imports of lab;
4. a static scan of every .py file of the repository for imports of `engine` or `resources`: installed,
   those folders are the packages `magi_engine` and `magi_resources` (pyproject.toml's package-dir). Run
   from the checkout, `import engine` would still find the folder and load a second copy of the engine
   beside the installed one (its errors and events not the same classes), and fail everywhere else.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ENGINE = REPO_ROOT / "engine"
FORBIDDEN = ("PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "qasync", "magi_studio")
LAB = "lab"


def forbidden_imports(source: str, filename: str, forbidden: tuple[str, ...] = FORBIDDEN) -> list[tuple[int, str]]:
    """(line, module) for every import of a `forbidden` top-level package in `source`."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__", "find_spec") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        found += [(node.lineno, name) for name in names if name.split(".")[0] in forbidden]
    return found


def sources(*packages: str) -> list[Path]:
    """Every .py file under the given top-level folders of the repository."""
    return sorted(p for package in packages for p in (REPO_ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def test_scan_finds_forbidden_imports():
    source = "import os\nfrom PySide6.QtCore import QObject\nimport qasync as q\nimportlib.import_module('magi_studio.app')\n"
    assert [name for _, name in forbidden_imports(source, "x.py")] == ["PySide6.QtCore", "qasync", "magi_studio.app"]
    assert forbidden_imports("from . import PySide6_like\nimport PySide6_extras\n", "y.py") == []


def test_engine_and_lab_sources_do_not_import_qt_or_the_studio():
    files = sources("engine", LAB)
    assert {ENGINE / "__init__.py", REPO_ROOT / LAB / "__init__.py"} <= set(files)
    offences = [
        f"{path.relative_to(REPO_ROOT)}:{line}: imports {name}"
        for path in files
        for line, name in forbidden_imports(path.read_text(encoding="utf-8"), str(path))
    ]
    assert not offences, "engine/ and lab/ must not depend on Qt or the studio:\n" + "\n".join(offences)


def test_scan_finds_imports_of_the_lab():
    source = "from lab.world.scene import draw\nimport lab\nimport labels\nfrom . import lab\n"
    assert [name for _, name in forbidden_imports(source, "x.py", (LAB,))] == ["lab.world.scene", "lab"]


FOLDER_NAMES = ("engine", "resources")  # imported as magi_engine, magi_resources


def repository_sources() -> list[Path]:
    """Every .py file of the repository (and the PyInstaller spec), without venvs, builds and caches."""
    skipped = {"build", "dist", "__pycache__"}
    found = [path for path in REPO_ROOT.rglob("*.py")
             if not any(part in skipped or part.startswith(".") for part in path.relative_to(REPO_ROOT).parts)]
    return sorted(found + list((REPO_ROOT / "packaging").glob("*.spec")))


def test_scan_finds_imports_by_folder_name():
    old = FOLDER_NAMES[0]  # not spelled out, so that a search-and-replace of the imports leaves this alone
    source = (f"from {old}.errors import InputError\nimport resources\nimport {old}.dit as dit\n"
              "from magi_engine import errors\nimport magi_resources\nfrom tests.engine import factories\n")
    assert [name for _, name in forbidden_imports(source, "x.py", FOLDER_NAMES)] == [
        f"{old}.errors", "resources", f"{old}.dit"]


def test_nothing_imports_engine_or_resources_by_folder_name():
    files = repository_sources()
    assert {ENGINE / "__init__.py", REPO_ROOT / "tests" / "test_architecture.py",
            REPO_ROOT / "packaging" / "magi-studio.spec"} <= set(files)
    offences = [
        f"{path.relative_to(REPO_ROOT)}:{line}: imports {name}"
        for path in files
        for line, name in forbidden_imports(path.read_text(encoding="utf-8"), str(path), FOLDER_NAMES)
    ]
    assert not offences, ("engine/ is imported as magi_engine and resources/ as magi_resources "
                          "(pyproject.toml, package-dir):\n" + "\n".join(offences))


def test_nothing_the_app_runs_imports_the_lab():
    files = sources("engine", "magi_studio")
    assert {ENGINE / "__init__.py", REPO_ROOT / "magi_studio" / "cli.py"} <= set(files)
    offences = [
        f"{path.relative_to(REPO_ROOT)}:{line}: imports {name}"
        for path in files
        for line, name in forbidden_imports(path.read_text(encoding="utf-8"), str(path), (LAB,))
    ]
    assert not offences, "the wheel and the bundle leave lab/ out; the app must not import it:\n" + "\n".join(offences)


#: Engine modules that exist only for a GPU kernel and import its compiler at the top (a @triton.jit kernel must be
#: module-level); the engine imports them only where that package is installed (magi_engine.dit.fp8_attention,
#: magi_engine.dit.fused).
OPTIONAL_GPU_MODULES = {"magi_engine.dit.fp8_attention_triton": "triton", "magi_engine.dit.fused_triton": "triton"}

IMPORT_ALL_WITH_QT_BLOCKED = f"""
import importlib, importlib.abc, importlib.util, pkgutil, sys, traceback

FORBIDDEN = {FORBIDDEN!r}
OPTIONAL_GPU_MODULES = {OPTIONAL_GPU_MODULES!r}

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"blocked by test_architecture: engine imported {{name}}")
        return None

sys.meta_path.insert(0, Blocker())
import magi_engine

failures = []
def record(name):
    failures.append(f"{{name}}:\\n{{traceback.format_exc()}}")

for info in pkgutil.walk_packages(magi_engine.__path__, "magi_engine.", onerror=record):
    needs = OPTIONAL_GPU_MODULES.get(info.name)
    if needs is not None and importlib.util.find_spec(needs) is None:
        continue  # a GPU kernel's module, imported only where its compiler is installed
    try:
        importlib.import_module(info.name)
    except BaseException:
        record(info.name)

loaded = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
if loaded:
    failures.append(f"forbidden modules loaded: {{loaded}}")
print("\\n".join(failures) or "ok")
sys.exit(1 if failures else 0)
"""


@pytest.mark.slow
def test_engine_imports_with_qt_blocked():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL_WITH_QT_BLOCKED],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"importing engine without Qt failed:\n{result.stdout}\n{result.stderr}"


LIGHT_MODULES = ("magi_engine", "magi_engine.errors", "magi_engine.events", "magi_engine.requests", "magi_engine.config",
                 "magi_studio.document.model")
HEAVY = ("torch", "cv2", "transformers")


def test_engine_types_import_without_torch():
    """The engine's types, errors and events (and the document built on them) load no torch, cv2 or
    transformers: those come with a model, so a dialog, the CLI's --help or a test of the document
    starts in a fraction of a second."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {LIGHT_MODULES!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "[]", f"importing {LIGHT_MODULES} also loaded {child.stdout.strip()}"


def test_engine_session_still_loads_on_first_use():
    code = "import sys, magi_engine; assert 'torch' not in sys.modules; print(magi_engine.GenerationSession.__name__)"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "GenerationSession"


def _modules_loaded_by(code: str, watched: tuple[str, ...]) -> list[str]:
    """The `watched` top-level packages that running `code` in a fresh interpreter loads."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {watched!r} if m in sys.modules)))\n"
    child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
                           env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.strip().splitlines()[-1])


def test_the_cli_parses_its_arguments_without_torch_cv2_numpy_or_qt():
    """`magi-studio --help` and a wrong argument answer in a fraction of a second: parsing loads none of them
    (check_generate_args, which asks the device, comes after)."""
    code = ("from magi_studio.cli import build_parser\n"
            "build_parser().parse_args(['generate', '--prompt', 'a red ball falls', '--steps', '16', '-o', 'x.mp4'])\n")
    assert _modules_loaded_by(code, ("torch", "cv2", "numpy", "PySide6", "transformers")) == []


def test_the_document_model_and_the_main_window_load_no_torch_cv2_or_exporters():
    """The document is plain data; the window's modules leave torch (the engine thread's, with the model),
    cv2 (decoding, exporting), OpenTimelineIO and websockets to where they are used."""
    heavy = ("torch", "cv2", "transformers", "opentimelineio", "websockets")
    assert _modules_loaded_by("import magi_studio.document.model", heavy) == []
    assert _modules_loaded_by("import magi_studio.app, magi_studio.studio", heavy) == []
