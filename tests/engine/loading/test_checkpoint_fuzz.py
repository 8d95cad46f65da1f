"""Fuzzing the checkpoint reader: mutated safetensors files, headers of any JSON, index files and folder layouts.

Whatever is on disk, opening a `CheckpointReader` and reading every tensor it lists either works or
raises CheckpointError; any other exception (a RecursionError from deep JSON, a KeyError, a
SafetensorError, a ValueError from a NUL in a shard name, ...) fails.
"""

from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save

from magi_engine.errors import CheckpointError
from magi_engine.loading.safetensors_io import CheckpointReader, refuse_pickled_only

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

VALID = save({"a.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4),
              "b.bias": torch.ones(5, dtype=torch.bfloat16), "c.steps": torch.arange(3)})

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
dtype_names = st.sampled_from(["F32", "F16", "BF16", "I64", "U8", "BOOL", "F8_E4M3", "F4", "Q8", "", "f32"])
tensor_entries = st.fixed_dictionaries({
    "dtype": dtype_names | json_values,
    "shape": st.lists(st.integers(-3, 2**40), max_size=4) | json_values,
    "data_offsets": st.lists(st.integers(-10, 2**40), min_size=2, max_size=2) | json_values,
})


def _read_everything(path: Path) -> None:
    try:
        with CheckpointReader(path) as reader:
            for key in reader.keys():
                reader.shape(key)
                reader.dtype(key)
                reader.get(key)
            reader.nbytes()
    except CheckpointError as error:
        assert str(error).strip()


def _in_a_folder(files: dict[str, bytes], open_path: str = "") -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, data in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        _read_everything(root / open_path)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=6),
       st.integers(0, len(VALID)))
def test_mutated_safetensors_files(edits, keep):
    data = bytearray(VALID)
    for position, value in edits:
        data[position] = value
    _in_a_folder({"model.safetensors": bytes(data[:keep])})


@FUZZ
@given(st.dictionaries(st.text(max_size=10), tensor_entries | json_values, max_size=4), st.binary(max_size=64))
def test_headers_of_any_content(header, payload):
    raw = json.dumps(header).encode()
    _in_a_folder({"model.safetensors": struct.pack("<Q", len(raw)) + raw + payload})


@FUZZ
@given(st.integers(0, 2**64 - 1), st.binary(max_size=40))
def test_header_lengths_that_lie(length, rest):
    _in_a_folder({"model.safetensors": struct.pack("<Q", length) + rest})


def test_deeply_nested_json_is_a_checkpoint_error():
    deep = b"[" * 100_000 + b"]" * 100_000
    _in_a_folder({"model.safetensors": struct.pack("<Q", len(deep)) + deep})
    _in_a_folder({"model.safetensors.index.json": b'{"weight_map": ' + deep + b"}", "x.safetensors": VALID})


shard_names = st.sampled_from(["model-1.safetensors", "../outside.safetensors", "/etc/passwd", "", ".", "a\x00b",
                               "sub/model-2.safetensors", "missing.safetensors", "model.bin", "x" * 300])


@FUZZ
@given(st.dictionaries(st.sampled_from(["a.weight", "b.bias", "c.steps", "zz"]), shard_names, max_size=4)
       | json_values, json_values)
def test_index_files_of_any_content(weight_map, metadata):
    index = json.dumps({"metadata": metadata, "weight_map": weight_map}).encode()
    _in_a_folder({"model.safetensors.index.json": index, "model-1.safetensors": VALID,
                  "sub/model-2.safetensors": VALID[:40]})


layout_names = st.sampled_from(["model.safetensors", "diffusion_pytorch_model.safetensors", "other.safetensors",
                                "model.safetensors.index.json", "x.safetensors.index.json", "model.safetensors.zst",
                                "pytorch_model.bin", "weights.pt", "sub/model.safetensors", "README.md"])
contents = st.sampled_from([VALID, b"", b"{}", b'{"weight_map": {"a.weight": "model.safetensors"}}', VALID[:30],
                            b"\x80\x04pickle"])


@FUZZ
@given(st.dictionaries(layout_names, contents, max_size=5), st.sampled_from(["", "model.safetensors",
                                                                              "pytorch_model.bin", "sub"]))
def test_folder_layouts(files, open_path):
    _in_a_folder(files, open_path)


@FUZZ
@given(st.dictionaries(layout_names, contents, max_size=5))
def test_pickle_refusal_only_ever_says_pickles(files):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, data in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        pickled = any(name.endswith((".bin", ".pt")) for name in files)
        safe = any(name.endswith(".safetensors") for name in files)
        try:
            refuse_pickled_only(root)
        except CheckpointError as error:
            assert pickled and not safe and "pickled weights are refused" in str(error)
        else:
            assert safe or not pickled


def test_a_model_description_nested_too_deep_is_a_checkpoint_error(tmp_path):
    from magi_engine.model_files import read_manifest

    (tmp_path / "model.json").write_text('{"format": "magi-studio-model", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(CheckpointError, match="cannot be read as a model description"):
        read_manifest(tmp_path)
    (tmp_path / "model.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="not a MAGI Studio model description"):
        read_manifest(tmp_path)
