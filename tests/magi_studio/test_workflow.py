"""The studio's whole workflow end to end (issue 3), on studio-mini, through the app's top-level object.

One test drives the real widgets of a Studio (magi_studio.studio) — cards, the storyboard strip, the
toolbar, the takes view, the export dialog — exactly as a director would, and reads the controllers
and the document only to check the state. The engine is studio-mini (resources/models/studio-mini,
about 1 s per chunk on this CPU), wrapped in a PausingSession so that "a chunk is in the player before
the last one is done" and "Cancel stops within one denoising step" are checked at a chosen moment
instead of raced. The steps, in order:

new project → a shot prompt and 3 chunk prompts typed (each new chunk's prompt has the keys at once) → a
reference image dropped on the shot (a real QDropEvent with a file URL) → Generate → chunk 1 in the player
while the engine holds → Stop (within one step, chunk 1 kept) → Generate resumes the rest; the picture is
the first frame → chunk 2's prompt edited, Regenerate from chunk 2 (chunk 1's latent and frames
bit-identical, its latent reused as context; the player shows the new chunks 2–3) → two takes → compared
A/B on one key, the old take made active in the takes view (its prompt back on the card; timeline and
player follow, no generation) → two variations of chunk 3 (Generate Variations…, its dialog answered), and
Ctrl+Q during them: Keep Working, the run goes on → Export (the mp4 decoded: 72 frames, its size, the
active take's pixels; the sidecar's joined prompts, seeds, model; the done dialog lists both files) → the
I/O range exported as an OpenTimelineIO cut (read back: two trimmed clips with their prompts) → Save → two
chunks more, Generate, Ctrl+Q once the first is finished: Stop and Quit keeps it and saves → a fresh start
reopens the last project, equal → Undo/Redo of a prompt edit → a corrupt project opened: the clear message,
the file unchanged, and unchanged by a later Save.
"""

from __future__ import annotations

import copy
import json
import random
import shutil

import imageio_ffmpeg
import numpy as np
import opentimelineio as otio
import torch
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import QApplication, QInputDialog, QMessageBox

from magi_engine.events import ChunkFinished
from magi_engine.session import GenerationSession
from magi_studio.dialogs.export_dialog import OTIO, SCALES
from magi_studio.dialogs.export_done import ExportDoneDialog
from magi_studio.dialogs.project_prompts import SAVE, ProjectPrompts
from magi_studio.document.model import ChunkState, active_path, chunk_states, joined_prompt
from magi_studio.document.store import MANIFEST
from magi_studio.engine_worker import EngineState, JobStarted
from magi_studio.player import SlotState as PlayerState
from tests.magi_studio.conftest import PausingSession
from tests.magi_studio.timeline.helpers import drop, file_mime, wait_for_frames

PROMPTS = ("a red ball falls and bounces on white", "the red ball rolls to the right", "the red ball stays still")
SHOT_PROMPT = "on white"
JOINED = [joined_prompt(SHOT_PROMPT, prompt) for prompt in PROMPTS]  # what the engine receives
EDITED = "the red ball rolls to the left"  # chunk 2, before it is regenerated
MORE = ("the red ball rolls to the left", "the red ball falls")  # two chunks added at the end
LONG = 60_000  # ms: generous for a loaded CI machine; every wait ends as soon as its state is reached
CTRL, SHIFT, ALT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.AltModifier


def click_tool(qtbot, window, action_id: str) -> None:
    """Click the main toolbar's button of an action, as the user would."""
    qtbot.mouseClick(window.toolbar.widgetForAction(window.action_set[action_id]), Qt.MouseButton.LeftButton)


def type_prompt(qtbot, card, text: str) -> None:
    card.prompt.setFocus()
    card.prompt.selectAll()
    qtbot.keyClicks(card.prompt, text)


def answer_when_asked(kind, answer) -> list:
    """When a modal dialog of `kind` opens (a question the app asks), give it `answer(dialog)` as the user would.
    Returns a list that holds the dialog once answered."""
    answered, clock = [], QElapsedTimer()

    def poll() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, kind):  # not asked (yet): never outlives the test and answers another's question
            return QTimer.singleShot(20, poll) if clock.elapsed() < LONG else None
        answered.append(box.windowTitle())
        answer(box)

    clock.start()
    QTimer.singleShot(0, poll)
    return answered


def activate(qtbot, window) -> None:
    """Back in the main window after a dialog (a click on it): its shortcuts answer only while it is active."""
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)


def click_button(text: str):
    return lambda box: next(b for b in box.buttons() if b.text() == text).click()


def add_chunk_and_type(qtbot, timeline, session, prompt: str) -> None:
    """Add Chunk (Ctrl+Shift+N): the new chunk's prompt has the keys at once, so typing goes straight into it."""
    qtbot.keyClick(timeline.strip, Qt.Key.Key_N, CTRL | SHIFT)
    field = timeline.card(session.selected_chunk_id).prompt
    assert field.hasFocus() and QApplication.focusWidget() is field
    qtbot.keyClicks(QApplication.focusWidget(), prompt)


def select_card(qtbot, timeline, chunk_id: str) -> None:
    qtbot.mouseClick(timeline.card(chunk_id).index_label, Qt.MouseButton.LeftButton)


def reference_image(path) -> str:
    """A 300x200 PNG with a red disc, as if dragged from the file manager (not the project's size)."""
    image = QImage(300, 200, QImage.Format.Format_RGB888)
    image.fill(QColor("white"))
    for y in range(60, 140):
        for x in range(110, 190):
            if (x - 150) ** 2 + (y - 100) ** 2 < 40 ** 2:
                image.setPixelColor(x, y, QColor("red"))
    assert image.save(str(path))
    return str(path)


def decode(path) -> tuple[tuple[int, int], np.ndarray]:
    """(width, height), frames (N, H, W, 3) of an mp4, read back through ffmpeg."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(data, np.uint8).reshape(height, width, 3) for data in reader]
    return (width, height), np.stack(frames)


def test_the_whole_workflow_on_studio_mini(qtbot, make_studio, tmp_path):
    # 1. `magi-studio`: a new untitled project, one shot of one chunk, on studio-mini (loaded at start).
    studio = make_studio()
    window, timeline, player = studio.window, studio.window.timeline, studio.window.player
    qtbot.waitUntil(lambda: studio.worker.state == EngineState.READY, timeout=LONG)
    window.action_set["file.new"].trigger()  # File > New: nothing to save, so no question
    project = studio.session.project
    assert [len(s.chunks) for s in project.shots] == [1] and project.settings.model == "studio-mini"
    # The engine, held after chunk 1 of the first run; otherwise studio-mini as the app loads it.
    engine = PausingSession(GenerationSession.load("studio-mini", device="cpu"),
                            pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 0)
    job = studio.worker.use_session(engine, spec="studio-mini")
    qtbot.waitUntil(lambda: job not in studio.worker.live_jobs, timeout=LONG)
    jobs_started: list[str] = []
    studio.worker.event.connect(lambda job_id, event: isinstance(event, JobStarted) and jobs_started.append(event.kind))
    ended: list[str] = []
    studio.generation.runEnded.connect(ended.append)

    # 2. The shot's prompt in its header (what every chunk shares), then three chunk prompts.
    shot_field = timeline.strip.groups[0].prompt_edit
    qtbot.mouseClick(shot_field, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(shot_field, SHOT_PROMPT)
    type_prompt(qtbot, timeline.cards()[0], PROMPTS[0])
    for prompt in PROMPTS[1:]:
        add_chunk_and_type(qtbot, timeline, studio.session, prompt)
    shot = project.shots[0]
    assert [c.prompt for c in shot.chunks] == list(PROMPTS) and len(timeline.cards()) == 3
    assert shot.prompt == SHOT_PROMPT and timeline.cards()[1].prompt.toolTip() == f"The engine receives: {JOINED[1]}"

    # 3. A reference image dropped from the file manager onto the shot: its first frame.
    first_card = timeline.cards()[0]
    entered, dropped = drop(timeline.strip, first_card.mapTo(timeline.strip, first_card.rect().center()),
                            file_mime(reference_image(tmp_path / "ball.png")))
    assert entered and dropped and shot.reference_asset_id is not None and shot.start == "image"
    assert timeline.cards()[0].model.reference is not None  # the card shows it

    # 4. Generate: chunk 1 is painted in the player and its card while the rest is still to come.
    click_tool(qtbot, window, "generate.run")
    qtbot.waitUntil(lambda: engine.paused.is_set() and player.store.chunk_count >= 1
                    and player.store.state(0) == PlayerState.FRAMES, timeout=LONG)
    assert active_path(shot)[2] is None  # the engine holds: the last chunk cannot be done yet
    qtbot.waitUntil(lambda: timeline.cards()[0].badge.text() == "Done", timeout=LONG)
    assert window.job_progress.isVisible() and "of 3 in this run" in window.job_progress.text()

    # 5. Stop: within one denoising step, the finished chunk kept.
    assert window.action_set["generate.cancel"].isEnabled()
    click_tool(qtbot, window, "generate.cancel")
    engine.resume()
    qtbot.waitUntil(lambda: ended == ["cancelled"], timeout=LONG)
    assert engine.after_cancel.count("StepProgress") <= 1
    kept = active_path(shot)
    assert kept[0] is not None and kept[1:] == [None, None]
    assert window.status_message.text() == "Stopped — 1 finished chunk kept"

    # 6. Generate again resumes: the missing chunks are made, the finished one is kept.
    click_tool(qtbot, window, "generate.run")
    qtbot.waitUntil(lambda: ended == ["cancelled", "finished"], timeout=LONG)
    old_path, old_take = active_path(shot), shot.active_take_id
    assert old_path[0] == kept[0] and chunk_states(project, shot.id) == [ChunkState.DONE] * 3
    assert [c.badge.text() for c in timeline.cards()] == ["Done"] * 3
    assert [player.store.state(i) for i in range(3)] == [PlayerState.FRAMES] * 3
    store = studio.session.store
    latent_before = store.read_latent(project.results[old_path[0]]).clone()
    frames_before = store.read_frames(project.results[old_path[0]]).copy()
    shown_before = [player.store.frames(i).copy() for i in range(3)]
    assert np.array_equal(shown_before[0], frames_before)
    # Image-to-video: the dropped picture (a red disc on white, fitted to the project) is the first frame.
    first = frames_before[0].astype(np.int16)
    centre, corner = first[48:80, 48:80].reshape(-1, 3).mean(0), first[:16, :16].reshape(-1, 3).mean(0)
    assert centre[0] > 150 and centre[1] < 100 and corner.min() > 200

    # 7. Chunk 2's prompt edited, then Regenerate from chunk 2 (Ctrl+R on the selected card): chunk 1
    #    bit-identical, latents and frames.
    studio.generation.seed_source = random.Random(7)  # a new seed would be drawn at random: fixed, the run repeats
    type_prompt(qtbot, timeline.card(shot.chunks[1].id), EDITED)
    qtbot.keyClick(timeline.card(shot.chunks[1].id).prompt, Qt.Key.Key_Escape)  # Esc leaves the field
    assert timeline.strip.hasFocus() and chunk_states(project, shot.id)[1] is ChunkState.STALE
    select_card(qtbot, timeline, shot.chunks[1].id)
    qtbot.keyClick(timeline.strip, Qt.Key.Key_R, CTRL)
    qtbot.waitUntil(lambda: len(ended) == 3, timeout=LONG)
    new_path = active_path(shot)
    assert ended[-1] == "finished" and new_path[0] == old_path[0] and set(new_path[1:]).isdisjoint(old_path)
    assert torch.equal(store.read_latent(project.results[new_path[0]]), latent_before)
    assert np.array_equal(store.read_frames(project.results[new_path[0]]), frames_before)
    assert project.results[new_path[1]].context_ids == (old_path[0],)  # made from that latent, not re-encoded
    # The player shows the new take: chunk 1 as it was, chunks 2 and 3 the new frames.
    assert np.array_equal(player.store.frames(0), shown_before[0])
    for i in (1, 2):
        new_frames = store.read_frames(project.results[new_path[i]])
        assert np.array_equal(player.store.frames(i), new_frames) and not np.array_equal(new_frames, shown_before[i])
    new_frames_2 = player.store.frames(1).copy()

    # 8. Two takes; 9. the old one made active in the takes view: timeline and player follow, no generation.
    assert len(shot.takes) == 2 and shot.active_take_id != old_take
    generations = jobs_started.count("generate")
    takes = window.takes_view
    window.action_set["generate.takes"].trigger()
    qtbot.waitUntil(takes.tree.isVisible, timeout=5000)
    item = takes.item(old_take)
    qtbot.mouseClick(takes.tree.viewport(), Qt.MouseButton.LeftButton,
                     pos=takes.tree.visualItemRect(item).center())
    assert studio.session.preview_take == (shot.id, old_take) and window.preview_bar.isVisible()
    frame = player.current_frame
    qtbot.keyClick(takes.tree, Qt.Key.Key_Backslash)  # A/B: the player flips to the active take, same frame
    assert studio.session.preview_take == ("", "") and player.current_frame == frame
    qtbot.keyClick(takes.tree, Qt.Key.Key_Backslash)  # and back to the compared take
    assert studio.session.preview_take == (shot.id, old_take) and player.current_frame == frame
    qtbot.mouseClick(takes.activate_button, Qt.MouseButton.LeftButton)
    assert shot.active_take_id == old_take and active_path(shot) == old_path
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 3  # its specs came back with it: not stale
    assert shot.chunks[1].prompt == PROMPTS[1] and timeline.card(shot.chunks[1].id).prompt.toPlainText() == PROMPTS[1]
    old_frames = store.read_frames(project.results[old_path[1]])
    wait_for_frames(qtbot, window.player_sync)  # the switched take's frames are decoded in the background
    assert np.array_equal(player.store.frames(1), old_frames)
    old_thumb = QPixmap(str(store.thumbnail_path(project.results[old_path[1]]))).toImage()
    assert timeline.card(shot.chunks[1].id).model.thumbnail.toImage() == old_thumb
    assert timeline.strip.groups[0].take_chip.text().startswith("Take 1 of 2")
    assert jobs_started.count("generate") == generations and not studio.generation.is_generating()

    # 9b. Two variations of chunk 3 (Generate Variations…, Ctrl+Alt+G; its dialog asks how many), held after
    #     the first one's chunk: Ctrl+Q asks first, and Keep Working lets the run go on.
    select_card(qtbot, timeline, shot.chunks[2].id)
    engine.arm(lambda e: isinstance(e, ChunkFinished))
    how_many = answer_when_asked(QInputDialog, lambda box: (box.setIntValue(2), box.accept()))
    qtbot.keyClick(timeline.strip, Qt.Key.Key_G, CTRL | ALT)
    qtbot.waitUntil(engine.paused.is_set, timeout=LONG)
    assert how_many == ["Generate Variations"] and window.queue_view.items() == [
        "Shot 1 · variation 1 of 2 · generating", "Shot 1 · variation 2 of 2 · from chunk 3"]
    studio.projects.prompts.stop_run = ProjectPrompts(window).stop_run  # the real question
    activate(qtbot, window)
    keep_working = answer_when_asked(QMessageBox, click_button("Keep Working"))
    qtbot.keyClick(timeline.strip, Qt.Key.Key_Q, CTRL)
    assert keep_working == ["MAGI Studio"] and window.isVisible() and studio.generation.is_generating()
    assert not engine.after_cancel[len(ended):]
    engine.resume()
    qtbot.waitUntil(lambda: len(ended) == 4, timeout=LONG)
    assert ended[-1] == "finished" and window.queue_view.items() == []
    variations = shot.takes[2:]
    assert len(variations) == 2 and shot.active_take_id == old_take and active_path(shot) == old_path
    assert all(t.parent_id == old_take and set(t.results) == {shot.chunks[2].id} for t in variations)
    seeds = {t.specs[shot.chunks[2].id].seed for t in variations}
    assert len(seeds) == 2 and shot.chunks[2].seed not in seeds

    # 10. Export (the toolbar's Export…): the mp4 decoded, 3 x 24 frames at 2x the project's size.
    click_tool(qtbot, window, "file.export")
    dialog = studio.export_dialog
    qtbot.waitExposed(dialog)
    dialog.path_edit.setText(str(tmp_path / "film.mp4"))
    dialog.scale_combo.setCurrentIndex(SCALES.index(2))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: studio.export_dialog is None, timeout=LONG)
    size, video = decode(tmp_path / "film.mp4")
    assert size == (256, 256) and len(video) == 72
    # It is the active (old) take: chunk 2's frames, downscaled back, match them and not the newer take's.
    chunk_2 = video[24:48, ::2, ::2].astype(np.int16)
    differ = np.abs(old_frames.astype(np.int16) - new_frames_2).max(-1) > 48  # where the two takes clearly differ
    exported_vs = {name: float(np.abs(chunk_2 - frames)[differ].mean())
                   for name, frames in (("old", old_frames), ("new", new_frames_2))}
    assert differ.sum() > 500 and exported_vs["old"] < exported_vs["new"] / 3
    sidecar = json.loads((tmp_path / "film.json").read_text())  # prompts, seeds, model, settings per chunk
    assert (sidecar["frames"], sidecar["width"], sidecar["height"]) == (72, 256, 256)
    assert sidecar["project"] == "Untitled" and sidecar["video"] == "film.mp4"  # not the scratch folder's name
    assert [c["prompt"] for c in sidecar["chunks"]] == JOINED
    assert [c["seed"] for c in sidecar["chunks"]] == [project.results[r].seed for r in old_path]
    assert [c["result_id"] for c in sidecar["chunks"]] == old_path
    assert {c["model"] for c in sidecar["chunks"]} == {"studio-mini"}
    assert [c["frames"] for c in sidecar["chunks"]] == [[0, 24], [24, 48], [48, 72]]
    done = window.findChild(ExportDoneDialog)  # what was written, with Show in Folder and Play
    assert done.isVisible() and "film.mp4" in done.files.text() and "film.json" in done.files.text()
    done.close()

    # 10b. I and O mark frames 30-59 in the player; the export offers that range, here as an OTIO cut.
    player.mark_in(30)
    player.mark_out(59)
    click_tool(qtbot, window, "file.export")
    dialog = studio.export_dialog
    qtbot.waitExposed(dialog)
    assert dialog.in_out_button.isChecked()
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData(OTIO))
    dialog.path_edit.setText(str(tmp_path / "cut.otio"))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: studio.export_dialog is None, timeout=LONG)
    clips = list(otio.adapters.read_from_file(str(tmp_path / "cut.otio")).find_clips())
    assert [c.source_range.duration.value for c in clips] == [18, 12]  # chunk 2 from its frame 6, chunk 3 to 11
    assert [c.metadata["magi_studio"]["prompt"] for c in clips] == JOINED[1:]
    assert len(decode(tmp_path / "cut.mp4")[1]) == 30
    window.findChild(ExportDoneDialog).close()
    player.clear_in_out()

    # 11. Save (the toolbar's Save): untitled, so it asks where.
    studio.projects.prompts.save_answer = str(tmp_path / "Film")
    click_tool(qtbot, window, "file.save")
    assert window.windowTitle() == "Film[*] — MAGI Studio" and not window.isWindowModified()

    # 11b. Two chunks more and Generate; Ctrl+Q once the first of them is finished: Stop and Quit keeps it
    #      (the engine stops within one step), then the unsaved edits are saved as asked, and the app quits.
    activate(qtbot, window)  # back from the export dialogs
    for prompt in MORE:
        add_chunk_and_type(qtbot, timeline, studio.session, prompt)
    engine.arm(lambda e: isinstance(e, ChunkFinished))
    click_tool(qtbot, window, "generate.run")
    qtbot.waitUntil(engine.paused.is_set, timeout=LONG)

    def stop_and_quit(box) -> None:
        engine.resume()  # the engine goes on, so that it can stop
        click_button("Stop and Quit")(box)

    stopped = answer_when_asked(QMessageBox, stop_and_quit)
    studio.projects.prompts.unsaved = SAVE
    qtbot.keyClick(timeline.strip, Qt.Key.Key_Q, CTRL)
    assert stopped == ["MAGI Studio"] and not window.isVisible() and ended[-1] == "cancelled"
    assert [kind for kind, _ in studio.projects.prompts.asked] == ["save_path", "unsaved"]
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 4 + [ChunkState.EMPTY]
    saved = copy.deepcopy(project)

    # 12. The next start reopens the last project in a fresh window: the same project.
    again = make_studio()
    assert again.projects.path == tmp_path / "Film.magi"
    reopened = again.session.project
    assert reopened == saved  # prompts, seeds, reference, results, every take, the active path, settings
    shot2 = reopened.shots[0]
    assert [c.prompt for c in shot2.chunks] == list(PROMPTS + MORE) and [c.seed for c in shot2.chunks] == \
        [c.seed for c in saved.shots[0].chunks]
    assert shot2.reference_asset_id == shot.reference_asset_id and len(shot2.takes) == 4
    assert shot2.active_take_id == old_take and active_path(shot2)[:3] == old_path
    assert reopened.settings == saved.settings
    timeline2, player2 = again.window.timeline, again.window.player
    assert [c.badge.text() for c in timeline2.cards()] == ["Done"] * 4 + ["Empty"]
    wait_for_frames(qtbot, again.window.player_sync)  # a reopened project decodes in the background
    assert np.array_equal(player2.store.frames(1), old_frames)

    # 13. Undo and Redo of a prompt edit, through the window's toolbar and shortcut.
    card = timeline2.cards()[2]
    card.prompt.setFocus()
    card.prompt.moveCursor(card.prompt.textCursor().MoveOperation.End)
    qtbot.keyClicks(card.prompt, " slowly")
    assert shot2.chunks[2].prompt == PROMPTS[2] + " slowly" and again.window.isWindowModified()
    click_tool(qtbot, again.window, "edit.undo")
    assert shot2.chunks[2].prompt == PROMPTS[2] and card.prompt.text() == PROMPTS[2]
    assert not again.window.isWindowModified()
    qtbot.keyClick(timeline2.strip, Qt.Key.Key_Z, CTRL | SHIFT)
    assert shot2.chunks[2].prompt == PROMPTS[2] + " slowly" and card.prompt.text() == PROMPTS[2] + " slowly"

    # 14. A corrupt project (File > Open): the clear message, the file untouched, the open project kept.
    broken = tmp_path / "Broken.magi"
    shutil.copytree(tmp_path / "Film.magi", broken)
    (broken / MANIFEST).write_bytes(b"{ not json")
    before = {p: p.read_bytes() for p in broken.rglob("*") if p.is_file()}
    again.projects.prompts.open_answer = str(broken / MANIFEST)
    click_tool(qtbot, again.window, "file.open")
    banner = again.window.error_banner
    assert banner.isVisible() and banner.title.text() == "Project problem" and "damaged" in banner.body.text()
    assert {p: p.read_bytes() for p in broken.rglob("*") if p.is_file()} == before
    assert again.projects.path == tmp_path / "Film.magi" and again.session.project is reopened
    # Saving now writes the open project, never over the file that could not be read.
    qtbot.keyClick(timeline2.strip, Qt.Key.Key_S, CTRL)
    assert not again.window.isWindowModified() and again.projects.path == tmp_path / "Film.magi"
    assert PROMPTS[2] + " slowly" in (tmp_path / "Film.magi" / MANIFEST).read_text()
    assert {p: p.read_bytes() for p in broken.rglob("*") if p.is_file()} == before
