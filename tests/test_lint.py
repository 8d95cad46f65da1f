"""The code base is clean under ruff with the configuration in pyproject.toml ([tool.ruff]: pyflakes and
pycodestyle's errors and warnings). ruff is in the `test` extra; the check is skipped only where it is
not installed. Both runs take a fraction of a second."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ruff") is None,
                                reason="ruff is not installed (pip install -e '.[test]' installs it)")


def ruff(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                           "--config", str(REPO / "pyproject.toml"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_ruff_finds_nothing_in_the_repository():
    result = ruff(str(REPO))
    assert result.returncode == 0, f"ruff check (fix with: python -m ruff check --fix .):\n{result.stdout}{result.stderr}"


def test_the_configuration_reports_what_it_is_meant_to(tmp_path):
    source = tmp_path / "sample.py"
    # An unused import, a name used after del, trailing spaces, and a line over the limit (130).
    source.write_text("import os\n\n\ndef f(x):\n    del x\n    return x \n\n\n" + "y = 1  # " + "." * 125 + "\n",
                      encoding="utf-8")
    found = ruff("sample.py", cwd=tmp_path)
    assert found.returncode == 1, found.stdout + found.stderr
    codes = sorted(line.split(" ")[1] for line in found.stdout.splitlines() if line.startswith("sample.py:"))
    assert codes == ["E501", "F401", "F821", "W291"], found.stdout
