"""What FP8 attention's rounding costs in accuracy at the 4.5B's real spans, emulated in float32 on a CPU.

No kernel runs here (benchmarks/gpu_attention.py times and checks the kernels on a GPU): the rounding steps
of magi_engine.dit.fp8_attention are applied in float32 — q, k, v to e4m3 with one scale each, the softmax
probabilities (relative to the row's maximum) times P_SCALE to e4m3, and, as cuDNN does on Hopper, the output
to e4m3 — for sampled query rows of each chunk of the steady window-4 step at 720x720 (spans of 2, 3, 4, 5 and 1
chunks of 12,150 keys, 24 query heads over 8 key/value heads, head dim 128), against float32 attention of
the same bf16 inputs. The kernels' running maximum only makes their probabilities larger (fewer fall below
e4m3's normal range), so these errors are if anything pessimistic. bf16 is the same emulation with the
probabilities rounded to bf16 (what a bf16 flash kernel multiplies v by).

    python benchmarks/fp8_attention_cpu.py --rows 64 --json out.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)

from benchmarks.gpu_attention import engine_layer, errors, steady_layout  # noqa: E402
from benchmarks.record import publish  # noqa: E402
from magi_engine.config import CHUNK_LATENT_FRAMES  # noqa: E402
from magi_engine.dit import fp8_attention as fa  # noqa: E402
from magi_engine.dit.rope import RotaryEmbedding3D, apply_rotary  # noqa: E402
from magi_engine.variants import magi_variant  # noqa: E402


def e4m3(x: torch.Tensor, scale) -> torch.Tensor:
    """x rounded to e4m3 at `scale` (x ≈ e4m3(x / scale) · scale), back in float32."""
    return fa.quantize_e4m3(x, scale).float() * scale


def inputs(kind: str, cfg, layout, grid, rows: torch.Tensor, seed: int):
    """q [rows, H, dh] of the sampled query tokens; k, v [tokens, G, dh] of the whole span, all bf16 values in
    float32. "qk_norm*": the projections, QK-norm and RoPE of one engine layer (random weights)."""
    t = layout.tokens_per_chunk
    total = (layout.context_chunks + layout.num_chunks) * t
    g = torch.Generator().manual_seed(seed)
    if kind == "random":
        q = torch.randn(len(rows), cfg.num_heads, cfg.head_dim, generator=g)
        k, v = (torch.randn(total, cfg.num_kv_groups, cfg.head_dim, generator=g) for _ in "kv")
        return (x.bfloat16().float() for x in (q, k, v))
    gain = {"qk_norm": 1.0, "qk_norm_gain2": 2.0}[kind]
    layer = engine_layer(cfg, "cpu", torch.float32)
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0, p[0].numel() ** -0.5 if p.ndim >= 2 else 0.02, generator=g)
        for norm in (layer.q_norm, layer.k_norm):
            norm.weight.add_(gain - 1)
        rope = RotaryEmbedding3D(cfg.head_dim)
        angles = rope.angles(layout.context_first * CHUNK_LATENT_FRAMES, total // t * CHUNK_LATENT_FRAMES, *grid)
        a = layer.norm(torch.randn(total, cfg.hidden_size, generator=g).bfloat16().float())
        q_rows = rows + layout.context_chunks * t
        heads = lambda x: x.unflatten(-1, (-1, cfg.head_dim))  # noqa: E731
        q = apply_rotary(layer.q_norm(heads(layer.to_q(a[q_rows]))), angles[q_rows])
        k = apply_rotary(layer.k_norm(heads(layer.to_k(a))), angles)
        v = heads(layer.to_v(a))
    return (x.bfloat16().float() for x in (q, k, v))


def attention(q, k, v, attn_scale: float, p_round=None, p_v=None) -> torch.Tensor:
    """q [R, H, dh] over k, v [T, G, dh] in float32; p_round rounds the probabilities (relative to the row max)
    before they multiply v; the normalisation uses the unrounded ones, as the kernels do. p_v(p [H, R, T],
    v [T, dh]) -> [H, R, dh] is that product (default: exact in float32)."""
    repeat = q.shape[1] // k.shape[1]
    out = torch.empty_like(q)
    for group in range(k.shape[1]):
        heads = slice(group * repeat, (group + 1) * repeat)
        s = torch.einsum("rhd,td->hrt", q[:, heads], k[:, group]) * attn_scale
        p = torch.exp(s - s.amax(-1, keepdim=True))
        pv = p if p_round is None else p_round(p)
        pv = torch.einsum("hrt,td->hrd", pv, v[:, group]) if p_v is None else p_v(pv, v[:, group])
        out[:, heads] = (pv / p.sum(-1)[..., None]).transpose(0, 1)
    return out


def sampled_step(variant: str, size: str, rows_per_chunk: int):
    """(DiT config, latent grid, the steady window-4 layout, `rows_per_chunk` query rows drawn from each chunk)."""
    cfg = magi_variant(variant).dit
    width, height = (int(v) for v in size.split("x"))
    grid = (height // 8 // cfg.patch_size, width // 8 // cfg.patch_size)
    layout = steady_layout(cfg.tokens_per_chunk(height // 8, width // 8))
    t = layout.tokens_per_chunk
    g = torch.Generator().manual_seed(0)
    chunk_rows = [j * t + torch.randperm(t, generator=g)[:rows_per_chunk].sort().values for j in range(layout.num_chunks)]
    return cfg, grid, layout, chunk_rows


def quantised(*tensors: torch.Tensor):
    """Each tensor rounded to e4m3 with its own per-tensor scale (as engine/dit/fp8_attention.py does), and the scales."""
    scales = tuple(fa.e4m3_scale(x) for x in tensors)
    return tuple(e4m3(x, s) for x, s in zip(tensors, scales)), scales


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="4.5B_distill")
    parser.add_argument("--size", default="720x720")
    parser.add_argument("--rows", type=int, default=64, help="query rows sampled from each chunk")
    parser.add_argument("--kinds", default="random,qk_norm,qk_norm_gain2")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    cfg, grid, layout, chunk_rows = sampled_step(args.variant, args.size, args.rows)
    width, height = (int(v) for v in args.size.split("x"))
    t = layout.tokens_per_chunk
    rows = torch.cat(chunk_rows)
    scale = cfg.head_dim ** -0.5
    p_scale = fa.P_SCALE

    cases = {
        "bf16_probabilities": dict(fp8_inputs=False, p_round=lambda p: p.bfloat16().float(), fp8_out=False),
        "fp8_inputs_only": dict(fp8_inputs=True, p_round=None, fp8_out=False),
        "fp8_triton_kernel": dict(fp8_inputs=True, p_round=lambda p: e4m3(p, 1 / p_scale), fp8_out=False),
        "fp8_cudnn_kernel": dict(fp8_inputs=True, p_round=lambda p: e4m3(p, 1 / fa.E4M3_MAX), fp8_out=True),
    }
    result: dict = {"variant": args.variant, "size": [width, height], "tokens_per_chunk": t,
                    "query_rows_per_chunk": args.rows, "spans_chunks": [], "p_scale_triton": p_scale,
                    "p_scale_cudnn": fa.E4M3_MAX, "torch": torch.__version__, "kinds": {}}
    for j in range(layout.num_chunks):
        lo, hi = layout.key_token_range(j)
        result["spans_chunks"].append((hi - lo) // t)
    for kind in args.kinds.split(","):
        started = time.perf_counter()
        q, k, v = inputs(kind, cfg, layout, grid, rows, seed=1)
        (q8, k8, v8), (sq, sk, sv) = quantised(q, k, v)
        entry: dict = {"q_max_abs": float(q.abs().max()), "k_max_abs": float(k.abs().max()),
                       "v_max_abs": float(v.abs().max())}
        per_case: dict = {name: ([], []) for name in cases}
        for j, r in enumerate(chunk_rows):
            lo, hi = layout.key_token_range(j)
            rows_j = slice(j * args.rows, (j + 1) * args.rows)
            ref = attention(q[rows_j], k[lo:hi], v[lo:hi], scale)
            for name, case in cases.items():
                qq, kk, vv = (q8, k8, v8) if case["fp8_inputs"] else (q, k, v)
                got = attention(qq[rows_j], kk[lo:hi], vv[lo:hi], scale, case["p_round"])
                if case["fp8_out"]:
                    got = e4m3(got, sv)
                per_case[name][0].append(got)
                per_case[name][1].append(ref)
                entry.setdefault(f"{name}_by_chunk", []).append(errors(got, ref))
        for name, (got, ref) in per_case.items():
            entry[name] = errors(torch.cat(got), torch.cat(ref))
        entry["seconds"] = round(time.perf_counter() - started, 1)
        result["kinds"][kind] = entry
        print(kind, {name: entry[name] for name in cases}, flush=True)
    publish(__file__, None, result, args.json)


if __name__ == "__main__":
    main()
