"""The installed PySide6/Python pair must not lose references to None, True or False.

PySide6 6.12.0 on Python 3.10/3.11 drops one reference to `None` on every binding call that returns
`None`, and `Signal.emit` one to the bool it sends; when a count reaches zero the interpreter aborts
(`Fatal Python error: none_dealloc` / `bool_dealloc`) in whatever line runs next, minutes into a session.
On Python >= 3.12 those objects are immortal and their counts never move. pyproject.toml keeps the bad
pair out; this test makes any future pair that leaks fail CI before it reaches a director.

The calls run in a child process: a leaking pair can abort the interpreter within a few thousand calls
(True's count is small in a bare process), and an abort must read as this test failing, not as the whole
test run dying without a summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

CALLS = 3000
# A few references move for ordinary reasons (a frame or a cache somewhere); a leak moves thousands.
TOLERANCE = 50

_CHILD = f"""
import json, sys
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QLabel

class Emitter(QObject):
    flag = Signal(bool)
    nothing = Signal(object)

app = QApplication([])
label, emitter, timer = QLabel(), Emitter(), QTimer()
received = []
emitter.flag.connect(received.append)
emitter.nothing.connect(received.append)

def counts():
    return [sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)]

before = counts()
for i in range({CALLS}):
    label.setVisible(False)          # each of these returns None
    label.setText("take")
    label.repaint()
    timer.setInterval(i % 7 + 1)
    emitter.flag.emit(i % 2 == 0)    # sends True and False
    emitter.nothing.emit(None)
    received.clear()
app.processEvents()
print(json.dumps([a - b for a, b in zip(counts(), before)]))
"""


def test_binding_calls_keep_none_true_and_false_counts():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    child = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env, timeout=120)
    pair = f"PySide6 on Python {sys.version.split()[0]}"
    assert child.returncode == 0, (
        f"{pair} aborted after binding calls (exit {child.returncode}): this pair leaks references and "
        f"will kill the app; see pyproject.toml's PySide6 pin.\n{child.stderr[-2000:]}"
    )
    drift = dict(zip(("None", "True", "False"), json.loads(child.stdout.strip().splitlines()[-1])))
    assert all(abs(d) <= TOLERANCE for d in drift.values()), (
        f"{pair} changed reference counts by {drift} over {CALLS} rounds of binding calls: this pair leaks "
        "and will abort the app (see pyproject.toml's PySide6 pin)"
    )
