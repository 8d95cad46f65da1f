"""PromptWords: a prompt field that knows which words a word-level model (studio-mini) understands.

studio-mini's text encoder reads a closed vocabulary and passes over any other word
(magi_engine.text.words). A field given that vocabulary draws a wavy underline under each word the model
does not know, names the word and the known words nearest to it in a tooltip, and offers the known
words as completions of the word being typed. With no vocabulary (a MAGI-1 model, whose T5 reads any
text) it does nothing. The chunk prompt (a QPlainTextEdit) gets the underlines through a
QSyntaxHighlighter; the shot prompt (a QLineEdit, which takes formatted ranges only from an input
method) gets them as an input-method event that carries formats and no text, and also a warning sign at
its end whose tooltip names the words (the field may be scrolled past them); the same tooltip shows over
each word in both.
A completion is typed as the user would, so the document hears of it through the field's own edit
signals. The list of completions never grabs the mouse (a Qt popup does, and the click that closed it was
lost: typing a prompt and clicking Generate did nothing), and the field keeps the keyboard: it hands the
list its Up/Down/Page keys, and Enter or Tab take the completion.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QStringListModel, Qt
from PySide6.QtGui import QColor, QInputMethodEvent, QSyntaxHighlighter, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QApplication, QCompleter, QLineEdit, QPlainTextEdit, QStyle, QToolTip, QWidget

from magi_engine.text.words import UnknownWord, Vocabulary, word_spans

#: A completion is offered from this many typed letters on.
MIN_PREFIX = 2
#: Keys the field hands to a shown completion list (they move in it).
LIST_KEYS = (Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown)
UNKNOWN_COLOUR = QColor("#e5484d")


#: Modifiers that make a key a shortcut rather than typing (Shift alone types capitals).
SHORTCUT_MODIFIERS = (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
                      | Qt.KeyboardModifier.MetaModifier)


def unknown_format() -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
    fmt.setUnderlineColor(UNKNOWN_COLOUR)
    return fmt


def unknown_tip(vocabulary: Vocabulary, unknown: UnknownWord) -> str:
    instead = (f" Known words nearest to it: {', '.join(unknown.nearest)}." if unknown.nearest
               else " Start typing a word to see the words it knows.")
    return f"{vocabulary.name} does not know “{unknown.word}” and passes over it.{instead}"


def words_to_mark(vocabulary: Vocabulary, text: str, caret: int | None) -> list[UnknownWord]:
    """The unknown words of `text` to underline: all but one still being typed towards a known word
    (ending at `caret`, None when the field has no focus), which is marked once the caret moves on."""
    return [unknown for unknown in vocabulary.unknown_words(text)
            if not (unknown.end == caret and any(word.startswith(unknown.word) for word in vocabulary.words))]


class _Highlighter(QSyntaxHighlighter):
    def __init__(self, document, words: "PromptWords") -> None:
        super().__init__(document)
        self._words = words
        self._format = unknown_format()

    def highlightBlock(self, text: str) -> None:
        vocabulary = self._words.vocabulary
        if vocabulary is None:
            return
        field = self._words.field
        caret = field.textCursor().position() - self.currentBlock().position() if field.hasFocus() else None
        for unknown in words_to_mark(vocabulary, text, caret):
            self.setFormat(unknown.start, unknown.end - unknown.start, self._format)


class PromptWords(QObject):
    """Marks, tooltips and completions of a model's vocabulary on one prompt field."""

    def __init__(self, field: QPlainTextEdit | QLineEdit) -> None:
        super().__init__(field)
        self.field = field
        self.vocabulary: Vocabulary | None = None
        self._plain = isinstance(field, QPlainTextEdit)
        # Made when first needed: every card of a long storyboard has a prompt field, and a highlighter, a
        # completer with its popup list and an event filter on each of 120 fields cost a second when a project
        # opened (with no vocabulary, as for MAGI-1, none of them is ever needed).
        self._highlighter: _Highlighter | None = None
        self._completer: QCompleter | None = None
        self._watching = False  # the field's tooltips (over unknown words) go through eventFilter
        if self._plain:
            field.textChanged.connect(self._on_typed)
        else:
            self.line_mark = field.addAction(field.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning),
                                             QLineEdit.ActionPosition.TrailingPosition)
            self.line_mark.setVisible(False)
            self.line_underlines: list[tuple[int, int]] = []  # (start, length) of the underlined words
            field.textChanged.connect(self._mark_line)
            field.textEdited.connect(self._on_typed)

    @property
    def completer(self) -> QCompleter:
        """The completions of the word being typed (made on first use)."""
        if self._completer is None:
            self._completer = QCompleter(QStringListModel(list(self.vocabulary.words) if self.vocabulary else [], self),
                                         self)
            self._completer.setWidget(self.field)
            self._completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
            self._completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
            self._completer.activated.connect(self._complete)
            popup = self._completer.popup()
            # A window of its own that grabs neither the mouse nor the focus (not a grabbing Qt.Popup). QCompleter
            # has made it NoFocus with the field as its focus proxy; setting a focus policy on it again would hand
            # that policy on to the proxy (Qt does), and a NoFocus field takes no click: it could not be edited again.
            popup.setWindowFlags(Qt.WindowType.ToolTip | Qt.WindowType.FramelessWindowHint)
            popup.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
            popup.installEventFilter(self)  # its showing and hiding: a click elsewhere hides it (eventFilter)
            self.field.installEventFilter(self)  # its keys while the list is shown
        return self._completer

    # The model's words --------------------------------------------------------------------------
    def set_vocabulary(self, vocabulary: Vocabulary | None) -> None:
        """The words to check against (None: any text is fine, as for MAGI-1)."""
        if vocabulary is self.vocabulary:
            return
        self.vocabulary = vocabulary
        if self._completer is not None:
            self._completer.model().setStringList(list(vocabulary.words) if vocabulary else [])
        if vocabulary is not None and not self._watching:
            self._watching = True
            (self.field.viewport() if self._plain else self.field).installEventFilter(self)
        if self._plain:
            if self._highlighter is None and vocabulary is not None:
                self._highlighter = _Highlighter(self.field.document(), self)
            if self._highlighter is not None:
                blocked = self.field.blockSignals(True)  # new formats are no edit of the prompt (textChanged)
                self._highlighter.rehighlight()
                self.field.blockSignals(blocked)
        else:
            self._mark_line()
        if vocabulary is None and self._completer is not None:
            self._completer.popup().hide()

    def unknown_words(self) -> list[UnknownWord]:
        """The words of the field's text the model does not know ([] without a vocabulary)."""
        return self.vocabulary.unknown_words(self._text()) if self.vocabulary is not None else []

    def _text(self) -> str:
        return self.field.toPlainText() if self._plain else self.field.text()

    def _caret(self) -> int:
        return self.field.textCursor().position() if self._plain else self.field.cursorPosition()

    # The mark on a one-line field -----------------------------------------------------------------
    def _mark_line(self) -> None:
        """The chunk prompt's underlines, and a warning sign at the field's end whose tooltip names each
        unknown word. A QLineEdit draws formatted ranges of its text only for an input method: an event
        with no text, no preedit and only formats (positions counted from the caret) sets them."""
        unknown = list({u.word: u for u in self.unknown_words()}.values())
        self.line_mark.setVisible(bool(unknown))
        self.line_mark.setToolTip("\n".join(unknown_tip(self.vocabulary, u) for u in unknown))
        caret = self.field.cursorPosition()
        marked = (words_to_mark(self.vocabulary, self.field.text(), caret if self.field.hasFocus() else None)
                  if self.vocabulary is not None else [])
        self.line_underlines = [(u.start, u.end - u.start) for u in marked]
        fmt = unknown_format()
        attributes = [QInputMethodEvent.Attribute(QInputMethodEvent.AttributeType.TextFormat, start - caret, length, fmt)
                      for start, length in self.line_underlines]
        QCoreApplication.sendEvent(self.field, QInputMethodEvent("", attributes))

    # Tooltips ---------------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        popup = self._completer.popup() if self._completer is not None else None
        kind = event.type()
        if popup is not None and popup.isVisible():
            if watched is self.field and kind == QEvent.Type.KeyPress:
                return self._list_key(popup, event)
            if watched is self.field and kind == QEvent.Type.ShortcutOverride and event.modifiers() & SHORTCUT_MODIFIERS:
                popup.hide()  # a shortcut (Ctrl+Return: Generate) takes the key before the field sees it
            if watched is self.field and kind == QEvent.Type.FocusOut:
                popup.hide()
            elif kind == QEvent.Type.MouseButtonPress and isinstance(watched, QWidget) and not (
                    watched is popup or popup.isAncestorOf(watched)):
                popup.hide()  # a click anywhere else goes on to its target: the list only goes away
        if watched is popup and kind in (QEvent.Type.Show, QEvent.Type.Hide):
            app = QApplication.instance()  # clicks are watched only while the list is shown
            (app.installEventFilter if kind == QEvent.Type.Show else app.removeEventFilter)(self)
        if kind == QEvent.Type.ToolTip and self.vocabulary is not None:
            position = event.pos()
            index = (self.field.cursorForPosition(position).position() if self._plain
                     else self.field.cursorPositionAt(position))
            for unknown in self.unknown_words():
                if unknown.start <= index <= unknown.end:
                    QToolTip.showText(event.globalPos(), unknown_tip(self.vocabulary, unknown), self.field)
                    return True
        return super().eventFilter(watched, event)

    def _list_key(self, popup, event) -> bool:
        """A key pressed in the field while the completion list is shown: True when the list took it."""
        key = event.key()
        if key in (Qt.Key.Key_Enter, Qt.Key.Key_Return, Qt.Key.Key_Tab):
            index = popup.currentIndex()
            popup.hide()
            if index.isValid():
                self._complete(index.data())
            return True
        if key in (Qt.Key.Key_Escape, Qt.Key.Key_Backtab):
            # The list shows up unasked while typing: Esc leaves the field at once, as without it (a first Esc
            # that only closed the list left the next J/K/L typed into the prompt).
            popup.hide()
            return False
        if key in LIST_KEYS:
            QApplication.sendEvent(popup, event)
            return True
        return False

    def tip_at(self, index: int) -> str | None:
        """The tooltip for the character at `index` of the text (None over a known word)."""
        for unknown in self.unknown_words():
            if unknown.start <= index <= unknown.end:
                return unknown_tip(self.vocabulary, unknown)
        return None

    # Completions ------------------------------------------------------------------------------------
    def _word_before_caret(self) -> tuple[int, str]:
        caret = self._caret()
        for word, start, end in word_spans(self._text()):
            if start < caret <= end and end == caret:
                return start, self._text()[start:caret]
        return caret, ""

    def _on_typed(self, *_args) -> None:
        if self.vocabulary is None or not self.field.hasFocus():
            return
        _, prefix = self._word_before_caret()
        popup = self.completer.popup()
        if len(prefix) < MIN_PREFIX:
            popup.hide()
            return
        self.completer.setCompletionPrefix(prefix)
        if self.completer.completionCount() == 0 or (
                self.completer.completionCount() == 1 and self.completer.currentCompletion() == prefix.lower()):
            popup.hide()
            return
        popup.setCurrentIndex(self.completer.completionModel().index(0, 0))
        rect = self.field.cursorRect()
        rect.setWidth(popup.sizeHintForColumn(0) + popup.verticalScrollBar().sizeHint().width() + 8)
        self.completer.complete(rect)

    def _complete(self, word: str) -> None:
        """Type the rest of `word` over the word before the caret, as the user would."""
        start, prefix = self._word_before_caret()
        if self._plain:
            cursor = self.field.textCursor()
            cursor.setPosition(start)
            cursor.setPosition(start + len(prefix), QTextCursor.MoveMode.KeepAnchor)
            cursor.insertText(word)
            self.field.setTextCursor(cursor)
        else:
            self.field.setSelection(start, len(prefix))
            self.field.insert(word)
