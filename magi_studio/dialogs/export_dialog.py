"""File > Export: the storyboard's active takes (or a shot, or a chunk range) to an mp4 with a sidecar JSON.

    dialog = ExportDialog(session.project, session.store, selected_shot_id=session.selected_shot_id,
                          settings=settings, name=session.display_name, parent=window)
    dialog.failed.connect(window.report_error)
    dialog.open()

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
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QMessageBox, QProgressDialog, QPushButton,
                               QRadioButton, QSpinBox, QVBoxLayout, QWidget)

from engine.errors import EngineError, ExportError
from engine.events import CancelToken
from magi_studio.controllers.common import SerialTasks
from magi_studio.document.model import (CHUNK_FRAMES, ChunkState, Project, Shot, Take, active_path,
                                        storyboard_chunks, storyboard_states)
from magi_studio.export import describe_pending, export_video, pending_chunks, sidecar_path

SCALES = (1, 2, 4, 8)
QUALITIES = (("High (CRF 18)", 18), ("Standard (CRF 23)", 23), ("Small file (CRF 28)", 28))
NEAREST, BICUBIC = "nearest", "bicubic"
EXPORT_WHAT_EXISTS = "Export What Exists"


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
    """After exporting `existing_only(project)`: the sidecar's chunk index and state as in the real storyboard."""
    where = {ref.chunk_id: ref.index for ref in storyboard_chunks(project)}
    states = storyboard_states(project)
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    for record in data["chunks"]:
        record["index"] = where[record["chunk_id"]]
        record["state"] = states[record["shot_id"]][record["index"]].value
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
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ExportDialog")
        self.setWindowTitle("Export Video")
        self.project, self.store, self.settings, self.ask_pending = project, store, settings, ask_pending
        #: The ExportResult once the video is written.
        self.outcome = None
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
        self.range_group = QButtonGroup(self)
        for button in (self.whole, self.shot, self.chunks):
            self.range_group.addButton(button)
        self.first_spin, self.last_spin = QSpinBox(), QSpinBox()
        for spin in (self.first_spin, self.last_spin):
            spin.setRange(1, max(1, len(self._refs)))
        self.last_spin.setValue(len(self._refs))
        self._shot_range = self._range_of_shot(selected_shot_id)
        self.shot.setEnabled(self._shot_range is not None)
        if self._shot_range is not None:
            self.shot.setText(f"Selected shot ({project.shot(selected_shot_id).name})")
        self.whole.setChecked(True)
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
        self.summary = QLabel()
        self.summary.setObjectName("ExportSummary")
        self.summary.setWordWrap(True)
        self.message = QLabel()
        self.message.setObjectName("ExportMessage")
        self.message.setWordWrap(True)
        self.message.hide()

        form = QFormLayout()
        form.addRow("File:", path_row)
        form.addRow("Range:", range_box)
        form.addRow("Size:", self.scale_combo)
        form.addRow("Upscaling:", self.filter_combo)
        form.addRow("Quality:", self.quality_combo)
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
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(540)

        for signal in (self.range_group.buttonToggled, self.first_spin.valueChanged, self.last_spin.valueChanged,
                       self.scale_combo.currentIndexChanged):
            signal.connect(self._update_summary)
        self.first_spin.valueChanged.connect(lambda: self.chunks.setChecked(True))
        self.last_spin.valueChanged.connect(lambda: self.chunks.setChecked(True))
        self.scale_combo.currentIndexChanged.connect(
            lambda: self.filter_combo.setEnabled(self.scale_combo.currentData() > 1))
        self._update_summary()

    # Choices ----------------------------------------------------------------------------------
    def chunk_range(self) -> tuple[int, int] | None:
        """Storyboard positions [start, stop) to export; None for the whole storyboard."""
        if self.shot.isChecked() and self._shot_range is not None:
            return self._shot_range
        if self.chunks.isChecked():
            first, last = sorted((self.first_spin.value(), self.last_spin.value()))
            return first - 1, last
        return None

    def output_path(self) -> Path:
        path = Path(self.path_edit.text().strip()).expanduser()
        return path if path.suffix.lower() == ".mp4" else path.with_name(path.name + ".mp4")

    def _range_of_shot(self, shot_id: str | None) -> tuple[int, int] | None:
        positions = [ref.position for ref in self._refs if ref.shot_id == shot_id]
        return (positions[0], positions[-1] + 1) if positions else None

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export Video", self.path_edit.text(), "MP4 video (*.mp4)")
        if path:
            self.path_edit.setText(path)

    def _update_summary(self) -> None:
        chosen = self.chunk_range() or (0, len(self._refs))
        count = max(0, chosen[1] - chosen[0])
        seconds = count * CHUNK_FRAMES / self.project.settings.fps
        pending = pending_chunks(self.project, self.chunk_range())
        text = f"{count} chunk{'s' * (count != 1)}, {count * CHUNK_FRAMES} frames, {seconds:.1f} s."
        self.summary.setText(f"{text} {describe_pending(pending)}" if pending else text)

    # Export -----------------------------------------------------------------------------------
    def start_export(self) -> bool:
        """Check what is missing (asking if anything is), then write the video off the GUI thread."""
        chunk_range, output = self.chunk_range(), self.output_path()
        project = self.project
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
                chunk_range = None if chunk_range is None else self._kept_range(project, chunk_range)
        factor, smooth = self.scale_combo.currentData(), self.filter_combo.currentData() == BICUBIC
        store = _UpscaledStore(self.store, factor) if factor > 1 and not smooth else self.store
        scale = float(factor) if factor > 1 and smooth else None
        crf, token, progress = self.quality_combo.currentData(), CancelToken(), self._signals.advanced.emit
        fix_sidecar = project is not self.project
        original, name = self.project, self.project_name

        def work():  # the export thread
            outcome = export_video(project, store, output, chunk_range=chunk_range, scale=scale, crf=crf,
                                   progress=progress, cancel=token, project_name=name)
            if outcome is not None and fix_sidecar:
                restore_chunk_records(outcome.sidecar, original)
            return outcome

        self._token = token
        self.export_button.setEnabled(False)
        self.message.hide()
        frames = CHUNK_FRAMES * (len(self._refs) if chunk_range is None else chunk_range[1] - chunk_range[0])
        self.progress_dialog = QProgressDialog(f"Writing {output.name}…", "Cancel", 0, max(1, frames), self)
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

    def _on_done(self, outcome) -> None:
        self._finish_progress()
        if outcome is None:
            self._show_message("Export cancelled; no video was written.")
            return
        self.outcome = outcome
        if self.settings is not None:
            self.settings.last_folder = str(outcome.path.parent)
        self.exported.emit(outcome)
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
        return sidecar_path(self.output_path())
