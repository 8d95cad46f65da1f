"""Filling a module built on the meta device with checkpoint tensors, one tensor at a time.

Models are constructed under `torch.device("meta")` (no memory), then every parameter and persistent
buffer is replaced by its checkpoint tensor, read, cast to the dtype the caller chooses for that key and
placed on the target device, before the next one is read. So loading a model never needs more than its
final size plus one tensor. Key sets and shapes are compared before anything is read, and every
mismatch is reported at once in a single `CheckpointError`.

Sources can be a plain `{key: Tensor}` mapping, a `{key: callable}` mapping of lazy loaders (ideally
`LazyTensor`s, which carry their shape), or anything shaped like `CheckpointReader` (keys/shape/get).
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence, Union

import torch

from magi_engine.errors import CheckpointError

log = logging.getLogger(__name__)

#: How many names of each kind of mismatch an error message lists before summarising the rest.
MAX_LISTED = 10
CPU_ALIGNMENT = 64  # bytes: torch's CPU allocator aligns to this, and AVX-512 loads want it


@dataclass(frozen=True)
class LazyTensor:
    """A tensor that is only read when called, with its shape known up front (for the strict check)."""

    shape: tuple[int, ...]
    load: Callable[[], torch.Tensor]

    def __call__(self) -> torch.Tensor:
        return self.load()


TensorSource = Union[Mapping[str, torch.Tensor], Mapping[str, Callable[[], torch.Tensor]], object]


def dtype_policy(default: torch.dtype, float32_patterns: Iterable[str] = ()) -> Callable[[str], torch.dtype]:
    """A `dtype_for` that gives `default` to every key except those matching a glob in `float32_patterns`.

    Example (MAGI-1 keeps its embedders, output head, RoPE bands and some norms in float32):
    `dtype_policy(torch.bfloat16, ["x_embedder.*", "t_embedder.*", "*.self_attn_post_norm.*", ...])`.
    """
    patterns = tuple(float32_patterns)

    def dtype_for(key: str) -> torch.dtype:
        if any(fnmatch.fnmatchcase(key, p) for p in patterns):
            return torch.float32
        return default

    return dtype_for


def _shape_of(source: object, key: str, shapes: Mapping[str, Sequence[int]] | None) -> tuple[int, ...] | None:
    """The shape of `key` in the source without reading its data, or None when it cannot be known yet."""
    if shapes is not None and key in shapes:
        return tuple(shapes[key])
    if isinstance(source, Mapping):
        value = source[key]
        if isinstance(value, torch.Tensor):
            return tuple(value.shape)
        shape = getattr(value, "shape", None)
        return tuple(shape) if shape is not None else None
    return tuple(source.shape(key))  # a CheckpointReader-like object


def _source_keys(source: object) -> list[str]:
    return list(source.keys())


def _materialise(source: object, key: str) -> torch.Tensor:
    if isinstance(source, Mapping):
        value = source[key]
        return value if isinstance(value, torch.Tensor) else value()
    return source.get(key)


def _listing(title: str, items: list[str]) -> str:
    shown = "; ".join(items[:MAX_LISTED])
    more = f"; … and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return f"{len(items)} {title}: {shown}{more}"


def _fmt(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def check_keys_and_shapes(module: torch.nn.Module, source: TensorSource, *,
                          shapes: Mapping[str, Sequence[int]] | None = None, what: str = "the checkpoint") -> None:
    """Raise one CheckpointError listing missing keys, unexpected keys and shape mismatches (reads no data)."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict(keep_vars=True).items()}
    found = _source_keys(source)
    found_set = set(found)
    missing = [k for k in expected if k not in found_set]
    unexpected = [k for k in found if k not in expected]
    mismatched = []
    for key in found:
        if key in expected:
            shape = _shape_of(source, key, shapes)
            if shape is not None and shape != expected[key]:
                mismatched.append(f"{key} (model {_fmt(expected[key])} vs checkpoint {_fmt(shape)})")
    if not (missing or unexpected or mismatched):
        return
    parts = []
    if missing:
        parts.append(_listing("missing key(s)", missing))
    if unexpected:
        parts.append(_listing("unexpected key(s)", unexpected))
    if mismatched:
        parts.append(_listing("shape mismatch(es)", mismatched))
    raise CheckpointError(f"{what.capitalize()} does not fit the model ({'. '.join(parts)}). "
                          "Choose the checkpoint that matches the selected model size and variant.")


def load_into_module(module: torch.nn.Module, tensors: TensorSource, *, device: str | torch.device,
                     dtype_for: Callable[[str], torch.dtype] | None = None,
                     shapes: Mapping[str, Sequence[int]] | None = None,
                     what: str = "the checkpoint") -> torch.nn.Module:
    """Materialise every parameter and persistent buffer of `module` from `tensors` on `device`.

    `dtype_for(key)` chooses the dtype of each floating-point tensor (default: the dtype the module was
    built with); integer and bool tensors keep the checkpoint's dtype. Keys and shapes are checked first
    (`check_keys_and_shapes`); for lazy callables without a known shape the shape is checked when the
    tensor is read, before it is assigned. Tied parameters (one tensor under two names) stay tied.
    Returns the module; raises RuntimeError if a non-persistent buffer is still on the meta device
    (the module must compute those itself).
    """
    check_keys_and_shapes(module, tensors, shapes=shapes, what=what)
    device = torch.device(device)
    replaced: dict[int, torch.Tensor] = {}  # id(old tensor) → new one, so tied weights stay tied
    for key, old in module.state_dict(keep_vars=True).items():
        owner_name, _, attr = key.rpartition(".")
        owner = module.get_submodule(owner_name) if owner_name else module
        if id(old) in replaced:
            new = replaced[id(old)]
        else:
            value = _materialise(tensors, key)
            if tuple(value.shape) != tuple(old.shape):
                raise CheckpointError(f"{what.capitalize()} does not fit the model (shape mismatch: {key} "
                                      f"(model {_fmt(old.shape)} vs checkpoint {_fmt(value.shape)})). "
                                      "Choose the checkpoint that matches the selected model size and variant.")
            target = value.dtype
            if value.is_floating_point():
                target = dtype_for(key) if dtype_for is not None else (
                    old.dtype if old.is_floating_point() else value.dtype)
            new = value.to(device=device, dtype=target)
            if new.device.type == "cpu" and new.data_ptr() % CPU_ALIGNMENT:
                # A tensor read from a file can sit at any byte of its buffer; CPU kernels (MKL on AVX2)
                # then take other code paths and round differently than for the same weights built in
                # memory. A copy lands on the allocator's alignment.
                new = new.clone()
            del value  # the source copy (often a CPU read) goes before the next tensor is read
            replaced[id(old)] = new
        if isinstance(old, torch.nn.Parameter):
            param = new if isinstance(new, torch.nn.Parameter) else torch.nn.Parameter(new, requires_grad=old.requires_grad)
            replaced[id(old)] = param
            setattr(owner, attr, param)
        else:
            owner._buffers[attr] = new
    left = [n for n, t in (*module.named_parameters(), *module.named_buffers()) if t.is_meta]
    if left:
        raise RuntimeError(f"after loading, {len(left)} tensor(s) are still on the meta device: {left[:MAX_LISTED]} "
                           "(non-persistent buffers must be computed by the module after loading)")
    log.debug("loaded %d tensors into %s on %s", len(replaced), type(module).__name__, device)
    return module
