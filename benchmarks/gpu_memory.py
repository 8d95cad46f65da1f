"""End to end on a synthetic MAGI-1 checkpoint: memory under a cap, the loader's choices, time to first chunk.

One case a process (a memory cap holds for the whole process):

    python benchmarks/gpu_memory.py --checkpoint /tmp/magi/ckpt/magi/4.5B_distill/inference_weight.distill \
        --size 720x720 --window 4 --steps 16 --chunks 5 --cap-gib 24 --regenerate-from 4 --draft --json out.json

The cap is torch.cuda.set_per_process_memory_fraction (a 24 GiB card emulated on a larger one); the
loader reads it as the card's memory and places T5 (RuntimeConfig.text_encoder, None = its choice).
The run generates `chunks` chunks from nothing (time to the first chunk, from the request, T5 included),
then optionally regenerates from chunk N with the chunks before it as context (the stage that keeps the
most clean chunks: the estimate's worst case) with the same prompts (no T5 forward expected), then a
draft of the first two chunks (magi_engine.draft). Peak = torch.cuda.max_memory_allocated over the whole
case, set against the loader's estimate for the placement and DiT offload it chose (`--dit-offload`, auto
= the loader's choice). FLOPs of the DiT's forwards are counted from their layouts (benchmarks/gpu_speed_setup.py)
and set against a bf16 matmul measured in the same process: TFLOP/s over the steady chunks (the time
between chunk 2 and the last, T5 and VAE decode included). `--dequantise` loads an FP8 checkpoint as
bf16 (the dequantising loader: a bf16 model's bytes and kernels, without writing a 48 GB bf16 folder).
`--tiny` runs the same on a tiny checkpoint on the CPU (a test of this script).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.gpu_speed_setup import FlopRecorder, bf16_peak_tflops  # noqa: E402
from benchmarks.record import publish  # noqa: E402
from magi_engine.config import RuntimeConfig, SamplingConfig  # noqa: E402
from magi_engine.draft import draft_request  # noqa: E402
from magi_engine.events import ChunkFinished, Failed, Finished  # noqa: E402
from magi_engine.requests import ChunkSpec, GenerationRequest  # noqa: E402

GIB = 2**30
PROMPTS = ("a red circle rolls to the left over grass", "a blue square slides to the right over sand",
           "a green circle rolls over the sand", "a red square slides to the left", "a blue circle rolls right",
           "a green square slides over grass", "the red circle rolls to the right", "a blue square over grass")


def peak_gib() -> float | None:
    return round(torch.cuda.max_memory_allocated() / GIB, 2) if torch.cuda.is_available() else None


def run_request(session, request: GenerationRequest) -> dict:
    started = time.perf_counter()
    done, failure = [], None
    for event in session.generate(request):
        if isinstance(event, ChunkFinished):
            done.append(round(time.perf_counter() - started, 2))
        elif isinstance(event, Failed):
            failure = str(event.error)
        elif isinstance(event, Finished):
            break
    return {"chunk_done_at_s": done, "first_chunk_s": done[0] if done else None, "failed": failure,
            "peak_gib": peak_gib(), "size": [request.width, request.height],
            "steps": request.sampling.num_steps, "window": request.sampling.window}


def tiny_variants() -> None:
    """Shrink the registered MAGI-1 variants to the tiny DiT benchmarks/synthetic_checkpoint.py writes."""
    from benchmarks.synthetic_checkpoint import variant_for
    from magi_engine.variants import MAGI_VARIANTS

    for name in list(MAGI_VARIANTS):
        MAGI_VARIANTS[name] = dataclasses.replace(variant_for(name, tiny=True), width=64, height=64)


def measure(args) -> dict:
    import magi_engine.magi_checkpoint as loader
    from magi_engine.errors import OutOfMemory
    from magi_engine.magi_checkpoint import magi_memory_estimate
    from magi_engine.model_files import locate_magi_checkpoint
    from magi_engine.models import load_model
    from magi_engine.session import GenerationSession

    if args.tiny:
        tiny_variants()
    refusals = []
    checked = loader.check_fits

    def check_fits_but_go_on(*a, **kw):  # measure what the loader would refuse, and say it would have
        try:
            return checked(*a, **kw)
        except OutOfMemory as error:
            refusals.append(str(error))
            return None

    loader.check_fits = check_fits_but_go_on
    cuda = torch.cuda.is_available()
    if cuda and args.cap_gib:
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(args.cap_gib * GIB / total)
    width, height = (int(v) for v in args.size.split("x"))
    runtime = RuntimeConfig(compile_layers=args.compile, text_encoder=args.text_encoder,
                            native_fp8=False if args.dequantise or not cuda else None,
                            dit_offload=None if args.dit_offload == "auto" else args.dit_offload)
    peak_tflops = bf16_peak_tflops(torch.device("cuda")) if cuda else None
    if cuda:
        torch.cuda.empty_cache()  # the matmul's blocks go back: the loader sees the card as the app would
    started = time.perf_counter()
    # The loader decides (T5's place, the DiT offload) for the size and window generated.
    session = GenerationSession(load_model(str(args.checkpoint), runtime=runtime, device="cuda" if cuda else "cpu",
                                           width=width, height=height, window=args.window))
    load_s = time.perf_counter() - started
    bundle = session.bundle
    out = {"checkpoint": bundle.label, "cap_gib": args.cap_gib, "compile": args.compile,
           "device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
           "load_s": round(load_s, 1), "memory_plan": bundle.memory_plan, "loader_would_refuse": refusals,
           "weights_gib_after_load": round(torch.cuda.memory_allocated() / GIB, 2) if cuda else None}
    text = bundle.text_encoder
    placement = "offload" if getattr(text, "offloaded", False) else (
        "cpu" if getattr(text, "device", bundle.device).type == "cpu" and bundle.device.type != "cpu" else "gpu")
    native_fp8 = any(type(m).__name__ == "Fp8Linear" for m in bundle.dit.modules())
    dit = bundle.dit
    offload = {(False, False): "none", (True, False): "kv-cache", (False, True): "layers", (True, True): "both"}[
        (bool(dit.kv_cache_on_host), dit.layer_streamer is not None)]
    estimate = magi_memory_estimate(locate_magi_checkpoint(args.checkpoint), torch.bfloat16 if cuda else torch.float32,
                                    width=width, height=height, window=args.window, native_fp8=native_fp8,
                                    text_on_device=placement == "gpu", offload=offload)
    out.update(placement=placement, native_fp8=native_fp8, dit_offload=offload, estimate=estimate.describe(),
               estimate_gib=round(estimate.total_bytes / GIB, 2), bf16_matmul_peak_tflops=peak_tflops and round(
                   peak_tflops, 1))
    flops = FlopRecorder(dit)
    sampling = SamplingConfig.from_dict({**session.default_sampling.to_dict(), "num_steps": args.steps,
                                         "window": args.window})
    chunks = tuple(ChunkSpec(PROMPTS[i % len(PROMPTS)], 100 + i) for i in range(args.chunks))
    request = GenerationRequest(chunks=chunks, width=width, height=height, sampling=sampling, previews=False)
    latents = []
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    if args.encode_first:  # T5's visit apart from the generation's own peak
        with session._text_encoder_resident(request):
            for j, spec in enumerate(chunks):
                session.encode_prompt(spec.prompt, len(chunks) - j)
        out["encode_s"] = round(time.perf_counter() - started, 2)
        out["peak_gib_encode"] = peak_gib()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
    for event in session.generate(request):
        if isinstance(event, ChunkFinished):
            latents.append(event.latent)
            out.setdefault("chunk_done_at_s", []).append(round(time.perf_counter() - started, 2))
        elif isinstance(event, Failed):
            out["failed"] = str(event.error)
    out["first_chunk_s"] = out.get("chunk_done_at_s", [None])[0]
    matmul, attention = flops.take()
    out["generation_tflop"] = round((matmul + attention) / 1e12, 1)
    done = out.get("chunk_done_at_s", [])
    if done and peak_tflops:  # from the request to the last chunk: T5, fill and drain of the window, decodes
        out["tflops_end_to_end"] = round((matmul + attention) / done[-1] / 1e12, 1)
    # Steady chunks: the run's FLOPs a chunk over the mean time between chunks (a window longer than 1 drains at
    # the end, so with few chunks this leans high: use tflops_end_to_end there).
    if len(done) >= 3 and peak_tflops:
        steady_s = (done[-1] - done[0]) / (len(done) - 1)
        per_chunk = (matmul + attention) / len(done)
        out["steady_chunk_s"] = round(steady_s, 2)
        out["tflops_steady"] = round(per_chunk / steady_s / 1e12, 1)
        out["percent_of_bf16_peak"] = round(100 * per_chunk / steady_s / 1e12 / peak_tflops, 1)
    out["peak_gib_generate"] = peak_gib()
    out["peak_reserved_gib_generate"] = round(torch.cuda.max_memory_reserved() / GIB, 2) if cuda else None
    forwards = []
    model = getattr(text, "model", None)
    hook = model.register_forward_hook(lambda *_: forwards.append(1)) if model is not None else None
    uploads = getattr(text, "uploads", 0)
    if args.regenerate_from and len(latents) >= args.regenerate_from:
        n = args.regenerate_from
        context = tuple(latents[max(0, n - sampling.cache_chunks):n])
        again = dataclasses.replace(request, chunks=chunks[n:], start_chunk=n, context_latents=context,
                                    shot_length=len(chunks))
        out["regenerate"] = run_request(session, again)
        out["regenerate"]["t5_forwards"] = len(forwards)
        out["regenerate"]["t5_uploads"] = getattr(text, "uploads", 0) - uploads
    if args.draft:
        draft = draft_request(dataclasses.replace(request, chunks=chunks[:2]), sampling,
                              distilled=bool(bundle.dit.config.distilled))
        out["draft"] = run_request(session, draft)
    if hook is not None:
        hook.remove()
    out["peak_gib"] = peak_gib()
    if out["peak_gib"]:
        out["estimate_over_measured"] = round(out["estimate_gib"] / out["peak_gib"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", type=Path, required=True, help="an inference_weight* folder")
    parser.add_argument("--size", default="720x720")
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--chunks", type=int, default=5)
    parser.add_argument("--cap-gib", type=float, default=0.0, help="emulate a card of this many GiB (0: the card's)")
    parser.add_argument("--text-encoder", choices=("gpu", "cpu", "offload"), default=None)
    parser.add_argument("--dit-offload", choices=("auto", "none", "kv-cache", "layers", "both"), default="auto")
    parser.add_argument("--dequantise", action="store_true", help="load an FP8 checkpoint as bf16")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--regenerate-from", type=int, default=0)
    parser.add_argument("--draft", action="store_true")
    parser.add_argument("--encode-first", action="store_true", help="encode the prompts before the timed generation")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    publish(__file__, None, measure(args), args.json)


if __name__ == "__main__":
    main()
