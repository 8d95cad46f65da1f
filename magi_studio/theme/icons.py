"""Icons: our own SVGs in resources/icons, tinted for the dark theme.

The SVG files draw with `currentColor`; here each is rendered in the theme's colours for the normal,
active, selected and disabled states at the sizes toolbars and menus ask for, so that a disabled
action looks disabled instead of relying on the style's generic greying. Each pixmap is rendered when
first asked for (a mode and a size) and kept: rendering every icon in every mode and size up front
took about a third of a second of the app's startup.
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QIcon, QIconEngine, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from magi_studio.theme import palette
from magi_resources import resource_path

#: Pixel sizes rendered per icon: menus (16), toolbars (20-24), transport (24-32), 2x screens.
ICON_SIZES = (16, 20, 24, 32, 40, 48, 64)
_TINTS = {
    QIcon.Mode.Normal: palette.ICON_NORMAL,
    QIcon.Mode.Active: palette.ICON_ACTIVE,
    QIcon.Mode.Selected: palette.ICON_ACTIVE,
    QIcon.Mode.Disabled: palette.ICON_DISABLED,
}


def icon_file(name: str):
    return resource_path("icons", f"{name}.svg")


def svg_pixmap(svg_text: str, size: int, colour: str | None = None) -> QPixmap:
    """Render SVG text (with currentColor replaced by `colour`) into a transparent square pixmap."""
    if colour is not None:
        svg_text = svg_text.replace("currentColor", colour)
    renderer = QSvgRenderer(QByteArray(svg_text.encode("utf-8")))
    pixmap = QPixmap(QSize(size, size))
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return pixmap


class _TintedSvg(QIconEngine):
    """An icon's SVG in the tint of the mode asked for, rendered once per mode and size."""

    def __init__(self, svg_text: str) -> None:
        super().__init__()
        self._text = svg_text
        self._pixmaps: dict[tuple[int, QIcon.Mode], QPixmap] = {}

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        side = max(1, min(size.width(), size.height()))
        key = (side, mode)
        if key not in self._pixmaps:
            self._pixmaps[key] = svg_pixmap(self._text, side, _TINTS.get(mode, palette.ICON_NORMAL))
        return self._pixmaps[key]

    def paint(self, painter: QPainter, rect, mode: QIcon.Mode, state: QIcon.State) -> None:
        painter.drawPixmap(rect, self.pixmap(rect.size(), mode, state))

    def availableSizes(self, mode: QIcon.Mode = QIcon.Mode.Normal, state: QIcon.State = QIcon.State.Off):
        return [QSize(size, size) for size in ICON_SIZES]

    def clone(self) -> QIconEngine:
        return _TintedSvg(self._text)


@lru_cache(maxsize=None)
def icon(name: str) -> QIcon:
    """The themed icon `name` (a file stem in resources/icons). A missing file raises FileNotFoundError."""
    return QIcon(_TintedSvg(icon_file(name).read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def app_icon() -> QIcon:
    """MAGI Studio's application icon (full colour, every size a window manager or dock may ask for)."""
    text = icon_file("magi-studio").read_text(encoding="utf-8")
    result = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        result.addPixmap(svg_pixmap(text, size))
    return result
