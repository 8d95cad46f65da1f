"""How long the GUI thread is blocked while the engine generates in its worker thread.

    python benchmarks/gui_stall.py                            # tiny random model, 12 chunks at 64x64
    python benchmarks/gui_stall.py --size 256x256 --chunks 8  # bigger frames through the same path
    python benchmarks/gui_stall.py --model studio-mini --chunks 4 --json out.json

A 1 ms QTimer on the GUI thread records the gap between consecutive ticks while one generation runs
through EngineWorker, and a shown PreviewPlayer paints every live preview and finished chunk through
GenerationFeed — the app's own path. With --play the player also plays (looping) meanwhile. Prints
the longest gap (the worst stall; target < 50 ms), its 99th percentile, the time from Generate to the
first chunk painted, and seconds per chunk. Runs offscreen unless QT_QPA_PLATFORM says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

from benchmarks.gui_timing import TARGET_MS, StallRecorder, wait_for  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="'tiny' (random test model) or a spec for "
                        "GenerationSession.load")
    parser.add_argument("--chunks", type=int, default=12)
    parser.add_argument("--size", default=None, help="WIDTHxHEIGHT (default: the model's)")
    parser.add_argument("--window", type=int, default=None, help="chunks denoised at once (default: the model's)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CI machines have 2 cores)")
    parser.add_argument("--play", action="store_true", help="play the preview (looping) during generation")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import dataclasses

    import torch

    torch.set_num_threads(args.threads)
    app = QApplication.instance() or QApplication(["gui_stall"])
    from magi_engine.events import ChunkFinished, Failed
    from magi_engine.requests import ChunkSpec, GenerationRequest
    from magi_engine.session import GenerationSession
    from magi_studio import theme
    from magi_studio.engine_worker import EngineWorker
    from magi_studio.player import SlotState, GenerationFeed, PreviewPlayer

    theme.apply_theme(app)
    worker = EngineWorker()
    if args.model == "tiny":
        from tests.engine.factories import tiny_bundle

        load = worker.use_session(GenerationSession(tiny_bundle()))
    else:
        load = worker.load_model(args.model, "cpu")
    errors = []
    worker.event.connect(lambda job, event: isinstance(event, Failed) and errors.append(event.error))
    wait_for(lambda: load not in worker.live_jobs, 600, "the model to load")
    if errors:
        raise SystemExit(f"could not load {args.model}: {errors[0]}")
    info = worker.model_info
    width, height = (int(v) for v in args.size.split("x")) if args.size else (info.width, info.height)
    sampling = info.sampling if args.window is None else dataclasses.replace(info.sampling, window=args.window)
    prompts = ("a red ball falls", "the blue square moves left", "a green triangle grows")
    request = GenerationRequest(chunks=tuple(ChunkSpec(prompts[i % 3], seed=i) for i in range(args.chunks)),
                                width=width, height=height, sampling=sampling)

    player = PreviewPlayer(fps=info.fps)
    player.resize(960, 640)
    player.show()
    player.set_looping(True)
    wait_for(player.isVisible, 10, "the player to show")

    stalls = StallRecorder()
    first_paint = []
    started = time.perf_counter()
    player.view.framePainted.connect(lambda frame: first_paint or (
        player.view.shown_frame.state == SlotState.FRAMES and first_paint.append(time.perf_counter() - started)))
    stalls.start()
    job = worker.generate(request)
    GenerationFeed(worker, player.store, job)  # owned by the store, which keeps it alive for the job
    if args.play:
        worker.event.connect(lambda j, e: isinstance(e, ChunkFinished) and (player.is_playing() or player.play()))
    wait_for(lambda: job not in worker.live_jobs, 3600, "the engine to finish")
    total_s = time.perf_counter() - started
    stalls.stop()
    player.pause()
    worker.shutdown()
    if errors:
        raise SystemExit(f"generation failed: {errors[0]}")

    result = {
        "model": info.label, "device": info.device, "size": f"{width}x{height}", "chunks": args.chunks,
        "steps_per_chunk": sampling.num_steps, "window": sampling.window, "torch_threads": args.threads,
        "playing": args.play, **stalls.summary(),
        "first_chunk_painted_s": round(first_paint[0], 3) if first_paint else None,
        "seconds_per_chunk": round(total_s / args.chunks, 4), "total_s": round(total_s, 3),
        "dropped_frames": player.stats.dropped if args.play else None,
    }
    verdict = "OK" if result["max_stall_ms"] < TARGET_MS else "OVER TARGET"
    print(f"{info.label} on {info.device}, {args.chunks} chunks at {width}x{height}"
          f"{' while playing' if args.play else ''}: max GUI stall {result['max_stall_ms']} ms ({verdict}, target "
          f"< {TARGET_MS:.0f} ms), p99 gap {result['p99_gap_ms']} ms, first chunk painted after "
          f"{result['first_chunk_painted_s']} s, {result['seconds_per_chunk']} s/chunk"
          + (f", dropped frames while playing: {result['dropped_frames']}" if args.play else ""))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
