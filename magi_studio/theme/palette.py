"""The dark theme's colours, as Python constants and as a QPalette.

The same values appear in resources/styles/dark.qss (QSS has no variables); painted widgets (the
player, the scrub bar, icons) take their colours from here so that everything matches.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette

WINDOW = "#17191e"
PANEL = "#1e2128"
RAISED = "#262a33"
INPUT = "#121418"
BORDER = "#2c313b"
BORDER_STRONG = "#3a404c"
TEXT = "#e3e6ec"
TEXT_DIM = "#9aa2b1"
TEXT_FAINT = "#6b7280"
ACCENT = "#7467f0"
ACCENT_HOVER = "#8a7ff5"
CYAN = "#22b8d6"
DANGER = "#e5534b"
WARNING = "#d9a23a"
SUCCESS = "#3fb27f"
#: Behind video frames: darker than the window so the picture stands out.
VIEWPORT = "#0d0e11"

#: Icon tints per QIcon mode.
ICON_NORMAL = "#dfe3ea"
ICON_DISABLED = "#555c69"
ICON_ACTIVE = "#ffffff"


def dark_palette() -> QPalette:
    """A QPalette matching the QSS, for the parts of Qt that QSS does not reach (dialogs, styles)."""
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: WINDOW,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: INPUT,
        QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.ToolTipBase: RAISED,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: TEXT_FAINT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: RAISED,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: ACCENT_HOVER,
        QPalette.ColorRole.Light: BORDER_STRONG,
        QPalette.ColorRole.Midlight: BORDER,
        QPalette.ColorRole.Mid: PANEL,
        QPalette.ColorRole.Dark: INPUT,
        QPalette.ColorRole.Shadow: "#000000",
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(TEXT_FAINT))
    return palette
