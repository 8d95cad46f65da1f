"""Stand-ins shared by the DiT's kernel tests."""

from __future__ import annotations

import pytest
import torch


class _EmulatedFa3:
    """Stands in for FlashAttention 3's compiled forward: an operator registered as flash_attn_3::fwd with the
    argument names, defaults and written `out` of its schema (hopper/flash_api.cpp), computing float attention of
    the dequantised operands into out and checking the descales against its (batch, key/value heads) contract."""

    SCHEMA = ("fwd(Tensor q, Tensor k, Tensor v, Tensor(a!)? out=None, Tensor? q_descale=None, "
              "Tensor? k_descale=None, Tensor? v_descale=None, float? softmax_scale=None, bool is_causal=False, "
              "int num_splits=0) -> Tensor(a!)")

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int]] = []

    def fwd(self, q, k, v, out, q_descale, k_descale, v_descale, softmax_scale, is_causal, num_splits):
        # the build's two kernels (benchmarks/fa3_build.sh): e4m3 in with descales, or bf16 in without; bf16 out
        assert q.dtype == k.dtype == v.dtype in (torch.float8_e4m3fn, torch.bfloat16) and out.dtype == torch.bfloat16
        assert not is_causal and num_splits == 1 and out.stride(-1) == 1
        descales = (q_descale, k_descale, v_descale)
        if q.dtype == torch.bfloat16:
            assert descales == (None, None, None)
            descales = [torch.ones(1, 1)] * 3
        for descale in descales:
            assert descale.shape in ((q.shape[0], k.shape[2]), (1, 1)) and descale.dtype == torch.float32
        self.calls.append((q.shape[1], k.shape[1], out.data_ptr()))
        repeat = q.shape[2] // k.shape[2]
        qf = (q.float() * descales[0][0, 0]).transpose(1, 2)
        kf = (k.float() * descales[1][0, 0]).repeat_interleave(repeat, 2).transpose(1, 2)
        vf = (v.float() * descales[2][0, 0]).repeat_interleave(repeat, 2).transpose(1, 2)
        out.copy_(torch.nn.functional.scaled_dot_product_attention(qf, kf, vf, scale=softmax_scale).transpose(1, 2))
        return out


@pytest.fixture
def emulated_fa3(monkeypatch):
    import sys
    import types

    emulated = _EmulatedFa3()
    library = torch.library.Library("flash_attn_3", "FRAGMENT")
    library.define(_EmulatedFa3.SCHEMA)
    library.impl("fwd", emulated.fwd, "CPU")
    # `import flash_attn_3._C` is what registers the operator in a real build
    monkeypatch.setitem(sys.modules, "flash_attn_3", types.ModuleType("flash_attn_3"))
    monkeypatch.setitem(sys.modules, "flash_attn_3._C", types.ModuleType("flash_attn_3._C"))
    yield emulated
    library._destroy()
