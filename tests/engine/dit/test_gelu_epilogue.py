"""fc1 + GELU as one op (magi_engine.dit.gelu_epilogue): the op's math, which MLPs take it, and that a compiled
layer keeps it as one call. (Its speed is a GPU measurement: benchmarks/run_gpu_flash.sh.)"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from magi_engine.dit.attention import ChunkLayout
from magi_engine.dit.compiled import compile_layers, uncompile_layers
from magi_engine.dit.gelu_epilogue import linear_gelu_tanh, use_gelu_epilogue
from magi_engine.dit.model import ChunkText, MagiDiT
from magi_engine.variants import tiny_dit_config
from tests.engine.factories import randomize_


def test_the_op_is_the_tanh_gelu_of_the_linear() -> None:
    g = torch.Generator().manual_seed(0)
    x, weight = torch.randn(2, 5, 16, generator=g), torch.randn(24, 16, generator=g)
    got = linear_gelu_tanh(x, weight)
    assert got.shape == (2, 5, 24)
    torch.testing.assert_close(got, F.gelu(F.linear(x, weight), approximate="tanh"))
    assert not torch.allclose(got, F.gelu(F.linear(x, weight)), rtol=0, atol=1e-6)  # not the exact GELU


def _velocity(dit: MagiDiT) -> torch.Tensor:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 16, 12, 4, 4, generator=g)
    text = ChunkText.from_sequences([torch.randn(5, dit.config.caption_channels, generator=g) for _ in range(2)])
    with torch.no_grad():
        return dit(x, torch.rand(1, 2, generator=g), text, True, ChunkLayout.causal(0, 2, 24),
                   step_size=torch.full((1, 2), 8.0)).velocity


def test_gelu_mlps_take_it_and_swiglu_ones_do_not() -> None:
    dit = randomize_(MagiDiT(tiny_dit_config(distilled=True)), seed=3).eval()
    exact = _velocity(dit)
    assert use_gelu_epilogue(dit, True) == len(dit.layers)
    approximated = _velocity(dit)
    assert not torch.equal(approximated, exact)
    torch.testing.assert_close(approximated, exact, rtol=1e-2, atol=1e-2 * float(exact.abs().max()))
    torch._dynamo.reset()
    compile_layers(dit, backend="eager")  # the op stays one call inside the compiled graph
    assert torch.equal(_velocity(dit), approximated)
    uncompile_layers(dit)
    assert use_gelu_epilogue(dit, False) == len(dit.layers)
    assert torch.equal(_velocity(dit), exact)
    gated = MagiDiT(dataclasses.replace(tiny_dit_config(distilled=True, gated=True)))
    assert use_gelu_epilogue(gated, True) == 0
    assert all(layer.mlp.linear_gelu is None for layer in gated.layers)


def test_the_runtime_turns_it_on_with_the_fused_kernels_in_bf16_only(monkeypatch) -> None:
    import magi_engine.dit.fused as fused
    from magi_engine.dit.compiled import RuntimeChoice, apply_runtime

    monkeypatch.setattr(fused, "FusedKernels", lambda traced=False: object())  # the Triton ops need a GPU
    choice = RuntimeChoice(compile_layers=False, compile_mode="default", native_fp8=False, fused_kernels=True)
    for dtype, on in ((torch.bfloat16, True), (torch.float32, False)):
        dit = apply_runtime(MagiDiT(tiny_dit_config(distilled=True)).to(dtype), choice)
        assert all((layer.mlp.linear_gelu is not None) == on for layer in dit.layers)
    dit = apply_runtime(MagiDiT(tiny_dit_config(distilled=True)).to(torch.bfloat16),
                        RuntimeChoice(compile_layers=False, compile_mode="default", native_fp8=False))
    assert all(layer.mlp.linear_gelu is None for layer in dit.layers)  # fused kernels off: the exact GELU
