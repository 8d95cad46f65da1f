"""Why FP8 attention was 39% off on one engine layer's inputs: Hopper's FP8 accumulator, emulated on a CPU.

Hopper's FP8 tensor-core products keep about 14 bits of their float32 accumulator (bits below the largest
operand's exponent minus 13 are dropped as each 32-key group is added) unless the kernel promotes the sum to
float32 now and then; Triton's default on sm90 is never. This emulates p·v of our Triton kernel
(p·256 → e4m3, v8) that way, never promoted and promoted once per 128 keys, on the CPU emulation's inputs
(benchmarks/fp8_attention_cpu.py: sampled query rows of each chunk, the full spans), against float32
attention. max |Δ| / max |ref|, rel. L2. Then the same never promoted with k and v centred on their token means
before rounding (v's mean added back to the output: what engine/dit/fp8_attention.py does now), for our kernel
and for cuDNN's (p·448 → e4m3, the output rounded to e4m3 as cuDNN's FP8 attention writes it on Hopper).

    python benchmarks/fp8_accumulation_cpu.py --rows 4 --kinds qk_norm,random
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)
from benchmarks.fp8_attention_cpu import attention, e4m3, inputs, quantised, sampled_step  # noqa: E402
from benchmarks.gpu_attention import errors  # noqa: E402
from magi_engine.dit import fp8_attention as fa  # noqa: E402

KEPT_BITS = 13  # below the leading bit: ~14 significant bits
GROUP_KEYS = 32  # keys of one FP8 wgmma (k = 32)


def hopper_p_v(p8: torch.Tensor, v8: torch.Tensor, promote_every: int | None) -> torch.Tensor:
    """Σ_t p8[h, r, t] · v8[t, d] as Hopper adds it: group by group into an accumulator whose bits below
    (exponent of the largest of it and the group's products) − KEPT_BITS are dropped; promote_every keys
    the partial sum is added to a float32 total and restarted (None: never)."""
    total = torch.zeros(*p8.shape[:2], v8.shape[1])
    acc = torch.zeros_like(total)
    for lo in range(0, p8.shape[-1], GROUP_KEYS):
        prod = p8[..., lo:lo + GROUP_KEYS, None] * v8[None, None, lo:lo + GROUP_KEYS]
        ulp = torch.exp2(torch.floor(torch.log2(torch.maximum(acc.abs(), prod.abs().amax(2)).clamp_min(1e-30)))
                         - KEPT_BITS)
        acc = torch.trunc(acc / ulp) * ulp + (torch.trunc(prod / ulp[:, :, None]) * ulp[:, :, None]).sum(2)
        if promote_every and (lo + GROUP_KEYS) % promote_every == 0:
            total, acc = total + acc, torch.zeros_like(acc)
    return total + acc


def hopper_attention(q8, k8, v8, sv, attn_scale: float, promote_every: int | None, p_scale: float = fa.P_SCALE,
                     e4m3_out: bool = False) -> torch.Tensor:
    """An FP8 kernel's attention: p·p_scale rounded to e4m3, p·v through Hopper's accumulator (hopper_p_v); with
    e4m3_out the output rounded to e4m3 at v's scale (cuDNN's FP8 output on Hopper)."""
    out = attention(q8, k8, v8 / sv, attn_scale, p_round=lambda p: e4m3(p, 1 / p_scale) * p_scale,
                    p_v=lambda p8, v: hopper_p_v(p8, v, promote_every))
    out = out * (sv / p_scale)
    return e4m3(out, sv) if e4m3_out else out


def centred_quantised(k: torch.Tensor, v: torch.Tensor):
    """k, v [T, G, dh] centred on their token means and rounded as fa.quantize_centred does; (k8, v8, sv, v's mean)."""
    (k8, sk, _), (v8, sv, v_mean) = (fa.quantize_centred(x[None]) for x in (k, v))
    return k8[0].float() * sk, v8[0].float() * sv, sv, v_mean[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="4.5B_distill")
    parser.add_argument("--size", default="720x720")
    parser.add_argument("--rows", type=int, default=4, help="query rows sampled from each chunk")
    parser.add_argument("--kinds", default="qk_norm,random")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    cfg, grid, layout, chunk_rows = sampled_step(args.variant, args.size, args.rows)
    scale = cfg.head_dim ** -0.5
    for kind in args.kinds.split(","):
        q, k, v = inputs(kind, cfg, layout, grid, torch.cat(chunk_rows), seed=1)
        (q8, k8, v8), (_, _, sv) = quantised(q, k, v)
        kc8, vc8, svc, v_mean = centred_quantised(k, v)
        plain = (q8, k8, v8)
        centred = (q8, kc8, vc8)
        none = torch.zeros_like(v_mean)
        cases = {  # name: (operands, run, v's mean to add back)
            "float32 accumulator": (
                plain, lambda qq, kk, vv: attention(qq, kk, vv, scale, lambda p: e4m3(p, 1 / fa.P_SCALE)), none),
            "Hopper, never promoted": (plain, lambda qq, kk, vv: hopper_attention(qq, kk, vv, sv, scale, None), none),
            "Hopper, promoted per 128 keys": (plain, lambda qq, kk, vv: hopper_attention(qq, kk, vv, sv, scale, 128), none),
            "Hopper, never promoted, k and v centred": (
                centred, lambda qq, kk, vv: hopper_attention(qq, kk, vv, svc, scale, None), v_mean),
            "cuDNN-like (p·448, e4m3 out), never promoted": (
                plain, lambda qq, kk, vv: hopper_attention(qq, kk, vv, sv, scale, None, fa.E4M3_MAX, True), none),
            "cuDNN-like, never promoted, k and v centred": (
                centred, lambda qq, kk, vv: hopper_attention(qq, kk, vv, svc, scale, None, fa.E4M3_MAX, True), v_mean)}
        got = {name: [] for name in cases}
        refs = []
        for j in range(layout.num_chunks):
            lo, hi = layout.key_token_range(j)
            rows = slice(j * args.rows, (j + 1) * args.rows)
            refs.append(attention(q[rows], k[lo:hi], v[lo:hi], scale))
            for name, ((qq, kk, vv), run, mean) in cases.items():
                got[name].append(run(qq[rows], kk[lo:hi], vv[lo:hi]) + fa.heads_mean(mean[None], q.shape[1])[0])
        ref = torch.cat(refs)
        mean = v.mean(0, keepdim=True)
        print(f"{kind}: v's token mean rms {float(mean.pow(2).mean().sqrt()):.4f}, the rest "
              f"{float((v - mean).pow(2).mean().sqrt()):.4f}; output's token mean rms "
              f"{float(ref.mean(0).pow(2).mean().sqrt()):.4f}, the rest {float((ref - ref.mean(0)).pow(2).mean().sqrt()):.4f}")
        for name, outs in got.items():
            e = errors(torch.cat(outs), ref)
            print(f"  {name}: {e['max_abs_over_max_abs']:.2%} / {e['rel_l2']:.2%}", flush=True)


if __name__ == "__main__":
    main()
