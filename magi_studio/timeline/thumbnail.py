"""The picture of a chunk card, and CardModel, what a card shows.

CardPicture paints the chunk's thumbnail (from the store, on the active path), the live preview while
it denoises ("Starting…" before the model's first step), the shot's reference image on an image shot's first
card, or a placeholder; a stale chunk's frames are kept and drawn dimmed with an amber corner, never dropped. It is
not a widget: the card paints it in its own paint event (a child widget per card cost about 2.8 ms of a zoomed-out
repaint at 1920x1080, 41 cards).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPoint, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QWidget

from magi_studio.theme import palette
from magi_studio.timeline.style import DENOISING, EMPTY, FAILED, QUEUED, STALE, STARTING


@dataclass(frozen=True)
class CardModel:
    """Everything a card shows, derived from the document (and the current job) by the timeline."""

    shot_id: str
    chunk_id: str
    index: int            # in its shot, 0-based
    shot_name: str
    time_range: str       # "0:02–0:03"
    prompt: str
    seed: int
    seed_locked: bool
    state: str            # style.EMPTY ... FAILED
    progress: float | None = None
    thumbnail: QPixmap | None = None
    preview: QImage | None = None
    #: The shot's reference image, on the first card of a shot that starts from it.
    reference: QPixmap | None = None
    #: The first card of a shot that starts from an image that is not set yet.
    awaiting_reference: bool = False
    #: Its result on the active take was made in Draft mode (the card's "Draft" badge).
    draft: bool = False


class CardPicture:
    """The chunk's picture on its card `owner` (which paints it): its thumbnail, the live preview, the reference image
    or a placeholder."""

    RADIUS = 7.0
    #: Sizes of the finished picture kept per card: one per zoom level that changes the picture's width.
    KEPT_SIZES = 4

    def __init__(self, owner: QWidget, rect: QRect) -> None:
        self.owner = owner
        self.rect = rect  # in the owner's coordinates
        self.model: CardModel | None = None
        # The picture painted once per model and size, then copied on each paint: scrolling and zooming a long
        # storyboard repaint every card on screen, and the rounded clip made each paint cost milliseconds.
        self._pictures: dict[tuple[int, int, float], QPixmap] = {}

    def show_model(self, model: CardModel) -> None:
        self.model = model
        self._pictures.clear()
        self.owner.update(self.rect)

    def paint(self, painter: QPainter) -> None:
        """Paint the picture into its rectangle on a painter of the owner (its state is saved and restored)."""
        model = self.model
        if model is None:
            return
        if model.state == DENOISING:  # the live preview changes on every step: painted as it comes
            painter.save()
            painter.translate(self.rect.topLeft())
            self._paint(painter, model, QRectF(0, 0, self.rect.width(), self.rect.height()))
            painter.restore()
        else:
            painter.drawPixmap(self.rect.topLeft(), self._picture(model, self.rect.width()))

    def prepare(self, width: int) -> bool:
        """Draw the finished picture at `width` now, ahead of a zoom to it (the storyboard does the cards around the
        view at idle, a few per event-loop turn): the first zoom out to a level drew 15-30 pictures in its frame.
        False when there was nothing to draw (kept already, no model, or a live preview)."""
        model = self.model
        if model is None or model.state == DENOISING or width <= 0 or self._key(width) in self._pictures:
            return False
        self._picture(model, width)
        return True

    def kept_widths(self) -> list[int]:
        """The widths whose finished picture is kept (tests)."""
        return [key[0] for key in self._pictures]

    def _key(self, width: int) -> tuple[int, int, float]:
        return width, self.rect.height(), self.owner.devicePixelRatioF()

    def _picture(self, model: CardModel, width: int) -> QPixmap:
        key = self._key(width)
        picture = self._pictures.get(key)
        if picture is None:
            if len(self._pictures) >= self.KEPT_SIZES:
                del self._pictures[next(iter(self._pictures))]  # the oldest
            height, ratio = key[1], key[2]
            picture = QPixmap(round(width * ratio), round(height * ratio))
            picture.setDevicePixelRatio(ratio)
            picture.fill(Qt.GlobalColor.transparent)
            painter = QPainter(picture)
            painter.setFont(self.owner.font())  # what a painter on the card starts with
            border = self._paint(painter, model, QRectF(0, 0, width, height), clip=False)
            # The rounded corners as a mask and the border as a layer, both drawn once per size for every card: a
            # clip path per picture made each one cost 0.5 ms, and a zoom out shows 30 cards at a new size at once.
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationIn)
            painter.drawPixmap(0, 0, _rounded_layer(key, None))
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
            painter.drawPixmap(0, 0, _rounded_layer(key, border))
            painter.end()
            self._pictures[key] = picture
        return picture

    def _paint(self, painter: QPainter, model: CardModel, bounds: QRectF, clip: bool = True) -> str:
        """Paint the picture inside its rounded rectangle `bounds` and, with `clip`, clipped to it and with its border;
        without, the caller rounds it and draws the border (in the colour returned)."""
        # Unclipped, the picture fills the whole pixels of its rectangle (the mask rounds it): a picture drawn into a
        # rectangle half a pixel in, antialiased, took twice as long.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, clip)
        rect = bounds.adjusted(0.5, 0.5, -0.5, -0.5) if clip else bounds
        if clip:
            path = QPainterPath()
            path.addRoundedRect(rect, self.RADIUS, self.RADIUS)
            painter.setClipPath(path)
        painter.fillRect(rect, QColor(palette.VIEWPORT))
        live = model.preview if model.state == DENOISING else None
        picture = live if live is not None else model.thumbnail
        showing_reference = picture is None and model.reference is not None
        if showing_reference:
            picture = model.reference
        if picture is not None:
            _draw_cover(painter, rect, picture)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if picture is None:
            self._placeholder(painter, rect, model)
        if model.state == STALE and picture is not None and not showing_reference:
            painter.fillRect(rect, QColor(13, 14, 17, 150))  # dimmed: these frames no longer match the prompt
            _corner_flag(painter, rect, QColor(palette.WARNING))
        elif model.state == FAILED:
            painter.fillRect(rect, QColor(229, 83, 75, 70))
        elif model.state == QUEUED or model.state == DENOISING and live is None and not model.progress:
            # Waiting: for its turn in the run, or (denoising) for the model's first step, which can take seconds.
            painter.fillRect(rect, QColor(13, 14, 17, 130))
            _centre_text(painter, rect, "Queued" if model.state == QUEUED else f"{STARTING}…", palette.TEXT, bold=True)
        if showing_reference:
            _chip(painter, rect, "Reference image")
        elif model.reference is not None and picture is not None:
            inset = reference_inset(rect)
            _draw_cover(painter, inset, model.reference)
            painter.setPen(QPen(QColor("#ffffff"), 1.2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(inset, 3, 3)
        if model.state == DENOISING:
            progress = model.progress or 0.0
            painter.fillRect(QRectF(rect.left(), rect.bottom() - 4, rect.width(), 4), QColor(0, 0, 0, 160))
            painter.fillRect(QRectF(rect.left(), rect.bottom() - 4, rect.width() * progress, 4), QColor(palette.CYAN))
        border = palette.BORDER_STRONG if picture is not None else palette.BORDER
        if clip:
            painter.setClipping(False)
            _draw_rounded(painter, rect, border)
        return border

    def _placeholder(self, painter: QPainter, rect: QRectF, model: CardModel) -> None:
        painter.fillRect(rect, QColor("#16181d"))
        painter.setPen(QPen(QColor(palette.BORDER_STRONG), 1, Qt.PenStyle.DashLine))
        painter.drawRoundedRect(rect.adjusted(4, 4, -4, -4), 5, 5)
        if model.awaiting_reference:
            _centre_text(painter, rect.adjusted(6, -8, -6, -8), "Drop a", palette.TEXT_DIM, 0.85)
            _centre_text(painter, rect.adjusted(6, 8, -6, 8), "reference image", palette.TEXT_DIM, 0.85)
        elif model.state in (EMPTY, FAILED):
            text = "not generated" if model.state == EMPTY else "failed"
            _centre_text(painter, rect.adjusted(0, -10, 0, -10), f"{model.index + 1}", palette.TEXT_FAINT, 1.6,
                         bold=True)
            _centre_text(painter, rect.adjusted(0, 20, 0, 20), text, palette.TEXT_FAINT, 0.78)


def reference_inset(rect: QRectF) -> QRectF:
    """Where a generated picture shows its shot's reference image: the top-left corner, clear of the Regenerate
    button on the foot of a stale picture (the inset sat under it there), the stale flag at the top right and the
    progress bar along the bottom."""
    return QRectF(rect.left() + 6, rect.top() + 6, rect.width() * 0.32, rect.height() * 0.32)


def _draw_rounded(painter: QPainter, rect: QRectF, border: str | None) -> None:
    """The picture's rounded rectangle: its outline in `border`, or (None) filled white."""
    painter.setPen(QPen(QColor(border), 1) if border else Qt.PenStyle.NoPen)
    painter.setBrush(Qt.BrushStyle.NoBrush if border else QColor("#ffffff"))
    painter.drawRoundedRect(rect, CardPicture.RADIUS, CardPicture.RADIUS)


_ROUNDED_LAYERS: dict[tuple, QPixmap] = {}


def _rounded_layer(size: tuple[int, int, float], border: str | None) -> QPixmap:
    """The rounded rectangle of a picture of `size` (width, height, device pixel ratio) as a layer: its outline in
    `border`, or (None) its inside opaque, the mask that rounds the corners."""
    key = (*size, border)
    layer = _ROUNDED_LAYERS.get(key)
    if layer is None:
        if len(_ROUNDED_LAYERS) > 64:  # a few sizes per zoom level and colours: never grow without end
            _ROUNDED_LAYERS.clear()
        width, height, ratio = size
        layer = QPixmap(round(width * ratio), round(height * ratio))
        layer.setDevicePixelRatio(ratio)
        layer.fill(Qt.GlobalColor.transparent)
        painter = QPainter(layer)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        _draw_rounded(painter, QRectF(0, 0, width, height).adjusted(0.5, 0.5, -0.5, -0.5), border)
        painter.end()
        _ROUNDED_LAYERS[key] = layer
    return layer


def _draw_cover(painter: QPainter, target: QRectF, picture: QPixmap | QImage) -> None:
    """Fill `target` with the picture, cropped to its aspect ratio (no stretching, no bars)."""
    size = picture.size()
    if size.isEmpty():
        return
    scale = max(target.width() / size.width(), target.height() / size.height())
    w, h = target.width() / scale, target.height() / scale
    source = QRectF((size.width() - w) / 2, (size.height() - h) / 2, w, h)
    if isinstance(picture, QImage):
        painter.drawImage(target, picture, source)
    else:
        painter.drawPixmap(target, picture, source)


def _centre_text(painter: QPainter, rect: QRectF, text: str, colour: str, scale: float = 1.0,
                 bold: bool = False) -> None:
    painter.save()  # the scale applies to this text only, not to the next call's starting font
    font = QFont(painter.font())
    font.setPointSizeF(font.pointSizeF() * scale)
    font.setBold(bold)
    painter.setFont(font)
    painter.setPen(QColor(colour))
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
    painter.restore()


def _chip(painter: QPainter, rect: QRectF, text: str) -> None:
    painter.save()
    font = QFont(painter.font())
    font.setPointSizeF(font.pointSizeF() * 0.8)
    font.setBold(True)
    painter.setFont(font)
    box = QRectF(painter.fontMetrics().boundingRect(text)).adjusted(-6, -2, 6, 2)
    box.moveBottomLeft(rect.bottomLeft() + QPoint(5, -5).toPointF())
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(0, 0, 0, 170))
    painter.drawRoundedRect(box, 4, 4)
    painter.setPen(QColor("#ffffff"))
    painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
    painter.restore()


def _corner_flag(painter: QPainter, rect: QRectF, colour: QColor) -> None:
    flag = QPainterPath()
    flag.moveTo(rect.topRight() + QPoint(-22, 0).toPointF())
    flag.lineTo(rect.topRight())
    flag.lineTo(rect.topRight() + QPoint(0, 22).toPointF())
    flag.closeSubpath()
    painter.fillPath(flag, colour)
