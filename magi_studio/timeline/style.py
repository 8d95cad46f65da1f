"""The storyboard editor's look and small shared vocabulary: card states, sizes, time text, style sheet.

The style sheet is set on the timeline widget itself (it cascades to the cards), so the editor's
rules live beside the editor; colours are the theme's (magi_studio.theme.palette, dark.qss).
"""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from magi_studio.controllers.run_state import ChunkJobState
from magi_studio.document.model import ChunkState

#: What a card's badge can say: the document's ChunkState, or a run's ChunkJobState while a run touches the chunk.
EMPTY, DONE, STALE, DAMAGED = (ChunkState.EMPTY.value, ChunkState.DONE.value, ChunkState.STALE.value,
                               ChunkState.DAMAGED.value)
QUEUED, DENOISING, FAILED = ChunkJobState.QUEUED.value, ChunkJobState.DENOISING.value, ChunkJobState.FAILED.value
JOB_STATES = (QUEUED, DENOISING, FAILED)
STATE_TEXT = {EMPTY: "Empty", QUEUED: "Queued", DENOISING: "Denoising", DONE: "Done", STALE: "Stale",
              FAILED: "Failed", DAMAGED: "Damaged"}
#: What a chunk being denoised says before the engine's first step, on its badge and over its picture (not "0%").
STARTING = "Starting"
STATE_TIPS = {
    EMPTY: "Not generated yet",
    QUEUED: "Waiting for its turn in the current generation",
    DENOISING: "Being generated now",
    DONE: "Generated from this prompt and seed",
    STALE: "Its frames were made from an earlier prompt, seed, reference or an earlier chunk: "
           "regenerate to update them (the old frames are kept as a take)",
    FAILED: "The generation of this chunk failed; see the message above the player",
    DAMAGED: "Its files in the project are missing or unreadable: regenerate it (or restore them from a backup)",
}

#: Card geometry: the thumbnail's height, the text column's width. Every card has the same width:
#: one card is one 24-frame chunk, so the row of cards is a time grid.
THUMB_HEIGHT = 112
TEXT_WIDTH = 208
CARD_PADDING = 8
CARD_SPACING = 8
RULER_HEIGHT = 24


def thumb_width(width: int, height: int) -> int:
    """Thumbnail width for the project's aspect ratio, kept readable for very tall or very wide videos."""
    return max(84, min(200, round(THUMB_HEIGHT * width / max(1, height))))


def time_text(frame: int, fps: int) -> str:
    """Frame → "m:ss" on whole seconds, "m:ss.ff" (hundredths) otherwise."""
    seconds = frame / max(1, fps)
    minutes, rest = divmod(seconds, 60)
    if abs(rest - round(rest)) < 1e-9:
        return f"{int(minutes)}:{int(round(rest)):02d}"
    return f"{int(minutes)}:{rest:05.2f}"


#: A card's state badge (state_badge.StateBadge, painted by hand): (background, text) colour by state.
BADGE_COLOURS = {
    EMPTY: ("#2a2e37", "#9aa2b1"), QUEUED: ("#173944", "#7fdcef"), DENOISING: ("#1d8aa3", "#ffffff"),
    DONE: ("#183a2d", "#6fdcaa"), STALE: ("#45361a", "#f3c060"), FAILED: ("#4a2224", "#ff8a82"),
    DAMAGED: ("#4a2224", "#ff8a82"),
}
BADGE_POINT_SIZE = 8.0

#: A card's frame (ChunkCard, painted by hand): (background, border colour, border width) by (hovered or selected,
#: selected); its corners' radius.
CARD_FRAME = {
    (False, False): ("#20232a", "#2f3440", 1), (True, False): ("#20232a", "#444b59", 1),
    (True, True): ("#242539", "#7467f0", 2),
}
CARD_RADIUS = 10.0


def set_style_property(widget: QWidget, name: str, value) -> None:
    """Set a property the style sheet selects on, and re-polish only when it changed."""
    if widget.property(name) == value:
        return
    widget.setProperty(name, value)
    widget.style().unpolish(widget)
    widget.style().polish(widget)


#: A shot group's background (TIMELINE_QSS), and the selected shot's: the header kept in view paints it too.
SHOT_BACKGROUND, SHOT_BACKGROUND_CURRENT = "#1a1c22", "#1c1d27"

TIMELINE_QSS = """
#TimelineView, #StoryboardStrip, #TimelineScroll, #TimelineScroll > QWidget > QWidget { background: #15171c; }
#TimelineHeader { background: #1e2128; border-bottom: 1px solid #2c313b; }
#TimelineHeader QToolBar { background: transparent; border: none; padding: 0; spacing: 1px; }
#TimelineHeader QToolButton { padding: 3px; }
#TimelineSummary { color: #9aa2b1; padding: 0 6px; }
#TimelineTitle { color: #f1f2f6; font-weight: bold; }

#ShotGroup { background: @SHOT_BACKGROUND; border: 1px solid #262a32; border-radius: 12px; }
#ShotGroup[current="true"] { border-color: #3b3670; background: @SHOT_BACKGROUND_CURRENT; }
#ShotGroup[dropTarget="true"] { border: 2px dashed #22b8d6; background: #16262c; }
#ShotName { background: transparent; border: 1px solid transparent; border-radius: 5px; font-weight: bold;
            color: #f1f2f6; padding: 1px 4px; }
#ShotName:hover { border-color: #343a45; }
#ShotName:focus { background: #121418; border-color: #7467f0; }
#ShotPrompt, #ShotNegativePrompt { background: #121418; border: 1px solid #2a2e37; border-radius: 5px; color: #dfe3ea;
                                  padding: 1px 6px; }
#ShotPrompt:focus, #ShotNegativePrompt:focus { border-color: #7467f0; }
#ShotStart { padding: 1px 20px 1px 6px; min-height: 18px; }
#ShotChip { background: #2a2e37; color: #c9cedb; border-radius: 9px; padding: 1px 8px; }
#ShotChip[preview="true"] { background: #22b8d6; color: #0d0e11; font-weight: bold; }
#ShotGroup QToolButton { padding: 2px; }
#AddChunkButton { background: transparent; border: 1px dashed #343a45; border-radius: 10px; }
#AddChunkButton:hover { background: #1f2230; border-color: #7467f0; }
#NewShotButton { background: transparent; border: 1px dashed #343a45; border-radius: 12px; color: #9aa2b1;
                 padding: 8px 14px; }
#NewShotButton:hover { border-color: #7467f0; color: #e3e6ec; background: #1f2230; }

#CardIndex { color: #f1f2f6; font-weight: bold; font-size: 10.5pt; }
#CardTime { color: #8b93a3; }
#DraftBadge { border-radius: 8px; padding: 1px 7px; font-size: 8pt; font-weight: bold; background: transparent;
              color: #f3c060; border: 1px dashed #f3c060; }
#PromptEdit { background: #15171b; border: 1px solid #2a2e37; border-radius: 6px; padding: 1px 3px; }
#PromptEdit:focus { border-color: #7467f0; background: #101216; }
#SeedEdit { background: transparent; border: 1px solid transparent; border-radius: 5px; padding: 0 3px;
            color: #c9cedb; }
#SeedEdit:hover { border-color: #343a45; }
#SeedEdit:focus { background: #121418; border-color: #7467f0; }
#SeedLabel { color: #6b7280; }
#ChunkCard QToolButton { padding: 1px; border-radius: 5px; }
#ChunkCard QToolButton:checked { background: #332f5c; border-color: #5a4fd0; }
#ChunkCard #CardRegenerate { background: #f3c060; color: #15171c; border: 1px solid #15171c; border-radius: 6px;
                             padding: 2px 9px; font-size: 8pt; font-weight: bold; }
#ChunkCard #CardRegenerate:hover { background: #ffd784; }
#ChunkCard #CardRegenerate:pressed { background: #d9a441; }
#ChunkCard #CardRegenerate[state="damaged"] { background: #ff8a82; }
#ChunkCard #CardRegenerate[state="damaged"]:hover { background: #ffaaa4; }
""".replace("@SHOT_BACKGROUND_CURRENT", SHOT_BACKGROUND_CURRENT).replace(
    "@SHOT_BACKGROUND", SHOT_BACKGROUND)
