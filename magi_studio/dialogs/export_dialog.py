"""File > Export: the storyboard's active takes (or a shot, a chunk range, the in/out range) to an mp4 with a
sidecar JSON, or to an OpenTimelineIO timeline over that mp4.

    dialog = ExportDialog(session.project, session.store, selected_shot_id=session.selected_shot_id,
                          settings=settings, name=session.display_name, in_out=(48, 96), parent=window)
    dialog.failed.connect(window.report_error)
    dialog.open()

The dialog says which files it will write, and where, before anything is written (the video, its
sidecar, and the .otio for a timeline), and once they are written it offers "Show in Folder" and
"Play" (dialogs/export_done.py). Frame rate and aspect can differ from the project's (see
magi_studio.export); a timeline has one clip per chunk or per shot (magi_studio.otio_export).

Before anything is written, chunks that are not generated (or out of date) are named with
export.describe_pending, and the export goes ahead only if the user chooses "Export What Exists":
chunks not generated are then left out, out-of-date ones are exported as they are. The video is
written by magi_studio.export.export_video on a background thread, behind a progress dialog whose
Cancel stops before the next frame and leaves no file. studio-mini makes 128-pixel video, so the
dialog offers 2x to 8x upscaling, with sharp (nearest) or smooth (bicubic) pixels.
"""

from __future__ import annotations

import dataclasses
import json
import os
from html import escape
from math import gcd
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QMessageBox, QProgressDialog, QPushButton,
                               QRadioButton, QSpinBox, QVBoxLayout, QWidget)

from magi_engine.errors import EngineError, ExportError
from magi_engine.events import CancelToken
from magi_studio.controllers.common import SerialTasks
from magi_studio.document.model import (CHUNK_FRAMES, ChunkState, Project, Shot, Take, active_path,
                                        storyboard_chunks, storyboard_states)
from magi_studio.dialogs.export_done import ExportDoneDialog, describe_files, files_html, grow_to_fit
from magi_studio.export import (CROP, PAD, chunks_of_frames, describe_drafts, describe_pending, draft_chunks,
                                export_video, owning_take, pending_chunks, shaped_size, sidecar_path)
from magi_studio.otio_export import CHUNK, SHOT, TIMELINE_SUFFIX, is_our_export, video_path, write_timeline
from magi_studio.player.marks import timecode

SCALES = (1, 2, 4, 8)
QUALITIES = (("High (CRF 18)", 18), ("Standard (CRF 23)", 23), ("Small file (CRF 28)", 28))
NEAREST, BICUBIC = "nearest", "bicubic"
EXPORT_WHAT_EXISTS = "Export What Exists"
MP4, OTIO = "mp4", "otio"
#: Frame rates offered beside the project's own.
FRAME_RATES = (24, 25, 30, 48, 50, 60)
#: Aspects offered beside the generated one: (label, "w:h").
ASPECTS = (("16:9 (widescreen)", "16:9"), ("4:3", "4:3"), ("1:1 (square)", "1:1"), ("9:16 (vertical)", "9:16"),
           ("2:1 (univisium)", "2:1"))


def ask_about_pending(parent: QWidget | None, message: str) -> bool:
    """The default question: export what exists, or cancel (the default button)."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Export Video", message, parent=parent)
    box.setInformativeText("Chunks not generated are left out of the video; out-of-date chunks are exported as "
                           "they are. Generate them first for the full storyboard.")
    go = box.addButton(EXPORT_WHAT_EXISTS, QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
    box.exec()
    return box.clickedButton() is go


class _UpscaledStore:
    """A ProjectStore seen through nearest-neighbour upscaling (exact pixel blocks; ffmpeg's scaler is bicubic)."""

    def __init__(self, store, factor: int) -> None:
        self._store, self._factor, self.path = store, factor, store.path

    def read_frames(self, result):
        for frame in self._store.read_frames(result):
            yield np.repeat(np.repeat(frame, self._factor, axis=0), self._factor, axis=1)


def existing_only(project: Project) -> Project:
    """The storyboard with its not-generated chunks left out: one take per shot holding its active path."""
    shots = []
    for shot in project.shots:
        kept = [(chunk, result) for chunk, result in zip(shot.chunks, active_path(shot)) if result]
        take = Take("export", "export", results={chunk.id: result for chunk, result in kept})
        shots.append(Shot(shot.id, shot.name, [dataclasses.replace(c) for c, _ in kept], takes=[take],
                          active_take_id=take.id))
    return dataclasses.replace(project, shots=shots)


def restore_chunk_records(sidecar: Path, project: Project) -> None:
    """After exporting `existing_only(project)`: the sidecar's chunk index, state and take as in the real
    storyboard."""
    where = {ref.chunk_id: ref.index for ref in storyboard_chunks(project)}
    states = storyboard_states(project)
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    for record in data["chunks"]:
        record["index"] = where[record["chunk_id"]]
        record["state"] = states[record["shot_id"]][record["index"]].value
        take = owning_take(project.shot(record["shot_id"]), record["chunk_id"], record["result_id"])
        record["take_id"], record["take"] = (take.id, take.name) if take else (None, None)
    tmp = sidecar.with_name(f".{sidecar.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, sidecar)


class _Progress(QObject):
    # (frames written, frames in all), emitted on the export thread, delivered on the GUI thread.
    advanced = Signal(int, int)


class ExportDialog(QDialog):
    #: (magi_studio.export.ExportResult) the video and its sidecar are written.
    exported = Signal(object)
    #: (EngineError) the export failed; also shown in the dialog.
    failed = Signal(object)

    def __init__(self, project: Project, store, *, selected_shot_id: str | None = None, settings=None,
                 ask_pending: Callable[[QWidget, str], bool] = ask_about_pending, name: str | None = None,
                 in_out: tuple[int, int] | None = None,
                 open_url: Callable[[QUrl], bool] = QDesktopServices.openUrl, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ExportDialog")
        self.setWindowTitle("Export Video")
        self.project, self.store, self.settings, self.ask_pending = project, store, settings, ask_pending
        #: The ExportResult once the video is written; the .otio's path when a timeline was written too.
        self.outcome = None
        self.timeline: Path | None = None
        #: The "Export Finished" dialog (Show in Folder, Play) once the export is done.
        self.done_dialog: ExportDoneDialog | None = None
        self.open_url = open_url
        #: The player's in/out points: storyboard frames [in, out), or None when none are set.
        self.in_out = in_out
        self._refs = storyboard_chunks(project)
        self._tasks = SerialTasks("magi-export", self)
        self._token: CancelToken | None = None
        self.progress_dialog: QProgressDialog | None = None
        self._signals = _Progress(self)
        self._signals.advanced.connect(self._on_progress)

        folder = Path(settings.last_folder) if settings is not None and settings.last_folder else Path.home()
        # The project's name as the user knows it ("Untitled", not the scratch bundle's folder name).
        self.project_name = name or store.path.name.removesuffix(".magi")
        self.path_edit = QLineEdit(str(folder / f"{self.project_name}.mp4"))
        browse = QPushButton("Browse…")
        browse.setAutoDefault(False)  # Return exports
        browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)

        self.whole = QRadioButton(f"Whole storyboard ({len(self._refs)} chunks)")
        self.shot = QRadioButton("Selected shot")
        self.chunks = QRadioButton("Chunks")
        self.in_out_button = QRadioButton("In/out range (set with I and O in the player)")
        self.in_out_button.setEnabled(in_out is not None)
        if in_out is not None:
            fps = project.settings.fps
            self.in_out_button.setText(f"In/out range ({timecode(in_out[0], fps)} – {timecode(in_out[1] - 1, fps)}, "
                                       f"{(in_out[1] - in_out[0]) / fps:.1f} s)")
        self.range_group = QButtonGroup(self)
        for button in (self.whole, self.shot, self.chunks, self.in_out_button):
            self.range_group.addButton(button)
        self.first_spin, self.last_spin = QSpinBox(), QSpinBox()
        for spin in (self.first_spin, self.last_spin):
            spin.setRange(1, max(1, len(self._refs)))
        self.last_spin.setValue(len(self._refs))
        self._shot_range = self._range_of_shot(selected_shot_id)
        self.shot.setEnabled(self._shot_range is not None)
        if self._shot_range is not None:
            self.shot.setText(f"Selected shot ({project.shot(selected_shot_id).name})")
        (self.in_out_button if in_out is not None else self.whole).setChecked(True)
        chunk_row = QHBoxLayout()
        chunk_row.addWidget(self.chunks)
        chunk_row.addWidget(self.first_spin)
        chunk_row.addWidget(QLabel("to"))
        chunk_row.addWidget(self.last_spin)
        chunk_row.addStretch(1)
        range_box = QVBoxLayout()
        for widget in (self.whole, self.shot):
            range_box.addWidget(widget)
        range_box.addLayout(chunk_row)
        range_box.addWidget(self.in_out_button)

        self.format_combo = QComboBox()
        self.format_combo.addItem("MP4 video", MP4)
        self.format_combo.addItem("OpenTimelineIO timeline + MP4", OTIO)
        self.clips_combo = QComboBox()
        self.clips_combo.addItem("One clip per chunk", CHUNK)
        self.clips_combo.addItem("One clip per shot", SHOT)
        self.clips_combo.setEnabled(False)
        format_row = QHBoxLayout()
        format_row.addWidget(self.format_combo, 1)
        format_row.addWidget(self.clips_combo, 1)
        self.fps_combo = QComboBox()
        self.fps_combo.addItem(f"{project.settings.fps} fps (the project's)", None)
        for rate in FRAME_RATES:
            if rate != project.settings.fps:
                self.fps_combo.addItem(f"{rate} fps", rate)
        self.aspect_combo = QComboBox()
        self.aspect_combo.addItem(f"As generated ({_ratio(project.settings.width, project.settings.height)})", None)
        for text, aspect in ASPECTS:
            self.aspect_combo.addItem(text, aspect)
        self.fit_combo = QComboBox()
        self.fit_combo.addItem("Black bars (whole picture)", PAD)
        self.fit_combo.addItem("Crop (fill the frame)", CROP)
        self.fit_combo.setEnabled(False)
        aspect_row = QHBoxLayout()
        aspect_row.addWidget(self.aspect_combo, 1)
        aspect_row.addWidget(self.fit_combo, 1)

        width, height = project.settings.width, project.settings.height
        self.scale_combo = QComboBox()
        for factor in SCALES:
            self.scale_combo.addItem(f"{factor}×  ({width * factor} × {height * factor})", factor)
        self.scale_combo.setCurrentIndex(SCALES.index(4) if max(width, height) <= 256 else 0)
        self.filter_combo = QComboBox()
        self.filter_combo.addItem("Sharp pixels (nearest)", NEAREST)
        self.filter_combo.addItem("Smooth (bicubic)", BICUBIC)
        self.quality_combo = QComboBox()
        for text, crf in QUALITIES:
            self.quality_combo.addItem(text, crf)
        # Drafts are not delivered unless asked, as an editor renders from the originals, not the proxies.
        self.drafts_box = QCheckBox("Export drafts, scaled to the project's size", self)
        self.drafts_box.setToolTip("Draft chunks are refused otherwise: render them at final quality first "
                                   "(Generate › Render at Final Quality)")
        has_drafts = bool(draft_chunks(project))
        self.drafts_box.setVisible(has_drafts)
        self.summary = QLabel()
        self.summary.setObjectName("ExportSummary")
        self.summary.setWordWrap(True)
        self.writes = QLabel()
        self.writes.setObjectName("ExportWrites")
        self.writes.setWordWrap(True)
        self.writes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message = QLabel()
        self.message.setObjectName("ExportMessage")
        self.message.setWordWrap(True)
        self.message.hide()

        form = QFormLayout()
        form.addRow("File:", path_row)
        form.addRow("Format:", format_row)
        form.addRow("Range:", range_box)
        form.addRow("Size:", self.scale_combo)
        form.addRow("Upscaling:", self.filter_combo)
        form.addRow("Frame rate:", self.fps_combo)
        form.addRow("Aspect:", aspect_row)
        form.addRow("Quality:", self.quality_combo)
        if has_drafts:
            form.addRow("Drafts:", self.drafts_box)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setDefault(True)
        self.buttons.accepted.connect(self.start_export)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 18, 18, 14)
        layout.setSpacing(12)
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addWidget(self.writes)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(540)

        for signal in (self.range_group.buttonToggled, self.first_spin.valueChanged, self.last_spin.valueChanged,
                       self.scale_combo.currentIndexChanged, self.fps_combo.currentIndexChanged,
                       self.aspect_combo.currentIndexChanged, self.fit_combo.currentIndexChanged,
                       self.drafts_box.toggled):
            signal.connect(self._update_summary)
        self.format_combo.currentIndexChanged.connect(self._on_format)
        self.path_edit.textChanged.connect(self._update_writes)
        self.aspect_combo.currentIndexChanged.connect(
            lambda: self.fit_combo.setEnabled(self.aspect() is not None))
        self.first_spin.valueChanged.connect(lambda: self.chunks.setChecked(True))
        self.last_spin.valueChanged.connect(lambda: self.chunks.setChecked(True))
        self.scale_combo.currentIndexChanged.connect(
            lambda: self.filter_combo.setEnabled(self.scale_combo.currentData() > 1))
        self._update_summary()
        self._update_writes()

    # Choices ----------------------------------------------------------------------------------
    def chunk_range(self) -> tuple[int, int] | None:
        """Storyboard positions [start, stop) to export; None for the whole storyboard (and the chunks the
        in/out range touches while it is chosen)."""
        if self.shot.isChecked() and self._shot_range is not None:
            return self._shot_range
        if self.chunks.isChecked():
            first, last = sorted((self.first_spin.value(), self.last_spin.value()))
            return first - 1, last
        if self.frame_range() is not None:
            return chunks_of_frames(self.frame_range())
        return None

    def frame_range(self) -> tuple[int, int] | None:
        """Storyboard frames [in, out) while the in/out range is chosen, else None."""
        return self.in_out if self.in_out_button.isChecked() and self.in_out is not None else None

    def aspect(self) -> tuple[int, int] | None:
        """The chosen aspect as (width, height); None: as generated."""
        chosen = self.aspect_combo.currentData()
        return None if chosen is None else tuple(int(part) for part in chosen.split(":"))

    def is_timeline(self) -> bool:
        return self.format_combo.currentData() == OTIO

    def output_path(self) -> Path:
        """The file the user names: the mp4, or the .otio of a timeline."""
        path = Path(self.path_edit.text().strip()).expanduser()
        suffix = TIMELINE_SUFFIX if self.is_timeline() else ".mp4"
        return path if path.suffix.lower() == suffix else path.with_name(path.name + suffix)

    def video_path(self) -> Path:
        """The mp4 that is written (beside the .otio for a timeline)."""
        return video_path(self.output_path()) if self.is_timeline() else self.output_path()

    def written_files(self) -> list[Path]:
        """Every file the export writes: the timeline (if chosen), the video and its sidecar."""
        return [path for path, _ in self._described_files()]

    def _described_files(self) -> list[tuple[Path, str]]:
        video = self.video_path()
        return describe_files(video, sidecar_path(video), self.output_path() if self.is_timeline() else None)

    def _range_of_shot(self, shot_id: str | None) -> tuple[int, int] | None:
        positions = [ref.position for ref in self._refs if ref.shot_id == shot_id]
        return (positions[0], positions[-1] + 1) if positions else None

    def _browse(self) -> None:
        kind = f"OpenTimelineIO timeline (*{TIMELINE_SUFFIX})" if self.is_timeline() else "MP4 video (*.mp4)"
        path, _ = QFileDialog.getSaveFileName(self, "Export", self.path_edit.text(), kind)
        if path:
            self.path_edit.setText(path)

    def _on_format(self) -> None:
        timeline = self.is_timeline()
        self.clips_combo.setEnabled(timeline)
        self.setWindowTitle("Export Timeline" if timeline else "Export Video")
        path = Path(self.path_edit.text().strip())
        if path.suffix.lower() in (".mp4", TIMELINE_SUFFIX):  # the name follows the format
            self.path_edit.setText(str(path.with_suffix(TIMELINE_SUFFIX if timeline else ".mp4")))
        self._update_writes()

    def _update_writes(self) -> None:
        self.writes.setText("Writes " + files_html(self._described_files()))
        grow_to_fit(self)  # a third file, a longer folder: grow rather than squeeze the rows above

    def _update_summary(self) -> None:
        chosen = self.chunk_range() or (0, len(self._refs))
        count = max(0, chosen[1] - chosen[0])
        frames = count * CHUNK_FRAMES if self.frame_range() is None else self.frame_range()[1] - self.frame_range()[0]
        project_fps = self.project.settings.fps
        fps = self.fps_combo.currentData() or project_fps
        seconds = frames / project_fps
        pending = pending_chunks(self.project, self.chunk_range())
        text = f"{count} chunk{'s' * (count != 1)}, {-(-frames * fps // project_fps)} frames, {seconds:.1f} s"
        width, height = self.output_size()
        text += f", {width} × {height} at {fps} fps."
        drafts = [] if self.drafts_box.isChecked() else draft_chunks(self.project, self.chunk_range())
        text = f"{text} {describe_pending(pending)}" if pending else text
        self.summary.setText(f"{text} {describe_drafts(self.project, drafts)}" if drafts else text)
        grow_to_fit(self)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        grow_to_fit(self)  # the wrapped summary and file list need more than the first size hint gives

    def output_size(self) -> tuple[int, int]:
        """The video's size in pixels with the chosen scale and aspect (as magi_studio.export shapes it)."""
        factor = self.scale_combo.currentData()
        return shaped_size(self.project.settings.width * factor, self.project.settings.height * factor,
                           self.aspect(), self.fit_combo.currentData())

    # Export -----------------------------------------------------------------------------------
    def start_export(self) -> bool:
        """Check what is missing (asking if anything is), then write the video (and the timeline) off the GUI
        thread."""
        chunk_range, frame_range, output = self.chunk_range(), self.frame_range(), self.output_path()
        video, timeline, clips = self.video_path(), self.is_timeline(), self.clips_combo.currentData()
        if timeline and video.exists() and not is_our_export(video):
            self._show_error(ExportError(f"'{video}' exists and was not written by MAGI Studio; the timeline's "
                                         "video would replace it. Choose another name."))
            return False
        project, use_drafts = self.project, self.drafts_box.isChecked()
        drafts = draft_chunks(project, chunk_range)
        if drafts and not use_drafts:
            self._show_error(ExportError(describe_drafts(project, drafts)))
            return False
        pending = pending_chunks(project, chunk_range)
        if pending:
            refs = self._refs if chunk_range is None else self._refs[chunk_range[0]:chunk_range[1]]
            if all(p.state is ChunkState.EMPTY for p in pending) and len(pending) == len(refs):
                self._show_error(ExportError("None of the chosen chunks is generated yet: there is nothing to "
                                             "export. Generate them first."))
                return False
            if not self.ask_pending(self, describe_pending(pending)):
                return False
            if any(p.state is ChunkState.EMPTY for p in pending):
                project = existing_only(project)
                if frame_range is not None:
                    frame_range = self._kept_frames(project, frame_range)
                chunk_range = None if chunk_range is None else self._kept_range(project, chunk_range)
        factor, smooth = self.scale_combo.currentData(), self.filter_combo.currentData() == BICUBIC
        store = _UpscaledStore(self.store, factor) if factor > 1 and not smooth else self.store
        scale = float(factor) if factor > 1 and smooth else None
        crf, token, progress = self.quality_combo.currentData(), CancelToken(), self._signals.advanced.emit
        fix_sidecar = project is not self.project
        original, name = self.project, self.project_name
        shape = {"fps": self.fps_combo.currentData(), "aspect": self.aspect(),
                 "fit": self.fit_combo.currentData()}
        ranges = {"chunk_range": chunk_range} if frame_range is None else {"frame_range": frame_range}

        def work():  # the export thread
            outcome = export_video(project, store, video, **ranges, **shape, scale=scale, crf=crf,
                                   progress=progress, cancel=token, project_name=name, drafts=use_drafts)
            if outcome is not None and fix_sidecar:
                restore_chunk_records(outcome.sidecar, original)
            written = write_timeline(outcome.sidecar, output, clips=clips) if outcome and timeline else None
            return outcome, written

        self._token = token
        self.export_button.setEnabled(False)
        self.message.hide()
        frames = CHUNK_FRAMES * (len(self._refs) if chunk_range is None else chunk_range[1] - chunk_range[0])
        self.progress_dialog = QProgressDialog(f"Writing {video.name}…", "Cancel", 0, max(1, frames), self)
        self.progress_dialog.setWindowTitle("Exporting")
        self.progress_dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.progress_dialog.setMinimumDuration(0)
        self.progress_dialog.setAutoClose(False)
        self.progress_dialog.setAutoReset(False)
        self.progress_dialog.canceled.connect(token.cancel)
        self.progress_dialog.show()
        self._tasks.submit(work, on_done=self._on_done, on_error=self._on_error)
        return True

    def cancel_export(self) -> None:
        if self._token is not None:
            self._token.cancel()

    def is_exporting(self) -> bool:
        return self._tasks.pending > 0

    def _kept_frames(self, kept: Project, frame_range: tuple[int, int]) -> tuple[int, int]:
        """The in/out range of the real storyboard, as frames of `existing_only(...)`: from the first kept
        chunk of the range to the last, trimmed where the range's own first or last chunk is kept."""
        first, stop = chunks_of_frames(frame_range)
        start, end = self._kept_range(kept, (first, stop))
        kept_ids = {ref.chunk_id for ref in storyboard_chunks(kept)}
        head = frame_range[0] - self._refs[first].start_frame if self._refs[first].chunk_id in kept_ids else 0
        tail = self._refs[stop - 1].stop_frame - frame_range[1] if self._refs[stop - 1].chunk_id in kept_ids else 0
        return start * CHUNK_FRAMES + head, end * CHUNK_FRAMES - tail

    def _kept_range(self, kept: Project, chunk_range: tuple[int, int]) -> tuple[int, int]:
        """A range of the real storyboard, as positions in `existing_only(...)` (its chunks there are contiguous)."""
        wanted = {ref.chunk_id for ref in self._refs[chunk_range[0]:chunk_range[1]]}
        positions = [ref.position for ref in storyboard_chunks(kept) if ref.chunk_id in wanted]
        return positions[0], positions[-1] + 1

    def _on_progress(self, done: int, total: int) -> None:
        if self.progress_dialog is not None:
            self.progress_dialog.setMaximum(total)
            self.progress_dialog.setValue(done)

    def _finish_progress(self) -> None:
        self._token = None
        self.export_button.setEnabled(True)
        if self.progress_dialog is not None:
            self.progress_dialog.close()
            self.progress_dialog.deleteLater()
            self.progress_dialog = None

    def _on_done(self, written) -> None:
        self._finish_progress()
        outcome, timeline = written
        if outcome is None:
            self._show_message("Export cancelled; no video was written.")
            return
        self.outcome, self.timeline = outcome, timeline
        if self.settings is not None:
            self.settings.last_folder = str(outcome.path.parent)
        self.exported.emit(outcome)
        # Beside the window, not this dialog: it stays after this one closes.
        self.done_dialog = ExportDoneDialog(outcome, timeline=timeline, open_url=self.open_url,
                                            parent=self.parentWidget())
        self.done_dialog.open()
        self.accept()

    def _on_error(self, error: BaseException) -> None:
        self._finish_progress()
        if not isinstance(error, EngineError):
            error = ExportError(f"The export stopped on an internal error ({type(error).__name__}: {error}).")
        self._show_error(error)

    def _show_error(self, error: EngineError) -> None:
        self._show_message(f"<b>{escape(error.title)}</b>: {escape(str(error))}")
        self.failed.emit(error)

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.show()

    def reject(self) -> None:
        if self.is_exporting():
            self.cancel_export()
            self._tasks.flush()  # the export stops before its next frame; never leave the thread behind
        super().reject()

    def sidecar_path(self) -> Path:
        return sidecar_path(self.video_path())


def _ratio(width: int, height: int) -> str:
    """"16:9" for 1280 x 720, "1:1" for 128 x 128."""
    divisor = gcd(width, height)
    return f"{width // divisor}:{height // divisor}"
