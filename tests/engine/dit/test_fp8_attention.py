"""FP8 attention: where it is chosen (the gate), its scales and per-chunk layouts, and SDPA everywhere else.

The kernels themselves run only on a Hopper GPU (benchmarks/gpu_attention.py checks them against float32
there); here a float emulation of the cuDNN call stands in for the kernel, so the bookkeeping around it
(quantisation, the spans each chunk gets, the rows it writes, widening the FP8 output) is what is tested.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import magi_engine.dit.compiled as compiled
import magi_engine.dit.fp8_attention as fa
from magi_engine.config import RuntimeConfig
from magi_engine.dit.attention import ChunkLayout, block_causal_attention
from magi_engine.dit.compiled import fp8_layer_indices, resolve_runtime, use_fp8_attention
from magi_engine.dit.fp8_linear import use_fp8_linears
from magi_engine.dit.layer import ParallelAttention
from magi_engine.dit.model import MagiDiT
from magi_engine.errors import ConfigError
from magi_engine.variants import tiny_dit_config


def _cuda(monkeypatch, capability: tuple[int, int], cudnn: bool, triton: bool, fa3: bool = False) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(fa, "cudnn_frontend_available", lambda: cudnn)
    monkeypatch.setattr(fa, "fa3_available", lambda: fa3)
    monkeypatch.setattr(fa, "triton_available", lambda: triton)


def test_no_fp8_attention_off_hopper_or_without_a_kernel(monkeypatch) -> None:
    assert fa.fp8_attention_backend("cpu") is None
    assert fa.fp8_attention_backend("mps") is None
    _cuda(monkeypatch, (8, 9), cudnn=True, triton=True)  # Ada: FP8 matmuls, but attention not measured there
    assert fa.fp8_attention_backend("cuda") is None
    _cuda(monkeypatch, (9, 0), cudnn=False, triton=False)
    assert fa.fp8_attention_backend("cuda") is None
    _cuda(monkeypatch, (9, 0), cudnn=True, triton=True)
    assert fa.fp8_attention_backend("cuda") == "cudnn"
    assert fa.fp8_attention_backend("cuda", preferred="triton") == "triton"
    _cuda(monkeypatch, (9, 0), cudnn=False, triton=True)
    assert fa.fp8_attention_backend("cuda") == "triton"
    _cuda(monkeypatch, (9, 0), cudnn=False, triton=True, fa3=True)
    assert fa.fp8_attention_backend("cuda") == "fa3"  # before our Triton kernel
    assert fa.fp8_attention_backend("cuda", preferred="triton") == "triton"
    _cuda(monkeypatch, (9, 0), cudnn=True, triton=True, fa3=True)
    assert fa.fp8_attention_backend("cuda") == "fa3"  # before cuDNN's: measured faster
    assert fa.fp8_attention_backend("cuda", preferred="cudnn") == "cudnn"


def test_runtime_choice_turns_fp8_attention_on_with_native_fp8_on_hopper_only(monkeypatch) -> None:
    assert resolve_runtime(None, "cpu").fp8_attention is None
    with pytest.raises(ConfigError, match="native FP8"):
        resolve_runtime(RuntimeConfig(fp8_attention=True), "cpu")
    _cuda(monkeypatch, (9, 0), cudnn=True, triton=False)
    monkeypatch.setattr(compiled, "native_fp8_supported", lambda device: True)
    monkeypatch.setattr(compiled, "FP8_ATTENTION_BY_DEFAULT", False)
    assert resolve_runtime(None, "cuda").fp8_attention is None  # off by default: only when asked for
    assert resolve_runtime(RuntimeConfig(fp8_attention=True), "cuda").fp8_attention == "cudnn"
    monkeypatch.setattr(compiled, "FP8_ATTENTION_BY_DEFAULT", True)
    assert resolve_runtime(None, "cuda").fp8_attention == "cudnn"
    assert resolve_runtime(RuntimeConfig(fp8_attention=False), "cuda").fp8_attention is None  # the switch
    assert resolve_runtime(RuntimeConfig(native_fp8=False), "cuda").fp8_attention is None  # bf16 runs: SDPA
    with pytest.raises(ConfigError, match="native FP8"):
        resolve_runtime(RuntimeConfig(native_fp8=False, fp8_attention=True), "cuda")
    _cuda(monkeypatch, (9, 0), cudnn=True, triton=True, fa3=True)
    assert resolve_runtime(None, "cuda").fp8_attention == "fa3"  # installed: FlashAttention 3 before cuDNN
    _cuda(monkeypatch, (9, 0), cudnn=False, triton=True)
    assert resolve_runtime(None, "cuda").fp8_attention is None  # by default FA3's or cuDNN's only (Triton's: no faster)
    assert resolve_runtime(RuntimeConfig(fp8_attention=True), "cuda").fp8_attention == "triton"  # asked for
    _cuda(monkeypatch, (9, 0), cudnn=False, triton=False)
    assert resolve_runtime(None, "cuda").fp8_attention is None  # no package: SDPA, quietly
    with pytest.raises(ConfigError, match="cuDNN frontend"):
        resolve_runtime(RuntimeConfig(fp8_attention=True), "cuda")
    with pytest.raises(ConfigError, match="fp8_attention"):
        RuntimeConfig(fp8_attention="yes")
    assert RuntimeConfig.from_dict(RuntimeConfig(fp8_attention=False).to_dict()) == RuntimeConfig(fp8_attention=False)


def test_per_tensor_scale_spans_e4m3_and_rounds_within_its_precision() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 50, 4, 16, generator=g).to(torch.bfloat16) * 7
    x8, scale = fa.quantize_per_tensor(x)
    assert x8.dtype == torch.float8_e4m3fn and scale.dtype == torch.float32 and scale.ndim == 0
    assert float(x8.float().abs().max()) == fa.E4M3_MAX  # the largest value lands on 448
    assert torch.allclose(scale, x.float().abs().max() / fa.E4M3_MAX)
    back = x8.float() * scale
    normal = x.float().abs() > scale * 2**-6  # e4m3's normal range: 3 mantissa bits, half an ulp ≤ 1/16
    assert ((back - x.float()).abs() <= x.float().abs() / 16 + 1e-7)[normal].all()
    zeros8, zero_scale = fa.quantize_per_tensor(torch.zeros(4, 4))
    assert float(zero_scale) > 0 and not torch.isnan(zeros8.float()).any()


def test_centred_quantisation_takes_the_token_mean_off_and_back() -> None:
    g = torch.Generator().manual_seed(2)
    x = (torch.randn(2, 40, 3, 16, generator=g) + 5 * torch.randn(2, 1, 3, 16, generator=g)).to(torch.bfloat16)
    x8, scale, mean = fa.quantize_centred(x)
    assert mean.shape == (2, 1, 3, 16) and mean.dtype == torch.float32
    assert torch.allclose(mean, x.float().mean(1, keepdim=True))
    assert float(x8.float().abs().max()) == fa.E4M3_MAX and scale.ndim == 0  # the centred range spans e4m3
    back = x8.float() * scale + mean
    plain8, plain_scale = fa.quantize_per_tensor(x)
    assert (back - x.float()).norm() < (plain8.float() * plain_scale - x.float()).norm() / 3
    o8 = x8[:, :5].repeat_interleave(2, dim=2)  # an output over 6 query heads, 2 to each key/value head
    buffer = torch.zeros(2, 5, 2 * 6 * 16, dtype=torch.bfloat16)  # [self | cross], as ParallelAttention.attend's
    into = buffer[..., :6 * 16].unflatten(-1, (6, 16))
    assert fa.widen_e4m3(into, o8, scale, mean) is into
    assert torch.allclose(into.float(), o8.float() * scale + mean.repeat_interleave(2, dim=2), rtol=1e-2)
    assert not buffer[..., 6 * 16:].any()  # written where it lies, nothing beside it


def test_token_major_copy_keeps_values_and_aligns_rows() -> None:
    v8 = torch.randn(2, 37, 3, 16).to(torch.float8_e4m3fn)
    vt = fa.token_major_copy(v8)
    assert vt.shape == v8.shape and torch.equal(vt.float(), v8.float())
    assert vt.stride(1) == 1 and vt.stride(3) % 16 == 0  # tokens contiguous; each (group, dim) row 16-byte aligned


class _EmulatedCudnn:
    """Stands in for cuDNN's FP8 call: float attention of the dequantised operands, FP8 output holding O / sv."""

    def __init__(self, gqa: bool = True) -> None:
        self.calls: list[tuple[int, int, int]] = []
        self.kv_heads: set[int] = set()
        self.gqa = gqa

    def takes_gqa(self, *operands) -> bool:
        return self.gqa

    def __call__(self, q8, k8, v8, scales, out, attn_scale) -> None:
        sq, sk, sv = scales
        self.calls.append((q8.shape[1], k8.shape[1], out.data_ptr()))
        self.kv_heads.add(k8.shape[2])
        repeat = q8.shape[2] // k8.shape[2]
        q = (q8.float() * sq).transpose(1, 2)
        k = (k8.float() * sk).repeat_interleave(repeat, 2).transpose(1, 2)
        v = (v8.float() * sv).repeat_interleave(repeat, 2).transpose(1, 2)
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=attn_scale).transpose(1, 2)
        out.copy_(o / sv if out.dtype == torch.float8_e4m3fn else o)


@pytest.mark.parametrize("output, gqa", [(torch.float8_e4m3fn, True), (torch.bfloat16, True),
                                         (torch.float8_e4m3fn, False)])
def test_each_chunk_attends_its_span_and_writes_its_rows(monkeypatch, output, gqa) -> None:
    emulated = _EmulatedCudnn(gqa)
    monkeypatch.setattr(fa, "cudnn_attention", lambda device: emulated)
    t = 10
    layout = ChunkLayout(2, 5, t, (1, 1, 1, 1, 6), 1)  # a steady window-4 step: one context chunk, spans 2..5 and 1
    g = torch.Generator().manual_seed(5)
    q = torch.randn(1, 5 * t, 6, 16, generator=g).to(torch.bfloat16)
    k, v = (torch.randn(1, 6 * t, 2, 16, generator=g).to(torch.bfloat16) for _ in "kv")
    got = fa.Fp8BlockCausalAttention("cudnn", cudnn_output=output)(q, k, v, layout)
    assert [c[:2] for c in emulated.calls] == [(t, 2 * t), (t, 3 * t), (t, 4 * t), (t, 5 * t), (t, t)]
    row_bytes = 6 * 16 * torch.finfo(output).bits // 8
    starts = [c[2] for c in emulated.calls]
    assert [s - starts[0] for s in starts] == [j * t * row_bytes for j in range(5)]  # straight into its rows
    assert got.dtype == torch.bfloat16 and got.shape == q.shape
    assert emulated.kv_heads == {2 if gqa else 6}  # without GQA in cuDNN, key/value heads are repeated
    expected = block_causal_attention(q.float(), k.float(), v.float(), layout)
    error = (got.float() - expected).norm() / expected.norm()
    assert error < 0.08  # e4m3 operands (and output): a few per cent


@pytest.mark.parametrize("output", [torch.float8_e4m3fn, torch.bfloat16])
def test_centring_keeps_what_a_shared_mean_would_round_away(monkeypatch, output) -> None:
    """Keys and values that share a large mean over the tokens (as a LayerNorm's bias gives them): e4m3's three
    mantissa bits keep little of the per-token part unless the mean is taken off first; the result's part that
    differs between queries is what carries the picture."""
    monkeypatch.setattr(fa, "cudnn_attention", lambda device: _EmulatedCudnn())
    t = 16
    layout = ChunkLayout(2, 5, t, (1, 1, 1, 1, 6), 1)
    g = torch.Generator().manual_seed(6)
    q = torch.randn(1, 5 * t, 4, 16, generator=g).to(torch.bfloat16)
    k = (torch.randn(1, 6 * t, 2, 16, generator=g) + 12).to(torch.bfloat16)
    v = (0.5 * torch.randn(1, 6 * t, 2, 16, generator=g) + 3).to(torch.bfloat16)
    expected = block_causal_attention(q.float(), k.float(), v.float(), layout)

    def error(got):  # on the part that varies from query to query
        vary = expected - expected.mean(1, keepdim=True)
        return float((got.float() - expected).norm() / vary.norm())

    centred = error(fa.Fp8BlockCausalAttention("cudnn", cudnn_output=output)(q, k, v, layout))
    uncentred = fa.Fp8BlockCausalAttention("cudnn", cudnn_output=output,
                                           quantize_centred=lambda x: (*fa.quantize_per_tensor(x), x[:, :1].float() * 0))
    plain = error(uncentred(q, k, v, layout))
    assert centred < 0.15 and plain > 3 * centred, (centred, plain)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_fa3_writes_each_chunks_rows_with_its_descales_and_v_mean_back(emulated_fa3, dtype) -> None:
    emulated = emulated_fa3
    assert fa.fa3_available()
    t = 10
    layout = ChunkLayout(2, 5, t, (1, 1, 1, 1, 6), 1)
    g = torch.Generator().manual_seed(7)
    q = torch.randn(1, 5 * t, 6, 16, generator=g).to(dtype)
    k = torch.randn(1, 6 * t, 2, 16, generator=g).to(dtype)
    v = (0.5 * torch.randn(1, 6 * t, 2, 16, generator=g) + 3).to(dtype)  # a shared mean, taken off and put back
    out = torch.empty(1, 5 * t, 6 * 16 + 8, dtype=dtype)[..., :6 * 16].view(1, 5 * t, 6, 16)  # a strided view
    got = fa.Fp8BlockCausalAttention("fa3")(q, k, v, layout, out=out)
    assert got is out and got.dtype == dtype
    assert [c[:2] for c in emulated.calls] == [(t, 2 * t), (t, 3 * t), (t, 4 * t), (t, 5 * t), (t, t)]
    starts = [c[2] for c in emulated.calls]
    row_bytes = out.stride(1) * 2 if dtype == torch.bfloat16 else 6 * 16 * 2  # into out's rows, or a bf16 buffer's
    assert [s - starts[0] for s in starts] == [j * t * row_bytes for j in range(5)]
    expected = block_causal_attention(q.float(), k.float(), v.float(), layout)
    vary = expected - expected.mean(1, keepdim=True)
    assert float((got.float() - expected).norm() / vary.norm()) < 0.15


def test_fa3_leaves_v_mean_to_the_output_projections_input_pass(emulated_fa3) -> None:
    """Where the kernel writes the model's dtype, v's mean is not added in a pass of its own over the self-attention
    output: attend_parts hands it back, dense_out adds it on the way into the output projection (compiled: in the
    input quantisation's pass); the forward is the one that adds it at once, compiled or not."""
    from magi_engine.dit.compiled import compile_layers
    from magi_engine.dit.model import ChunkText
    from tests.engine.factories import chunk_text, tiny_dit

    dit = tiny_dit(distilled=True).set_dtype(torch.bfloat16)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 16, 12, 4, 6, generator=g)
    t = torch.rand(1, 2, generator=g)
    text = ChunkText.from_sequences([chunk_text(j, tokens=3) for j in range(2)])
    layout = ChunkLayout.causal(0, 2, 6 * 2 * 3)
    layers = range(len(dit.layers))

    def velocity():
        with torch.inference_mode():
            return dit(x, t, text, True, layout, step_size=torch.full((1, 2), 2.0)).velocity.float()

    kernel = fa.Fp8BlockCausalAttention("fa3")
    use_fp8_attention(dit, "fa3", compiled=False, layers=layers)
    for layer in dit.layers:
        layer.attn.self_attention = kernel
    offsets = []
    attend_parts = dit.layers[0].attn.attend_parts
    dit.layers[0].attn.attend_parts = lambda *a: (lambda r: offsets.append(r[1]) or r)(attend_parts(*a))
    deferred = velocity()
    (offset,) = offsets
    heads, dh = dit.config.num_heads, dit.config.head_dim
    assert offset.shape == (1, 2 * heads * dh) and offset.dtype == torch.float32
    assert offset[:, :heads * dh].abs().sum() > 0 and not offset[:, heads * dh:].any()  # the self half only
    del dit.layers[0].attn.attend_parts

    for layer in dit.layers:  # the same kernel, v's mean added where it runs
        layer.attn.self_attention = lambda q, k, v, layout, out: kernel(q, k, v, layout, out)
    at_once = velocity()
    assert torch.equal(deferred, at_once)  # the same bf16 add, made later
    for layer in dit.layers:
        layer.attn.self_attention = lambda q, k, v, layout, out: kernel.without_v_mean(q, k, v, layout, out)[0]
    assert float((velocity() - at_once).norm() / at_once.norm()) > 5e-2  # the mean matters: it is not left out

    for layer in dit.layers:
        layer.attn.self_attention = kernel
    compile_layers(dit, backend="eager")  # the offset through the compiled dense part's graph
    assert torch.equal(velocity(), at_once)


def test_a_kernel_that_refuses_leaves_bf16_attention(monkeypatch) -> None:
    def refuse(device):
        raise RuntimeError("graph not supported")

    monkeypatch.setattr(fa, "cudnn_attention", refuse)
    layout = ChunkLayout.causal(0, 2, 6)
    q, k, v = torch.randn(1, 12, 4, 16), torch.randn(1, 12, 2, 16), torch.randn(1, 12, 2, 16)
    attention = fa.Fp8BlockCausalAttention("cudnn")
    expected = block_causal_attention(q, k, v, layout)
    assert torch.equal(attention(q, k, v, layout), expected) and attention.failed
    monkeypatch.setattr(fa, "cudnn_attention", lambda device: pytest.fail("tried again"))
    assert torch.equal(attention(q, k, v, layout), expected)  # not tried again


def test_layers_use_fp8_attention_only_when_set_and_not_masked(monkeypatch) -> None:
    cfg = tiny_dit_config(distilled=True)
    attn = ParallelAttention(cfg)
    seen = []
    attn.self_attention = lambda q, k, v, layout, out: seen.append(layout) or out.zero_()
    n, t, heads, kv_heads, dh = 1, 4, cfg.num_heads, cfg.num_kv_groups, cfg.head_dim
    inputs = (torch.randn(n, 2 * t, heads, dh), torch.randn(n, 2 * t, kv_heads, dh), torch.randn(n, 2 * t, kv_heads, dh),
              torch.randn(n, 2 * t, heads, dh), torch.randn(n, 2, 3, kv_heads, dh), torch.randn(n, 2, 3, kv_heads, dh))
    layout = ChunkLayout.causal(0, 2, t)
    self_part = slice(0, heads * dh)  # attend's buffer: [self | cross]
    with torch.inference_mode():
        attended = attn.attend(inputs, None, layout, None)
        assert seen == [layout] and not attended[..., self_part].any()
        attended = attn.attend(inputs, None, layout, None, masked=True)  # training: the masked SDPA call
        assert len(seen) == 1 and attended[..., self_part].any()
        attn.self_attention = None
        assert torch.equal(attn.attend(inputs, None, layout, None)[..., self_part],
                           block_causal_attention(*inputs[:3], layout).flatten(2))


def test_fp8_attention_goes_to_the_native_fp8_layers_only() -> None:
    cfg = dataclasses.replace(tiny_dit_config(distilled=True), num_layers=4)
    with torch.device("meta"):
        dit = MagiDiT(cfg)
    assert fp8_layer_indices(dit) == []
    use_fp8_attention(dit, "triton", compiled=False)  # a bf16 model: nothing changes
    assert all(layer.attn.self_attention is None for layer in dit.layers)
    inner = range(1, cfg.num_layers - 1)
    use_fp8_linears(dit, inner)
    assert fp8_layer_indices(dit) == list(inner)
    use_fp8_attention(dit, "triton", compiled=False)
    assert [layer.attn.self_attention is not None for layer in dit.layers] == [i in inner for i in range(cfg.num_layers)]
    assert dit.layers[1].attn.self_attention.backend == "triton"
    use_fp8_attention(dit, None)
    assert all(layer.attn.self_attention is None for layer in dit.layers)
    with pytest.raises(ValueError, match="backend"):
        fa.Fp8BlockCausalAttention("flash")


def test_triton_kernel_promotes_the_fp8_p_v_accumulator_once_per_block():
    """Hopper's FP8 tensor cores keep ~14 bits of the accumulator unless the kernel promotes it (Triton's
    default on sm90: never); p·v summed over a span of 60,750 keys then loses each block's share (39% rel. L2
    on one engine layer's inputs, benchmarks/fp8_accumulation_cpu.py). The kernel cannot run here, so its
    source is checked: the p·v product that carries the accumulator across blocks promotes once per block."""
    import ast
    import inspect

    import magi_engine.dit as dit_package

    path = inspect.getfile(dit_package).replace("__init__.py", "fp8_attention_triton.py")
    tree = ast.parse(open(path, encoding="utf-8").read())
    carried = [call for call in ast.walk(tree) if isinstance(call, ast.Call) and ast.unparse(call.func) == "tl.dot"
               and len(call.args) == 3]
    assert carried, "the p·v product with a carried accumulator was not found"
    for call in carried:
        promote = {kw.arg: ast.unparse(kw.value) for kw in call.keywords}.get("max_num_imprecise_acc")
        assert promote == "BLOCK_N", ast.unparse(call)
