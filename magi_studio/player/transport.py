"""The transport bar under the picture: scrub bar, play/pause, frame step, loop, and the readouts.

Only widgets live here; PreviewPlayer connects them to playback. The position reads as timecode,
HH:MM:SS:FF at the project's frame rate (FF the frame within its second, as editors show it),
labelled "TC", or — the frame counter option — as frame numbers; beside it the shuttle speed while
J/L shuttle, the in/out range once I or O marked it, and the chunk under the playhead named as the
storyboard's cards number it ("Shot 2 · chunk 3"). Buttons take no keyboard focus (the player's keys
keep working after a click).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from magi_studio.player.frame_store import FrameStore
from magi_studio.player.marks import InOutRange, timecode
from magi_studio.player.scrub_bar import ScrubBar
from magi_studio.theme import icon
from magi_studio.widgets.elided_label import ElidedLabel


#: The widest the "Shot 2 · chunk 3" readout grows, in pixels.
CHUNK_LABEL_WIDTH = 220


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


def _readout(text: str = "", name: str = "FrameReadout") -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    return label


def _elided_readout(shortest: str, mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight) -> ElidedLabel:
    """A readout that gives up its width before the window grows: the in/out length and the chunk's name came
    after the timecode, and with both shown a 1366-pixel screen no longer held the window."""
    label = ElidedLabel(shortest=shortest, mode=mode)
    label.setObjectName("FrameReadout")
    return label


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
        self.loop = _tool_button("loop", "Loop the in/out range, or everything (Ctrl+/)")
        self.loop.setCheckable(True)

        self.frame_counter = False
        self.caption = _readout("TC", "TimecodeCaption")
        self.timecode = _readout("00:00:00:00", "Timecode")
        self.duration = _readout("/ 00:00:00:00")
        self.rate = _readout("", "ShuttleRate")
        self.rate.setToolTip("Shuttle speed: J/L again to go faster, K to stop")
        self.rate.hide()
        self.in_out = _elided_readout("In/Out")
        self.in_out.hide()
        self.chunk = _elided_readout("chunk 1", Qt.TextElideMode.ElideMiddle)
        self.chunk.setMaximumWidth(CHUNK_LABEL_WIDTH)

        buttons = QHBoxLayout()
        buttons.setSpacing(2)
        for widget in (self.go_start, self.step_back, self.play, self.step_forward, self.go_end):
            buttons.addWidget(widget)
        buttons.addSpacing(14)
        buttons.addWidget(self.caption)
        buttons.addSpacing(4)
        buttons.addWidget(self.timecode)
        buttons.addWidget(self.duration)
        buttons.addSpacing(10)
        buttons.addWidget(self.rate)
        buttons.addStretch(1)
        buttons.addWidget(self.in_out)
        buttons.addSpacing(14)
        buttons.addWidget(self.chunk)
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

    def show_rate(self, rate: int) -> None:
        """The shuttle speed while it is not plain forward play (rate frames a tick; 0: paused)."""
        self.rate.setVisible(rate not in (0, 1))
        self.rate.setText(f"{'◀◀' if rate < 0 else '▶▶'} {abs(rate)}×")

    def set_frame_counter(self, frames: bool) -> None:
        """Frame numbers (True) or timecode (False) for the position readouts."""
        self.frame_counter = frames
        self.caption.setText("Frame" if frames else "TC")
        self.caption.setToolTip("Frame number (View › Frame Numbers)" if frames
                                else "Timecode: hours:minutes:seconds:frames at the project's frame rate")

    def position_text(self, frame: int, fps: float) -> str:
        """A frame as the readouts show it: its number from 1, or its timecode."""
        return str(frame + 1) if self.frame_counter else timecode(frame, fps)

    def show_position(self, frame: int, frame_count: int, chunk_name: str, fps: float,
                      in_out: InOutRange | None = None) -> None:
        if self.frame_counter:
            self.timecode.setText(str(frame + 1 if frame_count else 0))
            self.duration.setText(f"/ {frame_count}")
        else:
            self.timecode.setText(timecode(frame, fps))
            self.duration.setText(f"/ {timecode(frame_count, fps)}")
        self.chunk.setText(chunk_name, chunk_name.rpartition(" · ")[2])  # short of room: "chunk 3" without its shot
        self.chunk.setToolTip(f"{chunk_name}: the chunk under the playhead, numbered within its shot as on "
                              "the storyboard")
        self.in_out.setVisible(in_out is not None)
        if in_out is not None:  # short: the scrub bar shows where it lies, the tooltip says it exactly
            length = f"{in_out.frame_count} frames" if self.frame_counter else timecode(in_out.frame_count, fps)
            self.in_out.setText(f"In/Out {length}", "In/Out")
            self.in_out.setToolTip(f"In {self.position_text(in_out.first, fps)}, out "
                                   f"{self.position_text(in_out.last, fps)}: {in_out.frame_count} frames. Loop "
                                   "plays this range; Shift+I / Shift+O go to its ends, Alt+X clears it")
        self.scrub.fps = fps
        self.scrub.set_frame(frame)
        for widget in (self.go_start, self.step_back, self.play, self.step_forward, self.go_end, self.scrub):
            widget.setEnabled(frame_count > 0)
