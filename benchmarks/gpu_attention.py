"""FP8 attention against the engine's bf16 SDPA, on the steady window-4 step of the 4.5B at 720x720 (issue 18).

One step's self-attention, as the engine runs it: a forward of 5 chunks (the window's 4 and the distilled
near-clean copy) over 1 cached context chunk, key spans of 2, 3, 4, 5 and 1 chunks (ChunkLayout
(first_chunk=2, 5 chunks, key_starts=(1, 1, 1, 1, 6), context_first=1), what the sampler gives every
steady step: see STEADY_LAYOUT), 24 query heads, 8 key/value heads, head dim 128, 12,150 tokens a chunk;
times the 34 layers. FLOPs count attended pairs only: 4·t·span·dh·H per chunk.

    python benchmarks/gpu_attention.py --json out.json            # on a GPU
    python benchmarks/gpu_attention.py --tokens 96 --layers 2     # a smoke test of the script on a CPU

Inputs, each compared with a float32 reference (SDPA on float32 copies of the same bf16 inputs):
"random" (q, k, v ~ N(0, 1)), "qk_norm" (one engine layer, random weights as benchmarks/magi_scale.py:
q, k, v from its own projections, QK-norm and RoPE of N(0, 1) hidden states) and "qk_norm_gain2" (the same
with the QK-norms' gain at 2, so the attention logits are four times wider: peakier softmax rows).
Candidates: the engine's bf16 SDPA per chunk (the baseline), FlashAttention 4's bf16 kernel where the
flash-attn-4 package is installed, cuDNN's FP8 attention (cuDNN frontend) as the engine runs it (k and v
centred on their token means) and uncentred as before, FlashAttention 3's FP8 and bf16 kernels where its Hopper
build is importable (benchmarks/fa3_build.sh), our Triton FP8 kernel at a few tile shapes; and the
cost of quantising q, k, v to FP8 (eager, compiled alone, and fused into the QK-norm + RoPE that make q, k).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)

from benchmarks.record import publish  # noqa: E402
from magi_engine.config import CHUNK_LATENT_FRAMES  # noqa: E402
from magi_engine.dit.attention import ChunkLayout, block_causal_attention  # noqa: E402
from magi_engine.dit import fp8_attention as fa  # noqa: E402
from magi_engine.dit.layer import ParallelAttention  # noqa: E402
from magi_engine.dit.model import is_float32_island  # noqa: E402
from magi_engine.dit.rope import RotaryEmbedding3D, apply_rotary  # noqa: E402
from magi_engine.variants import magi_variant  # noqa: E402

TRITON_CONFIGS = ((128, 128, 8, 3), (128, 64, 4, 3))


def steady_layout(tokens: int) -> ChunkLayout:
    """The layout of every steady step of window 4, 16 steps (spans 5, 4, 3, 2 by quarter, near-clean copy)."""
    return ChunkLayout(2, 5, tokens, (1, 1, 1, 1, 6), 1)


def attended_flop(layout: ChunkLayout, heads: int, head_dim: int) -> float:
    total = 0
    for j in range(layout.num_chunks):
        lo, hi = layout.key_token_range(j)
        total += 4 * layout.tokens_per_chunk * (hi - lo) * head_dim * heads
    return float(total)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_ms(fn) -> float:
    """Median milliseconds of fn() (CUDA events through triton's do_bench; a host clock on a CPU)."""
    if torch.cuda.is_available():
        import triton.testing

        return float(triton.testing.do_bench(fn, warmup=100, rep=400, return_mode="median"))
    fn()
    start = time.perf_counter()
    for _ in range(3):
        fn()
    return (time.perf_counter() - start) / 3 * 1e3


# Inputs ------------------------------------------------------------------------------------------------------
def engine_layer(cfg, device, dtype) -> ParallelAttention:
    """One layer's attention block in the model's dtype, its float32 islands (the QK-norms) kept float32."""
    layer = ParallelAttention(cfg).to(device=device)
    for name, param in layer.named_parameters():
        param.data = param.data.to(torch.float32 if is_float32_island(f"layers.0.attn.{name}") else dtype)
    return layer


def make_inputs(kind: str, cfg, layout: ChunkLayout, grid: tuple[int, int], device, dtype, seed: int):
    """q [1, S, H, dh] of the forward's chunks; k, v [1, context + S, G, dh]."""
    t = layout.tokens_per_chunk
    total = (layout.context_chunks + layout.num_chunks) * t
    g = torch.Generator(device=device).manual_seed(seed)
    if kind == "random":
        q = torch.randn(1, layout.num_chunks * t, cfg.num_heads, cfg.head_dim, device=device, generator=g)
        k, v = (torch.randn(1, total, cfg.num_kv_groups, cfg.head_dim, device=device, generator=g) for _ in "kv")
        return q.to(dtype), k.to(dtype), v.to(dtype)
    gain = {"qk_norm": 1.0, "qk_norm_gain2": 2.0}[kind]
    layer = engine_layer(cfg, device, dtype)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if p.ndim >= 2:
                p.normal_(0, p[0].numel() ** -0.5, generator=g)
            else:
                p.normal_(0, 0.02, generator=g)
        for norm in (layer.q_norm, layer.k_norm):
            norm.weight.add_(gain - 1)
        rope = RotaryEmbedding3D(cfg.head_dim).to(device)
        frames = total // t * CHUNK_LATENT_FRAMES
        angles = rope.angles(layout.context_first * CHUNK_LATENT_FRAMES, frames, *grid)
        hidden = torch.randn(1, total, cfg.hidden_size, device=device, generator=g).to(dtype)
        text = torch.randn(1, 1, 8, cfg.xattn_size, device=device, generator=g).to(dtype)
        q, k, v, *_ = layer.project(layer.norm(hidden), angles, text)
    return q[:, layout.context_chunks * t:].contiguous(), k.contiguous(), v.contiguous()


def reference(q, k, v, layout: ChunkLayout) -> torch.Tensor:
    """float32 attention of float32 copies, chunk by chunk (key/value heads repeated: no GQA path needed)."""
    repeat = q.shape[2] // k.shape[2]
    t = layout.tokens_per_chunk
    out = torch.empty(q.shape, dtype=torch.float32, device=q.device)
    for j in range(layout.num_chunks):
        lo, hi = layout.key_token_range(j)
        qc = q[:, j * t:(j + 1) * t].float().transpose(1, 2)
        kc = k[:, lo:hi].float().repeat_interleave(repeat, dim=2).transpose(1, 2)
        vc = v[:, lo:hi].float().repeat_interleave(repeat, dim=2).transpose(1, 2)
        out[:, j * t:(j + 1) * t] = torch.nn.functional.scaled_dot_product_attention(qc, kc, vc).transpose(1, 2)
    return out


def errors(got: torch.Tensor, ref: torch.Tensor) -> dict:
    got = got.float()
    diff = (got - ref).abs()
    return {"max_abs_over_max_abs": float(diff.max() / ref.abs().max()),
            "rel_l2": float((got - ref).norm() / ref.norm()), "nan": bool(torch.isnan(got).any())}


def short_error(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return " ".join(line.strip() for line in lines)[-600:]


# Candidates ---------------------------------------------------------------------------------------------------
def candidates(layout: ChunkLayout) -> dict:
    """name -> (prepare(q, k, v) -> state, run(state) -> out): run is what is timed."""
    out = {"bf16_sdpa": (lambda q, k, v: (q, k, v), lambda s: block_causal_attention(*s, layout))}
    if not torch.cuda.is_available():
        return out

    def quantized(q, k, v, centred: bool = True):
        """As the engine quantises (k and v centred on their token means), or per tensor as before (centred False)."""
        q8, sq = fa.quantize_per_tensor(q)
        if centred:
            (k8, sk, _), (v8, sv, v_mean) = fa.quantize_centred(k), fa.quantize_centred(v)
        else:
            (k8, sk), (v8, sv) = fa.quantize_per_tensor(k), fa.quantize_per_tensor(v)
            v_mean = torch.zeros_like(v[:, :1], dtype=torch.float32)
        return q8, k8, v8, (sq, sk, sv), v_mean, q.dtype

    widen = torch.compile(fa.widen_e4m3, dynamic=True, fullgraph=True)  # as the engine's compiled layers do
    for label, dtype in (("fp8_out", torch.float8_e4m3fn), ("bf16_out", torch.bfloat16)):
        runner = fa.Fp8BlockCausalAttention("cudnn", widen=widen, cudnn_output=dtype)
        for suffix, centred in (("", True), ("_uncentred", False)):
            out[f"cudnn_fp8_{label}{suffix}"] = (lambda q, k, v, c=centred: quantized(q, k, v, c),
                                                 lambda s, r=runner: r.attend(*s[:5], layout, s[5]))
    for config in TRITON_CONFIGS:
        def prepare(q, k, v):
            q8, k8, v8, scales, v_mean, dtype = quantized(q, k, v)
            return (q8, k8, fa.token_major_copy(v8), scales, torch.empty(q.shape, dtype=dtype, device=q.device),
                    fa.heads_mean(v_mean, q.shape[2]).to(dtype))

        def run(s, config=config):
            q8, k8, vt, scales, o, mean = s
            t = layout.tokens_per_chunk
            for j in range(layout.num_chunks):
                lo, hi = layout.key_token_range(j)
                rows = slice(j * t, (j + 1) * t)
                fa.triton_attention(q8[:, rows], k8[:, lo:hi], vt[:, lo:hi], scales, o[:, rows],
                                    q8.shape[-1] ** -0.5, config)
            return o.add_(mean)
        out["triton_fp8_m{}_n{}_w{}_s{}".format(*config)] = (prepare, run)
    if fa.fa3_available():  # FlashAttention 3's Hopper build (benchmarks/fa3_build.sh)
        for suffix, centred in (("", True), ("_uncentred", False)):
            runner = fa.Fp8BlockCausalAttention("fa3")
            out[f"fa3_fp8{suffix}"] = (lambda q, k, v, c=centred: quantized(q, k, v, c),
                                       lambda s, r=runner: r.attend(*s[:5], layout, s[5]))

        def fa3_bf16(s):
            q, k, v, o = s
            t = layout.tokens_per_chunk
            for j in range(layout.num_chunks):
                lo, hi = layout.key_token_range(j)
                fa.fa3_forward()(q[:, j * t:(j + 1) * t], k[:, lo:hi], v[:, lo:hi], out=o[:, j * t:(j + 1) * t],
                                 is_causal=False, num_splits=1)
            return o
        out["fa3_bf16"] = (lambda q, k, v: (q, k, v, torch.empty_like(q)), fa3_bf16)
    else:
        print("FlashAttention 3 unavailable (benchmarks/fa3_build.sh builds it)", flush=True)
    # FlashAttention 4 (CuTe DSL; its SM90 path is FA3's design): a bf16 candidate where it is installed; last,
    # as its kernels compile on first use
    try:
        from flash_attn.cute import flash_attn_func
    except Exception as exc:  # noqa: BLE001
        print("flash_attn.cute unavailable:", short_error(exc), flush=True)
    else:
        def fa4(s):
            q, k, v = s
            t = layout.tokens_per_chunk
            parts = []
            for j in range(layout.num_chunks):
                lo, hi = layout.key_token_range(j)
                got = flash_attn_func(q[:, j * t:(j + 1) * t], k[:, lo:hi], v[:, lo:hi])
                parts.append(got[0] if isinstance(got, tuple) else got)
            return torch.cat(parts, dim=1)
        out["fa4_bf16"] = (lambda q, k, v: (q, k, v), fa4)
    return out


def kernels_only(layout: ChunkLayout, q, k, v, out_dtype, kernel) -> float:
    """ms of the FP8 kernel's calls alone (inputs quantised, output preallocated, no widening); kernel(q8, k8, v8,
    scales, out, attn_scale) is one chunk span's call: fa.cudnn_attention(device) or fa.fa3_attention."""
    (q8, sq), (k8, sk), (v8, sv) = (fa.quantize_per_tensor(x) for x in (q, k, v))
    o = torch.empty(q.shape, dtype=out_dtype, device=q.device)
    t = layout.tokens_per_chunk
    scale = q.shape[-1] ** -0.5

    def run():
        for j in range(layout.num_chunks):
            lo, hi = layout.key_token_range(j)
            rows = slice(j * t, (j + 1) * t)
            kernel(q8[:, rows], k8[:, lo:hi], v8[:, lo:hi], (sq, sk, sv), o[:, rows], scale)
    return bench_ms(run)


def quantization_costs(cfg, layout: ChunkLayout, grid, device, dtype) -> dict:
    """ms to quantise one layer's q, k, v: eager, compiled alone, and fused into QK-norm + RoPE."""
    q, k, v = make_inputs("random", cfg, layout, grid, device, dtype, seed=11)
    out: dict = {"bytes_q_k_v_bf16": sum(t.numel() * 2 for t in (q, k, v))}
    out["eager_q_k_v_ms"] = bench_ms(lambda: [fa.quantize_per_tensor(t) for t in (q, k, v)])
    if device.type != "cuda":
        return out
    compiled = torch.compile(fa.quantize_per_tensor, dynamic=True)
    out["compiled_alone_q_k_v_ms"] = bench_ms(lambda: [compiled(t) for t in (q, k, v)])
    centred = torch.compile(fa.quantize_centred, dynamic=True)
    out["compiled_alone_q_and_centred_k_v_ms"] = bench_ms(lambda: [compiled(q), centred(k), centred(v)])
    out["token_major_copy_v_ms"] = bench_ms(lambda: fa.token_major_copy(v.to(torch.float8_e4m3fn)))
    # q as the layer makes it: QK-norm + RoPE (compiled, as the dense part), then with the rounding fused in.
    layer = engine_layer(cfg, device, dtype)
    rope = RotaryEmbedding3D(cfg.head_dim).to(device)
    angles = rope.angles(layout.first_chunk * CHUNK_LATENT_FRAMES, layout.num_chunks * CHUNK_LATENT_FRAMES, *grid)
    raw = torch.randn_like(q)

    def norm_rope(x):
        return apply_rotary(layer.q_norm(x.float()), angles).to(dtype)

    def norm_rope_both(x):  # the bf16 q the KV cache would keep, and the FP8 copy
        y = apply_rotary(layer.q_norm(x.float()), angles)
        scale = (y.abs().amax() / fa.E4M3_MAX).clamp_min(1e-12)
        return y.to(dtype), (y / scale).clamp(-fa.E4M3_MAX, fa.E4M3_MAX).to(torch.float8_e4m3fn), scale

    with torch.no_grad():
        for name, fn in (("qnorm_rope_bf16_q_ms", norm_rope), ("qnorm_rope_bf16_and_fp8_q_ms", norm_rope_both)):
            compiled_fn = torch.compile(fn)
            out[name] = bench_ms(lambda: compiled_fn(raw))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="4.5B_distill")
    parser.add_argument("--size", default="720x720")
    parser.add_argument("--tokens", type=int, help="tokens a chunk (default: the size's); small for a CPU smoke test")
    parser.add_argument("--layers", type=int, help="layers a step (default: the variant's)")
    parser.add_argument("--kinds", default="random,qk_norm,qk_norm_gain2")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--candidates", help="comma-separated name prefixes of the candidates to run (default: all; "
                                             "the bf16 SDPA baseline always runs)")
    args = parser.parse_args()
    wanted = ("bf16_sdpa", *args.candidates.split(",")) if args.candidates else ("",)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16
    cfg = magi_variant(args.variant).dit
    width, height = (int(v) for v in args.size.split("x"))
    grid = (height // 8 // cfg.patch_size, width // 8 // cfg.patch_size)
    tokens = args.tokens or cfg.tokens_per_chunk(height // 8, width // 8)
    if args.tokens:
        side = max(1, int(math.sqrt(tokens // CHUNK_LATENT_FRAMES)))
        grid, tokens = (side, side), CHUNK_LATENT_FRAMES * side * side
    layers = args.layers or cfg.num_layers
    layout = steady_layout(tokens)
    flop = attended_flop(layout, cfg.num_heads, cfg.head_dim)
    result: dict = {
        "variant": args.variant, "size": [width, height], "tokens_per_chunk": tokens, "layers": layers,
        "layout": {"first_chunk": layout.first_chunk, "num_chunks": layout.num_chunks,
                   "key_starts": list(layout.key_starts), "context_first": layout.context_first},
        "heads": cfg.num_heads, "kv_heads": cfg.num_kv_groups, "head_dim": cfg.head_dim,
        "attended_tflop_per_layer": round(flop / 1e12, 3), "attended_tflop_per_step": round(flop * layers / 1e12, 1),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "torch": torch.__version__,
        "cudnn_backend": torch.backends.cudnn.version() if device.type == "cuda" else None,
    }
    try:
        import cudnn
        result["cudnn_frontend"] = getattr(cudnn, "__version__", "?")
        result["cudnn_frontend_backend"] = cudnn.backend_version_string()
    except Exception as exc:  # noqa: BLE001
        result["cudnn_frontend"] = f"unavailable: {short_error(exc)}"
    try:
        import triton
        result["triton"] = triton.__version__
    except ImportError:
        result["triton"] = None

    timings: dict = {}
    accuracy: dict = {}
    kinds = args.kinds.split(",")
    timed_kind = "qk_norm" if "qk_norm" in kinds else kinds[0]
    for kind in kinds:
        q, k, v = make_inputs(kind, cfg, layout, grid, device, dtype, seed=1)
        ref = reference(q, k, v, layout)
        accuracy[kind] = {"ref_max_abs": float(ref.abs().max()), "q_max_abs": float(q.abs().max()),
                          "k_max_abs": float(k.abs().max()), "v_max_abs": float(v.abs().max())}
        for name, (prepare, run) in candidates(layout).items():
            if not name.startswith(wanted):
                continue
            try:
                state = prepare(q, k, v)
                got = run(state)
                sync()
                accuracy[kind][name] = errors(got, ref)
                del got
                if kind == timed_kind:
                    ms = bench_ms(lambda s=state: run(s))
                    timings[name] = {"layer_ms": round(ms, 3), "step_s": round(ms * layers / 1e3, 4),
                                     "tflops": round(flop / ms / 1e9, 1), "inputs": kind}
                del state
            except Exception as exc:  # noqa: BLE001  (a candidate this GPU/package cannot run is reported)
                accuracy[kind][name] = {"error": short_error(exc)}
            print(kind, name, accuracy[kind][name], timings.get(name), flush=True)
        if device.type == "cuda" and kind == timed_kind:
            def cudnn(*call):  # built on first use, inside the try: a GPU without the cuDNN frontend is reported
                return fa.cudnn_attention(device)(*call)
            kernels = [(f"cudnn_fp8_{label}_kernels_only", out_dtype, cudnn)
                       for label, out_dtype in (("fp8_out", torch.float8_e4m3fn), ("bf16_out", torch.bfloat16))]
            if fa.fa3_available():
                kernels.append(("fa3_fp8_kernels_only", torch.bfloat16, fa.fa3_attention))
            for name, out_dtype, kernel in (row for row in kernels if row[0].startswith(wanted)):
                try:
                    ms = kernels_only(layout, q, k, v, out_dtype, kernel)
                    timings[name] = {"layer_ms": round(ms, 3), "step_s": round(ms * layers / 1e3, 4),
                                     "tflops": round(flop / ms / 1e9, 1)}
                except Exception as exc:  # noqa: BLE001
                    timings[name] = {"error": short_error(exc)}
        del q, k, v, ref
        if args.json:  # what is measured so far, should the call be cut short
            args.json.with_suffix(".partial.json").write_text(json.dumps({**result, "timings": timings,
                                                                          "accuracy": accuracy}, indent=1))
        if device.type == "cuda":
            torch.cuda.empty_cache()
    result["timings"] = timings
    result["accuracy"] = accuracy
    try:
        result["quantization"] = {key: round(val, 4) if isinstance(val, float) else val
                                  for key, val in quantization_costs(cfg, layout, grid, device, dtype).items()}
    except Exception as exc:  # noqa: BLE001
        result["quantization"] = {"error": short_error(exc)}
    base = timings.get("bf16_sdpa", {}).get("layer_ms")
    if base:
        for entry in timings.values():
            if "layer_ms" in entry:
                entry["speedup_vs_bf16_sdpa"] = round(base / entry["layer_ms"], 3)
    publish(__file__, None, result, args.json)
    print("\n%-40s %10s %10s %9s %8s" % ("candidate", "layer ms", "step s", "TFLOP/s", "speedup"))
    for name, entry in timings.items():
        print("%-40s %10s %10s %9s %8s" % (name, entry.get("layer_ms"), entry.get("step_s"), entry.get("tflops"),
                                           entry.get("speedup_vs_bf16_sdpa", entry.get("error", "")[:40])))


if __name__ == "__main__":
    main()
