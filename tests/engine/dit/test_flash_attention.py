"""FlashAttention 4 in bf16: where it is chosen (the gate), the spans each chunk gets, and SDPA after a refusal.

The kernel itself runs only on a Hopper GPU with flash-attn-4 (benchmarks/gpu_attention.py measures it there);
here SDPA in the kernel's layout stands in for it, so the bookkeeping around it is what is tested: the spans,
the text each chunk's cross-attention sees, writing in place into the layer's attention buffer.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

import magi_engine.dit.compiled as compiled
import magi_engine.dit.flash_attention as flash
from magi_engine.config import RuntimeConfig
from magi_engine.dit.attention import ChunkLayout, block_causal_attention, chunk_cross_attention
from magi_engine.dit.compiled import resolve_runtime, use_flash_attention, use_fp8_attention
from magi_engine.dit.fp8_linear import use_fp8_linears
from magi_engine.dit.model import MagiDiT
from magi_engine.errors import ConfigError
from magi_engine.variants import tiny_dit_config


def stand_in(calls: list):
    """The kernel's contract ([N, S, H, D] in, GQA, written into out), computed by SDPA; records each call's
    query and key lengths."""
    def write(q, k, v, out):
        calls.append((q.shape[1], k.shape[1]))
        return out.copy_(F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                        enable_gqa=True).transpose(1, 2))
    return write


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


def test_it_writes_into_the_buffer_it_is_given() -> None:
    layout = ChunkLayout.causal(0, 2, 3)
    q, k, v = qkv(layout)
    buffer = torch.zeros(1, q.shape[1], 2, *q.shape[2:])  # the layer's [self | cross] buffer
    got = flash.FlashBlockCausalAttention(stand_in([]))(q, k, v, layout, buffer[:, :, 0])
    assert got.data_ptr() == buffer.data_ptr()
    torch.testing.assert_close(buffer[:, :, 0], block_causal_attention(q, k, v, layout))
    assert not buffer[:, :, 1].any()


def test_cross_attention_sees_each_chunks_valid_text_only() -> None:
    g = torch.Generator().manual_seed(1)
    t, chunks, length = 4, 3, 5
    q = torch.randn(1, chunks * t, 4, 8, generator=g)
    k_text, v_text = (torch.randn(1, chunks, length, 2, 8, generator=g) for _ in range(2))
    text_mask = torch.arange(length)[None, None, :] < torch.tensor([5, 2, 3])[None, :, None]
    calls = []
    out = torch.empty_like(q)
    flash.FlashBlockCausalAttention(stand_in(calls)).cross_attention(q, k_text, v_text, text_mask, t, out)
    assert calls == [(4, 5), (4, 2), (4, 3)]
    torch.testing.assert_close(out, chunk_cross_attention(q, k_text, v_text, text_mask, t))


def test_padded_text_of_several_items_goes_to_sdpa() -> None:
    g = torch.Generator().manual_seed(2)
    q = torch.randn(2, 8, 4, 8, generator=g)
    k_text, v_text = (torch.randn(2, 2, 5, 2, 8, generator=g) for _ in range(2))
    text_mask = torch.arange(5)[None, None, :] < torch.tensor([[5, 2], [3, 4]])[:, :, None]
    calls = []
    out = torch.empty_like(q)
    flash.FlashBlockCausalAttention(stand_in(calls)).cross_attention(q, k_text, v_text, text_mask, 4, out)
    assert calls == []
    torch.testing.assert_close(out, chunk_cross_attention(q, k_text, v_text, text_mask, 4))


def test_a_refusal_falls_back_to_sdpa_for_good() -> None:
    layout = ChunkLayout.causal(0, 3, 4)
    q, k, v = qkv(layout)
    calls = []

    def refusing(q, k, v, out):
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
    with pytest.raises(ConfigError, match="FlashAttention"):
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
    use_flash_attention(dit, True, write=stand_in([]))
    kinds = [type(layer.attn.self_attention).__name__ for layer in dit.layers]
    assert kinds == ["FlashBlockCausalAttention", "Fp8BlockCausalAttention", "Fp8BlockCausalAttention",
                     "FlashBlockCausalAttention"]
    use_flash_attention(dit, False)
    assert [layer.attn.self_attention is None for layer in dit.layers] == [True, False, False, True]



def test_flashattention_3_writes_where_flash_attn_4_is_not_installed(emulated_fa3, monkeypatch) -> None:
    import sys
    import types

    monkeypatch.setitem(sys.modules, "flash_attn.cute", None)  # flash-attn-4 not installed: its import fails
    assert flash.flash_attention_package() == "fa3" and flash.flash_attention_importable()
    layout = ChunkLayout(2, 5, 6, (1, 1, 1, 1, 6), 1)
    q, k, v = (x.to(torch.bfloat16) for x in qkv(layout))
    buffer = torch.zeros(1, q.shape[1], 2, *q.shape[2:], dtype=torch.bfloat16)  # the layer's [self | cross] buffer
    attention = flash.FlashBlockCausalAttention()
    got = attention(q, k, v, layout, buffer[:, :, 0])
    assert not attention.failed and got.data_ptr() == buffer.data_ptr()
    assert [c[:2] for c in emulated_fa3.calls] == [(6, 12), (6, 18), (6, 24), (6, 30), (6, 6)]
    torch.testing.assert_close(buffer[:, :, 0], block_causal_attention(q, k, v, layout), atol=2e-2, rtol=2e-2)
    k_text, v_text = (torch.randn(1, 5, 4, 2, 8).to(torch.bfloat16) for _ in "kv")
    text_mask = torch.arange(4)[None, None, :] < torch.tensor([4, 2, 3, 1, 4])[None, :, None]
    attention.cross_attention(q, k_text, v_text, text_mask, 6, buffer[:, :, 1])
    assert [c[1] for c in emulated_fa3.calls[5:]] == [4, 2, 3, 1, 4]  # each chunk's own text, padding dropped
    torch.testing.assert_close(buffer[:, :, 1], chunk_cross_attention(q, k_text, v_text, text_mask, 6),
                               atol=2e-2, rtol=2e-2)
    cute = types.ModuleType("flash_attn.cute")
    cute.flash_attn_func = lambda *a: pytest.fail("not called here")
    monkeypatch.setitem(sys.modules, "flash_attn.cute", cute)
    assert flash.flash_attention_package() == "fa4"  # both installed: FlashAttention 4, measured end to end


def test_neither_package_leaves_sdpa(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "flash_attn.cute", None)
    monkeypatch.setitem(sys.modules, "flash_attn_3._C", None)
    assert flash.flash_attention_package() is None and not flash.flash_attention_importable()
