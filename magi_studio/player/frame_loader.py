"""FrameLoader: decodes chunk frames on a background thread, most wanted first.

    loader = FrameLoader(parent)
    loader.loaded.connect(on_frames)               # (key, frames), delivered on the GUI thread
    loader.failed.connect(on_error)                # (key, exception)
    loader.want([(key, read), ...])                # the whole wish list, most wanted first
    loader.shutdown()                              # the window closes: drop the wishes, join the worker

Decoding a chunk's PNG strip takes ~10 ms at 128 px and far longer at 720p, so it never runs on the
GUI thread. `want` replaces the wish list rather than adding to it: when the playhead moves or another
take is shown, requests nobody wants any more are dropped before they are decoded, and the new order
(the chunk under the playhead first) takes effect at the next decode. A decode already running finishes
and is delivered anyway: the receiver drops frames tagged with a key it no longer shows.

One worker decodes at a time: cv2 releases the GIL while decoding, so that one thread keeps the GUI
responsive, and more would only compete with playback for the CPU. It is a Python thread, like the
controllers' SerialTasks (see magi_studio/controllers/common.py for why not a QThreadPool).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np
from PySide6.QtCore import QObject, Signal

Read = Callable[[], np.ndarray]


class FrameLoader(QObject):
    #: (key, frames): a decode finished. Emitted from the worker; queued to the receivers' (GUI) thread.
    loaded = Signal(str, object)
    #: (key, exception): a decode failed.
    failed = Signal(str, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._wanted: list[tuple[str, Read]] = []
        self._decoding: str | None = None  # the key the worker is decoding now (not asked for twice)
        self._running = False
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="magi-frames")
        self._drain_future: Future | None = None

    def want(self, requests: Iterable[tuple[str, Read]]) -> None:
        """Decode these (key, read) requests, most wanted first, forgetting any earlier wish list."""
        with self._lock:
            if self._closed:
                return
            self._wanted = [(key, read) for key, read in requests if key != self._decoding]
            start = bool(self._wanted) and not self._running
            self._running = self._running or start
            if start:
                self._drain_future = self._executor.submit(self._drain)

    def pending(self) -> list[str]:
        """The keys still to decode (the one being decoded included)."""
        with self._lock:
            return ([self._decoding] if self._decoding else []) + [key for key, _ in self._wanted]

    def wait(self, timeout_ms: int = -1) -> bool:
        """Block until the worker is idle (tests, and shutting down); True if it is."""
        with self._lock:
            future = self._drain_future
        if future is None:
            return True
        try:
            future.result(timeout=None if timeout_ms < 0 else timeout_ms / 1000)
        except FutureTimeout:
            return False
        return True

    def shutdown(self, timeout_ms: int = 2000) -> bool:
        """Forget every wish, let a decode in progress finish (up to timeout_ms) and stop the worker.

        Later `want` calls are ignored. True if the worker stopped in time."""
        with self._lock:
            self._closed = True
            self._wanted = []
        stopped = self.wait(timeout_ms)
        self._executor.shutdown(wait=False)
        return stopped

    def _drain(self) -> None:  # on the worker thread
        while True:
            with self._lock:
                if not self._wanted:
                    self._running, self._decoding = False, None
                    return
                key, read = self._wanted.pop(0)
                self._decoding = key
            try:
                outcome, signal = read(), self.loaded
            except Exception as error:  # a damaged or missing file: the receiver says so
                outcome, signal = error, self.failed
            try:
                signal.emit(key, outcome)
            except RuntimeError:  # the loader was deleted meanwhile (its window closed): nobody to tell
                pass
            with self._lock:
                self._decoding = None
