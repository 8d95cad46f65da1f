"""CardRow: a shot's chunk cards side by side, placed by arithmetic rather than by a layout.

Every card of the storyboard has the same width (one card is one 24-frame chunk: the row is a time grid), so
card i's rectangle is i card widths and gaps from the row's start, and the row's width follows from the number of
cards alone. A zoom of a long storyboard therefore changes the rows' widths at once and places only the cards in
view: the others keep their old place and size, out of sight, until they come into view (`place_between`) or the
zoom settles (`place_next`). Sizing and laying out all 120 cards of a long storyboard on every Ctrl+wheel step
was the zoom's stall.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize
from PySide6.QtWidgets import QSizePolicy, QWidget

from magi_studio.timeline.card import ChunkCard, card_size
from magi_studio.timeline.style import CARD_SPACING, TEXT_WIDTH, thumb_width


#: Where a card waits until it is placed when its place at an earlier zoom is in view (far right of any storyboard).
OUT_OF_SIGHT = 1 << 22


class CardRow(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("CardRow")
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.cards: list[ChunkCard] = []
        self._index: dict[ChunkCard, int] = {}
        self.thumb_width, self.text_width = thumb_width(128, 128), TEXT_WIDTH
        self.card_size = card_size(self.thumb_width, self.text_width)
        #: The cards not yet at their place and size for the current width (a zoom leaves those out of view).
        self._unplaced: set[ChunkCard] = set()

    # Geometry -----------------------------------------------------------------------------------
    @property
    def pitch(self) -> int:
        """From one card's left edge to the next one's."""
        return self.card_size.width() + CARD_SPACING

    def card_rect(self, index: int) -> QRect:
        """Card `index`'s rectangle in the row's coordinates, placed or not."""
        return QRect(index * self.pitch, 0, self.card_size.width(), self.card_size.height())

    def index_of(self, card: ChunkCard) -> int:
        return self._index[card]

    def sizeHint(self) -> QSize:
        return QSize(max(0, len(self.cards) * self.pitch - CARD_SPACING), self.card_size.height())

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    # Cards ----------------------------------------------------------------------------------------
    def set_card_width(self, thumb: int, text: int) -> bool:
        """The cards' picture and text column widths (a zoom): the row's width changes now, no card is touched;
        the cards are placed later (place_between, place_next). False when nothing changed."""
        if (thumb, text) == (self.thumb_width, self.text_width):
            return False
        self.thumb_width, self.text_width, self.card_size = thumb, text, card_size(thumb, text)
        self._unplaced = set(self.cards)
        self.updateGeometry()
        return True

    def set_cards(self, cards: list[ChunkCard]) -> None:
        """Show exactly `cards`, in order, each placed at once (cards are reused between redraws: a card moved from
        another shot's row is taken from it)."""
        adopted = [card for card in cards if card.parentWidget() is not self]
        for card in adopted:
            card.setParent(self)
        self.cards, self._index = list(cards), {card: index for index, card in enumerate(cards)}
        self._unplaced = set()  # a card dropped since is deleted: forget it
        for card in cards:
            self._place(card)
        for card in adopted:
            card.show()
        self.setVisible(bool(cards))  # an empty shot's "+" starts the row, without a gap before it
        self.updateGeometry()

    def has_unplaced(self) -> bool:
        return bool(self._unplaced)

    def place_between(self, left: int, right: int) -> None:
        """Place the cards that belong in the row's x range [left, right] (what the view shows), and move the ones
        still drawn there at an earlier zoom's place out of sight (a move: their contents are laid out when placed)."""
        if not self._unplaced:
            return
        pitch, width = self.pitch, self.card_size.width()
        for card in self._still_unplaced():
            x = self._index[card] * pitch
            if x <= right and x + width > left:
                self._place(card)
                continue
            drawn = card.geometry()
            if drawn.left() <= right and drawn.right() >= left:
                card.move(OUT_OF_SIGHT, 0)

    def place(self, card: ChunkCard) -> None:
        """Place `card` now if a zoom left it for later (it is about to be scrolled to)."""
        if card.parentWidget() is self and card in self._unplaced:
            self._place(card)

    def place_next(self, count: int) -> None:
        """Place up to `count` of the cards left unplaced, in order."""
        for card in sorted(self._still_unplaced(), key=self._index.__getitem__)[:count]:
            self._place(card)

    def _still_unplaced(self) -> list[ChunkCard]:
        # A card another shot's row took in the same redraw is that row's to place.
        self._unplaced = {card for card in self._unplaced if card.parentWidget() is self}
        return list(self._unplaced)

    def _place(self, card: ChunkCard) -> None:
        if (card.thumb_width, card.text_width) != (self.thumb_width, self.text_width):
            card.set_width(self.thumb_width, self.text_width)
        rect = self.card_rect(self._index[card])
        if card.geometry() != rect:
            card.setGeometry(rect)
        self._unplaced.discard(card)
