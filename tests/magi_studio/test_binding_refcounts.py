"""The installed PySide6/Python pair must not lose references to None, True or False.

PySide6 6.12.0 on Python 3.10/3.11 drops one reference to `None` on every binding call that returns
`None`, and `Signal.emit` one to the bool it sends; when `None`'s count reaches zero the interpreter
aborts (`Fatal Python error: none_dealloc`) in whatever line runs next, minutes into a session. On
Python >= 3.12 those objects are immortal and their count never moves. pyproject.toml keeps the bad pair
out; this test makes any future pair that leaks fail CI before it reaches a director.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QLabel

CALLS = 3000
# A few references move for ordinary reasons (a frame or cache somewhere); a leak moves thousands.
TOLERANCE = 50


class _Emitter(QObject):
    flag = Signal(bool)
    nothing = Signal(object)


def _counts() -> tuple[int, int, int]:
    return sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)


def test_binding_calls_keep_none_true_and_false_counts(qapp):
    label = QLabel()
    emitter = _Emitter()
    received: list[object] = []
    emitter.flag.connect(received.append)
    emitter.nothing.connect(received.append)
    timer = QTimer()
    before = _counts()
    for i in range(CALLS):
        label.setVisible(False)  # returns None
        label.setText("take")  # returns None
        label.repaint()  # returns None
        timer.setInterval(i % 7 + 1)  # returns None
        emitter.flag.emit(i % 2 == 0)  # sends True and False
        emitter.nothing.emit(None)
        received.clear()
    qapp.processEvents()
    after = _counts()
    drift = {name: a - b for name, a, b in zip(("None", "True", "False"), after, before)}
    assert all(abs(d) <= TOLERANCE for d in drift.values()), (
        f"PySide6 on Python {sys.version.split()[0]} changed reference counts by {drift} over {CALLS} "
        "binding calls: this pair leaks and will abort the app (see pyproject.toml's PySide6 pin)"
    )
