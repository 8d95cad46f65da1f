"""Qt fixtures for the studio's tests.

* `app_look_restored` (autouse): the QApplication's style, palette, font and style sheet as they were before
  the test (a test that runs the app's own start-up themes the whole process; later tests measured other
  heights, so a layout test passed alone and failed in the suite).
* `app_theme`: the app's own theme on the whole QApplication for the test, as a user sees it.
* `isolated_settings` (autouse): every test gets fresh settings in its own temporary folder — QSettings'
  INI path is redirected and the organisation renamed — so no test reads or writes the user's file; the
  data and cache folders (XDG_DATA_HOME, XDG_CACHE_HOME: untitled projects' scratch bundles) move there too.
* `tiny_session`: a GenerationSession over the tiny random model of the real classes (64x64, milliseconds/chunk).
* `engine_worker`: an EngineWorker whose thread is always shut down (and checked) after the test.
* `no_leaked_windows`: fails a test that leaves top-level widgets behind.
* `show_main_window`: shows a MainWindow on a project and store, the active window, as a user finds it;
  closed and deleted afterwards.
* `make_studio`: the wired app (magi_studio.studio.Studio) with FakePrompts and a temporary scratch folder,
  shown; disposed afterwards (unsaved work discarded), its engine thread checked stopped, no window leaked.
* `PausingSession`: wraps a GenerationSession so a test can hold the engine thread at a chosen event
  (deterministic cancel/supersede tests) and see what the engine yielded after a cancel.
"""

from __future__ import annotations

import threading
from typing import Callable

import pytest
from PySide6.QtCore import QCoreApplication, QSettings

from magi_studio.settings import Settings


@pytest.fixture(autouse=True)
def app_look_restored(qapp):
    style, palette, font, sheet = qapp.style().name(), qapp.palette(), qapp.font(), qapp.styleSheet()
    quits = qapp.quitOnLastWindowClosed()
    yield
    if qapp.styleSheet() != sheet:
        qapp.setStyleSheet(sheet)
    if qapp.style().name() != style:
        qapp.setStyle(style)
    if qapp.palette() != palette:
        qapp.setPalette(palette)
    if qapp.font() != font:
        qapp.setFont(font)
    qapp.setQuitOnLastWindowClosed(quits)


@pytest.fixture
def app_theme(qapp):
    from magi_studio import theme

    theme.apply_theme(qapp)  # app_look_restored undoes it


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory, monkeypatch) -> Settings:
    folder = tmp_path_factory.mktemp("settings")
    monkeypatch.setenv("XDG_DATA_HOME", str(folder / "data"))  # QStandardPaths reads these at each call
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder / "cache"))
    organization = QCoreApplication.organizationName()
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
            QSettings.setPath(fmt, scope, str(folder))
    QCoreApplication.setOrganizationName("MAGI Studio Tests")  # anything using plain QSettings() stays apart
    settings = Settings()
    assert settings.file_name().startswith(str(folder)), settings.file_name()
    yield settings
    QCoreApplication.setOrganizationName(organization)


@pytest.fixture(scope="session")
def tiny_session():
    from magi_engine.session import GenerationSession
    from tests.engine.factories import tiny_bundle

    return GenerationSession(tiny_bundle())


@pytest.fixture
def engine_worker(qtbot):
    from magi_studio.engine_worker import EngineWorker

    worker = EngineWorker()
    yield worker
    worker.shutdown()
    assert not worker.is_running()


def _window_ids() -> set[int]:
    import shiboken6
    from PySide6.QtWidgets import QApplication

    return {shiboken6.getCppPointer(w)[0] for w in QApplication.topLevelWidgets()}


@pytest.fixture
def no_leaked_windows(qapp):
    """Fail when a test leaves top-level widgets alive (closed-but-undeleted ones count too)."""
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    before = _window_ids()
    yield
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()
    leaked = [w for w in QApplication.topLevelWidgets()
              if __import__("shiboken6").getCppPointer(w)[0] not in before]
    names = [f"{type(w).__name__}({w.objectName()!r}, visible={w.isVisible()})" for w in leaked]
    assert not leaked, f"top-level widgets leaked by the test: {names}"


class PausingSession:
    """A GenerationSession stand-in that yields the real engine's events, optionally pausing the engine thread.

    `pause_when(event)` true → after yielding that event the engine thread waits for `resume()`
    (once). `after_cancel` lists the event types the engine yielded once the cancel token was set:
    the measure of "stops within one denoising step".
    """

    def __init__(self, session, pause_when: Callable[[object], bool] | None = None) -> None:
        self.session, self.bundle = session, session.bundle
        self.pause_when = pause_when
        self.paused = threading.Event()
        self._resume = threading.Event()
        self.after_cancel: list[str] = []
        self.thread_ids: list[int] = []

    @property
    def device(self):
        return self.session.device

    def resume(self) -> None:
        self._resume.set()

    def arm(self, pause_when: Callable[[object], bool]) -> None:
        """Pause once more, at the first event `pause_when` accepts (call it while the engine is not paused)."""
        self.paused.clear()
        self._resume.clear()
        self.pause_when = pause_when

    def generate(self, request, cancel=None):
        self.thread_ids.append(threading.get_ident())
        for event in self.session.generate(request, cancel):
            if cancel is not None and cancel.is_set():
                self.after_cancel.append(type(event).__name__)
            yield event
            if self.pause_when is not None and self.pause_when(event) and not self.paused.is_set():
                self.paused.set()
                assert self._resume.wait(timeout=20), "test never resumed the paused engine"



@pytest.fixture
def show_main_window(qtbot, no_leaked_windows, isolated_settings, engine_worker):
    """show(project, store, size=None) -> the MainWindow on that project, shown and active (keys reach it)."""
    from PySide6.QtWidgets import QApplication

    from magi_studio.document_session import DocumentSession
    from magi_studio.main_window import MainWindow

    windows = []

    def show(project, store, size: tuple[int, int] | None = None):
        win = MainWindow(isolated_settings, engine_worker)
        win.set_document_session(DocumentSession(project, store, win))
        if size is not None:
            win.resize(*size)
        win.show()
        qtbot.waitExposed(win)
        win.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=2000)
        windows.append(win)
        return win

    yield show
    for win in windows:
        win.player.pause()
        win.close()
        win.deleteLater()

@pytest.fixture
def pausing_session_factory(tiny_session, engine_worker):
    # Depends on engine_worker so that it is torn down first: a paused engine is resumed before
    # the worker's shutdown waits for its thread.
    made: list[PausingSession] = []

    def make(pause_when=None) -> PausingSession:
        made.append(PausingSession(tiny_session, pause_when))
        return made[-1]

    yield make
    for session in made:  # never leave the engine thread waiting on a failed test
        session.resume()


@pytest.fixture
def make_studio(qtbot, no_leaked_windows, isolated_settings, tmp_path):
    """make_studio(path=None, *, worker=None, start=True, **kwargs) -> a shown Studio on FakePrompts."""
    from PySide6.QtWidgets import QApplication

    from magi_studio.dialogs.project_prompts import DISCARD
    from magi_studio.studio import Studio
    from tests.magi_studio.prompts import FakePrompts

    made = []

    def make(path=None, *, worker=None, start: bool = True, **kwargs):
        kwargs.setdefault("prompts", FakePrompts())
        kwargs.setdefault("scratch_root", tmp_path / "scratch")
        studio = Studio(isolated_settings, worker=worker, **kwargs)
        made.append(studio)
        if start:
            studio.start(path)
        studio.window.show()
        qtbot.waitExposed(studio.window)
        studio.window.activateWindow()  # the window's shortcuts answer only in the active window
        qtbot.waitUntil(lambda: QApplication.activeWindow() is studio.window, timeout=5000)
        return studio

    yield make
    for studio in made:
        studio.projects.prompts.unsaved = DISCARD  # a failed test may leave edits: never block on the prompt
        studio.dispose()
        assert not studio.window.isVisible()
        assert not (studio._owns_worker and studio.worker.is_running())  # its own engine thread has stopped
