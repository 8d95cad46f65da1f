"""The checkout's folders under their installed names, for code run from a copy of the tree where MAGI
Studio is not installed (a GPU machine given the working tree, a benchmark started with a bare python):
engine/ imports as magi_engine and resources/ as magi_resources, as pyproject.toml's package-dir maps
them. Where the packages are installed (`pip install -e .`, the wheel) it does nothing.

Importing `lab` applies it, so `python -m lab.training.train_dit` and the benchmarks (`import lab` after
putting the checkout on sys.path) run from a bare checkout.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"magi_engine": REPO / "engine", "magi_resources": REPO / "resources"}  # pyproject.toml: package-dir


class CheckoutFolders(importlib.abc.MetaPathFinder):
    """Finds magi_engine and magi_resources in the checkout's folders; their submodules follow __path__."""

    def find_spec(self, name, path=None, target=None):
        folder = FOLDERS.get(name)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])


def use_checkout_folders() -> None:
    """Make the checkout's folders importable under their installed names, unless they are installed."""
    if any(isinstance(finder, CheckoutFolders) for finder in sys.meta_path):
        return
    if all(importlib.util.find_spec(name) is not None for name in FOLDERS):
        return
    sys.meta_path.append(CheckoutFolders())
