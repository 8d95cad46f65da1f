"""While a text field has the keyboard, keys type: the window's plain-key shortcuts wait, Esc leaves the field.

The player answers single keys (Space, J/K/L, I/O, Home/End, the arrows, Ins, Del, Esc), and those
shortcuts work anywhere in the main window. Qt's text widgets claim most typing keys from the
shortcuts themselves (ShortcutOverride), but not all of them: Esc, Ins, and Up/Down/Return in a line
edit reach the window's shortcuts, so Esc in a seed field would stop a running generation. TypingGuard,
an event filter on the main window and its docks, sees every key a text field did not claim: a key
without Ctrl, Alt or Meta (function keys aside) then stays with the field, and Esc moves the focus out
of it to `home(field)` — the storyboard for a field on a card, the player otherwise — so the next
key is a shortcut again. Keys with Ctrl/Alt/Meta (Ctrl+Z, Ctrl+Shift+N, …) still act while typing.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QComboBox, QLineEdit, QPlainTextEdit, QTextEdit,
                               QWidget)

COMMAND_MODIFIERS = (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
                     | Qt.KeyboardModifier.MetaModifier)


def is_text_field(widget: QWidget | None) -> bool:
    """Whether `widget` takes typed text (an editable line, text box, spin box or combo box)."""
    if isinstance(widget, (QLineEdit, QPlainTextEdit, QTextEdit, QAbstractSpinBox)):
        return not widget.isReadOnly()
    return isinstance(widget, QComboBox) and widget.isEditable()


def is_typing_key(event) -> bool:
    """A key a text field keeps: no Ctrl/Alt/Meta, and not a function key (F1 help works while typing)."""
    if event.modifiers() & COMMAND_MODIFIERS:
        return False
    return not Qt.Key.Key_F1.value <= event.key() <= Qt.Key.Key_F35.value


class TypingGuard(QObject):
    """Keeps plain keys with the focused text field and makes Esc leave it (see the module docstring)."""

    def __init__(self, home: Callable[[QWidget], QWidget | None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._home = home

    def watch(self, widget: QWidget) -> None:
        """Guard the keys that reach `widget` (a window, or a dock that may float as its own window)."""
        widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        kind = event.type()
        if kind != QEvent.Type.ShortcutOverride and kind != QEvent.Type.KeyPress:
            return False
        field = QApplication.focusWidget()
        if not is_text_field(field) or not is_typing_key(event):
            return False
        if kind == QEvent.Type.ShortcutOverride:
            event.accept()  # the key goes to the field, not to a shortcut
            return True
        if event.key() == Qt.Key.Key_Escape:  # the field did not use Esc: leave it
            home = self._home(field)
            if home is not None and home.isVisible():
                home.setFocus(Qt.FocusReason.ShortcutFocusReason)
            else:
                field.clearFocus()
            return True
        return False
