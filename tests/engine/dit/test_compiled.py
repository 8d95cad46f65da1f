"""Compiled layers: off on CPU by default, no change to a model's output, no recompiling per step."""

from __future__ import annotations

import pytest
import torch

from magi_engine.config import RuntimeConfig
from magi_engine.dit.attention import ChunkLayout
from magi_engine.dit.compiled import compile_counts, compile_layers, resolve_runtime, uncompile_layers
from magi_engine.dit.model import ChunkText, MagiDiT
from magi_engine.errors import ConfigError
from magi_engine.variants import tiny_dit_config
from tests.engine.factories import randomize_


def test_cpu_defaults_compile_nothing_and_dequantise_fp8() -> None:
    choice = resolve_runtime(None, "cpu")
    assert not choice.compile_layers and not choice.native_fp8
    assert resolve_runtime(RuntimeConfig(compile_layers=True), "cpu").compile_layers  # asked for: honoured
    with pytest.raises(ConfigError, match="compute capability 8.9"):
        resolve_runtime(RuntimeConfig(native_fp8=True), "cpu")


def test_quantising_to_fp8_on_load_is_off_by_default_and_refused_where_fp8_cannot_run(monkeypatch) -> None:
    from magi_engine.dit import compiled

    assert not resolve_runtime(None, "cpu").quantize_fp8
    with pytest.raises(ConfigError, match="^Quantising to FP8 on load needs a CUDA GPU of compute capability 8.9"):
        resolve_runtime(RuntimeConfig(quantize_fp8=True), "cpu")
    monkeypatch.setattr(compiled, "native_fp8_supported", lambda device: True)  # a GPU with FP8 matmuls
    assert not resolve_runtime(None, "cuda").quantize_fp8  # off unless asked for, even there
    choice = resolve_runtime(RuntimeConfig(quantize_fp8=True), "cuda")
    assert choice.quantize_fp8 and choice.native_fp8
    with pytest.raises(ConfigError, match="native FP8 is turned off"):
        resolve_runtime(RuntimeConfig(quantize_fp8=True, native_fp8=False), "cuda")


def test_runtime_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="quantize_fp8 must be true or false"):
        RuntimeConfig(quantize_fp8=None)
    with pytest.raises(ConfigError, match="compile_mode"):
        RuntimeConfig(compile_mode="reduce-overhead")  # CUDA graphs: the shapes move every stage
    with pytest.raises(ConfigError, match="unknown field"):
        RuntimeConfig.from_dict({"compile": True})
    assert RuntimeConfig.from_dict(RuntimeConfig(compile_layers=False).to_dict()) == RuntimeConfig(compile_layers=False)


def _velocity(dit: MagiDiT, chunks: int, text_tokens: int, context_chunks: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(chunks * 10 + text_tokens)
    cfg = dit.config
    x = torch.randn(1, 16, 6 * chunks, 4, 4, generator=g)
    text = ChunkText.from_sequences([torch.randn(text_tokens + j, cfg.caption_channels, generator=g)
                                     for j in range(chunks)])
    layout = ChunkLayout.causal(context_chunks, chunks, 4 * 6, span=3)
    with torch.no_grad():
        return dit(x, torch.rand(1, chunks, generator=g), text, True, layout,
                   step_size=torch.full((1, chunks), 8.0)).velocity


def test_compiled_layers_give_the_same_output_across_window_shapes() -> None:
    # backend="eager": dynamo traces the dense parts exactly as inductor would receive them, without
    # generating code (minutes on a CPU); the graphs, guards and recompiles are the real ones.
    dit = randomize_(MagiDiT(tiny_dit_config(distilled=True)), seed=3).eval().float()
    shapes = [(2, 5, 0), (3, 4, 0), (4, 6, 0)]
    expected = [_velocity(dit, *s) for s in shapes]
    torch._dynamo.reset()
    compile_layers(dit, backend="eager")
    assert all(layer.compiled for layer in dit.layers)
    got = [_velocity(dit, *shapes[0]), _velocity(dit, *shapes[1])]
    graphs = compile_counts()["unique_graphs"]
    got += [_velocity(dit, *s) for s in shapes[2:]]
    for a, b in zip(got, expected):
        assert torch.equal(a, b)
    # Other chunk counts and text lengths reuse the dynamic graphs: nothing new is compiled.
    assert compile_counts()["unique_graphs"] == graphs
    uncompile_layers(dit)
    assert not any(layer.compiled for layer in dit.layers)
