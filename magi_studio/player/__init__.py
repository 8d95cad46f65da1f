"""The preview player: a chunk-indexed frame store, a self-painted view, transport and frame clock.

    from magi_studio.player import PreviewPlayer, FrameStore, GenerationFeed
"""

from magi_studio.player.clock import PlaybackClock
from magi_studio.player.feed import GenerationFeed
from magi_studio.player.frame_store import FrameImage, FrameStore, SlotState
from magi_studio.player.frame_view import FrameView
from magi_studio.player.marks import InOutRange, ShotSpan, chunk_name, timecode
from magi_studio.player.player import PlaybackStats, PreviewPlayer
from magi_studio.player.transport import TransportBar

__all__ = ["PreviewPlayer", "PlaybackStats", "PlaybackClock", "FrameStore", "FrameImage", "SlotState",
           "FrameView", "TransportBar", "GenerationFeed", "timecode", "InOutRange",
           "ShotSpan", "chunk_name"]
