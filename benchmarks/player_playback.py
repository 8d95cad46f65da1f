"""Real-time playback in the preview player: frames presented and dropped at the project's fps.

    python benchmarks/player_playback.py                       # 3 s at 24 fps, 256x256, offscreen
    python benchmarks/player_playback.py --seconds 10 --size 720x720 --json out.json

A shown PreviewPlayer (800x600) plays numbered frames on its own PlaybackClock; the figures are the
player's `stats`, counted at paint time: frames due, presented and dropped (due but never painted),
and the worst delay from a frame's due time to its paint. Dropped frames depend on what else the
machine runs, so the 1-minute load average is printed with them. What playback must do whatever the
machine's speed is tested in tests/magi_studio/player/test_player.py on a clock the test moves.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from benchmarks.gui_timing import wait_for  # noqa: E402
from magi_engine.config import CHUNK_FRAMES  # noqa: E402
from magi_studio.player import PreviewPlayer  # noqa: E402


def numbered_chunk(chunk: int, width: int, height: int) -> np.ndarray:
    frames = np.zeros((CHUNK_FRAMES, height, width, 3), np.uint8)
    frames[..., 0] = (np.arange(CHUNK_FRAMES) * 10 % 256)[:, None, None]
    frames[..., 1] = chunk * 40 % 256
    return frames


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--fps", type=float, default=24.0)
    parser.add_argument("--size", default="256x256", help="WIDTHxHEIGHT of the frames")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    app = QApplication.instance() or QApplication([])
    player = PreviewPlayer(fps=args.fps)
    player.resize(800, 600)
    player.show()
    chunks = int(args.seconds * args.fps) // CHUNK_FRAMES + 2  # playback never reaches the end
    for chunk in range(chunks):
        player.store.set_frames(chunk, numbered_chunk(chunk, width, height))
    app.processEvents()
    load_before = os.getloadavg()[0]
    player.play()
    wait_for(lambda: player.stats.elapsed_s >= args.seconds, args.seconds + 30, "the playback")
    stats = player.stats
    player.pause()
    result = {"seconds": round(stats.elapsed_s, 3), "fps": args.fps, "size": args.size, "due": stats.due,
              "presented": stats.presented, "dropped": stats.dropped, "max_late_ms": round(stats.max_late_ms, 1),
              "load_1min": round(load_before, 2), "cpus": os.cpu_count()}
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
