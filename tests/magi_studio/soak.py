"""The GUI soak: drives the wired studio's main window through random but legal user actions.

    soak = Soak(studio, seed=7, folder=tmp_path)      # a shown Studio (tests: the make_studio fixture)
    report = soak.run(actions=300)                    # or seconds=...; the document checked after each
    assert report.clean(), report.describe()

Each step picks one action a director could take at that moment — click a card, type a prompt, add,
insert, duplicate, delete, move (keys and drag-and-drop) chunks, new/split/delete/rename shots, drop a
reference image (now and then a file that is not one), change how a shot starts, lock/re-roll seeds,
Generate / Generate Shot / Generate From / Regenerate From, Stop, preview, activate and delete takes,
undo and redo (in bursts too), save, close and reopen, export, play and step, zoom and the overview —
through the window's actions, keys, clicks and drops, the same paths the user's input takes. Generation runs on whatever
engine the studio's worker holds (a tiny random model in the tests) while the edits go on.

After each step the events are run for a moment and the state is checked: the document's invariants
(magi_studio.document.invariants.check), and whether the storyboard, the takes view and the selection
show that document. Python exceptions raised in any Qt slot or event handler (through sys.excepthook, or
out of the event loop the driver runs) are caught and counted with the step that raised them. The
driver never answers a question the app did not ask: the project controller's questions go to
SoakPrompts, dialogs that would block (menus, file choosers, message boxes) are not opened.
"""

from __future__ import annotations

import random
import sys
import time
import traceback
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import shiboken6
from PySide6.QtCore import QEvent, QEventLoop, QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QImage, QKeyEvent, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from magi_studio.dialogs.project_prompts import DISCARD, SAVE
from magi_studio.document.invariants import check as document_violations
from magi_studio.timeline.strip import chunk_mime
from tests.magi_studio.prompts import FakePrompts
from tests.magi_studio.timeline.helpers import drop, file_mime

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
WORDS = ("a red ball", "falls", "bounces", "on white", "the blue square", "moves left", "slowly", "zoom in",
         "at dusk", "a green triangle", "grows", "camera pans", "rain", "é ü 漢字", "", "  ")
#: Above this many chunks, adding gets rarer (a soak explores edits, not one ever longer storyboard).
SOFT_CHUNK_LIMIT = 40


class SoakPrompts(FakePrompts):
    """The project controller's questions, answered at random but legally (never Cancel)."""

    def __init__(self, rng: random.Random, folder: Path) -> None:
        super().__init__()
        self.rng, self.folder, self.saved = rng, folder, 0

    def unsaved_changes(self, name: str, untitled: bool = False) -> str:
        super().unsaved_changes(name, untitled)
        return self.rng.choice((SAVE, DISCARD))

    def save_path(self, suggested: str):
        super().save_path(suggested)
        self.saved += 1
        return str(self.folder / f"soak-{self.saved}.magi")


def view_violations(studio) -> list[str]:
    """Where the window does not show the open document (after the events have run)."""
    session, window = studio.session, studio.window
    timeline = window.timeline
    if session is None:
        return ["no project is open"] if studio.window.isVisible() else []
    # A run's commits reach the views on the event-loop turn after them (DocumentSession.push(coalesce=True)): a step
    # can end between the two, so the views are checked as that turn draws them.
    session.flush_changes()
    project, found = session.project, []
    chunks = [c for s in project.shots for c in s.chunks]
    cards = timeline.cards()
    if [c.chunk_id for c in cards] != [c.id for c in chunks]:
        found.append(f"the storyboard shows {len(cards)} cards for {len(chunks)} chunks, or in another order")
    else:
        for card, chunk in zip(cards, chunks):
            if card.prompt.toPlainText() != chunk.prompt and not card.prompt.hasFocus():
                found.append(f"card {chunk.id} shows prompt {card.prompt.toPlainText()!r}, not {chunk.prompt!r}")
            if card.model.seed != chunk.seed:
                found.append(f"card {chunk.id} shows seed {card.model.seed}, not {chunk.seed}")
    if [g.shot_id for g in timeline.strip.groups] != [s.id for s in project.shots]:
        found.append("the storyboard's shot groups are not the project's shots")
    shot_id, chunk_id = session.selected_shot_id, session.selected_chunk_id
    if shot_id and shot_id not in {s.id for s in project.shots}:
        found.append(f"the selected shot {shot_id} is not in the project")
    elif chunk_id and chunk_id not in {c.id for c in project.shot(shot_id).chunks}:
        found.append(f"the selected chunk {chunk_id} is not in the selected shot")
    takes_shot = window.takes_view.shot()
    if takes_shot is not None:
        missing = [t.name for t in takes_shot.takes if window.takes_view.item(t.id) is None]
        if missing:
            found.append(f"the takes view does not list {missing} of {takes_shot.name!r}")
    return found


@dataclass
class Problem:
    step: int
    action: str
    text: str
    #: The actions before it (most recent last): a reproduction starts from these.
    recent: list[str]


@dataclass
class SoakReport:
    seed: int
    actions: int = 0
    seconds: float = 0.0
    counts: Counter = field(default_factory=Counter)
    violations: list[Problem] = field(default_factory=list)
    exceptions: list[Problem] = field(default_factory=list)
    #: Errors the app reported to the user (the banner): expected for refused edits and bad files.
    reported: Counter = field(default_factory=Counter)
    #: How the generation runs ended ("finished", "cancelled", ...), and the chunks committed to the document.
    runs: Counter = field(default_factory=Counter)
    chunks_committed: int = 0

    def clean(self) -> bool:
        return not self.violations and not self.exceptions

    def describe(self, limit: int = 5) -> str:
        lines = [f"seed {self.seed}: {self.actions} actions in {self.seconds:.1f} s, "
                 f"{len(self.exceptions)} exceptions, {len(self.violations)} invariant violations"]
        for problem in (self.exceptions + self.violations)[:limit]:
            lines.append(f"- step {problem.step} ({problem.action}): {problem.text.strip()}\n"
                         f"  after: {', '.join(problem.recent)}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"seed": self.seed, "actions": self.actions, "seconds": round(self.seconds, 1),
                "exceptions": len(self.exceptions), "invariant_violations": len(self.violations),
                "runs": dict(self.runs), "chunks_committed": self.chunks_committed, "counts": dict(self.counts),
                "reported": dict(self.reported),
                "problems": [vars(p) for p in (self.exceptions + self.violations)[:50]]}


def type_text(widget, text: str) -> None:
    """Type `text` into `widget` key by key. QTest knows only ASCII keys (anything else aborts the process),
    so other characters arrive as an input method sends them: a key event carrying the text."""
    for char in text:
        if char.isascii():
            QTest.keyClick(widget, char)
        else:
            for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
                QApplication.sendEvent(widget, QKeyEvent(kind, 0, Qt.KeyboardModifier.NoModifier, char))


def _image(path: Path, color: str) -> Path:
    image = QImage(96, 64, QImage.Format.Format_RGB888)
    image.fill(QColor(color))
    assert image.save(str(path)), path
    return path


class Soak:
    """Random legal actions on a shown Studio (see the module docstring)."""

    def __init__(self, studio, *, seed: int, folder: str | Path, settle_ms: tuple[int, int] = (0, 12),
                 max_chunks: int = SOFT_CHUNK_LIMIT) -> None:
        self.studio, self.seed, self.rng = studio, seed, random.Random(seed)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.settle_ms, self.max_chunks = settle_ms, max_chunks
        self.prompts = SoakPrompts(self.rng, self.folder)
        studio.projects.prompts = self.prompts
        studio.window.takes_view.confirm_delete = lambda name: True
        self.images = [_image(self.folder / "red.png", "red"), _image(self.folder / "blue.png", "#2050e0")]
        self.not_an_image = self.folder / "notes.png"
        self.not_an_image.write_text("this is not a picture")
        self.saved_paths: list[Path] = []
        self.recent: deque[str] = deque(maxlen=12)
        self.report = SoakReport(seed)
        self._exports = 0
        self._hooked: BaseException | None = None  # the last exception sys.excepthook reported
        self._last_error = getattr(studio.window, "last_error", None)
        studio.generation.runEnded.connect(lambda how: self.report.runs.update([how]))
        studio.generation.chunkCommitted.connect(lambda *_: setattr(self.report, "chunks_committed",
                                                                    self.report.chunks_committed + 1))
        self.actions: list[tuple[str, float, Callable[[], object]]] = [
            ("click card", 10, self.click_card), ("arrow keys", 5, self.arrow_keys),
            ("type prompt", 8, self.type_prompt), ("add chunk", 6, self.add_chunk),
            ("insert chunk", 2, lambda: self.trigger("edit.insert_chunk")),
            ("duplicate chunk", 2, lambda: self.trigger("edit.duplicate_chunk")),
            ("delete chunk", 4, self.delete_chunk), ("move chunk", 4, self.move_chunk),
            ("drag chunk", 2, self.drag_chunk), ("split shot", 2, lambda: self.trigger("edit.split_shot")),
            ("new shot", 2, self.new_shot), ("delete shot", 1, self.delete_shot),
            ("rename shot", 1, self.rename_shot), ("shot start", 2, self.shot_start),
            ("drop image", 2, self.drop_image), ("clear image", 0.5, self.clear_image),
            ("seed", 2, self.seed_edit), ("generate", 3, lambda: self.trigger("generate.run")),
            ("generate shot", 2, lambda: self.trigger("generate.shot")),
            ("generate from", 2, lambda: self.trigger("generate.from")),
            ("regenerate from", 3, lambda: self.trigger("generate.regenerate")),
            ("stop", 3, lambda: self.trigger("generate.cancel")), ("let it run", 3, self.let_it_run),
            ("draft mode", 1.5, lambda: self.trigger("generate.draft")),
            ("render at final quality", 1.5, lambda: self.trigger("generate.final_quality")),
            ("preview take", 3, self.preview_take), ("make take active", 2, self.make_take_active),
            ("delete take", 1, self.delete_take), ("undo", 6, lambda: self.trigger("edit.undo")),
            ("redo", 4, lambda: self.trigger("edit.redo")), ("undo burst", 1, self.undo_burst),
            ("save", 2, self.save), ("reopen", 1, self.reopen), ("new project", 0.3, self.new_project),
            ("export", 0.7, self.export), ("play", 2, lambda: self.trigger("playback.play")),
            ("step", 2, self.step_playhead), ("zoom", 2, self.zoom), ("overview", 1.5, self.overview),
        ]

    # Running ----------------------------------------------------------------------------------
    def run(self, *, actions: int | None = None, seconds: float | None = None,
            on_step: Callable[[SoakReport], None] | None = None) -> SoakReport:
        """Drive `actions` steps, or until `seconds` have passed (whichever comes first).

        The steps run inside an event loop, as every event of the app runs inside QApplication.exec: there a
        slot's exception reaches sys.excepthook (tests/magi_studio/test_binding_exceptions.py). Driven from no
        loop at all, a QTimer.singleShot functor raising inside the driver's QTest.qWait left its exception
        pending on Python 3.11 with PySide6 6.10-6.12, and the next Python QWidget.event override segfaulted
        in shiboken: a crash of the driver, not of the app."""
        assert actions is not None or seconds is not None, "say how long to soak"
        loop, failure = QEventLoop(), []

        def drive() -> None:
            try:
                self._drive(actions, seconds, on_step)
            except BaseException as error:  # the driver's own failure: raised again out of run
                failure.append(error)
            finally:
                loop.quit()

        QTimer.singleShot(0, drive)
        loop.exec()
        if failure:
            raise failure[0]
        return self.report

    def _drive(self, actions: int | None, seconds: float | None, on_step) -> None:
        started = time.perf_counter()
        hook, sys.excepthook = sys.excepthook, self._on_exception
        try:
            while (actions is None or self.report.actions < actions) and (
                    seconds is None or time.perf_counter() - started < seconds):
                self.step()
                self.report.seconds = time.perf_counter() - started
                if on_step is not None:
                    on_step(self.report)
        finally:
            sys.excepthook = hook

    def step(self) -> str:
        names, weights, calls = zip(*self._legal_actions())
        index = self.rng.choices(range(len(names)), weights)[0]
        name = names[index]
        self._current = name
        self.report.actions += 1
        self.report.counts[name] += 1
        for run in (calls[index], lambda: self.settle(self.rng.randint(*self.settle_ms))):
            try:
                run()
            except Exception as error:  # raised by the app: into the driver's call, or out of a slot the events ran
                if error is not self._hooked:  # PySide may report a slot's exception to the hook and raise it too
                    self._problem(self.report.exceptions, traceback.format_exc())
        self.recent.append(name)
        self._check()
        return name

    def settle(self, ms: int) -> None:
        """Run the event loop for `ms` (queued signals, timers, the engine's deliveries)."""
        QTest.qWait(ms) if ms else QApplication.processEvents()

    def wait_until(self, condition, timeout_s: float) -> bool:
        deadline = time.perf_counter() + timeout_s
        while not condition() and time.perf_counter() < deadline:
            QTest.qWait(5)
        return condition()

    def _legal_actions(self):
        if self.studio.session is None:  # closed (a reopen that failed): only opening again makes sense
            return [("new project", 1, self.new_project)]
        many = self.chunk_count() >= self.max_chunks
        return [(n, w * (0.1 if many and n in ("add chunk", "insert chunk", "duplicate chunk", "new shot") else 1), c)
                for n, w, c in self.actions]

    def _check(self) -> None:
        error = getattr(self.window, "last_error", None)  # the banner's error (the one reporting path)
        if error is not None and error is not self._last_error:
            self._last_error = error
            self.report.reported[type(error).__name__] += 1
        session = self.studio.session
        found = (document_violations(session.project) if session is not None else []) + view_violations(self.studio)
        for text in found:
            self._problem(self.report.violations, text)

    def _problem(self, where: list, text: str) -> None:
        where.append(Problem(self.report.actions, getattr(self, "_current", "?"), text, list(self.recent)))

    def _on_exception(self, kind, value, tb) -> None:
        self._hooked = value
        self._problem(self.report.exceptions, "".join(traceback.format_exception(kind, value, tb)))

    # Reading the window -----------------------------------------------------------------------
    @property
    def window(self):
        return self.studio.window

    @property
    def timeline(self):
        return self.studio.window.timeline

    def chunk_count(self) -> int:
        return sum(len(s.chunks) for s in self.studio.session.project.shots)

    def trigger(self, action_id: str) -> bool:
        """A window action, as its menu entry or toolbar button does (disabled ones do nothing, as there)."""
        action = self.window.action_set[action_id]
        if not action.isEnabled():
            return False
        action.trigger()
        return True

    def _card(self):
        cards = self.timeline.cards()
        return self.rng.choice(cards) if cards else None

    def _group(self):
        groups = self.timeline.strip.groups
        return self.rng.choice(groups) if groups else None

    # Actions ----------------------------------------------------------------------------------
    def click_card(self) -> None:
        card = self._card()
        if card is not None:
            self.timeline.scroll.ensureWidgetVisible(card)
            QTest.mouseClick(card.index_label, Qt.MouseButton.LeftButton)

    def arrow_keys(self) -> None:
        key = self.rng.choice((Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Home, Qt.Key.Key_End))
        self.timeline.strip.setFocus()
        QTest.keyClick(self.timeline.strip, key)

    def type_prompt(self) -> None:
        card = self._card()
        if card is None:
            return
        card.prompt.setFocus()
        if self.rng.random() < 0.5:
            card.prompt.selectAll()
        type_text(card.prompt, " ".join(self.rng.sample(WORDS, self.rng.randint(1, 3))))
        if self.rng.random() < 0.3:
            QTest.keyClick(card.prompt, Qt.Key.Key_Backspace)
        if self.rng.random() < 0.7:
            QTest.keyClick(card.prompt, Qt.Key.Key_Escape)  # leaves the field

    def add_chunk(self) -> None:
        how = self.rng.random()
        if how < 0.4:
            self.timeline.strip.setFocus()
            QTest.keyClick(self.timeline.strip, Qt.Key.Key_N, CTRL | SHIFT)
        elif how < 0.7:
            group = self._group()
            if group is not None:
                QTest.mouseClick(group.add_button, Qt.MouseButton.LeftButton)
        else:
            self.trigger("edit.add_chunk")

    def delete_chunk(self) -> None:
        if self.rng.random() < 0.5 and self.studio.session.selected_chunk_id:
            self.timeline.strip.setFocus()
            QTest.keyClick(self.timeline.strip, Qt.Key.Key_Delete)
        else:
            self.trigger("edit.delete_chunk")

    def move_chunk(self) -> None:
        self.timeline.strip.setFocus()
        QTest.keyClick(self.timeline.strip, self.rng.choice((Qt.Key.Key_Left, Qt.Key.Key_Right)), CTRL)

    def drag_chunk(self) -> None:
        card, target = self._card(), self._card()
        if card is None or target is None:
            return
        strip = self.timeline.strip
        rect = strip.card_rect(target)
        x = rect.left() + self.rng.choice((2, rect.width() - 2))
        drop(strip, QPoint(x, rect.center().y()), chunk_mime(card.shot_id, card.chunk_id))

    def new_shot(self) -> None:
        if self.rng.random() < 0.5:
            QTest.mouseClick(self.timeline.strip.new_shot_button, Qt.MouseButton.LeftButton)
        else:
            self.trigger("edit.new_shot")

    def delete_shot(self) -> None:
        group = self._group()
        if group is not None:
            self.timeline.delete_shot(group.shot_id)  # the shot menu's Delete Shot

    def rename_shot(self) -> None:
        group = self._group()
        if group is None:
            return
        group.start_rename()
        type_text(group.name_edit, self.rng.choice(("Intro", "The chase", "", "Shot ✓", "x" * 40)))
        QTest.keyClick(group.name_edit, Qt.Key.Key_Return)

    def shot_start(self) -> None:
        group = self._group()
        if group is not None:
            index = self.rng.randrange(group.start_box.count())
            group.start_box.setCurrentIndex(index)
            group.start_box.activated.emit(index)  # what choosing an entry in the popup sends

    def drop_image(self) -> None:
        group = self._group()
        if group is None:
            return
        path = self.not_an_image if self.rng.random() < 0.2 else self.rng.choice(self.images)
        strip = self.timeline.strip
        drop(strip, group.mapTo(strip, group.rect().center()), file_mime(path))

    def clear_image(self) -> None:
        self.timeline.clear_reference_image()

    def seed_edit(self) -> None:
        choice = self.rng.random()
        if choice < 0.4:
            self.trigger("edit.lock_seed")
        elif choice < 0.8:
            self.trigger("edit.new_seed")
        else:
            card = self._card()
            if card is not None:
                card.seed.setFocus()
                card.seed.selectAll()
                QTest.keyClicks(card.seed, str(self.rng.randrange(10_000)))
                QTest.keyClick(card.seed, Qt.Key.Key_Return)

    def let_it_run(self) -> None:
        generation = self.studio.generation
        # Until the run ends: a run cut short by the next action at random commits no chunk on a loaded
        # machine (a step of the tiny model took 2 s in CI), and then the soak never reaches the commit path.
        self.wait_until(lambda: not generation.is_generating(), 30.0)

    def _takes_shot(self):
        view = self.window.takes_view
        return view, view.shot()

    def preview_take(self) -> None:
        view, shot = self._takes_shot()
        items = view._items()
        if items:
            view.tree.setCurrentItem(self.rng.choice(items))

    def make_take_active(self) -> None:
        self.preview_take()
        view = self.window.takes_view
        if view.activate_button.isEnabled():
            QTest.mouseClick(view.activate_button, Qt.MouseButton.LeftButton)

    def delete_take(self) -> None:
        self.preview_take()
        view = self.window.takes_view
        if view.delete_button.isEnabled():
            QTest.mouseClick(view.delete_button, Qt.MouseButton.LeftButton)

    def undo_burst(self) -> None:
        for _ in range(self.rng.randint(2, 12)):
            self.trigger("edit.undo")
        for _ in range(self.rng.randint(0, 12)):
            self.trigger("edit.redo")

    def save(self) -> None:
        if self.trigger("file.save") and self.studio.projects.path is not None:
            path = Path(self.studio.projects.path)
            if path not in self.saved_paths:
                self.saved_paths.append(path)

    def reopen(self) -> None:
        """Save, close, and open a saved project again (the one just saved, or an earlier one)."""
        self.save()
        if not self.saved_paths:
            return
        path = self.rng.choice(self.saved_paths)
        projects = self.studio.projects
        if projects.close_project():
            projects.open_project(path) or projects.new_project()

    def new_project(self) -> None:
        self.trigger("file.new") if self.studio.session is not None else self.studio.projects.new_project()

    def export(self) -> None:
        dialog = self.studio.export_video()
        if dialog is None:
            return
        self._exports += 1
        dialog.ask_pending = lambda parent, message: True  # export what is generated
        dialog.drafts_box.setChecked(self.rng.random() < 0.5)  # drafts scaled, or refused in one sentence
        dialog.path_edit.setText(str(self.folder / f"export-{self._exports % 3}.mp4"))
        if dialog.start_export():
            self.wait_until(lambda: not shiboken6.isValid(dialog) or not dialog.is_exporting(), 20)
        if shiboken6.isValid(dialog):  # a finished export closes (and deletes) its dialog itself
            dialog.reject()
        self.wait_until(lambda: self.studio.export_dialog is None, 5)

    def zoom(self) -> None:
        how, timeline = self.rng.random(), self.timeline
        if how < 0.5:
            key = self.rng.choice((Qt.Key.Key_Equal, Qt.Key.Key_Minus))
            QTest.keyClick(timeline.strip, key, CTRL)
        else:
            viewport = timeline.scroll.viewport()
            pos = QPointF(self.rng.randrange(max(1, viewport.width())), viewport.height() / 2)
            QApplication.sendEvent(viewport, QWheelEvent(
                pos, QPointF(viewport.mapToGlobal(pos.toPoint())), QPoint(), QPoint(0, self.rng.choice((-120, 120))),
                Qt.MouseButton.NoButton, CTRL, Qt.ScrollPhase.NoScrollPhase, False))

    def overview(self) -> None:
        overview = self.timeline.overview
        pos = QPoint(self.rng.randrange(max(1, overview.width())), overview.height() // 2)
        if self.rng.random() < 0.5:
            QTest.mouseClick(overview, Qt.MouseButton.LeftButton, pos=pos)
        else:
            QTest.mouseDClick(overview, Qt.MouseButton.LeftButton, pos=pos)

    def step_playhead(self) -> None:
        self.trigger(self.rng.choice(("playback.step_forward", "playback.step_back", "playback.next_chunk",
                                      "playback.previous_chunk", "playback.start", "playback.end")))
