"""lab.checkout: from a bare checkout (MAGI Studio not installed), importing lab makes engine/ and
resources/ importable as magi_engine and magi_resources; where they are installed it changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

REPORT = (
    "import importlib.util, json, sys\n"
    "before = importlib.util.find_spec('magi_engine') is not None\n"
    "import lab, lab.checkout\n"
    "import magi_engine.errors, magi_resources\n"
    "print(json.dumps({'before': before, 'engine': magi_engine.errors.__file__,\n"
    "                  'model': str(magi_resources.resource_path('models', 'studio-mini', 'model.json')),\n"
    "                  'finder': any(isinstance(f, lab.checkout.CheckoutFolders) for f in sys.meta_path)}))\n"
)


def run(*flags: str, env: dict[str, str] | None = None) -> dict:
    child = subprocess.run([sys.executable, *flags, "-c", REPORT], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.strip().splitlines()[-1])


def test_a_bare_checkout_imports_its_folders_under_the_installed_names(tmp_path):
    # -S: no site.py, so no .pth file (the editable install) runs; numpy and torch come from site-packages.
    site_packages = [path for path in sys.path if Path(path).name in ("site-packages", "dist-packages")]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(REPO), *site_packages]), "PYTHONDONTWRITEBYTECODE": "1"}
    report = run("-S", env=env)
    assert not report["before"] and report["finder"]
    assert Path(report["engine"]) == REPO / "engine" / "errors.py"
    assert Path(report["model"]) == REPO / "resources" / "models" / "studio-mini" / "model.json"
    assert Path(report["model"]).is_file()


def test_installed_packages_are_left_alone():
    report = run()
    assert report["before"] and not report["finder"]
