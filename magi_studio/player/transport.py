"""The transport bar under the picture: scrub bar, play/pause, frame step, go to chunk, loop, readouts.

Only widgets live here; PreviewPlayer connects them to playback. Buttons take no keyboard focus
(the player's keys — space, arrows — keep working after a click), except the chunk box, which is an
input.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QToolButton, QVBoxLayout, QWidget

from magi_studio.player.frame_store import FrameStore
from magi_studio.player.scrub_bar import ScrubBar
from magi_studio.theme import icon


def timecode(frame: int, fps: float) -> str:
    """Frame index → "MM:SS:FF" (or "H:MM:SS:FF" past an hour), FF being the frame within its second."""
    fps_whole = max(1, round(fps))
    seconds, frames = divmod(max(0, frame), fps_whole)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{seconds:02d}:{frames:02d}"
    return f"{minutes:02d}:{seconds:02d}:{frames:02d}"


def _tool_button(icon_name: str, tip: str, object_name: str = "", size: int = 20) -> QToolButton:
    button = QToolButton()
    button.setIcon(icon(icon_name))
    button.setIconSize(QSize(size, size))
    button.setToolTip(tip)
    button.setAccessibleName(tip.split(" (")[0])
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    button.setAutoRaise(True)
    if object_name:
        button.setObjectName(object_name)
    return button


class TransportBar(QWidget):
    def __init__(self, store: FrameStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("TransportBar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)  # let the QSS paint our background

        self.scrub = ScrubBar(store)
        self.go_start = _tool_button("go-start", "Go to start (Home)")
        self.step_back = _tool_button("step-back", "Previous frame (Left)")
        self.play = _tool_button("play", "Play (Space)", "PlayButton", size=20)
        self.step_forward = _tool_button("step-forward", "Next frame (Right)")
        self.go_end = _tool_button("go-end", "Go to end (End)")
        self.loop = _tool_button("loop", "Loop playback (L)")
        self.loop.setCheckable(True)

        self.timecode = QLabel("00:00:00")
        self.timecode.setObjectName("Timecode")
        self.duration = QLabel("/ 00:00:00")
        self.duration.setObjectName("FrameReadout")
        self.frame_readout = QLabel("Frame 0 / 0")
        self.frame_readout.setObjectName("FrameReadout")
        self.chunk_box = QSpinBox()
        self.chunk_box.setObjectName("ChunkBox")
        self.chunk_box.setPrefix("Chunk ")
        self.chunk_box.setAccessibleName("Go to chunk")
        self.chunk_box.setToolTip("Go to chunk")
        self.chunk_box.setKeyboardTracking(False)  # seek when the number is complete, not per digit
        self.chunk_box.setRange(0, 0)
        self.chunk_total = QLabel("of 0")
        self.chunk_total.setObjectName("FrameReadout")

        buttons = QHBoxLayout()
        buttons.setSpacing(2)
        for widget in (self.go_start, self.step_back, self.play, self.step_forward, self.go_end):
            buttons.addWidget(widget)
        buttons.addSpacing(14)
        buttons.addWidget(self.timecode)
        buttons.addWidget(self.duration)
        buttons.addStretch(1)
        buttons.addWidget(self.frame_readout)
        buttons.addSpacing(14)
        buttons.addWidget(self.chunk_box)
        buttons.addWidget(self.chunk_total)
        buttons.addSpacing(10)
        buttons.addWidget(self.loop)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(6)
        layout.addWidget(self.scrub)
        layout.addLayout(buttons)

    def show_playing(self, playing: bool) -> None:
        self.play.setIcon(icon("pause" if playing else "play"))
        self.play.setToolTip("Pause (Space)" if playing else "Play (Space)")
        self.play.setAccessibleName("Pause" if playing else "Play")

    def show_position(self, frame: int, frame_count: int, chunk: int, chunk_count: int, fps: float) -> None:
        self.timecode.setText(timecode(frame, fps))
        self.duration.setText(f"/ {timecode(frame_count, fps)}")
        self.frame_readout.setText(f"Frame {frame + 1 if frame_count else 0} / {frame_count}")
        self.chunk_total.setText(f"of {chunk_count}")
        self.scrub.set_frame(frame)
        blocked = self.chunk_box.blockSignals(True)  # showing the position is not a request to seek
        self.chunk_box.setRange(1 if chunk_count else 0, chunk_count)
        self.chunk_box.setValue(chunk + 1 if chunk_count else 0)
        self.chunk_box.blockSignals(blocked)
        for widget in (self.go_start, self.step_back, self.play, self.step_forward, self.go_end, self.chunk_box,
                       self.scrub):
            widget.setEnabled(frame_count > 0)
