"""Device facts come from the engine worker, read once on its thread; the Settings dialog shows them and its
path never imports torch on the GUI thread (a fresh process records which thread first imports torch)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]

SETTINGS_WITH_A_REAL_WORKER = r"""
import sys, threading, time

torch_imports = []

class RecordTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            torch_imports.append(threading.current_thread() is threading.main_thread())
        return None

sys.meta_path.insert(0, RecordTorch())

from PySide6.QtWidgets import QApplication
app = QApplication([])
from magi_studio.dialogs.settings_dialog import SettingsDialog
from magi_studio.engine_worker import EngineWorker
from magi_studio.settings import Settings
from PySide6.QtCore import QSettings

worker = EngineWorker()
asked = []
worker.deviceFactsChanged.connect(asked.append)
dialog = SettingsDialog(Settings(QSettings(sys.argv[1], QSettings.Format.IniFormat)), worker)
before = dialog.variant_table.item(0, 2).text()
deadline = time.monotonic() + 60
while not asked and time.monotonic() < deadline:  # wait on the answer, not a fixed time
    app.processEvents()
    threading.Event().wait(0.01)
facts = worker.ask_device_facts()
after = dialog.variant_table.item(0, 2).text()
dialog.folder_edit.setText(sys.argv[1])  # describe a folder: no model, no torch
dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
print(repr((before, after, len(asked), facts is asked[0] if asked else None, facts.device("cpu").available,
            facts.device("cpu").free_bytes is not None, torch_imports, "torch" in sys.modules)))
worker.shutdown()
"""


def test_the_settings_dialog_gets_device_facts_from_the_worker_and_imports_no_torch_on_the_gui_thread(tmp_path):
    child = subprocess.run([sys.executable, "-c", SETTINGS_WITH_A_REAL_WORKER, str(tmp_path / "settings.ini")],
                           capture_output=True, text=True, cwd=REPO_ROOT, timeout=180,
                           env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert child.returncode == 0, child.stderr
    last_line = child.stdout.strip().splitlines()[-1]
    before, after, answers, cached, cpu, cpu_memory, torch_imports, torch_loaded = ast.literal_eval(last_line)
    assert before == "Free memory unknown"  # the dialog opened before the engine thread answered
    assert after != before and (after.startswith("Fits") or after.startswith("Too large"))
    assert answers == 1 and cached  # asked once; the worker keeps the answer
    assert cpu and cpu_memory
    assert torch_loaded and torch_imports and not any(torch_imports)  # torch came, on the engine thread only
