"""The storyboard editor: shots as groups of chunk cards on a 24-frame grid, and its link to the player.

    from magi_studio.timeline import TimelineView, PlayerSync

view         TimelineView: the widget, redrawn from a DocumentSession; job states; its signals
editing      the edit operations (add, insert, duplicate, delete, move, split, shots, seeds, references)
edits        what each gesture means as a document command (no widgets)
derive       document → card and shot models; job states; thumbnail and reference caches
strip        the scrolling row: ruler, playhead, keyboard, drag and drop
shot_group   one shot: header and its row of cards
card         one chunk: prompt, seed, lock, state, its frame and picture painted by hand; thumbnail: the picture (CardPicture)
menus        the card and shot context menus
player_sync  fills the player from the active path; playhead and selection follow each other
"""

from magi_studio.timeline.player_sync import PlayerSync
from magi_studio.timeline.style import DENOISING, DONE, EMPTY, FAILED, QUEUED, STALE
from magi_studio.timeline.view import TimelineView

__all__ = ["TimelineView", "PlayerSync", "EMPTY", "QUEUED", "DENOISING", "DONE", "STALE", "FAILED"]
