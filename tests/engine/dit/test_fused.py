"""Fused kernels (magi_engine.dit.fused): where they are chosen, today's path when they are not, the layer's
wiring through compiled layers, and the Triton kernels against the torch expressions they replace.

The kernels run here under Triton's interpreter (TRITON_INTERPRET=1, numpy on the CPU; tests/conftest.py) where
triton is installed; CI has none, and those tests skip. The interpreter rounds float32 to bfloat16 towards zero
(a GPU rounds to nearest), so bf16 outputs are held to one bf16 step, float32 outputs to float32 rounding.
"""

from __future__ import annotations

import collections
import importlib.util

import pytest
import torch

import magi_engine.dit.compiled as compiled
import magi_engine.dit.fused as fused
from magi_engine.config import RuntimeConfig
from magi_engine.dit.attention import ChunkLayout
from magi_engine.dit.compiled import apply_runtime, compile_counts, compile_layers, resolve_runtime
from magi_engine.dit.layer import TransformerLayer
from magi_engine.dit.model import ChunkText, MagiDiT
from magi_engine.dit.norms import OnePlusLayerNorm
from magi_engine.dit.rope import apply_rotary
from magi_engine.errors import ConfigError
from magi_engine.variants import tiny_dit_config
from tests.engine.factories import randomize_

HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed (the CPU wheel has none)")


def _dit() -> MagiDiT:
    return randomize_(MagiDiT(tiny_dit_config(distilled=True)), seed=5).eval().float()


def _velocity(dit: MagiDiT, chunks: int = 3, text_tokens: int = 5, context_chunks: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(chunks * 10 + text_tokens)
    x = torch.randn(1, 16, 6 * chunks, 4, 4, generator=g)
    text = ChunkText.from_sequences([torch.randn(text_tokens + j, dit.config.caption_channels, generator=g)
                                     for j in range(chunks)])
    layout = ChunkLayout.causal(context_chunks, chunks, 4 * 6, span=3)
    with torch.no_grad():
        return dit(x, torch.rand(1, chunks, generator=g), text, True, layout,
                   step_size=torch.full((1, chunks), 8.0)).velocity


def _norm(size: int, seed: int) -> OnePlusLayerNorm:
    norm = OnePlusLayerNorm(size, 1e-6)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        norm.weight.normal_(0, 0.2, generator=g)
        norm.bias.normal_(0, 0.2, generator=g)
    return norm.requires_grad_(False)


def _gated_inputs(dtype: torch.dtype, n: int = 2, chunks: int = 3, tokens: int = 5, d: int = 48):
    g = torch.Generator().manual_seed(11)
    update = (torch.randn(n, chunks * tokens, d, generator=g) * 3).to(dtype)
    residual = torch.randn(n, chunks * tokens, d, generator=g).to(dtype)
    gate = torch.tanh(torch.randn(n, chunks, 2 * d, generator=g)).to(dtype).chunk(2, dim=-1)[0]  # a strided view
    return update, gate, _norm(d, 12), residual


def _qk_inputs(dtype: torch.dtype, n: int = 2, tokens: int = 15, heads: int = 3, dh: int = 32, bands: int = 12):
    g = torch.Generator().manual_seed(13)
    x = (torch.randn(n, tokens, heads, dh, generator=g) * 2 + 0.5).to(dtype)
    angles = torch.randn(tokens, bands, generator=g) * 3
    return x, _norm(dh, 14), angles


# The gate -------------------------------------------------------------------------------------------------------
def test_fused_kernels_run_on_cuda_with_triton_only(monkeypatch) -> None:
    assert not fused.fused_kernels_supported("cpu") and not fused.fused_kernels_supported("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(fused, "triton_importable", lambda: False)
    assert not fused.fused_kernels_supported("cuda")
    monkeypatch.setattr(fused, "triton_importable", lambda: True)
    assert fused.fused_kernels_supported("cuda")
    assert not fused.fused_kernels_supported("cpu")


def test_runtime_choice_turns_fused_kernels_on_where_they_run_and_off_on_request(monkeypatch) -> None:
    assert not resolve_runtime(None, "cpu").fused_kernels
    assert not resolve_runtime(RuntimeConfig(fused_kernels=False), "cpu").fused_kernels
    with pytest.raises(ConfigError, match="Triton"):
        resolve_runtime(RuntimeConfig(fused_kernels=True), "cpu")
    monkeypatch.setattr(fused, "fused_kernels_supported", lambda device: torch.device(device).type == "cuda")
    monkeypatch.setattr(compiled, "FUSED_KERNELS_BY_DEFAULT", False)
    assert not resolve_runtime(None, "cuda").fused_kernels  # off until measured faster
    assert resolve_runtime(RuntimeConfig(fused_kernels=True), "cuda").fused_kernels
    monkeypatch.setattr(compiled, "FUSED_KERNELS_BY_DEFAULT", True)
    assert resolve_runtime(None, "cuda").fused_kernels
    assert not resolve_runtime(RuntimeConfig(fused_kernels=False), "cuda").fused_kernels  # the switch
    assert not resolve_runtime(None, "cpu").fused_kernels and not resolve_runtime(None, "mps").fused_kernels
    with pytest.raises(ConfigError, match="fused_kernels"):
        RuntimeConfig(fused_kernels="yes")
    assert RuntimeConfig.from_dict(RuntimeConfig(fused_kernels=False).to_dict()) == RuntimeConfig(fused_kernels=False)


def test_off_the_layers_run_todays_torch_code_bit_for_bit(monkeypatch) -> None:
    monkeypatch.setattr(compiled, "FUSED_KERNELS_BY_DEFAULT", True)  # even on by default: a CPU cannot run them
    expected = _velocity(_dit())
    dit = apply_runtime(_dit(), resolve_runtime(None, "cpu"))
    assert all(layer.fused_kernels is None and layer.attn.fused_kernels is None for layer in dit.layers)
    assert torch.equal(_velocity(dit), expected)


# The references are the layer's own expressions ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_references_are_the_layers_expressions_bit_for_bit(dtype) -> None:
    update, gate, norm, residual = _gated_inputs(dtype)
    assert torch.equal(fused.gated_residual_reference(update, gate, norm.weight, norm.bias, norm.eps, residual),
                       TransformerLayer._gated_residual(update, gate, norm, residual))
    mlp_norm = torch.nn.LayerNorm(update.shape[-1], eps=1e-6, dtype=dtype)
    with torch.no_grad():
        mlp_norm.weight.normal_(1, 0.2)
        mlp_norm.bias.normal_(0, 0.2)
    x = TransformerLayer._gated_residual(update, gate, norm, residual)
    assert all(torch.equal(a, b) for a, b in zip(
        fused.gated_residual_norm_reference(update, gate, norm.weight, norm.bias, norm.eps, residual, mlp_norm.weight,
                                            mlp_norm.bias, mlp_norm.eps), (x, mlp_norm(x))))
    x, norm, angles = _qk_inputs(dtype)
    cos, sin = fused.FusedKernels.rotation(angles)
    assert torch.equal(fused.qk_norm_rope_reference(x, norm.weight, norm.bias, norm.eps, cos, sin),
                       apply_rotary(norm(x.float()), angles).to(dtype))


# The wiring, with the references standing in for the kernels as opaque custom ops ----------------------------
#: Calls of each stand-in op (counted in the ops' bodies, which run as they are even inside compiled graphs).
CALLS = collections.Counter()


@torch.library.custom_op("magi_test::gated_residual", mutates_args=())
def _gated_residual_op(update: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                       eps: float, residual: torch.Tensor) -> torch.Tensor:
    CALLS["gated_residual"] += 1
    return fused.gated_residual_reference(update, gate, weight, bias, eps, residual)


@torch.library.custom_op("magi_test::gated_residual_norm", mutates_args=())
def _gated_residual_norm_op(update: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                            eps: float, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                            norm_eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    CALLS["gated_residual_norm"] += 1
    return fused.gated_residual_norm_reference(update, gate, weight, bias, eps, residual, norm_weight, norm_bias,
                                               norm_eps)


@torch.library.custom_op("magi_test::qk_norm_rope", mutates_args=())
def _qk_norm_rope_op(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float, cos: torch.Tensor,
                     sin: torch.Tensor) -> torch.Tensor:
    CALLS["qk_norm_rope"] += 1
    return fused.qk_norm_rope_reference(x, weight, bias, eps, cos, sin)


@_gated_residual_op.register_fake
def _(update, gate, weight, bias, eps, residual):
    return torch.empty_like(residual)


@_gated_residual_norm_op.register_fake
def _(update, gate, weight, bias, eps, residual, norm_weight, norm_bias, norm_eps):
    return torch.empty_like(residual), torch.empty_like(residual)


@_qk_norm_rope_op.register_fake
def _(x, weight, bias, eps, cos, sin):
    return torch.empty_like(x)


class _ReferenceKernels(fused.FusedKernels):
    """FusedKernels whose ops are the torch references (custom ops, opaque to the compiler like the Triton ones)."""

    def __init__(self, traced: bool = False) -> None:
        self._gated_residual = torch.ops.magi_test.gated_residual
        self._gated_residual_norm = torch.ops.magi_test.gated_residual_norm
        self._qk_norm_rope = torch.ops.magi_test.qk_norm_rope


@pytest.mark.slow
def test_the_layers_call_the_fused_ops_with_their_own_norms_gates_and_angles(monkeypatch) -> None:
    expected = [_velocity(_dit(), *shape) for shape in [(3, 5), (2, 4), (4, 6)]]
    monkeypatch.setattr(fused, "FusedKernels", _ReferenceKernels)
    dit = fused.use_fused_kernels(_dit(), True)
    kernels = dit.layers[0].fused_kernels
    assert all(layer.fused_kernels is kernels and layer.attn.fused_kernels is kernels for layer in dit.layers)
    CALLS.clear()
    assert torch.equal(_velocity(dit), expected[0])  # the same expressions, now through the ops
    # a layer: after attention the residual with the MLP's pre-norm, after the MLP the residual; QK-norm for q and k
    each = {"gated_residual_norm": len(dit.layers), "gated_residual": len(dit.layers), "qk_norm_rope": 2 * len(dit.layers)}
    assert CALLS == each
    # Compiled (dynamo's real tracing; backend "eager" generates no code): one graph each, ops inside it.
    torch._dynamo.reset()
    compile_layers(dit, backend="eager")
    got = [_velocity(dit, 3, 5), _velocity(dit, 2, 4)]
    graphs = compile_counts()["unique_graphs"]
    got.append(_velocity(dit, 4, 6))
    assert compile_counts()["unique_graphs"] == graphs  # other window shapes: no recompiling
    for a, b in zip(got, expected):
        assert torch.equal(a, b)
    assert CALLS == {name: 4 * calls for name, calls in each.items()}  # the compiled graphs call the ops
    fused.use_fused_kernels(dit, False)
    assert all(layer.fused_kernels is None and layer.attn.fused_kernels is None for layer in dit.layers)


# The Triton kernels, under the interpreter -----------------------------------------------------------------------
@pytest.fixture
def triton_ops():
    """The fused ops; on a CPU through Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET=1 there)."""
    import triton.language as tl

    if not torch.cuda.is_available() and "Interpreted" not in type(tl.sum).__name__:
        pytest.skip("no CUDA GPU, and triton was imported before TRITON_INTERPRET=1 was set")
    return fused.FusedKernels()


def _ulps_bf16(got: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """|got − ref| in units of ref's bfloat16 spacing."""
    spacing = torch.finfo(torch.bfloat16).eps * torch.exp2(torch.floor(torch.log2(ref.float().abs().clamp_min(1e-30))))
    return (got.float() - ref.float()).abs() / spacing


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("d", [48, 64])  # a hidden size that is not a power of two, and one that is
def test_gated_residual_kernel_matches_the_layers_expression(triton_ops, dtype, d) -> None:
    update, gate, norm, residual = _gated_inputs(dtype, d=d)
    ref = TransformerLayer._gated_residual(update, gate, norm, residual)
    got = triton_ops.gated_residual(update, gate, norm, residual)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    if dtype == torch.float32:
        torch.testing.assert_close(got, ref, rtol=2e-6, atol=2e-6)
    else:
        assert float(_ulps_bf16(got, ref).max()) <= 1.0
    assert not torch.equal(triton_ops.gated_residual(update, gate.flip(1), norm, residual), got)  # gates by chunk


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("d", [48, 64])
def test_gated_residual_norm_kernel_adds_the_next_norm_of_what_it_stored(triton_ops, dtype, d) -> None:
    update, gate, norm, residual = _gated_inputs(dtype, d=d)
    next_norm = torch.nn.LayerNorm(d, eps=1e-6, dtype=dtype).requires_grad_(False)
    with torch.no_grad():
        next_norm.weight.normal_(1, 0.3)
        next_norm.bias.normal_(0, 0.3)
    x, normed = triton_ops.gated_residual_norm(update, gate, norm, residual, next_norm)
    assert torch.equal(x, triton_ops.gated_residual(update, gate, norm, residual))
    ref = next_norm(x)  # the norm of the sum as stored (rounded), as the layer's own path norms it
    if dtype == torch.float32:
        torch.testing.assert_close(normed, ref, rtol=2e-5, atol=2e-5)
    else:
        assert float(_ulps_bf16(normed, ref).max()) <= 1.0


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("dh, bands", [(32, 12), (32, 16), (24, 6)])  # some dims unrotated; all rotated; dh not 2ᵏ
def test_qk_norm_rope_kernel_matches_the_layers_expression(triton_ops, dtype, dh, bands) -> None:
    x, norm, angles = _qk_inputs(dtype, dh=dh, bands=bands)
    ref = apply_rotary(norm(x.float()), angles).to(dtype)
    got = triton_ops.qk_norm_rope(x, norm, *triton_ops.rotation(angles))
    assert got.dtype == ref.dtype and got.shape == ref.shape
    if dtype == torch.float32:
        torch.testing.assert_close(got, ref, rtol=2e-6, atol=2e-6)
    else:
        assert float(_ulps_bf16(got, ref).max()) <= 1.0


@needs_triton
@pytest.mark.slow
def test_a_model_with_the_kernels_matches_the_model_without_eager_and_compiled(triton_ops) -> None:
    shapes = [(3, 5), (2, 4), (4, 6)]
    expected = [_velocity(_dit(), *shape) for shape in shapes]
    dit = fused.use_fused_kernels(_dit(), True)  # the opaque ops, the engine's default
    assert not dit.layers[0].fused_kernels.traced

    def close(got, want):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))

    close(_velocity(dit, *shapes[0]), expected[0])
    torch._dynamo.reset()
    compile_layers(dit, backend="eager")
    got = [_velocity(dit, *shapes[0]), _velocity(dit, *shapes[1])]
    graphs = compile_counts()["unique_graphs"]
    got.append(_velocity(dit, *shapes[2]))
    assert compile_counts()["unique_graphs"] == graphs
    for a, b in zip(got, expected):
        close(a, b)
