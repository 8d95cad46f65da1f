"""Screenshots of MAGI Studio in a real X server (Xvfb), for the README and the user guide.

    python scripts/screenshots.py --xvfb                      # both sizes, each in its own xvfb-run
    xvfb-run -a -s "-screen 0 1366x768x24" python scripts/screenshots.py --size 1366x768

Everything on screen is made through the app's own path (magi_studio.studio.Studio: ProjectController,
GenerationController, EngineWorker, the player fed chunk by chunk) with studio-mini on the CPU. Each
run first shows the app as a new user meets it, then builds a demo storyboard: a shot that starts from
a reference image (a picture of the procedural world, imported as a dropped file is), regenerated from
chunk 3 as a second take, and a text-to-video shot whose last chunk is held half-way through its
denoising so that its card's progress and the status bar's run progress are on screen. The window fills
the screen and QScreen.grabWindow(0) takes the picture:

    docs/screenshots/welcome-1366x768.png    first start: no settings, the welcome banner, a new project
    docs/screenshots/main-WxH.png            the demo mid-generation, a finished frame in the player
    docs/screenshots/takes-1920x1080.png     the first take previewed from the takes view
    docs/screenshots/settings.png            Edit > Settings        } on the 1366x768 screen, each grabbed
    docs/screenshots/export.png              File > Export          } alone: bare Xvfb has no window
    docs/screenshots/shortcuts.png           Help > Shortcuts       } manager to draw their frames

Settings, recent files, the hub cache and untitled projects go to a temporary folder: the user's are
never touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)
SIZES = ("1366x768", "1920x1080")
OUT = REPO / "docs" / "screenshots"
#: (shot name, prompts): what the demo storyboard says; studio-mini knows the procedural world's words.
STORYBOARD = (
    ("Yellow ball", ("the yellow ball falls and bounces in the sky", "the yellow ball rolls right in the sky",
                     "the yellow ball rises in the sky", "the yellow ball stays still in the sky")),
    ("Red box", ("a red box slides to the left on the beach", "the red box grows on the beach")),
)
HELD_CHUNK_PROMPT = "the red box shrinks on the beach"
#: The first shot's reference picture: the procedural world's sky with a yellow ball at the upper left.
REFERENCE = {"background": "sky", "shape": "circle", "colour": "yellow", "x": 36.0, "y": 34.0, "size": 15.0}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xvfb", action="store_true", help="run once per size, each under xvfb-run")
    parser.add_argument("--size", default=SIZES[0], help="the X screen's size (WIDTHxHEIGHT) this run is in")
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args(argv)


def run_under_xvfb(out: Path) -> int:
    """Re-execute this script once per size under its own X server."""
    for size in SIZES:
        command = ["xvfb-run", "-a", "-s", f"-screen 0 {size}x24", sys.executable, __file__, "--size", size,
                   "--out", str(out)]
        print(f"$ {' '.join(command)}", flush=True)
        env = {**os.environ, "QT_QPA_PLATFORM": "xcb"}
        if subprocess.run(command, env=env).returncode:
            return 1
    return 0


class HeldSession:
    """studio-mini as the app loads it, whose engine thread can be held after a chosen event."""

    def __init__(self, session) -> None:
        self.session, self.bundle = session, session.bundle
        self.hold_when = None
        self.held = threading.Event()
        self._release = threading.Event()

    @property
    def device(self):
        return self.session.device

    def release(self) -> None:
        self._release.set()

    def generate(self, request, cancel=None):
        for event in self.session.generate(request, cancel):
            yield event
            if self.hold_when is not None and self.hold_when(event):
                self.hold_when = None
                self.held.set()
                self._release.wait(timeout=120)


def wait_for(condition, timeout_s: float = 120.0) -> None:
    """Run the Qt event loop until `condition()` holds (a script, not a test: real time is fine here)."""
    from PySide6.QtWidgets import QApplication

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the demo did not reach the expected state in time")
        QApplication.processEvents()
        time.sleep(0.01)


def settle(seconds: float = 0.6) -> None:
    """Let layouts, repaints and the X server catch up before a grab."""
    end = time.monotonic() + seconds
    wait_for(lambda: time.monotonic() >= end)


def grab(path: Path, widget=None) -> None:
    """The whole screen, or only `widget`'s rectangle on it (a dialog: no window manager draws a frame)."""
    from PySide6.QtGui import QGuiApplication

    settle()
    path.parent.mkdir(parents=True, exist_ok=True)
    screen = QGuiApplication.primaryScreen()
    if widget is None:
        pixmap = screen.grabWindow(0)
    else:
        box = widget.frameGeometry()
        pixmap = screen.grabWindow(0, box.x(), box.y(), box.width(), box.height())
    if not pixmap.save(str(path), "PNG", 0):  # quality 0: the smallest PNG (highest compression)
        raise RuntimeError(f"could not write {path}")
    print(f"wrote {path} ({pixmap.width()}x{pixmap.height()}, {path.stat().st_size // 1024} KiB)", flush=True)


def write_reference(path: Path) -> Path:
    """A picture of the procedural world (what studio-mini was trained on), saved as a PNG file."""
    from PySide6.QtGui import QImage

    from lab.world.scene import BACKGROUNDS, ObjectState, draw

    image = BACKGROUNDS[REFERENCE["background"]].render()
    draw(image, ObjectState(REFERENCE["shape"], REFERENCE["colour"], REFERENCE["x"], REFERENCE["y"],
                            REFERENCE["size"]))
    height, width, _ = image.shape
    picture = QImage(image.tobytes(), width, height, 3 * width, QImage.Format.Format_RGB888)
    if not picture.save(str(path)):
        raise RuntimeError(f"could not write {path}")
    return path


def build_storyboard(studio, reference: Path) -> None:
    """Two named shots with their prompts, through the document's own commands (undoable, as typed), and
    the reference image imported the way a file dropped on the first shot is."""
    from magi_studio.document.commands import AddChunk, AddShot, RenameShot, SetPrompt, new_chunk
    from magi_studio.document.model import new_shot

    session = studio.session
    project = session.project
    for position, (name, prompts) in enumerate(STORYBOARD):
        if position:
            session.push(AddShot(new_shot(project, name=name, prompt=prompts[0], seed=100 * position)))
        shot = project.shots[position]
        session.push(RenameShot(shot.id, name))
        session.push(SetPrompt(shot.id, shot.chunks[0].id, prompts[0]))
        for index, prompt in enumerate(prompts[1:], start=1):
            session.push(AddChunk(shot.id, new_chunk(project, shot.id, index, prompt)))
    if not studio.window.timeline.set_reference_image(project.shots[0].id, str(reference)):
        raise RuntimeError(f"the reference image was refused: {studio.window.last_error}")


def show_welcome(studio, out: Path, size: str) -> None:
    """First start: no settings yet, so the welcome banner is up over a new, empty project."""
    from magi_studio.engine_worker import EngineState

    window = studio.window
    wait_for(lambda: studio.worker.state == EngineState.READY)
    if not window.welcome.isVisible():
        raise RuntimeError("a first start shows the welcome banner")
    grab(out / f"welcome-{size}.png")
    window.welcome.dismiss()  # as the user does; remembered in Settings


def show_dialogs(studio, out: Path) -> None:
    """Edit > Settings, File > Export and Help > Keyboard Shortcuts, each opened by its action."""
    window = studio.window
    for action_id, name, opened in (("edit.settings", "settings", lambda: studio.settings_dialog),
                                    ("file.export", "export", lambda: studio.export_dialog),
                                    ("help.shortcuts", "shortcuts", lambda: window._shortcuts_dialog)):
        window.action_set[action_id].trigger()
        dialog = opened()
        wait_for(lambda: dialog is not None and dialog.isVisible())
        grab(out / f"{name}.png", dialog)
        dialog.close() if name == "shortcuts" else dialog.reject()
        wait_for(lambda: opened() is None or not opened().isVisible())


def run_demo(size: str, out: Path) -> None:
    from PySide6.QtCore import QCoreApplication, QSettings

    from magi_studio.app import create_application

    app = create_application([])
    scratch = Path(tempfile.mkdtemp(prefix="magi-screenshots-"))
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(scratch / "settings"))
    QCoreApplication.setOrganizationName("MAGI Studio Screenshots")
    os.environ["XDG_DATA_HOME"] = str(scratch / "data")
    os.environ["HF_HOME"] = str(scratch / "hf")  # the settings dialog lists what the hub cache holds: none

    from magi_engine.events import StepProgress
    from magi_engine.session import GenerationSession
    from magi_studio.dialogs.project_prompts import DISCARD
    from magi_studio.document.commands import AddChunk, new_chunk
    from magi_studio.engine_worker import EngineState
    from magi_studio.player import SlotState
    from magi_studio.settings import Settings
    from magi_studio.studio import Studio

    class Prompts:  # nothing is asked in a demo: unsaved work is discarded, no file is chosen
        unsaved_changes = offer_recovery = staticmethod(lambda *args, **kwargs: DISCARD)
        confirm_replace = open_path = save_path = staticmethod(lambda *args: None)

    settings = Settings()  # empty: a first start
    studio = Studio(settings, prompts=Prompts(), scratch_root=scratch / "untitled")
    studio.start()
    window, generation = studio.window, studio.generation
    screen = app.primaryScreen().availableGeometry()
    window.setGeometry(screen)  # no window manager under Xvfb to maximise it: fill the screen ourselves
    window.showMaximized()
    if size == SIZES[0]:
        show_welcome(studio, out, size)
    else:
        window.welcome.dismiss()
    engine = HeldSession(GenerationSession.load("studio-mini", device="cpu"))
    wait_for(lambda: studio.worker.state == EngineState.READY)
    job = studio.worker.use_session(engine, spec="studio-mini")
    wait_for(lambda: job not in studio.worker.live_jobs)
    ended: list[str] = []
    generation.runEnded.connect(ended.append)

    build_storyboard(studio, write_reference(scratch / "yellow-ball.png"))
    project = studio.session.project
    first, second = project.shots
    generation.generate_storyboard()
    wait_for(lambda: len(ended) == 1)
    generation.regenerate_from(first.id, 2)  # chunk 3 on: the first shot's second take
    wait_for(lambda: len(ended) == 2)

    # One more chunk, held half-way through its denoising: its card's progress and the status bar's.
    studio.session.push(AddChunk(second.id, new_chunk(project, second.id, len(second.chunks), HELD_CHUNK_PROMPT)))
    held_position = sum(len(s.chunks) for s in project.shots) - 1
    engine.hold_when = lambda e: (isinstance(e, StepProgress) and e.previews
                                  and max(e.chunk_steps.values()) >= e.steps_per_chunk // 2)
    generation.generate_shot(second.id)
    wait_for(lambda: engine.held.is_set() and window.player.store.chunk_count > held_position
             and window.player.store.state(held_position) == SlotState.PREVIEW)
    studio.session.select(first.id, first.chunks[1].id)  # a finished frame in the player
    window.player.seek(24 + 14)
    grab(out / f"main-{size}.png")
    engine.release()
    wait_for(lambda: len(ended) == 3)

    if size == SIZES[1]:  # the first take previewed from the takes view, beside the player
        studio.session.select(first.id, first.chunks[2].id)
        window.show_takes()
        takes = window.takes_view
        wait_for(lambda: takes.tree.topLevelItemCount() > 0)
        takes.tree.setCurrentItem(takes.item(first.takes[0].id))
        window.player.seek(2 * 24 + 12)
        grab(out / f"takes-{size}.png")
        studio.session.set_preview_take("", "")
    else:  # the dialogs on a laptop screen, where they must fit
        show_dialogs(studio, out)
    studio.dispose()
    wait_for(lambda: not studio.worker.is_running())
    shutil.rmtree(scratch, ignore_errors=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.xvfb:
        return run_under_xvfb(args.out)
    import torch

    torch.set_num_threads(2)
    run_demo(args.size, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
