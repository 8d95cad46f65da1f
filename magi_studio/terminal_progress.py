"""A one-line progress bar for the command line (stderr), fed by engine events."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from magi_engine.events import ChunkFinished, GenerationStarted, StepProgress


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class TerminalProgress:
    """Draws `[#####-----] chunk 2/5 · step 14/56 · 0:12 elapsed · 0:30 left` on one line."""

    def __init__(self, stream: TextIO | None = None, width: int = 28, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.enabled = enabled
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._chunks = 0
        self._done_chunks = 0
        self._last_draw = 0.0

    def update(self, event) -> None:
        if not self.enabled:
            return
        if isinstance(event, GenerationStarted):
            self._chunks = len(event.chunks)
        elif isinstance(event, ChunkFinished):
            self._done_chunks += 1
            self._print_line(f"chunk {event.chunk} done ({self._done_chunks}/{self._chunks}) "
                             f"after {format_seconds(event.elapsed_s)}")
        elif isinstance(event, StepProgress):
            self._draw(event)

    def _draw(self, event: StepProgress) -> None:
        now = time.monotonic()
        last = event.step == event.total_steps
        if not self.interactive or (now - self._last_draw < 0.1 and not last):
            return
        self._last_draw = now
        fraction = event.step / event.total_steps
        filled = int(round(fraction * self.width))
        eta = event.elapsed_s / fraction * (1 - fraction) if fraction > 0 else 0.0
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] chunk {min(self._done_chunks + 1, self._chunks)}/{self._chunks} · "
                          f"step {event.step}/{event.total_steps} · {format_seconds(event.elapsed_s)} elapsed · "
                          f"{format_seconds(eta)} left ")
        self.stream.flush()

    def _print_line(self, text: str) -> None:
        prefix = "\r\033[K" if self.interactive else ""
        self.stream.write(f"{prefix}{text}\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        if self.enabled:
            self._print_line(text)
