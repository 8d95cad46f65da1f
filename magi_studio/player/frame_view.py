"""The picture: paints the current frame, a hole placeholder, a loading chunk's poster or a live preview,
letterboxed.

We paint QImages ourselves instead of using QVideoWidget: its grab() is blank offscreen and under
Xvfb, so it could be neither tested nor screenshotted, and our frames are already in memory.
`framePainted(frame)` reports every paint of a frame, which is how the player measures the frames
that actually reached the screen (and the ones dropped).
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QLinearGradient, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from magi_studio.player.frame_store import SlotState, FrameImage
from magi_studio.theme import palette


def fit_rect(content: QSize, bounds: QRect) -> QRect:
    """The largest rectangle of `content`'s aspect ratio centred in `bounds`."""
    if content.isEmpty() or bounds.isEmpty():
        return QRect(bounds)
    scaled = content.scaled(bounds.size(), Qt.AspectRatioMode.KeepAspectRatio)
    return QRect(bounds.x() + (bounds.width() - scaled.width()) // 2,
                 bounds.y() + (bounds.height() - scaled.height()) // 2, scaled.width(), scaled.height())


class FrameView(QWidget):
    """Paints one FrameImage (or the empty state) centred on a dark viewport."""

    framePainted = Signal(int)
    #: (chunk) the user clicked a chunk whose frames could not be read: read them again.
    retryRequested = Signal(int)

    MARGIN = 16

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("FrameView")
        # We fill every pixel ourselves: skip Qt's background erase on each frame.
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 160)
        self._frame: FrameImage | None = None
        self._frame_size = QSize(256, 256)
        self._empty_title = "Nothing to preview yet"
        self._empty_body = "Each chunk appears here the moment it is generated."
        self._chunk_name: Callable[[int], str] = lambda chunk: f"Chunk {chunk + 1}"
        self._caption = ""

    def sizeHint(self) -> QSize:
        return QSize(640, 400)

    def set_frame(self, frame: FrameImage | None, frame_size: QSize) -> None:
        """Show `frame` (None: the empty state); `frame_size` is the video's resolution."""
        self._frame, self._frame_size = frame, QSize(frame_size)
        unreadable = frame is not None and frame.state == SlotState.UNREADABLE
        self.setCursor(Qt.CursorShape.PointingHandCursor if unreadable else Qt.CursorShape.ArrowCursor)
        self.update()

    def set_chunk_namer(self, name: Callable[[int], str]) -> None:
        """How a chunk position is named on holes and badges ("Shot 2 · chunk 3", as the cards number it)."""
        self._chunk_name = name
        self.update()

    def set_caption(self, caption: str) -> None:
        """A label at the view's top right ("A · Take 2"), e.g. while two takes are side by side; "" for none."""
        if caption != self._caption:
            self._caption = caption
            self.update()

    @property
    def caption(self) -> str:
        return self._caption

    def set_empty_text(self, title: str, body: str) -> None:
        self._empty_title, self._empty_body = title, body
        self.update()

    @property
    def shown_frame(self) -> FrameImage | None:
        return self._frame

    def picture_rect(self) -> QRect:
        """Where the video picture is drawn, in widget coordinates."""
        bounds = self.rect().adjusted(self.MARGIN, self.MARGIN, -self.MARGIN, -self.MARGIN)
        return fit_rect(self._frame_size, bounds)

    def mouseReleaseEvent(self, event) -> None:
        frame = self._frame
        if (event.button() == Qt.MouseButton.LeftButton and frame is not None
                and frame.state == SlotState.UNREADABLE and self.picture_rect().contains(event.position().toPoint())):
            self.retryRequested.emit(frame.chunk)
            return
        super().mouseReleaseEvent(event)

    # Painting ---------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(palette.VIEWPORT))
        frame = self._frame
        if frame is None:
            self._paint_empty(painter)
        elif frame.state == SlotState.LOADING and frame.poster is not None:
            self._paint_poster(painter, frame)
        elif frame.image is None:  # a hole: not generated, loading without a poster, or unreadable
            self._paint_hole(painter, frame)
        else:
            target = self.picture_rect()
            # Previews are tiny (latent resolution): smooth them; frames at 1:1 need no filtering.
            smooth = frame.state == SlotState.PREVIEW or target.size() != frame.image.size()
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
            painter.drawImage(target, frame.image)
            if frame.state == SlotState.PREVIEW:
                self._paint_preview_badge(painter, target, frame)
        if self._caption:
            self._paint_caption(painter)
        painter.end()
        if frame is not None:
            self.framePainted.emit(frame.frame)

    def _paint_empty(self, painter: QPainter) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        centre = self.rect().center()
        # A film-frame glyph above the text.
        glyph = QRectF(centre.x() - 34, centre.y() - 74, 68, 48)
        painter.setPen(QPen(QColor(palette.BORDER_STRONG), 2))
        painter.setBrush(QColor(palette.PANEL))
        painter.drawRoundedRect(glyph, 8, 8)
        triangle = QPainterPath()
        triangle.moveTo(glyph.center().x() - 8, glyph.center().y() - 11)
        triangle.lineTo(glyph.center().x() - 8, glyph.center().y() + 11)
        triangle.lineTo(glyph.center().x() + 12, glyph.center().y())
        triangle.closeSubpath()
        painter.fillPath(triangle, QColor(palette.ACCENT))
        self._draw_text(painter, QRect(0, centre.y() - 14, self.width(), 26), self._empty_title, palette.TEXT, 1.25,
                        bold=True)
        self._draw_text(painter, QRect(0, centre.y() + 14, self.width(), 22), self._empty_body, palette.TEXT_DIM, 1.0)

    def _paint_hole(self, painter: QPainter, frame: FrameImage) -> None:
        target = self.picture_rect()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(palette.BORDER), 1, Qt.PenStyle.DashLine))
        painter.setBrush(QColor("#14161a"))
        painter.drawRoundedRect(QRectF(target).adjusted(0.5, 0.5, -0.5, -0.5), 6, 6)
        middle = target.center().y()
        self._draw_text(painter, QRect(target.x(), middle - 24, target.width(), 26), self._chunk_name(frame.chunk),
                        palette.TEXT_DIM, 1.3, bold=True)
        detail, colour = {SlotState.LOADING: ("loading…", palette.TEXT_FAINT),
                          SlotState.UNREADABLE: ("its frames could not be read · click to try again",
                                                  palette.WARNING)}.get(
            frame.state, ("not generated yet", palette.TEXT_FAINT))
        self._draw_text(painter, QRect(target.x(), middle + 4, target.width(), 22), detail, colour, 1.0)

    def _paint_poster(self, painter: QPainter, frame: FrameImage) -> None:
        # The chunk's picture at once while its frames decode: a still (its thumbnail, ~160 px, hence the
        # smoothing), dimmed and badged so it is never taken for the playing frame.
        target = self.picture_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        picture = fit_rect(frame.poster.size(), target)
        painter.drawPixmap(picture, frame.poster)
        veil = QColor(palette.VIEWPORT)
        veil.setAlpha(140)
        painter.fillRect(picture, veil)
        self._paint_badge(painter, target, f"Loading {self._chunk_name(frame.chunk)}…", QColor(palette.RAISED))

    def _paint_preview_badge(self, painter: QPainter, target: QRect, frame: FrameImage) -> None:
        text = f"Denoising {self._chunk_name(frame.chunk)}"
        if frame.progress is not None:
            text += f" · {round(frame.progress * 100)}%"
        self._paint_badge(painter, target, text, QColor(palette.CYAN).darker(160))
        if frame.progress is not None:  # a thin progress line along the picture's bottom edge
            bar = QRect(target.left(), target.bottom() - 3, round(target.width() * frame.progress), 4)
            painter.fillRect(bar, QColor(palette.CYAN))

    def _paint_badge(self, painter: QPainter, target: QRect, text: str, fill: QColor) -> None:
        """A pill with `text` at the picture's top left, over a shade that keeps it readable on any frame."""
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        shade = QLinearGradient(0, target.top(), 0, target.top() + 56)
        shade.setColorAt(0, QColor(0, 0, 0, 150))
        shade.setColorAt(1, QColor(0, 0, 0, 0))
        painter.fillRect(QRect(target.left(), target.top(), target.width(), 56), shade)
        font = QFont(self.font())
        font.setBold(True)
        painter.setFont(font)
        badge = painter.fontMetrics().boundingRect(text).adjusted(-10, -5, 10, 5)
        badge.moveTopLeft(target.topLeft() + QRect(0, 0, 12, 12).bottomRight())
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(fill)
        painter.drawRoundedRect(QRectF(badge), badge.height() / 2, badge.height() / 2)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_caption(self, painter: QPainter) -> None:
        # At the view's top right, not the picture's: it never covers the top-left badges (denoising,
        # loading), and a narrow picture (two side by side at 1366x768) does not cut it off.
        font = QFont(self.font())
        font.setBold(True)
        painter.setFont(font)
        badge = painter.fontMetrics().boundingRect(self._caption).adjusted(-10, -5, 10, 5)
        badge.moveTopRight(QPoint(self.width() - 8, 8))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 170))
        painter.drawRoundedRect(QRectF(badge), badge.height() / 2, badge.height() / 2)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, self._caption)

    def _draw_text(self, painter: QPainter, rect: QRect, text: str, colour: str, scale: float,
                   bold: bool = False) -> None:
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * scale)
        font.setBold(bold)
        painter.setFont(font)
        painter.setPen(QColor(colour))
        # A small picture (a 128 px project, a short window) elides the text rather than cutting it at both ends.
        text = painter.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, max(0, rect.width() - 8))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
