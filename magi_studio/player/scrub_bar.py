"""The scrub bar: the timeline in miniature, one cell per chunk, with the playhead, shots and in/out range.

Cells show each chunk's state (generated, live preview, hole) so the director sees at a glance what
can be played; each is numbered within its shot, as the storyboard's cards are, and an amber line marks
where a shot begins (the playhead is white). The in/out range (I/O) is a cyan band above the cells with
a bracket at each mark set.
Clicking or dragging anywhere seeks (`scrubbed(frame)`), hovering names the chunk and its timecode,
and the keyboard works like a slider's (arrows by frame, Page Up/Down by chunk, Home/End).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from magi_engine.config import CHUNK_FRAMES
from magi_studio.player.frame_store import FrameStore, SlotState
from magi_studio.player.marks import ShotSpan, chunk_name, shot_of, timecode
from magi_studio.theme import palette

_CELL_COLOURS = {
    SlotState.FRAMES: "#3f3a8f",
    SlotState.PREVIEW: "#1b5566",
    SlotState.EMPTY: "#2a2e37",
    SlotState.LOADING: "#33304f",
    SlotState.UNREADABLE: "#4a2a2a",
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
        self.setMouseTracking(True)  # the tooltip names the chunk under the pointer
        self._store = store
        self._frame = 0
        self._marks: tuple[int | None, int | None] = (None, None)
        self._shots: tuple[ShotSpan, ...] = ()
        self.fps = 24.0
        # The cells drawn once (a storyboard of 120 chunks is 120 rounded cells and their numbers): a paint for the
        # playhead or the marks copies them, and a chunk that changed (a live preview's step) has its cell drawn
        # again alone. None: draw them all; else the chunks to draw again.
        self._cells: QPixmap | None = None
        self._dirty: set[int] | None = None
        store.chunkChanged.connect(self._chunk_changed)
        store.layoutChanged.connect(self._redraw_cells)

    def sizeHint(self) -> QSize:
        return QSize(480, 34)

    def minimumSizeHint(self) -> QSize:
        return QSize(160, 34)

    def set_frame(self, frame: int) -> None:
        if frame != self._frame:
            self._frame = frame
            self.update()

    def set_marks(self, mark_in: int | None, mark_out: int | None) -> None:
        """The in and out marks (frames, inclusive; None: not set): the range between them is highlighted."""
        self._marks = (mark_in, mark_out)
        self.update()

    def set_shots(self, shots) -> None:
        self._shots = tuple(shots)
        self._redraw_cells()

    def _redraw_cells(self) -> None:
        self._dirty = None
        self.update()

    def _chunk_changed(self, chunk: int) -> None:
        if self._dirty is not None:
            self._dirty.add(chunk)
        self.update()

    def resizeEvent(self, event) -> None:
        self._dirty = None
        super().resizeEvent(event)

    def shot_boundaries(self) -> list[int]:
        """The chunk positions where a shot other than the first begins (a line is drawn there)."""
        return [span.first_chunk for span in self._shots[1:] if 0 < span.first_chunk < self._store.chunk_count]

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
        elif self._store.frame_count:
            frame = self.frame_at(event.position().x())
            self.setToolTip(f"{chunk_name(self._shots, frame // CHUNK_FRAMES)} · {timecode(frame, self.fps)}")

    def keyPressEvent(self, event) -> None:
        count = self._store.frame_count
        steps = {Qt.Key.Key_Left: -1, Qt.Key.Key_Right: 1, Qt.Key.Key_PageUp: -CHUNK_FRAMES,
                 Qt.Key.Key_PageDown: CHUNK_FRAMES}
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
            painter.setBrush(QColor(_CELL_COLOURS[SlotState.EMPTY]))
            painter.drawRoundedRect(track, 4, 4)
            painter.end()
            return
        self._draw_cells(track, chunks)
        painter.drawPixmap(0, 0, self._cells)
        self._paint_boundaries(painter, track, chunks)
        self._paint_marks(painter, track)
        self._paint_playhead(painter, track)
        if self.hasFocus():
            painter.setPen(QPen(QColor(palette.ACCENT).darker(130), 1))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 4, 4)
        painter.end()

    def _draw_cells(self, track: QRectF, chunks: int) -> None:
        """Bring the cells' layer up to date: every cell, or only those of the chunks that changed."""
        ratio = self.devicePixelRatioF()
        if self._cells is None or self._cells.deviceIndependentSize().toSize() != self.size() \
                or self._cells.devicePixelRatio() != ratio:
            self._cells, self._dirty = QPixmap(self.size() * ratio), None
            self._cells.setDevicePixelRatio(ratio)
        dirty, self._dirty = self._dirty, set()
        cell_width = track.width() / chunks
        gap = 2.0 if cell_width > 10 else 0.0
        if dirty is None:
            self._cells.fill(Qt.GlobalColor.transparent)
            dirty = range(chunks)
        painter = QPainter(self._cells)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setFont(self.font())
        for chunk in sorted(dirty):
            if chunk >= chunks:
                continue
            # Each cell in its own whole pixels, so that one drawn again leaves its neighbours' edges as they were.
            left, right = track.left() + round(chunk * cell_width), track.left() + round((chunk + 1) * cell_width)
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
            painter.fillRect(QRectF(left, 0, right - left, self.height()), Qt.GlobalColor.transparent)
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
            cell = QRectF(left, track.top(), max(1.0, right - left - gap), track.height())
            state = self._store.state(chunk)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(_CELL_COLOURS[state]))
            painter.drawRoundedRect(cell, 3, 3)
            if state == SlotState.PREVIEW:  # fill the cell as far as the chunk's denoising has got
                progress = self._store.preview_progress(chunk) or 0.0
                painter.setBrush(QColor(palette.CYAN).darker(130))
                painter.drawRoundedRect(QRectF(cell.left(), cell.bottom() - 3, cell.width() * progress, 3), 1.5, 1.5)
            if cell_width >= 26:
                found = shot_of(self._shots, chunk)
                number = chunk - found[1].first_chunk + 1 if found else chunk + 1
                painter.setPen(QColor(palette.TEXT_DIM if state != SlotState.EMPTY else palette.TEXT_FAINT))
                painter.drawText(cell, Qt.AlignmentFlag.AlignCenter, str(number))
        painter.end()

    def _paint_boundaries(self, painter: QPainter, track: QRectF, chunks: int) -> None:
        cell_width = track.width() / chunks
        gap = 2.0 if cell_width > 10 else 0.0
        for chunk in self.shot_boundaries():  # a shot starts here: an amber line (white is the playhead)
            x = track.left() + round(chunk * cell_width) - gap / 2
            painter.setPen(QPen(QColor(palette.WARNING), 2))
            painter.drawLine(QPointF(x, track.top() - 3), QPointF(x, track.bottom() + 3))

    def _paint_marks(self, painter: QPainter, track: QRectF) -> None:
        mark_in, mark_out = self._marks
        if mark_in is None and mark_out is None:
            return
        count = self._store.frame_count
        first = min(mark_in or 0, max(0, count - 1))
        last = min(mark_out if mark_out is not None else count - 1, max(0, count - 1))
        left, right = self.x_for_frame(first), self.x_for_frame(max(first, last) + 1)
        cyan = QColor(palette.CYAN)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(cyan)
        painter.drawRect(QRectF(left, track.top() - 6, right - left, 3))
        painter.setPen(QPen(cyan, 2))
        for x, inward, shown in ((left, 1, mark_in is not None), (right, -1, mark_out is not None)):
            if shown:  # a bracket: [ at the in mark, ] at the out mark
                painter.drawPolyline([QPointF(x + 4 * inward, track.top() - 6), QPointF(x, track.top() - 6),
                                      QPointF(x, track.bottom() + 3), QPointF(x + 4 * inward, track.bottom() + 3)])

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
