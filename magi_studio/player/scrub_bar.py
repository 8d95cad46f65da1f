"""The scrub bar: the timeline in miniature, one cell per chunk, with the playhead and loop range.

Cells show each chunk's state (generated, live preview, hole) so the director sees at a glance what
can be played; clicking or dragging anywhere seeks (`scrubbed(frame)`), and the keyboard works like a
slider's (arrows by frame, Page Up/Down by chunk, Home/End).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from magi_studio.player.frame_store import FRAMES_PER_CHUNK, ChunkState, FrameStore
from magi_studio.theme import palette

_CELL_COLOURS = {
    ChunkState.FRAMES: "#3f3a8f",
    ChunkState.PREVIEW: "#1b5566",
    ChunkState.EMPTY: "#2a2e37",
    ChunkState.LOADING: "#33304f",
    ChunkState.UNREADABLE: "#4a2a2a",
}


class ScrubBar(QWidget):
    """Seek by mouse or keyboard over a FrameStore's chunks."""

    scrubbed = Signal(int)

    PAD = 8  # room at each end so the playhead's cap is never clipped

    def __init__(self, store: FrameStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ScrubBar")
        self.setAccessibleName("Playhead position")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(160)
        self._store = store
        self._frame = 0
        self._loop: tuple[int, int] | None = None
        store.chunkChanged.connect(self.update)
        store.layoutChanged.connect(self.update)

    def sizeHint(self) -> QSize:
        return QSize(480, 34)

    def minimumSizeHint(self) -> QSize:
        return QSize(160, 34)

    def set_frame(self, frame: int) -> None:
        if frame != self._frame:
            self._frame = frame
            self.update()

    def set_loop_range(self, loop: tuple[int, int] | None) -> None:
        """Highlight frames first..last (inclusive), or nothing."""
        self._loop = loop
        self.update()

    # Geometry ---------------------------------------------------------------------------------
    def _track(self) -> QRectF:
        return QRectF(self.PAD, 9, max(1, self.width() - 2 * self.PAD), self.height() - 15)

    def x_for_frame(self, frame: float) -> float:
        track, count = self._track(), max(1, self._store.frame_count)
        return track.left() + track.width() * frame / count

    def frame_at(self, x: float) -> int:
        track, count = self._track(), self._store.frame_count
        if count == 0:
            return 0
        frame = int((x - track.left()) / track.width() * count)
        return min(max(frame, 0), count - 1)

    # Input ------------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._store.frame_count:
            self.scrubbed.emit(self.frame_at(event.position().x()))

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton and self._store.frame_count:
            self.scrubbed.emit(self.frame_at(event.position().x()))

    def keyPressEvent(self, event) -> None:
        count = self._store.frame_count
        steps = {Qt.Key.Key_Left: -1, Qt.Key.Key_Right: 1, Qt.Key.Key_PageUp: -FRAMES_PER_CHUNK,
                 Qt.Key.Key_PageDown: FRAMES_PER_CHUNK}
        if count and event.key() in steps:
            self.scrubbed.emit(min(max(self._frame + steps[event.key()], 0), count - 1))
        elif count and event.key() in (Qt.Key.Key_Home, Qt.Key.Key_End):
            self.scrubbed.emit(0 if event.key() == Qt.Key.Key_Home else count - 1)
        else:
            super().keyPressEvent(event)

    # Painting ---------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        track = self._track()
        chunks = self._store.chunk_count
        if chunks == 0:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(_CELL_COLOURS[ChunkState.EMPTY]))
            painter.drawRoundedRect(track, 4, 4)
            painter.end()
            return
        cell_width = track.width() / chunks
        gap = 2.0 if cell_width > 10 else 0.0
        for chunk in range(chunks):
            cell = QRectF(track.left() + chunk * cell_width, track.top(), cell_width - gap, track.height())
            state = self._store.state(chunk)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(_CELL_COLOURS[state]))
            painter.drawRoundedRect(cell, 3, 3)
            if state == ChunkState.PREVIEW:  # fill the cell as far as the chunk's denoising has got
                progress = self._store.preview_progress(chunk) or 0.0
                painter.setBrush(QColor(palette.CYAN).darker(130))
                painter.drawRoundedRect(QRectF(cell.left(), cell.bottom() - 3, cell.width() * progress, 3), 1.5, 1.5)
            if cell_width >= 26:
                painter.setPen(QColor(palette.TEXT_DIM if state != ChunkState.EMPTY else palette.TEXT_FAINT))
                painter.drawText(cell, Qt.AlignmentFlag.AlignCenter, str(chunk + 1))
        if self._loop is not None:
            first, last = self._loop
            band = QRectF(self.x_for_frame(first), track.top() - 6, self.x_for_frame(last + 1) - self.x_for_frame(first), 3)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(palette.CYAN))
            painter.drawRoundedRect(band, 1.5, 1.5)
        self._paint_playhead(painter, track)
        if self.hasFocus():
            painter.setPen(QPen(QColor(palette.ACCENT).darker(130), 1))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 4, 4)
        painter.end()

    def _paint_playhead(self, painter: QPainter, track: QRectF) -> None:
        x = self.x_for_frame(self._frame + 0.5)
        painter.setPen(QPen(QColor("#ffffff"), 2))
        painter.drawLine(QPointF(x, track.top() - 2), QPointF(x, track.bottom() + 3))
        cap = QPainterPath()
        cap.moveTo(x - 6, track.top() - 8)
        cap.lineTo(x + 6, track.top() - 8)
        cap.lineTo(x, track.top() - 1)
        cap.closeSubpath()
        painter.fillPath(cap, QColor("#ffffff"))
