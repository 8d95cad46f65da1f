"""Icons the storyboard editor draws that resources/icons does not ship: lock, split, insert, new shot...

Same drawing rules as resources/icons (24x24, 1.8 stroke, currentColor) and the same tinting per
QIcon mode (theme.icons), so they sit beside the shipped icons without a visible seam.
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtGui import QIcon

from magi_studio.theme.icons import ICON_SIZES, _TINTS, svg_pixmap

_HEAD = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24" fill="none" '
         'stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">')

GLYPHS = {
    "lock": '<rect x="5" y="10.5" width="14" height="9.5" rx="2"/><path d="M8 10.5V7.5a4 4 0 0 1 8 0v3"/>',
    "unlock": '<rect x="5" y="10.5" width="14" height="9.5" rx="2"/><path d="M8 10.5V7.5a4 4 0 0 1 7.6-1.7"/>',
    "insert-chunk": '<rect x="8.5" y="5.5" width="12" height="13" rx="2"/><path d="M4.5 9v6M1.5 12h6"/>',
    "split": '<path d="M12 3v18"/><rect x="2.5" y="6.5" width="6.5" height="11" rx="1.5"/>'
             '<rect x="15" y="6.5" width="6.5" height="11" rx="1.5"/>',
    "new-shot": '<rect x="2.5" y="6.5" width="13" height="11" rx="2"/><path d="M15.5 10.5l5-3v9l-5-3"/>'
                '<path d="M9 9.5v5M6.5 12h5"/>',
    "more": '<circle cx="5.5" cy="12" r="1.2" fill="currentColor"/><circle cx="12" cy="12" r="1.2" '
            'fill="currentColor"/><circle cx="18.5" cy="12" r="1.2" fill="currentColor"/>',
    "move-left": '<path d="M10 6l-6 6 6 6"/><path d="M4.5 12H20"/>',
    "move-right": '<path d="M14 6l6 6-6 6"/><path d="M19.5 12H4"/>',
    "dice": '<rect x="4" y="4" width="16" height="16" rx="3"/><circle cx="9" cy="9" r="1" fill="currentColor"/>'
            '<circle cx="15" cy="15" r="1" fill="currentColor"/><circle cx="15" cy="9" r="1" fill="currentColor"/>'
            '<circle cx="9" cy="15" r="1" fill="currentColor"/>',
    "rename": '<path d="M4 20h4L19 9l-4-4L4 16v4z"/><path d="M13.5 6.5l4 4"/>',
    "plus": '<path d="M12 5v14M5 12h14"/>',
    "history": '<path d="M3.5 12a8.5 8.5 0 1 0 2.6-6.1"/><path d="M3.5 4v4.5H8"/><path d="M12 7.5V12l3 2"/>',
    "storyboard": '<rect x="2.5" y="6" width="5.5" height="12" rx="1.2"/><rect x="9.25" y="6" width="5.5" '
                  'height="12" rx="1.2"/><rect x="16" y="6" width="5.5" height="12" rx="1.2"/>',
    "check": '<path d="M5 12.5l4.5 4.5L19 7.5"/>',
    "zoom-in": '<circle cx="10.5" cy="10.5" r="6.5"/><path d="M15.5 15.5l5 5M7.5 10.5h6M10.5 7.5v6"/>',
    "zoom-out": '<circle cx="10.5" cy="10.5" r="6.5"/><path d="M15.5 15.5l5 5M7.5 10.5h6"/>',
    # A sketched frame (a draft): dashed outline, a quick stroke inside.
    "draft": '<rect x="3" y="5" width="18" height="14" rx="2" stroke-dasharray="3 2.4"/>'
             '<path d="M7 15l3.5-4 2.5 2.5L17 9"/>',
    # A finished frame with a star (final quality).
    "final": '<rect x="3" y="5" width="18" height="14" rx="2"/>'
             '<path d="M12 8.2l1.2 2.5 2.7.4-2 1.9.5 2.7-2.4-1.3-2.4 1.3.5-2.7-2-1.9 2.7-.4z"/>',
}


def glyph_svg(name: str) -> str:
    return f"{_HEAD}{GLYPHS[name]}</svg>"


@lru_cache(maxsize=None)
def glyph(name: str) -> QIcon:
    """The themed icon `name` (a key of GLYPHS), tinted per mode like theme.icon."""
    text = glyph_svg(name)
    result = QIcon()
    for mode, colour in _TINTS.items():
        for size in ICON_SIZES:
            result.addPixmap(svg_pixmap(text, size, colour), mode, QIcon.State.Off)
    return result
