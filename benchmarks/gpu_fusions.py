"""The fused Triton kernels (magi_engine.dit.fused) against the torch expressions they replace, eager and
compiled, at the 4.5B's shapes of a steady window-4 step at 720x720 (issue 18).

A steady step is one forward of 5 chunks of 12,150 tokens (60,750 rows), hidden 3072, 24 query heads and
8 key/value heads of 128, RoPE over 48 bands a head (3 axes × 16), 34 layers. Each layer runs
norm + gate + residual twice (after attention, after the MLP) and QK-norm + RoPE once for q and once for k.

Cases, each timed alone (mean of --repeats calls after two warm-up calls, synchronised):
* gated_residual: `fused.gated_residual_reference` (the layer's `_gated_residual`) eager; the same through
  torch.compile (what compile_layers makes of it); the Triton op ("triton", the engine's opaque custom op);
  the same inside torch.compile ("triton_in_compiled", as a compiled layer runs it); the triton_op version
  inside torch.compile ("traced_in_compiled": inductor launches the kernel itself).
* qk_norm_rope (q and k of one layer): the layer's expression (`apply_rotary(norm(x.float()), angles).to(bf16)`)
  eager, compiled; the Triton ops (cos and sin once, one call for q, one for k), eager, in compile, traced.
* layer (--layer, on by default on CUDA): one engine layer of the 4.5B, its dense parts compiled as compile_layers
  compiles them (`dense_in` + `dense_out`: projections, gates, norms, MLP; attention not included), without and
  with the fused kernels.
Errors: max |Δ| against the eager expression and against the same math in float64 (rounded once at the end,
as a perfect kernel would), and the share of elements that differ from eager. Bytes: what the kernel must
read and write at least (bf16 in, bf16 out); GB/s from that.

    python benchmarks/gpu_fusions.py --json out.json                       # on a GPU (~1-2 minutes)
    python benchmarks/gpu_fusions.py --tokens 24 --chunks 3 --tiny --compile-backend eager   # a CPU smoke test
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)

from benchmarks.gpu_speed_setup import timed  # noqa: E402
from benchmarks.record import publish  # noqa: E402
from magi_engine.dit import fused  # noqa: E402
from magi_engine.dit.rope import RotaryEmbedding3D, apply_rotary  # noqa: E402
from magi_engine.variants import magi_variant, tiny_dit_config  # noqa: E402


def timed_ms(fn, repeats: int) -> float:
    """Mean milliseconds of fn() after two warm-up calls (the first compiles, where fn is compiled)."""
    return timed(fn, repeats) * 1e3


def errors(got: torch.Tensor, eager: torch.Tensor, exact: torch.Tensor) -> dict:
    got, eager64 = got.double(), eager.double()
    return {"max_abs_vs_eager": float((got - eager64).abs().max()),
            "max_abs_vs_float64": float((got - exact).abs().max()),
            "eager_max_abs_vs_float64": float((eager64 - exact).abs().max()),
            "share_differing_from_eager": round(float((got != eager64).double().mean()), 5),
            "max_abs_value": float(exact.abs().max())}


def layer_norm64(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """LayerNorm with gamma 1 + weight, all in float64 (the "exact" the errors are measured against)."""
    x = x.double()
    centred = x - x.mean(-1, keepdim=True)
    return centred * torch.rsqrt(centred.square().mean(-1, keepdim=True) + eps) * (weight.double() + 1) + bias.double()


def gated_residual_exact(update, gate, weight, bias, eps, residual) -> torch.Tensor:
    n, s, d = update.shape
    gated = update.double().view(n, gate.shape[1], -1, d) * gate.double()[:, :, None, :]
    return layer_norm64(gated.view(n, s, d), weight, bias, eps) + residual.double()


def qk_norm_rope_exact(x, weight, bias, eps, angles) -> torch.Tensor:
    y = layer_norm64(x, weight, bias, eps)
    a = angles.shape[-1]
    cos, sin = torch.cos(angles.double())[:, None, :], torch.sin(angles.double())[:, None, :]
    first, second, rest = y[..., :a], y[..., a : 2 * a], y[..., 2 * a :]
    return torch.cat([first * cos - second * sin, first * sin + second * cos, rest], dim=-1)


class Case:
    """Runs and times the candidates of one fused op; failures are recorded, not raised."""

    def __init__(self, name: str, args, bytes_moved: int, calls_per_step: int) -> None:
        self.name, self.args = name, args
        self.result = {"min_bytes_per_call": bytes_moved, "calls_per_step": calls_per_step, "candidates": {}}

    def measure(self, label: str, fn, eager_out, exact) -> None:
        entry = {}
        try:
            out = fn()
            entry["errors"] = errors(out if isinstance(out, torch.Tensor) else torch.cat([o.flatten() for o in out]),
                                     eager_out, exact)
            ms = timed_ms(fn, self.args.repeats)
            entry |= {"ms": round(ms, 4), "ms_per_step": round(ms * self.result["calls_per_step"], 2),
                      "gb_per_s": round(self.result["min_bytes_per_call"] / ms / 1e6, 1)}
        except Exception as exc:  # a kernel or compile that fails is a result too
            entry["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}" if str(exc) else repr(exc)
            traceback.print_exc()
        self.result["candidates"][label] = entry
        print(f"{self.name:>15} {label:<22} {entry.get('ms', '-'):>9} ms  {entry.get('gb_per_s', '-'):>7} GB/s  "
              f"{entry.get('errors', {}).get('max_abs_vs_eager', entry.get('error', ''))}", file=sys.stderr)


def compile_fn(fn, args):
    return torch.compile(fn, backend=args.compile_backend, fullgraph=True, dynamic=False)


def fused_ops():
    """The Triton ops, or the reason they cannot run here."""
    try:
        return fused.FusedKernels()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def gated_residual_case(args, cfg, device, dtype, rows: int) -> dict:
    d = cfg.hidden_size
    g = torch.Generator(device=device).manual_seed(1)
    update = torch.randn(1, rows, d, device=device, dtype=dtype, generator=g)
    residual = torch.randn(1, rows, d, device=device, dtype=dtype, generator=g) * 4
    # The gate is half of the tanh-capped gate projection's output: a strided view [1, chunks, D].
    gate = torch.tanh(torch.randn(1, args.chunks, 2 * d, device=device, generator=g)).to(dtype).chunk(2, dim=-1)[0]
    weight = torch.randn(d, device=device, generator=g) * 0.1
    bias = torch.randn(d, device=device, generator=g) * 0.1
    inputs = (update, gate, weight, bias, cfg.layernorm_eps, residual)
    exact = gated_residual_exact(*inputs)
    eager_out = fused.gated_residual_reference(*inputs)
    case = Case("gated_residual", args, 3 * update.numel() * update.element_size(), 2 * cfg.num_layers)
    case.measure("eager", lambda: fused.gated_residual_reference(*inputs), eager_out, exact)
    compiled = compile_fn(fused.gated_residual_reference, args)
    case.measure("compiled", lambda: compiled(*inputs), eager_out, exact)
    ops = fused_ops()
    if isinstance(ops, str):
        case.result["candidates"]["triton"] = {"error": ops}
        return case.result
    op, traced = torch.ops.magi.gated_residual_opaque, torch.ops.magi.gated_residual
    case.measure("triton", lambda: op(*inputs), eager_out, exact)
    in_graph = compile_fn(lambda *a: op(*a), args)
    case.measure("triton_in_compiled", lambda: in_graph(*inputs), eager_out, exact)
    traced_in_graph = compile_fn(lambda *a: traced(*a), args)
    case.measure("traced_in_compiled", lambda: traced_in_graph(*inputs), eager_out, exact)
    return case.result


def qk_norm_rope_case(args, cfg, device, dtype, rows: int) -> dict:
    dh = cfg.head_dim
    g = torch.Generator(device=device).manual_seed(2)
    q = torch.randn(1, rows, cfg.num_heads, dh, device=device, dtype=dtype, generator=g) * 3
    k = torch.randn(1, rows, cfg.num_kv_groups, dh, device=device, dtype=dtype, generator=g) * 3
    norms = [(torch.randn(dh, device=device, generator=g) * 0.1, torch.randn(dh, device=device, generator=g) * 0.1)
             for _ in range(2)]
    eps = cfg.layernorm_eps
    rope = RotaryEmbedding3D(dh).to(device)
    side = math.isqrt(args.tokens // 6)
    if 6 * side * side == args.tokens:  # the real grid: 6 latent frames a chunk of side² tokens (45² at 720x720)
        angles = rope.angles(8 * 6, args.chunks * 6, side, side)
    else:
        angles = rope.angles(0, rows, 1, 1)

    def eager():  # the layer's own expression (ParallelAttention.project), q and k
        return tuple(apply_rotary(torch.nn.functional.layer_norm(x.float(), (dh,), w + 1, b, eps), angles).to(dtype)
                     for x, (w, b) in zip((q, k), norms))

    exact = torch.cat([qk_norm_rope_exact(x, w, b, eps, angles).flatten() for x, (w, b) in zip((q, k), norms)])
    eager_out = torch.cat([o.flatten() for o in eager()])
    case = Case("qk_norm_rope", args, 2 * (q.numel() + k.numel()) * q.element_size(), cfg.num_layers)
    case.result["shapes"] = {"q": list(q.shape), "k": list(k.shape), "angles": list(angles.shape)}
    case.measure("eager", eager, eager_out, exact)
    compiled = compile_fn(eager, args)
    case.measure("compiled", compiled, eager_out, exact)
    ops = fused_ops()
    if isinstance(ops, str):
        case.result["candidates"]["triton"] = {"error": ops}
        return case.result
    def triton(op=torch.ops.magi.qk_norm_rope_opaque):
        cos, sin = torch.cos(angles), torch.sin(angles)
        return tuple(op(x, w, b, eps, cos, sin) for x, (w, b) in zip((q, k), norms))

    case.measure("triton", triton, eager_out, exact)
    case.measure("triton_in_compiled", compile_fn(triton, args), eager_out, exact)
    traced = compile_fn(lambda: triton(torch.ops.magi.qk_norm_rope), args)
    case.measure("traced_in_compiled", traced, eager_out, exact)
    return case.result


def layer_case(args, variant, device, dtype, rows: int) -> dict:
    """One 4.5B layer's dense parts, compiled as compile_layers does, without and with the fused kernels."""
    from benchmarks.magi_scale import random_dit
    from magi_engine.dit.compiled import compile_layers

    one = dataclasses.replace(variant, dit=dataclasses.replace(variant.dit, num_layers=1))
    dit = random_dit(one, device, dtype)
    cfg, layer = dit.config, dit.layers[0]
    g = torch.Generator(device=device).manual_seed(3)
    x = torch.randn(1, rows, cfg.hidden_size, device=device, dtype=dtype, generator=g)
    condition = torch.randn(1, args.chunks, cfg.cond_size, device=device, dtype=dtype, generator=g)
    text = torch.randn(1, args.chunks, 120, cfg.xattn_size, device=device, dtype=dtype, generator=g)
    angles = dit.rope.angles(0, rows, 1, 1)
    attended = torch.randn(1, rows, 2 * cfg.query_size, device=device, dtype=dtype, generator=g)  # self | cross
    out = {"what": "dense_in + dense_out of one layer (no attention), compiled (compile_layers)"}
    results = {}
    for label, on in (("compiled", False), ("compiled_fused", True)):
        try:
            fused.use_fused_kernels(dit, on)
            compile_layers(dit, backend=args.compile_backend)
            dense_in, dense_out = layer._compiled

            def step():
                gate_attn, gate_mlp, _ = dense_in(x, condition, angles, text)
                return dense_out(x, attended, gate_attn, gate_mlp)

            with torch.inference_mode():
                results[label] = step()
                ms = timed_ms(step, args.repeats)
            out[label] = {"ms": round(ms, 3), "ms_per_step": round(ms * variant.dit.num_layers, 1)}
        except Exception as exc:
            out[label] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
            traceback.print_exc()
        print(f"{'layer':>15} {label:<22} {out[label]}", file=sys.stderr)
    if len(results) == 2:
        a, b = results["compiled"].double(), results["compiled_fused"].double()
        out["fused_vs_unfused_max_abs"] = float((a - b).abs().max())
        out["max_abs_value"] = float(a.abs().max())
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="4.5B_distill")
    parser.add_argument("--tokens", type=int, default=12150, help="tokens a chunk (12,150 at 720x720)")
    parser.add_argument("--chunks", type=int, default=5, help="chunks in the forward (5 in a steady window-4 step)")
    parser.add_argument("--tiny", action="store_true", help="the tiny DiT's widths (a CPU smoke test)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--compile-backend", default="inductor", help="'eager': a smoke test of the wiring (CPU)")
    parser.add_argument("--no-layer", action="store_true", help="skip the one-layer case")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    variant = magi_variant(args.variant)
    if args.tiny:
        variant = dataclasses.replace(variant, name="tiny", dit=tiny_dit_config(distilled=True))
    cfg = variant.dit
    dtype = torch.bfloat16
    rows = args.tokens * args.chunks
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    result = {"variant": variant.name, "rows": rows, "tokens_per_chunk": args.tokens, "chunks": args.chunks,
              "hidden": cfg.hidden_size, "heads": cfg.num_heads, "kv_heads": cfg.num_kv_groups,
              "head_dim": cfg.head_dim, "layers": cfg.num_layers, "repeats": args.repeats,
              "compile_backend": args.compile_backend,
              "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "torch": torch.__version__,
              "triton": triton_version}
    partial = args.json.with_suffix(".partial.json") if args.json else None
    cases = [("gated_residual", lambda: gated_residual_case(args, cfg, device, dtype, rows)),
             ("qk_norm_rope", lambda: qk_norm_rope_case(args, cfg, device, dtype, rows))]
    if not args.no_layer and device.type == "cuda":
        cases.append(("layer", lambda: layer_case(args, variant, device, dtype, rows)))
    for name, run in cases:
        try:
            with torch.inference_mode():
                result[name] = run()
        except Exception as exc:
            result[name] = {"error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc()
        if partial:
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(result, indent=1) + "\n")
    result["per_step_ms"] = {name: {label: entry["ms_per_step"] for label, entry in result[name]["candidates"].items()
                                    if "ms_per_step" in entry}
                             for name in ("gated_residual", "qk_norm_rope") if "candidates" in result.get(name, {})}
    record = publish(__file__, argv, result, args.json)
    if partial and partial.exists():
        partial.unlink()
    return record


if __name__ == "__main__":
    main()
