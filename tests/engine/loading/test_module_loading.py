"""load_into_module: strict checks before any read, one tensor at a time, nothing left on meta."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from magi_engine.errors import CheckpointError
from magi_engine.loading.module_loading import LazyTensor, dtype_policy, load_into_module
from magi_engine.loading.safetensors_io import CheckpointReader, save_sharded


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(8, 4, bias=False)
        self.blocks = nn.ModuleList([nn.Sequential(nn.LayerNorm(4), nn.Linear(4, 4)) for _ in range(2)])
        self.head = nn.Linear(4, 8)
        self.register_buffer("positions", torch.arange(5))


def _meta_tiny() -> Tiny:
    with torch.device("meta"):
        return Tiny()


def _tensors() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    reference = Tiny()
    return {k: v.detach().clone() for k, v in reference.state_dict().items()}


class Counting(dict):
    """{key: LazyTensor} that records which tensors were read."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.reads: list[str] = []
        super().__init__({k: LazyTensor(tuple(v.shape), lambda k=k, v=v: self._read(k, v)) for k, v in tensors.items()})

    def _read(self, key: str, value: torch.Tensor) -> torch.Tensor:
        self.reads.append(key)
        return value


def _no_meta(module: nn.Module) -> bool:
    return not any(t.is_meta for t in (*module.parameters(), *module.buffers()))


def test_meta_module_is_fully_loaded_with_per_key_dtypes() -> None:
    tensors = _tensors()
    module = _meta_tiny()
    dtype_for = dtype_policy(torch.bfloat16, ["embed.*", "blocks.*.0.*"])
    load_into_module(module, tensors, device="cpu", dtype_for=dtype_for)
    assert _no_meta(module)
    state = module.state_dict()
    for key, value in tensors.items():
        loaded = state[key]
        if key == "positions":
            assert loaded.dtype == torch.int64 and torch.equal(loaded, value)  # integers are never cast
        elif key.startswith("embed.") or re.fullmatch(r"blocks\.\d+\.0\..*", key):
            assert loaded.dtype == torch.float32 and torch.equal(loaded, value), key
        else:
            assert loaded.dtype == torch.bfloat16 and torch.equal(loaded, value.bfloat16()), key
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in module.parameters())
    x = torch.randn(2, 8)
    assert torch.allclose(module.embed(x), x @ tensors["embed.weight"].T)  # the loaded module computes


def test_default_dtype_is_the_modules_own() -> None:
    with torch.device("meta"):
        module = Tiny().to(torch.float16)
    load_into_module(module, _tensors(), device="cpu")
    assert module.head.weight.dtype == torch.float16 and module.positions.dtype == torch.int64


def test_each_tensor_is_read_exactly_once() -> None:
    source = Counting(_tensors())
    load_into_module(_meta_tiny(), source, device="cpu")
    assert sorted(source.reads) == sorted(source)


def test_mismatches_reported_together_before_any_read() -> None:
    tensors = _tensors()
    tensors["head.weight"] = torch.zeros(8, 5)  # model expects [8, 4]
    del tensors["blocks.1.1.bias"]
    tensors["blocks.2.1.weight"] = torch.zeros(4, 4)
    source = Counting(tensors)
    with pytest.raises(CheckpointError) as info:
        load_into_module(_meta_tiny(), source, device="cpu")
    message = str(info.value)
    assert "1 missing key(s): blocks.1.1.bias" in message
    assert "1 unexpected key(s): blocks.2.1.weight" in message
    assert "head.weight (model [8, 4] vs checkpoint [8, 5])" in message
    assert source.reads == []  # the strict check came first


def test_long_listings_are_truncated_with_counts() -> None:
    class Wide(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2, bias=False) for _ in range(15)])

    with torch.device("meta"):
        module = Wide()
    with pytest.raises(CheckpointError) as info:
        load_into_module(module, {}, device="cpu")
    message = str(info.value)
    assert "15 missing key(s)" in message and "and 5 more" in message
    assert "layers.9.weight" in message and "layers.10.weight" not in message


def test_shape_of_plain_callables_checked_when_read() -> None:
    tensors = _tensors()
    source = {k: (lambda v=v: v) for k, v in tensors.items()}
    source["head.bias"] = lambda: torch.zeros(9)
    module = _meta_tiny()
    with pytest.raises(CheckpointError, match=r"head.bias \(model \[8\] vs checkpoint \[9\]\)"):
        load_into_module(module, source, device="cpu")


def test_load_from_reader_reads_each_tensor_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tensors = _tensors()
    save_sharded(tensors, tmp_path, max_shard_bytes=64)
    reads: list[str] = []
    original = CheckpointReader._read_tensor
    monkeypatch.setattr(CheckpointReader, "_read_tensor", lambda self, f, k: reads.append(k) or original(self, f, k))
    with CheckpointReader(tmp_path) as reader:
        module = load_into_module(_meta_tiny(), reader, device="cpu", dtype_for=lambda key: torch.float32)
    assert sorted(reads) == sorted(tensors)
    assert _no_meta(module)
    assert all(torch.equal(module.state_dict()[k], v) for k, v in tensors.items())


def test_strict_failure_with_reader_reads_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tensors = _tensors()
    tensors["extra"] = torch.zeros(1)
    save_sharded(tensors, tmp_path)
    reads: list[str] = []
    monkeypatch.setattr(CheckpointReader, "_read_tensor", lambda self, f, k: reads.append(k))
    with CheckpointReader(tmp_path) as reader, pytest.raises(CheckpointError, match="unexpected key.*extra"):
        load_into_module(_meta_tiny(), reader, device="cpu")
    assert reads == []


def test_tied_weights_stay_tied() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(3, 3, bias=False)
            self.b = nn.Linear(3, 3, bias=False)
            self.b.weight = self.a.weight

    with torch.device("meta"):
        module = Tied()
    weight = torch.randn(3, 3)
    load_into_module(module, {"a.weight": weight, "b.weight": weight}, device="cpu")
    assert module.a.weight is module.b.weight and torch.equal(module.a.weight, weight)


def test_non_persistent_meta_buffer_is_reported() -> None:
    class WithCache(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.register_buffer("table", torch.zeros(4), persistent=False)

    with torch.device("meta"):
        module = WithCache()
    with pytest.raises(RuntimeError, match="table"):
        load_into_module(module, {"lin.weight": torch.zeros(2, 2), "lin.bias": torch.zeros(2)}, device="cpu")


def test_cpu_tensors_read_at_odd_offsets_are_loaded_aligned() -> None:
    """A tensor read at an odd byte of its file's buffer is copied to an aligned one: MKL on AVX2 rounds
    differently for misaligned weights, and a checkpoint's model must compute exactly as the same weights
    built in memory (tests/engine/test_magi_checkpoint.py's sharded load did not on an AMD EPYC host)."""
    tensors = _tensors()
    buffer = torch.zeros(sum(v.numel() for v in tensors.values()) + 1)
    unaligned, at = {}, 1  # one float in: every view starts 4 bytes past a 64-byte boundary or worse
    for key, value in tensors.items():
        if value.is_floating_point():
            view = buffer[at:at + value.numel()].view(value.shape)
            view.copy_(value)
            unaligned[key], at = view, at + value.numel()
        else:
            unaligned[key] = value
    assert any(v.data_ptr() % 64 for v in unaligned.values())
    module = load_into_module(_meta_tiny(), unaligned, device="cpu")
    for key, value in module.state_dict().items():
        assert value.data_ptr() % 64 == 0, key
        assert torch.equal(value, tensors[key])
