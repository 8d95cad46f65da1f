"""TakeFilmstrip: the chunks a take shows, as a row of thumbnails under the take tree.

A take regenerated from chunk N shares chunks 1..N-1 with its parent and owns N onward; the strip
draws the shared chunks dimmed and the owned ones with an accent line, so comparing two takes is a
matter of clicking between them. Thumbnails come from the store (results are immutable, so they are
cached by result id); chunks the take has no result for are drawn as empty frames.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from magi_studio.document.model import resolve_take, take_boundary
from magi_studio.theme import palette

TILE = 48
GAP = 6


class TakeFilmstrip(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("TakeFilmstrip")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(TILE + 22)
        self._tiles: list[tuple[QPixmap | None, bool]] = []  # (thumbnail, owned by the take)
        self._cache: dict[str, QPixmap | None] = {}

    def sizeHint(self) -> QSize:
        return QSize(4 * (TILE + GAP), TILE + 22)

    def forget_images(self) -> None:
        self._cache.clear()

    def show_take(self, session, shot, take_id: str | None) -> None:
        """Show `take_id`'s chunks of `shot` (nothing when None)."""
        self._tiles = []
        take = shot.find_take(take_id) if shot is not None and take_id else None
        if take is not None:
            start = take_boundary(shot, take)
            for index, result_id in enumerate(resolve_take(shot, take.id)):
                self._tiles.append((self._thumbnail(session, result_id), index >= start))
        self.setToolTip("Dimmed chunks come from the take above; highlighted ones were made in this take"
                        if self._tiles else "")
        self.update()

    def tile_count(self) -> int:
        return len(self._tiles)

    def owned(self) -> list[bool]:
        return [owned for _, owned in self._tiles]

    def _thumbnail(self, session, result_id: str | None) -> QPixmap | None:
        if result_id is None:
            return None
        if result_id not in self._cache:
            result = session.project.results.get(result_id)
            path = session.store.thumbnail_path(result) if result and result.files.get("thumbnail") else None
            self._cache[result_id] = QPixmap(str(path)) if path is not None and path.is_file() else None
        return self._cache[result_id]

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 0.8)
        painter.setFont(font)
        for index, (picture, owned) in enumerate(self._tiles):
            x = index * (TILE + GAP)
            if x > self.width():
                break
            tile = QRectF(x + 0.5, 0.5, TILE - 1, TILE - 1)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(palette.VIEWPORT))
            painter.drawRoundedRect(tile, 5, 5)
            if picture is not None:
                painter.setOpacity(1.0 if owned else 0.45)
                painter.drawPixmap(tile.toRect().adjusted(1, 1, -1, -1), picture)
                painter.setOpacity(1.0)
            painter.setPen(QPen(QColor(palette.BORDER_STRONG), 1))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(tile, 5, 5)
            if owned:
                painter.fillRect(QRectF(x + 4, TILE + 3, TILE - 8, 3), QColor(palette.ACCENT))
            painter.setPen(QColor(palette.TEXT if owned else palette.TEXT_FAINT))
            painter.drawText(QRectF(x, TILE + 6, TILE, 16), Qt.AlignmentFlag.AlignCenter, str(index + 1))
        painter.end()
