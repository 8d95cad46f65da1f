"""The look of MAGI Studio: dark palette and style sheet, bundled font, themed icons.

    from magi_studio import theme
    theme.apply_theme(app)          # Fusion + dark palette + resources/styles/dark.qss + DejaVu Sans
    button.setIcon(theme.icon("play"))

Everything is loaded from the shipped `resources` package (magi_resources.resource_path), so a checkout, a
wheel and a frozen bundle look the same; the font is ours so that no glyph ever renders as a box on a
machine without system fonts.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QDir
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication

from magi_studio.theme import palette
from magi_studio.theme.icons import app_icon, icon
from magi_resources import resource_path

__all__ = ["apply_theme", "load_fonts", "style_sheet", "icon", "app_icon", "palette", "UI_FONT_FAMILY"]

log = logging.getLogger(__name__)

UI_FONT_FAMILY = "DejaVu Sans"
UI_FONT_POINT_SIZE = 9.5
FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")


def load_fonts() -> list[str]:
    """Register the bundled fonts with Qt; returns the families loaded (empty if none could be)."""
    families: list[str] = []
    for name in FONT_FILES:
        path = resource_path("fonts", name)
        font_id = QFontDatabase.addApplicationFont(str(path))
        if font_id < 0:
            log.warning("could not load the bundled font %s", path)
            continue
        families += QFontDatabase.applicationFontFamilies(font_id)
    return sorted(set(families))


def style_sheet() -> str:
    """The application style sheet; its images resolve through the "styles:" search path."""
    QDir.addSearchPath("styles", str(resource_path("styles")))
    return resource_path("styles", "dark.qss").read_text(encoding="utf-8")


def apply_theme(app: QApplication) -> None:
    """Fusion style, dark palette, bundled font and the style sheet, applied to the whole app."""
    app.setStyle("Fusion")  # the one built-in style that follows palettes and QSS on every platform
    app.setPalette(palette.dark_palette())
    if UI_FONT_FAMILY in load_fonts():
        font = QFont(UI_FONT_FAMILY)
        font.setPointSizeF(UI_FONT_POINT_SIZE)
        app.setFont(font)
    app.setStyleSheet(style_sheet())
    app.setWindowIcon(app_icon())
