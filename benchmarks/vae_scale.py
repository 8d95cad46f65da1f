"""Benchmark MAGI-1's ViT VAE at full size (random weights): decode and encode of one 24-frame chunk.

    python benchmarks/vae_scale.py --size 720x720 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)

from magi_engine.vae import VideoVAE  # noqa: E402
from magi_engine.variants import MAGI_VAE  # noqa: E402


def timed(fn, device, repeat=3):
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeat, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="720x720")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    vae = VideoVAE(MAGI_VAE).to(device=device, dtype=dtype).eval()
    latent = torch.randn(16, 6, height // 8, width // 8, device=device)
    frames = torch.randint(0, 255, (24, height, width, 3), dtype=torch.uint8, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        decode_s, pixels = timed(lambda: vae.latents_to_pixels(latent), device)
        encode_s, _ = timed(lambda: vae.pixels_to_latents(frames), device)
    result = {"size": [width, height], "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "dtype": str(dtype), "params": sum(p.numel() for p in vae.parameters()),
              "decode_chunk_s": round(decode_s, 3), "encode_chunk_s": round(encode_s, 3),
              "decoded_shape": list(pixels.shape),
              "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
