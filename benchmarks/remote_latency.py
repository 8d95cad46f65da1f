"""What the remote engine adds per chunk: loopback latency with studio-mini, and bytes/ms at 720x720.

    python benchmarks/remote_latency.py [--chunks 4] [--size 128] [--big 720] [--repeats 5] [--json out.json]

1. studio-mini at 128x128 (CPU) behind a server on 127.0.0.1 in this process: for each chunk, the time
   from the engine yielding ChunkFinished on the server to RemoteSession yielding it on the client
   (PNG + safetensors encoding, the WebSocket, decoding), and the whole run against the same run local.
2. A 24-frame chunk at --big x --big with synthetic frames (a rendered-looking scene, and noise as the
   worst case for a lossless codec) and its 16-channel latents: the bytes on the wire (raw: 37 MB of
   pixels at 720x720) and the milliseconds to encode, send over a loopback WebSocket and decode.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)

from magi_engine.events import ChunkFinished  # noqa: E402
from magi_engine.remote.client import RemoteSession  # noqa: E402
from magi_engine.remote.protocol import decode, decode_event, encode_event  # noqa: E402
from magi_engine.remote.server import ServerThread  # noqa: E402
from magi_engine.requests import ChunkSpec, GenerationRequest  # noqa: E402
from magi_engine.session import GenerationSession  # noqa: E402

TOKEN = "benchmark-token-0123456789"
PROMPTS = ("a red ball falls and bounces on white", "the red ball rolls to the right", "the red ball stays still",
           "the red ball grows")


class TimedSession(GenerationSession):
    """studio-mini, noting when each finished chunk leaves the engine (same process, same clock)."""

    def __init__(self, bundle) -> None:
        super().__init__(bundle)
        self.yielded: dict[int, float] = {}

    def generate(self, request, cancel=None):
        for event in super().generate(request, cancel):
            if isinstance(event, ChunkFinished):
                self.yielded[event.chunk] = time.perf_counter()
            yield event


def loopback(chunks: int, size: int, repeats: int) -> dict:
    session = TimedSession(GenerationSession.load("studio-mini", device="cpu").bundle)
    request = GenerationRequest(chunks=tuple(ChunkSpec(PROMPTS[i % 4], seed=i) for i in range(chunks)), width=size,
                                height=size)
    server = ServerThread(session, TOKEN)
    added, remote_s, local_s = [], [], []
    try:
        with RemoteSession.connect(server.url, token=TOKEN) as remote:
            list(remote.generate(request))  # warm-up (text cache, allocator)
            for _ in range(repeats):
                session.yielded.clear()
                started = time.perf_counter()
                for event in remote.generate(request):
                    if isinstance(event, ChunkFinished):
                        added.append((time.perf_counter() - session.yielded[event.chunk]) * 1000)
                remote_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                list(session.generate(request))
                local_s.append(time.perf_counter() - started)
    finally:
        server.stop()
    return {"size": size, "chunks": chunks, "repeats": repeats,
            "added_ms_per_chunk_median": statistics.median(added), "added_ms_per_chunk_max": max(added),
            "run_s_remote_median": statistics.median(remote_s), "run_s_local_median": statistics.median(local_s)}


def synthetic_frames(size: int, kind: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if kind == "noise":
        return rng.integers(0, 256, (24, size, size, 3), dtype=np.uint8)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    frames = []
    for t in range(24):  # a lit gradient sky, a moving ball, and sensor-like grain of +-2
        sky = np.stack([60 + 120 * y, 90 + 100 * y, 200 - 80 * y + 20 * np.sin(6 * x + t / 5)], -1)
        ball = ((x - 0.2 - t / 40) ** 2 + (y - 0.5) ** 2) < 0.01
        sky[ball] = (200, 40, 30)
        frames.append(np.clip(sky + rng.integers(-2, 3, sky.shape), 0, 255).astype(np.uint8))
    return np.stack(frames)


def transfer_ms(payload: bytes, repeats: int) -> float:
    """Median milliseconds to send `payload` to a loopback WebSocket server and have it received whole."""
    from websockets.asyncio.server import serve
    from websockets.sync.client import connect

    loop = asyncio.new_event_loop()
    received = []
    arrived = threading.Event()

    async def handler(connection):
        async for message in connection:
            received.append(time.perf_counter())
            arrived.set()

    async def start():
        return await serve(handler, "127.0.0.1", 0, max_size=None, compression=None)

    threading.Thread(target=loop.run_forever, daemon=True).start()
    server = asyncio.run_coroutine_threadsafe(start(), loop).result()
    port = server.sockets[0].getsockname()[1]
    times = []
    with connect(f"ws://127.0.0.1:{port}", max_size=None, compression=None) as client:
        for _ in range(repeats):
            arrived.clear()
            started = time.perf_counter()
            client.send(payload)
            arrived.wait(60)
            times.append((received[-1] - started) * 1000)
    async def stop():
        server.close()
        await server.wait_closed()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    return statistics.median(times)


def big_chunk(size: int, repeats: int) -> list[dict]:
    rows = []
    latent = torch.randn(16, 6, size // 8, size // 8)
    for kind in ("scene", "noise"):
        event = ChunkFinished(3, synthetic_frames(size, kind), latent, 0, 1.0)
        encode_ms, decode_ms = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            data = encode_event(event, "run", 1)
            encode_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            back = decode_event(decode(data))
            decode_ms.append((time.perf_counter() - started) * 1000)
        assert np.array_equal(back.frames, event.frames) and torch.equal(back.latent, latent)  # lossless
        rows.append({"size": size, "frames": kind, "raw_bytes": event.frames.nbytes + latent.numel() * 4,
                     "wire_bytes": len(data), "encode_ms": statistics.median(encode_ms),
                     "transfer_ms": transfer_ms(data, repeats), "decode_ms": statistics.median(decode_ms)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--big", type=int, default=720)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {"loopback": loopback(args.chunks, args.size, args.repeats), "big_chunk": big_chunk(args.big, args.repeats)}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
