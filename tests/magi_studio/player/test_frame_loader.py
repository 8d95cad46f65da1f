"""FrameLoader alone: decodes off the GUI thread, most wanted first, a new wish list replaces the old,
and shutting down drops what is still wished for and stops the worker."""

from __future__ import annotations

import threading

import numpy as np

from magi_studio.player.frame_loader import FrameLoader


class HeldReads:
    """read() callables that record their thread and wait for `gate` before returning."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls: list[tuple[str, str]] = []
        self.started = threading.Event()

    def request(self, key: str):
        def read() -> np.ndarray:
            self.calls.append((key, threading.current_thread().name))
            self.started.set()
            assert self.gate.wait(10)
            return np.full((1, 2, 2, 3), len(self.calls), np.uint8)
        return key, read


def test_frames_arrive_on_the_gui_thread_in_wish_order_and_a_new_wish_list_replaces_the_old(qtbot):
    loader, reads, delivered = FrameLoader(), HeldReads(), []
    loader.loaded.connect(lambda key, frames: delivered.append((key, threading.current_thread().name)))
    loader.want([reads.request("a"), reads.request("b"), reads.request("c")])
    assert reads.started.wait(5)  # "a" is being decoded; "b" and "c" wait
    loader.want([reads.request("c"), reads.request("a"), reads.request("d")])  # "b" no longer wanted
    assert loader.pending() == ["a", "c", "d"]  # "a" is not asked for twice while it is being decoded
    reads.gate.set()
    assert loader.wait(5000)
    qtbot.waitUntil(lambda: len(delivered) == 3, timeout=5000)
    assert [key for key, _ in reads.calls] == ["a", "c", "d"]
    assert all(thread.startswith("magi-frames") for _, thread in reads.calls)
    assert delivered == [(key, threading.main_thread().name) for key in ("a", "c", "d")]


def test_a_failed_read_is_reported_and_the_rest_still_decoded(qtbot):
    loader, failures, delivered = FrameLoader(), [], []
    loader.failed.connect(lambda key, error: failures.append((key, str(error))))
    loader.loaded.connect(lambda key, frames: delivered.append(key))

    def broken():
        raise OSError("damaged strip")

    loader.want([("bad", broken), ("good", lambda: np.zeros((1, 2, 2, 3), np.uint8))])
    qtbot.waitUntil(lambda: bool(failures and delivered), timeout=5000)
    assert failures == [("bad", "damaged strip")] and delivered == ["good"]


def test_shutdown_drops_the_wishes_joins_the_worker_and_ignores_later_wishes(qtbot):
    loader, reads = FrameLoader(), HeldReads()
    loader.want([reads.request("a"), reads.request("b")])
    assert reads.started.wait(5)
    threading.Timer(0.2, reads.gate.set).start()  # the decode in progress ends while shutdown waits for it
    assert loader.shutdown(timeout_ms=5000)
    assert [key for key, _ in reads.calls] == ["a"] and loader.pending() == []
    loader.want([reads.request("c")])
    assert loader.pending() == [] and loader.wait(1000) and [key for key, _ in reads.calls] == ["a"]
