"""FlashAttention 4 in bf16: where it is chosen (the gate), the spans each chunk gets, and SDPA after a refusal.

The kernel itself runs only on a Hopper GPU with flash-attn-4 (benchmarks/gpu_attention.py measures it there);
here SDPA in flash_attn_func's layout stands in for it, so the bookkeeping around it is what is tested.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

import magi_engine.dit.compiled as compiled
import magi_engine.dit.flash_attention as flash
from magi_engine.config import RuntimeConfig
from magi_engine.dit.attention import ChunkLayout, block_causal_attention
from magi_engine.dit.compiled import resolve_runtime, use_flash_attention, use_fp8_attention
from magi_engine.dit.fp8_linear import use_fp8_linears
from magi_engine.dit.model import MagiDiT
from magi_engine.errors import ConfigError
from magi_engine.variants import tiny_dit_config


def stand_in(calls: list):
    """flash_attn_func's contract ([N, S, H, D] in and out, GQA), computed by SDPA; records each call's spans."""
    def attend(q, k, v):
        calls.append((q.shape[1], k.shape[1]))
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                             enable_gqa=True).transpose(1, 2)
        return out, torch.zeros(1)  # (out, lse), as the package returns with return_lse
    return attend


def qkv(layout: ChunkLayout, heads: int = 4, kv_heads: int = 2, dh: int = 8):
    g = torch.Generator().manual_seed(0)
    s = layout.num_chunks * layout.tokens_per_chunk
    total = (layout.context_chunks + layout.num_chunks) * layout.tokens_per_chunk
    return (torch.randn(1, s, heads, dh, generator=g), torch.randn(1, total, kv_heads, dh, generator=g),
            torch.randn(1, total, kv_heads, dh, generator=g))


def test_each_chunk_attends_its_span_and_matches_sdpa() -> None:
    layout = ChunkLayout(2, 5, 6, (1, 1, 1, 1, 6), 1)  # a steady window-4 step: spans 2, 3, 4, 5 and 1 chunks
    q, k, v = qkv(layout)
    calls = []
    got = flash.FlashBlockCausalAttention(stand_in(calls))(q, k, v, layout)
    assert calls == [(6, 12), (6, 18), (6, 24), (6, 30), (6, 6)]
    torch.testing.assert_close(got, block_causal_attention(q, k, v, layout))


def test_a_refusal_falls_back_to_sdpa_for_good() -> None:
    layout = ChunkLayout.causal(0, 3, 4)
    q, k, v = qkv(layout)
    calls = []

    def refusing(q, k, v):
        calls.append(1)
        raise RuntimeError("unsupported geometry")
    attention = flash.FlashBlockCausalAttention(refusing)
    assert torch.equal(attention(q, k, v, layout), block_causal_attention(q, k, v, layout))
    assert attention.failed and len(calls) == 1
    attention(q, k, v, layout)
    assert len(calls) == 1  # not asked again


def test_runs_only_on_hopper_with_the_package(monkeypatch) -> None:
    assert not flash.flash_attention_supported("cpu")
    assert resolve_runtime(None, "cpu").flash_attention is False
    with pytest.raises(ConfigError, match="FlashAttention 4"):
        resolve_runtime(RuntimeConfig(flash_attention=True), "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(flash, "flash_attention_importable", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    assert not flash.flash_attention_supported("cuda")  # an A100: not measured there
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    assert flash.flash_attention_supported("cuda")
    monkeypatch.setattr(compiled, "native_fp8_supported", lambda device: True)
    monkeypatch.setattr(compiled, "FLASH_ATTENTION_BY_DEFAULT", True)
    assert resolve_runtime(None, "cuda").flash_attention is True
    assert resolve_runtime(RuntimeConfig(flash_attention=False), "cuda").flash_attention is False  # the switch
    monkeypatch.setattr(flash, "flash_attention_importable", lambda: False)
    assert resolve_runtime(None, "cuda").flash_attention is False  # no package: SDPA, said by nothing


def test_it_takes_the_layers_fp8_attention_leaves() -> None:
    cfg = dataclasses.replace(tiny_dit_config(distilled=True), num_layers=4)
    with torch.device("meta"):
        dit = MagiDiT(cfg)
    use_fp8_linears(dit, range(1, 3))
    use_fp8_attention(dit, "triton", compiled=False)
    use_flash_attention(dit, True, attend=stand_in([]))
    kinds = [type(layer.attn.self_attention).__name__ for layer in dit.layers]
    assert kinds == ["FlashBlockCausalAttention", "Fp8BlockCausalAttention", "Fp8BlockCausalAttention",
                     "FlashBlockCausalAttention"]
    use_flash_attention(dit, False)
    assert [layer.attn.self_attention is None for layer in dit.layers] == [True, False, False, True]

