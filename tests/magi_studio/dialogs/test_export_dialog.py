"""The export dialog driven like a user: real encoder, the mp4 decoded back (frame count, size, pixels),
the sidecar, upscaling, ranges (the player's in/out range too), frame rate and aspect, the files it says it
writes, the OpenTimelineIO timeline, "Show in Folder" and "Play" when done, pending chunks named before
anything is written, cancel, and errors."""

from __future__ import annotations

import json
import threading

import numpy as np
import opentimelineio as otio
import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QApplication, QDialog, QPushButton

from magi_engine.video_io import probe_video, read_video
from magi_studio.dialogs.export_dialog import BICUBIC, NEAREST, OTIO, SCALES, ExportDialog
from magi_studio.dialogs.export_done import ExportDoneDialog
from magi_studio.otio_export import SHOT
from magi_studio.document.commands import SetPrompt
from magi_studio.document.model import active_path
from tests.magi_studio.document.fakes import fake_generate, rich_project, synthetic_chunk


@pytest.fixture
def complete(tmp_path):
    """Three shots, eight 64x64 chunks, all generated."""
    project, store = rich_project(tmp_path)
    fake_generate(project, store, project.shots[2].id)
    return project, store


@pytest.fixture(autouse=True)
def close_done_dialogs():
    """The "Export Finished" dialog outlives the export dialog (it belongs to the window): close it."""
    yield
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, ExportDoneDialog):
            widget.close()


def open_dialog(qtbot, project, store, **kwargs) -> ExportDialog:
    dialog = ExportDialog(project, store, **kwargs)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def choose(dialog: ExportDialog, path, scale: int, smooth: bool = False) -> None:
    dialog.path_edit.setText(str(path))
    dialog.scale_combo.setCurrentIndex(SCALES.index(scale))
    dialog.filter_combo.setCurrentIndex(dialog.filter_combo.findData(BICUBIC if smooth else NEAREST))


def export(qtbot, dialog: ExportDialog) -> None:
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.outcome is not None or dialog.message.isVisible(), timeout=60_000)


def test_the_whole_storyboard_at_2x_with_sharp_pixels(qtbot, complete, tmp_path):
    project, store = complete
    dialog = open_dialog(qtbot, project, store)
    choose(dialog, tmp_path / "film", 2)  # ".mp4" is added
    export(qtbot, dialog)
    assert dialog.result() == QDialog.DialogCode.Accepted and not dialog.message.isVisible()
    info = probe_video(tmp_path / "film.mp4")
    assert (info.frames, info.width, info.height, round(info.fps)) == (8 * 24, 128, 128, 24)
    decoded = read_video(tmp_path / "film.mp4")
    shot = project.shots[0]
    for i, chunk in enumerate(shot.chunks):
        expected = np.repeat(np.repeat(synthetic_chunk(chunk.seed, chunk.prompt)[1][12], 2, 0), 2, 1)
        assert np.abs(decoded[24 * i + 12].astype(int) - expected).mean() < 4
    sidecar = json.loads((tmp_path / "film.json").read_text())
    assert len(sidecar["chunks"]) == 8 and sidecar["width"] == 128 and sidecar["frames"] == 192
    assert sidecar["chunks"][2]["result_id"] == active_path(shot)[2]


def test_a_chunk_range_at_8x_smooth_and_the_selected_shot(qtbot, complete, tmp_path):
    project, store = complete
    dialog = open_dialog(qtbot, project, store)
    choose(dialog, tmp_path / "range.mp4", 8, smooth=True)
    dialog.first_spin.setValue(2)
    dialog.last_spin.setValue(3)
    assert dialog.chunks.isChecked() and dialog.chunk_range() == (1, 3)
    assert dialog.summary.text().startswith("2 chunks, 48 frames, 2.0 s")
    export(qtbot, dialog)
    info = probe_video(tmp_path / "range.mp4")
    assert (info.frames, info.width, info.height) == (48, 512, 512)

    second = project.shots[1]
    dialog = open_dialog(qtbot, project, store, selected_shot_id=second.id)
    dialog.shot.setChecked(True)
    choose(dialog, tmp_path / "shot.mp4", 1)
    assert not dialog.filter_combo.isEnabled()  # nothing to upscale at 1x
    export(qtbot, dialog)
    chunks = json.loads((tmp_path / "shot.json").read_text())["chunks"]
    assert [(c["shot"], c["index"]) for c in chunks] == [("Shot 2", 0), ("Shot 2", 1)]
    assert probe_video(tmp_path / "shot.mp4").frames == 48


def test_pending_chunks_are_named_and_only_exported_when_chosen(qtbot, tmp_path):
    project, store = rich_project(tmp_path)  # shot 3 (2 chunks) is not generated
    first = project.shots[0]
    SetPrompt(first.id, first.chunks[3].id, "it waits").apply(project)  # chunk 4 is out of date
    asked = []
    answer = [False]
    dialog = open_dialog(qtbot, project, store, ask_pending=lambda parent, text: asked.append(text) or answer[0])
    assert "Shot 3, chunk 1; Shot 3, chunk 2" in dialog.summary.text()
    assert dialog.height() >= dialog.heightForWidth(dialog.width())  # the long summary squeezes no row
    choose(dialog, tmp_path / "partial.mp4", 1)

    assert not dialog.start_export()  # the user cancels: nothing is written
    assert "2 chunks are not generated yet: Shot 3, chunk 1; Shot 3, chunk 2." in asked[0]
    assert "1 chunk is out of date (stale): Shot 1, chunk 4." in asked[0]
    assert not (tmp_path / "partial.mp4").exists() and dialog.isVisible()

    answer[0] = True
    export(qtbot, dialog)
    assert probe_video(tmp_path / "partial.mp4").frames == 6 * 24  # what exists: shots 1 and 2
    chunks = json.loads((tmp_path / "partial.json").read_text())["chunks"]
    assert [(c["shot"], c["index"], c["state"]) for c in chunks] == [
        ("Shot 1", 0, "done"), ("Shot 1", 1, "done"), ("Shot 1", 2, "done"), ("Shot 1", 3, "stale"),
        ("Shot 2", 0, "done"), ("Shot 2", 1, "done")]

    dialog = open_dialog(qtbot, project, store, ask_pending=lambda parent, text: True)
    choose(dialog, tmp_path / "none.mp4", 1)
    dialog.first_spin.setValue(7)
    dialog.last_spin.setValue(8)
    assert not dialog.start_export()
    assert "nothing to export" in dialog.message.text() and not (tmp_path / "none.mp4").exists()


class HeldStore:
    """The project's store, holding the export thread after it read the first chunk until released."""

    def __init__(self, store) -> None:
        self.store, self.path = store, store.path
        self.reading, self.release = threading.Event(), threading.Event()

    def read_frames(self, result):
        frames = self.store.read_frames(result)
        self.reading.set()
        assert self.release.wait(20)
        return frames


def test_cancel_in_the_progress_dialog_leaves_no_file(qtbot, complete, tmp_path):
    project, store = complete
    held = HeldStore(store)
    dialog = open_dialog(qtbot, project, held)
    choose(dialog, tmp_path / "cancelled.mp4", 1)
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(held.reading.is_set, timeout=10_000)
    assert dialog.progress_dialog.isVisible() and dialog.is_exporting()
    cancel = next(b for b in dialog.progress_dialog.findChildren(QPushButton) if b.text() == "Cancel")
    qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    held.release.set()
    qtbot.waitUntil(lambda: not dialog.is_exporting(), timeout=10_000)
    assert "cancelled" in dialog.message.text() and dialog.outcome is None and dialog.isVisible()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith((".cancelled", "cancelled"))] == []


def test_an_unwritable_target_is_reported_in_the_dialog(qtbot, complete, tmp_path):
    project, store = complete
    dialog = open_dialog(qtbot, project, store)
    failures = []
    dialog.failed.connect(failures.append)
    choose(dialog, tmp_path / "no" / "such" / "folder" / "film.mp4", 1)
    export(qtbot, dialog)
    assert failures and failures[0].title == "Export problem"
    assert "Export problem" in dialog.message.text() and dialog.export_button.isEnabled()


def test_a_missing_ffmpeg_is_named_in_the_dialog_and_nothing_is_written(qtbot, complete, tmp_path, no_ffmpeg_binary):
    from magi_engine.video_io import FFMPEG_MISSING

    project, store = complete
    dialog = open_dialog(qtbot, project, store)
    failures = []
    dialog.failed.connect(failures.append)
    choose(dialog, tmp_path / "film.mp4", 1)
    export(qtbot, dialog)
    assert failures and str(failures[0]) == FFMPEG_MISSING
    assert FFMPEG_MISSING.split(":")[0] in dialog.message.text() and dialog.export_button.isEnabled()
    assert dialog.outcome is None and list(tmp_path.glob("*film.mp4*")) == []


def test_it_says_what_it_writes_and_offers_show_in_folder_and_play(qtbot, complete, tmp_path):
    project, store = complete
    opened = []
    dialog = open_dialog(qtbot, project, store, open_url=lambda url: opened.append(url) or True)
    choose(dialog, tmp_path / "film.mp4", 1)
    text = dialog.writes.text()
    assert "film.mp4" in text and "film.json" in text and str(tmp_path) in text and ".otio" not in text
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData(OTIO))
    assert dialog.height() >= dialog.heightForWidth(dialog.width())  # grown for the third file, not squeezed
    dialog.clips_combo.setCurrentIndex(dialog.clips_combo.findData(SHOT))
    assert dialog.path_edit.text() == str(tmp_path / "film.otio") and dialog.windowTitle() == "Export Timeline"
    assert dialog.written_files() == [tmp_path / "film.otio", tmp_path / "film.mp4", tmp_path / "film.json"]
    assert all(path.name in dialog.writes.text() for path in dialog.written_files())
    export(qtbot, dialog)
    assert dialog.timeline == tmp_path / "film.otio" and all(path.is_file() for path in dialog.written_files())
    clips = list(otio.adapters.read_from_file(str(tmp_path / "film.otio")).find_clips())
    assert [clip.name for clip in clips] == ["Shot 1", "Shot 2", "Shot 3"]
    assert [clip.source_range.duration.value for clip in clips] == [96, 48, 48]

    done = dialog.done_dialog
    assert done.isVisible() and all(path.name in done.files.text() for path in dialog.written_files())
    qtbot.mouseClick(done.play_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(done.show_button, Qt.MouseButton.LeftButton)
    assert opened == [QUrl.fromLocalFile(str(tmp_path / "film.mp4")), QUrl.fromLocalFile(str(tmp_path))]
    assert done.isVisible() and done.problem.isHidden()  # both can be used; Close dismisses it
    done.open_url = lambda url: False  # a desktop without a video player
    assert not done.play() and done.problem.isVisible() and str(tmp_path) in done.problem.text()
    qtbot.mouseClick(done.buttons.button(done.buttons.StandardButton.Close), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not done.isVisible())


def test_the_in_out_range_at_another_frame_rate_and_aspect(qtbot, complete, tmp_path):
    project, store = complete
    dialog = open_dialog(qtbot, project, store, in_out=(30, 100))
    assert dialog.in_out_button.isChecked() and "(00:00:01:06 – 00:00:04:03, 2.9 s)" in dialog.in_out_button.text()
    choose(dialog, tmp_path / "io.mp4", 1)
    dialog.fps_combo.setCurrentIndex(dialog.fps_combo.findData(25))
    dialog.aspect_combo.setCurrentIndex(dialog.aspect_combo.findData("16:9"))
    assert dialog.fit_combo.isEnabled() and dialog.frame_range() == (30, 100)
    assert dialog.summary.text().startswith("4 chunks, 73 frames, 2.9 s, 114 × 64 at 25 fps")
    export(qtbot, dialog)
    info = probe_video(tmp_path / "io.mp4")
    assert (info.frames, info.width, info.height, round(info.fps)) == (73, 114, 64, 25)
    assert open_dialog(qtbot, project, store).whole.isChecked()  # without in/out points: the whole storyboard


def test_the_in_out_range_exports_what_exists_trimmed(qtbot, tmp_path):
    project, store = rich_project(tmp_path)  # shot 3 (frames 144-192) is not generated
    dialog = open_dialog(qtbot, project, store, in_out=(130, 170), ask_pending=lambda parent, text: True)
    choose(dialog, tmp_path / "partial.mp4", 1)
    export(qtbot, dialog)
    assert probe_video(tmp_path / "partial.mp4").frames == 14  # frames 130-144: the end of shot 2
    chunks = json.loads((tmp_path / "partial.json").read_text())["chunks"]
    shot = project.shots[1]
    assert [(c["shot"], c["index"], c["chunk_frames"], c["take_id"]) for c in chunks] == [
        ("Shot 2", 1, [10, 24], shot.takes[0].id)]


def test_drafts_are_refused_in_one_sentence_unless_exported_scaled_to_the_projects_size(qtbot, tmp_path):
    from magi_engine.config import SamplingConfig
    from magi_studio.document.commands import SetProjectSettings
    from magi_studio.document.planning import plan_generation
    from tests.magi_studio.document.fakes import fake_run

    project, store = rich_project(tmp_path)
    SetProjectSettings(width=128, height=128).apply(project)
    second = project.shots[1]  # its image-started take, 64x64, is out of date at 128x128: made again as a draft
    fake_run(project, store, plan_generation(project, store, second.id, 0, sampling=SamplingConfig(num_steps=8),
                                             new_take=True, draft=True))
    dialog = open_dialog(qtbot, project, store, selected_shot_id=second.id)
    assert dialog.drafts_box.isVisible() and not dialog.drafts_box.isChecked()
    dialog.shot.setChecked(True)
    assert "2 chunks are drafts (Shot 2, chunk 1; Shot 2, chunk 2)" in dialog.summary.text()
    dialog.path_edit.setText(str(tmp_path / "drafts.mp4"))
    dialog.scale_combo.setCurrentIndex(SCALES.index(1))
    export(qtbot, dialog)
    assert dialog.message.isVisible() and "render them at final quality" in dialog.message.text()
    assert not (tmp_path / "drafts.mp4").exists()
    dialog.drafts_box.setChecked(True)  # as Resolve's "Use proxy media": the drafts, scaled up
    assert "drafts" not in dialog.summary.text()
    export(qtbot, dialog)
    info = probe_video(tmp_path / "drafts.mp4")
    assert (info.frames, info.width, info.height) == (2 * 24, 128, 128)
    assert [c.get("draft") for c in json.loads((tmp_path / "drafts.json").read_text())["chunks"]] == [True, True]
