"""FP8 block-causal self-attention for native FP8 models on Hopper GPUs (issue 18).

Attention is most of a MAGI-1 step at 720x720 (12,150 tokens a chunk, each chunk attending up to five
chunks of keys), and torch's scaled_dot_product_attention takes no FP8. Here q, k and v are rounded to
float8_e4m3fn with one float32 scale each (per tensor, from the tensor's own absolute maximum, on the
device: no host sync), and each chunk's span runs as one FP8 attention call:

    q8 = e4m3(q / sq), k8 = e4m3(k / sk), v8 = e4m3(v / sv)
    out = softmax(attn_scale · sq·sk · q8 k8ᵀ) (sv · v8)

Two kernels can run it, both writing straight into the output's chunk rows (no concatenation):

* "cudnn": cuDNN's FP8 flash attention through the cuDNN frontend's Python graph API (the package
  `nvidia-cudnn-frontend`), one graph per distinct geometry, cached. On Hopper its output is FP8 too
  (scaled so that it spans v8's range) and is widened to bf16 afterwards.
* "fa3": FlashAttention 3's Hopper kernel (warp-specialised, TMA-fed FP8 WGMMA; the flash-attention
  repository's hopper/, which PyPI does not carry: benchmarks/fa3_build.sh builds the forward it needs), GQA
  native, q/k/v descales per batch and key/value head, bf16 output written straight into the chunk's rows.
* "triton": our own Triton kernel (online softmax; q·kᵀ and p·v as FP8 tensor-core products with float32
  accumulation; the probabilities go to e4m3 scaled by P_SCALE; bf16 output).

`fp8_attention_backend(device)` says which one a device can run (None: keep SDPA). Nothing here is
imported unless a native FP8 model runs on a compute-capability 9.x GPU (magi_engine.dit.compiled).
"""

from __future__ import annotations

import logging
import math
from typing import Callable

import torch

from magi_engine.dit.attention import block_causal_attention
from magi_engine.loading.fp8 import E4M3_MAX

log = logging.getLogger(__name__)

#: The GPUs this is built for (Hopper: H100, H200; measured on an H200, BENCHMARKS.md). Elsewhere: SDPA.
FP8_ATTENTION_CAPABILITY_MAJOR = 9
FP8_ATTENTION_BACKENDS = ("fa3", "cudnn", "triton")  # the order a device tries them in
#: Softmax probabilities (≤ 1, relative to the running row maximum) are scaled by this before rounding
#: to e4m3, so that small ones stay in e4m3's normal range (≥ 2^-6); a power of two: exact to undo.
P_SCALE = 256.0


def cudnn_frontend_available() -> bool:
    try:
        import cudnn  # noqa: F401  (nvidia-cudnn-frontend)
    except Exception:  # ImportError, or a wheel that does not load against this cuDNN
        return False
    return True


def fa3_available() -> bool:
    try:
        fa3_forward()
    except Exception:  # ImportError, or a build that does not load against this torch
        return False
    return True


def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def fp8_attention_backend(device: torch.device | str, preferred: str = "fa3") -> str | None:
    """The FP8 attention kernel `device` can run, `preferred` first; None where none can (CPU, MPS, a CUDA
    GPU other than compute capability 9.x, neither package installed)."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    if torch.cuda.get_device_capability(device)[0] != FP8_ATTENTION_CAPABILITY_MAJOR:
        return None
    available = {"cudnn": cudnn_frontend_available, "fa3": fa3_available, "triton": triton_available}
    for name in (preferred, *[b for b in FP8_ATTENTION_BACKENDS if b != preferred]):
        if available[name]():
            return name
    return None


# Quantisation --------------------------------------------------------------------------------------------
def e4m3_scale(x: torch.Tensor) -> torch.Tensor:
    """float32 scalar s with max|x| / s = 448 (the whole e4m3 range), on x's device."""
    return (x.detach().abs().amax().float() / E4M3_MAX).clamp_min(1e-12)


def quantize_e4m3(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """e4m3(x / scale), saturated at ±448 (float rounding of x / scale can pass 448 by an ulp)."""
    return (x.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)


def quantize_per_tensor(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x -> (e4m3 tensor, float32 scale): x ≈ x8 · scale."""
    scale = e4m3_scale(x)
    return quantize_e4m3(x, scale), scale


def quantize_centred(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """k or v [N, T, G, D] -> (e4m3 of x − mean, float32 scale, float32 mean [N, 1, G, D]): the mean over
    the tokens taken off first, x ≈ x8 · scale + mean."""
    x = x.float()
    # max |x − mean| from each channel's mean, largest and smallest value: one reduction over the tokens (compiled,
    # the three share it) instead of a second pass over x − mean; the same float32 values, so the same scale.
    mean = x.mean(dim=1, keepdim=True)
    reach = torch.maximum(x.amax(dim=1, keepdim=True) - mean, mean - x.amin(dim=1, keepdim=True))
    scale = (reach.amax() / E4M3_MAX).clamp_min(1e-12)
    return quantize_e4m3(x - mean, scale), scale, mean


def heads_mean(mean: torch.Tensor, heads: int) -> torch.Tensor:
    """A key/value head's mean [N, 1, G, D] for each of the `heads` query heads [N, 1, H, D] (GQA: consecutive
    query heads share a key/value head)."""
    return mean.repeat_interleave(heads // mean.shape[2], dim=2)


def widen_e4m3(out: torch.Tensor, x8: torch.Tensor, scale: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """out (the model's dtype, any strides: a view of the output projection's input) = x8 · scale + v's mean
    (heads_mean); compiled, one pass that writes `out` where it lies (eager makes float32 copies on the way)."""
    out.copy_(x8.float() * scale + heads_mean(mean, x8.shape[2]))
    return out


# The Triton kernel (magi_engine.dit.fp8_attention_triton, which imports triton) -----------------------------
#: (BLOCK_M, BLOCK_N, num_warps, num_stages) of the Triton kernel.
TRITON_CONFIG = (128, 128, 8, 3)


def token_major_copy(v8: torch.Tensor) -> torch.Tensor:
    """v8 [N, T, G, D] -> a view of the same shape whose memory is [N, G, D, T'] (tokens contiguous, T
    padded to a multiple of 16 so every row starts 16-byte aligned): the p·v product's operand layout."""
    n, t, g, d = v8.shape
    padded = -(-t // 16) * 16
    buffer = torch.empty(n, g, d, padded, dtype=v8.dtype, device=v8.device)
    buffer[..., :t].copy_(v8.permute(0, 2, 3, 1))
    return buffer[..., :t].permute(0, 3, 1, 2)


def triton_attention(q8: torch.Tensor, k8: torch.Tensor, v8_token_major: torch.Tensor, scales, out: torch.Tensor,
                     attn_scale: float, config: tuple[int, int, int, int] = TRITON_CONFIG) -> None:
    """out [N, tq, H, dh] (bf16, written) = attention of q8 [N, tq, H, dh] over k8 [N, tk, G, dh] and
    v8 (token_major_copy layout), scales (sq, sk, sv) float32 scalars on the device."""
    import triton

    block_m, block_n, warps, stages = config
    n, tq, heads, dh = q8.shape
    tk, groups = k8.shape[1], k8.shape[2]
    sq, sk, sv = scales
    grid = (triton.cdiv(tq, block_m), heads, n)
    from magi_engine.dit.fp8_attention_triton import fp8_attention_kernel

    fp8_attention_kernel[grid](
        q8, k8, v8_token_major, out, sq, sk, sv, tq, tk, tk // block_n * block_n, heads // groups,
        attn_scale * math.log2(math.e),
        q8.stride(0), q8.stride(1), q8.stride(2), k8.stride(0), k8.stride(1), k8.stride(2),
        v8_token_major.stride(0), v8_token_major.stride(1), v8_token_major.stride(2), v8_token_major.stride(3),
        out.stride(0), out.stride(1), out.stride(2),
        HEAD_DIM=dh, BLOCK_M=block_m, BLOCK_N=block_n, P_SCALE=P_SCALE, num_warps=warps, num_stages=stages)


# FlashAttention 3 ----------------------------------------------------------------------------------------------
def fa3_forward():
    """FlashAttention 3's forward, the operator its compiled extension registers (torch.ops.flash_attn_3.fwd).
    Not flash_attn_interface's _flash_attn_forward: that wrapper is a torch custom op declared to change none of
    its arguments, and torch refuses a custom op whose result is one of its inputs, as the output rows are here;
    the operator itself declares its `out` written."""
    import flash_attn_3._C  # noqa: F401  (registers the operator)

    return torch.ops.flash_attn_3.fwd


def fa3_attention(q8: torch.Tensor, k8: torch.Tensor, v8: torch.Tensor, scales, out: torch.Tensor,
                  attn_scale: float) -> None:
    """out [N, tq, H, dh] (bf16, any strides with the last 1: written) = attention of q8 [N, tq, H, dh] over k8,
    v8 [N, tk, G, dh]; scales (sq, sk, sv) float32 scalars on the device, handed to the kernel as its
    [N, G] descales without a copy."""
    n, groups = q8.shape[0], k8.shape[2]
    sq, sk, sv = (s.reshape(1, 1).expand(n, groups) for s in scales)
    fa3_forward()(q8, k8, v8, out=out, q_descale=sq, k_descale=sk, v_descale=sv, softmax_scale=attn_scale,
                  is_causal=False, num_splits=1)


# cuDNN ------------------------------------------------------------------------------------------------------
class CudnnFp8Attention:
    """cuDNN FP8 attention graphs for one device, one per geometry (shapes, strides, output type)."""

    def __init__(self, device: torch.device) -> None:
        import cudnn

        self.cudnn = cudnn
        self.device = device
        with torch.cuda.device(device):
            self.handle = cudnn.create_handle()
        self.graphs: dict[tuple, tuple] = {}
        self.workspace = torch.empty(0, dtype=torch.uint8, device=device)
        self.scale_s = torch.full((1, 1, 1, 1), E4M3_MAX, dtype=torch.float32, device=device)
        self.descale_s = torch.full((1, 1, 1, 1), 1 / E4M3_MAX, dtype=torch.float32, device=device)
        self.amax = torch.zeros(2, 1, 1, 1, 1, dtype=torch.float32, device=device)
        #: Whether cuDNN takes fewer key/value heads than query heads (GQA); None: not asked yet.
        self.gqa: bool | None = None

    def takes_gqa(self, q8: torch.Tensor, k8: torch.Tensor, v8: torch.Tensor, out: torch.Tensor,
                  attn_scale: float) -> bool:
        """Build the graph of these operands ([N, tokens, heads, dh]) once to learn whether GQA is supported."""
        if self.gqa is None:
            try:
                self._graph(*(t.transpose(1, 2) for t in (q8, k8, v8, out)), attn_scale)
                self.gqa = True
            except Exception as exc:  # noqa: BLE001  (cuDNN says "not supported" in several ways)
                log.info("cuDNN FP8 attention without GQA (%s): key/value heads are repeated", exc)
                self.gqa = False
        return self.gqa

    def _graph(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor, attn_scale: float):
        key = (tuple(q.shape), q.stride(), tuple(k.shape), k.stride(), v.stride(), o.stride(), o.dtype, attn_scale)
        found = self.graphs.get(key)
        if found is not None:
            return found
        cudnn = self.cudnn
        e4m3, fp32 = cudnn.data_type.FP8_E4M3, cudnn.data_type.FLOAT
        graph = cudnn.pygraph(io_data_type=e4m3, intermediate_data_type=fp32, compute_data_type=fp32,
                              handle=self.handle)
        tensors = {name: graph.tensor(name=name, dim=list(t.shape), stride=list(t.stride()), data_type=e4m3)
                   for name, t in (("q", q), ("k", k), ("v", v))}
        scalar = dict(dim=[1, 1, 1, 1], stride=[1, 1, 1, 1], data_type=fp32)
        for name in ("descale_q", "descale_k", "descale_v", "descale_s", "scale_s", "scale_o"):
            tensors[name] = graph.tensor(name=name, **scalar)
        o_t, _, amax_s, amax_o = graph.sdpa_fp8(
            q=tensors["q"], k=tensors["k"], v=tensors["v"], descale_q=tensors["descale_q"],
            descale_k=tensors["descale_k"], descale_v=tensors["descale_v"], descale_s=tensors["descale_s"],
            scale_s=tensors["scale_s"], scale_o=tensors["scale_o"], generate_stats=False, attn_scale=attn_scale,
            use_causal_mask=False, name="fp8_attention")
        o_t.set_output(True).set_dim(list(o.shape)).set_stride(list(o.stride())).set_data_type(
            cudnn.data_type.BFLOAT16 if o.dtype == torch.bfloat16 else e4m3)
        for amax in (amax_s, amax_o):
            amax.set_output(True).set_dim([1, 1, 1, 1]).set_stride([1, 1, 1, 1]).set_data_type(fp32)
        tensors["o"], tensors["amax_s"], tensors["amax_o"] = o_t, amax_s, amax_o
        graph.validate()
        graph.build_operation_graph()
        graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
        graph.check_support()
        graph.build_plans()
        size = graph.get_workspace_size()
        if size > self.workspace.numel():
            self.workspace = torch.empty(size, dtype=torch.uint8, device=self.device)
        self.graphs[key] = found = (graph, tensors)
        return found

    def __call__(self, q8: torch.Tensor, k8: torch.Tensor, v8: torch.Tensor, scales, out: torch.Tensor,
                 attn_scale: float) -> None:
        """out [N, tq, H, dh] (written; bf16, or e4m3 holding O / sv) from q8 [N, tq, H, dh], k8, v8 [N, tk, G, dh]."""
        q, k, v, o = (t.transpose(1, 2) for t in (q8, k8, v8, out))  # [N, heads, tokens, dh] views
        graph, tensors = self._graph(q, k, v, o, attn_scale)
        sq, sk, sv = (s.reshape(1, 1, 1, 1) for s in scales)
        scale_o = self.scale_s.new_ones(()) if out.dtype == torch.bfloat16 else 1 / sv
        self.cudnn.set_stream(self.handle, torch.cuda.current_stream(self.device).cuda_stream)
        pack = {tensors["q"]: q, tensors["k"]: k, tensors["v"]: v, tensors["o"]: o,
                tensors["descale_q"]: sq, tensors["descale_k"]: sk, tensors["descale_v"]: sv,
                tensors["descale_s"]: self.descale_s, tensors["scale_s"]: self.scale_s,
                tensors["scale_o"]: scale_o.reshape(1, 1, 1, 1),
                tensors["amax_s"]: self.amax[0], tensors["amax_o"]: self.amax[1]}
        graph.execute(pack, self.workspace, handle=self.handle)


_CUDNN: dict[torch.device, CudnnFp8Attention] = {}


def cudnn_attention(device: torch.device) -> CudnnFp8Attention:
    device = torch.device(device)
    if device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if device not in _CUDNN:
        _CUDNN[device] = CudnnFp8Attention(device)
    return _CUDNN[device]


# Block-causal attention in FP8 -------------------------------------------------------------------------------
class Fp8BlockCausalAttention:
    """What a layer calls instead of SDPA's per-chunk loop: quantise q and the centred k, v, run `backend` per
    chunk span and widen the output to the model's dtype with v's mean back (`quantize`, `quantize_centred`,
    `widen`: quantize_per_tensor, quantize_centred and widen_e4m3, compiled where the layers are, so that each
    is one pass)."""

    def __init__(self, backend: str, quantize: Callable = quantize_per_tensor,
                 quantize_centred: Callable = quantize_centred, widen: Callable = widen_e4m3,
                 cudnn_output: torch.dtype = torch.float8_e4m3fn) -> None:
        if backend not in FP8_ATTENTION_BACKENDS:
            raise ValueError(f"FP8 attention backend must be one of {FP8_ATTENTION_BACKENDS}, got {backend!r}")
        self.backend = backend
        self.quantize = quantize
        self.quantize_centred = quantize_centred
        self.widen = widen
        self.cudnn_output = cudnn_output
        self.failed = False

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout, out: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """As magi_engine.dit.attention.block_causal_attention: q [N, S, H, D]; k, v [N, context+S, G, D]; written
        into `out` when given. Should the kernel refuse (a graph cuDNN does not support, a Triton build error), bf16
        SDPA from then on."""
        out, v_mean = self.without_v_mean(q, k, v, layout, out)
        return out if v_mean is None else out.add_(v_mean.to(out.dtype))

    def without_v_mean(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout,
                       out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As __call__, but where the kernel writes the model's dtype itself (FlashAttention 3, Triton) v's mean is
        left out of `out` and returned ([N, 1, H, D], float32) for the caller to add in a pass it makes anyway
        (ParallelAttention: the output projection's input quantisation); None where it is in `out` already."""
        if self.failed:
            return block_causal_attention(q, k, v, layout, out=out), None
        q8, sq = self.quantize(q)
        k8, sk, _ = self.quantize_centred(k)
        v8, sv, v_mean = self.quantize_centred(v)
        try:
            return self.attend_centred(q8, k8, v8, (sq, sk, sv), v_mean, layout, q.dtype, out)
        except Exception as exc:  # noqa: BLE001
            log.warning("FP8 attention (%s) failed, attention runs in bf16 from now on: %s", self.backend, exc)
            self.failed = True
            return block_causal_attention(q, k, v, layout, out=out), None

    def attend(self, q8, k8, v8, scales, v_mean: torch.Tensor, layout, dtype: torch.dtype,
               out: torch.Tensor | None = None) -> torch.Tensor:
        """The attention of the centred k8, v8 with v_mean added back, in `dtype`, written into `out` (any
        strides) where given."""
        out, pending = self.attend_centred(q8, k8, v8, scales, v_mean, layout, dtype, out)
        return out if pending is None else out.add_(pending.to(dtype))

    def attend_centred(self, q8, k8, v8, scales, v_mean: torch.Tensor, layout, dtype: torch.dtype,
                       out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`attend`, but where the kernel wrote `out` itself, without v's mean: (out, the mean for each query head);
        where a pass widened the kernel's output into `out`, the mean went in with it: (out, None)."""
        attn_scale = q8.shape[-1] ** -0.5
        t = layout.tokens_per_chunk
        if out is None:
            out = torch.empty(q8.shape, dtype=dtype, device=q8.device)
        if self.backend == "triton":
            v8 = token_major_copy(v8)
            written = out
            run = lambda qc, ks, vs, oc: triton_attention(qc, ks, vs, scales, oc, attn_scale)  # noqa: E731
        elif self.backend == "fa3":  # its FP8 kernel writes bf16 only
            written = out if dtype == torch.bfloat16 else torch.empty(q8.shape, dtype=torch.bfloat16, device=q8.device)
            run = lambda qc, ks, vs, oc: fa3_attention(qc, ks, vs, scales, oc, attn_scale)  # noqa: E731
        else:
            graphs = cudnn_attention(q8.device)
            written = out if self.cudnn_output == dtype else torch.empty(q8.shape, dtype=self.cudnn_output,
                                                                           device=q8.device)
            repeat = q8.shape[2] // k8.shape[2]
            first = slice(*layout.key_token_range(0))
            if repeat > 1 and not graphs.takes_gqa(q8[:, :t], k8[:, first], v8[:, first], written[:, :t], attn_scale):
                k8, v8 = k8.repeat_interleave(repeat, dim=2), v8.repeat_interleave(repeat, dim=2)
            run = lambda qc, ks, vs, oc: graphs(qc, ks, vs, scales, oc, attn_scale)  # noqa: E731
        for j in range(layout.num_chunks):
            lo, hi = layout.key_token_range(j)
            rows = slice(j * t, (j + 1) * t)
            run(q8[:, rows], k8[:, lo:hi], v8[:, lo:hi], written[:, rows])
        if written is out:
            return out, heads_mean(v_mean, out.shape[2])
        if written.dtype == torch.bfloat16:  # FlashAttention 3 for a model in another dtype
            return out.copy_(written.float() + heads_mean(v_mean, out.shape[2])), None
        return self.widen(out, written, scales[2], v_mean), None  # cuDNN's FP8 output holds (O − μv) / sv
