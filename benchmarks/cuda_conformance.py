"""Run the MAGI-1 golden cases on a GPU: the DiT cases and the cfg3/distilled sampler, fp32 and bf16.

    MAGI_CONFORMANCE_DIR=path/to/conformance python benchmarks/cuda_conformance.py

Prints the max |Δ| of each case against the official float32 outputs. float32 runs with TF32 off;
bfloat16 runs show the drift of the production precision (fp32 islands kept, as the reference does).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)

from safetensors.torch import load_file  # noqa: E402

from magi_engine.config import GuidanceConfig, SamplingConfig  # noqa: E402
from magi_engine.dit.attention import ChunkLayout  # noqa: E402
from magi_engine.sampler.loop import ChunkDone, ChunkPlan, sample_chunks  # noqa: E402
from tests.conformance import conformance_path  # noqa: E402
from tests.engine.dit.conformance_util import chunk_text, load_case_folder  # noqa: E402


def main() -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda")
    report = {}
    for dtype in (torch.float32, torch.bfloat16):
        for family in ("dit_tiny", "dit_tiny_24b"):
            model, inp, out, _ = load_case_folder(family)
            model = model.to(device).set_dtype(dtype)
            with torch.inference_mode():
                v = model(inp["x"].to(device), inp["t"].to(device), chunk_text(inp["y"], inp["xattn_mask"]), True,
                          ChunkLayout.causal(0, 2, 72)).velocity.float().cpu()
            report[f"{family}.case_a.{dtype}"] = (v - out["case_a.v"]).abs().max().item()
        for mode in ("cfg3", "distill"):
            model, *_ = load_case_folder("dit_tiny", distilled=mode == "distill")
            model = model.to(device).set_dtype(dtype)
            data = load_file(conformance_path("sampler", f"{mode}.safetensors"))
            sampling = SamplingConfig(num_steps=8, window=4,
                                      guidance=GuidanceConfig(mode="cfg3" if mode == "cfg3" else "distilled"))
            y, m = data["y"], data["emb_masks"]
            plans = [ChunkPlan(c, data["noise"][:, :, 6 * c:6 * c + 6], y[0, c][m[0, c].bool()]) for c in range(3)]
            with torch.inference_mode():
                done = {e.index: e.latent.cpu() for e in sample_chunks(model, sampling, plans, y[1, 0][m[1, 0].bool()])
                        if isinstance(e, ChunkDone)}
            report[f"sampler.{mode}.{dtype}"] = max((done[c] - data[f"clean_chunk{c}"]).abs().max().item()
                                                    for c in range(3))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
