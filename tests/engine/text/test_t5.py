"""T5TextEncoder with a tiny random T5 built on the fly (d_model 32, 2 layers, word-level tokenizer)."""

import json
import socket

import numpy as np
import pytest
import torch

from magi_engine.errors import CheckpointError
from magi_engine.text import SpecialTokens, T5TextEncoder, TextEncoder
from tests.engine.factories import save_tiny_t5

D_MODEL = 32


@pytest.fixture(scope="module")
def t5_folder(tmp_path_factory):
    return save_tiny_t5(tmp_path_factory.mktemp("t5"))


@pytest.fixture(scope="module")
def special_tokens(tmp_path_factory):
    path = tmp_path_factory.mktemp("tokens") / "special_tokens.npz"
    rng = np.random.default_rng(1)
    np.savez(path, caption_token=rng.normal(size=(1, D_MODEL)), logo_token=rng.normal(size=(1, D_MODEL)),
             other_tokens=rng.normal(size=(100, D_MODEL)))
    return SpecialTokens.load(path)


@pytest.fixture(scope="module")
def encoder(t5_folder):
    return T5TextEncoder.from_folder(t5_folder)


def count_forwards(encoder):
    calls = []
    encoder.model.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_protocol_and_sizes(encoder):
    assert isinstance(encoder, TextEncoder)
    assert encoder.embed_dim == D_MODEL
    assert encoder.max_tokens == 800


def test_only_valid_tokens(encoder):
    features = encoder.encode("a red circle rolls")
    assert features.shape == (5, D_MODEL)  # 4 words + </s>
    assert features.dtype == torch.float32 and features.device.type == "cpu"
    ids = torch.tensor([[3, 4, 7, 9, 1]])  # the same tokens, unpadded
    with torch.no_grad():
        direct = encoder.model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]
    torch.testing.assert_close(features, direct, rtol=1e-5, atol=1e-5)


def test_no_padding_option_gives_the_same_rows(t5_folder, encoder):
    fast = T5TextEncoder.from_folder(t5_folder, pad_to_max_length=False)
    torch.testing.assert_close(fast.encode("blue square slides right"), encoder.encode("blue square slides right"),
                               rtol=1e-5, atol=1e-5)


def test_prompts_are_cleaned_twice(encoder):
    assert encoder.prepare('-"A <b>RED</b> circle"') == "a red circle"
    assert torch.equal(encoder.encode('-"A <b>RED</b> circle"'), encoder.encode("a red circle"))


def test_different_prompts_differ_same_prompt_repeats(encoder):
    a = encoder.encode("a red circle rolls to the left")
    b = encoder.encode("a blue square slides to the right")
    assert a.shape == b.shape and not torch.allclose(a, b)
    assert torch.equal(a, encoder.encode("a red circle rolls to the left"))


def test_empty_and_chinese_prompts_keep_one_token(encoder):
    assert encoder.encode("").shape == (1, D_MODEL)  # </s> alone
    assert torch.equal(encoder.encode("一只猫"), encoder.encode(""))


def test_special_tokens_in_front(t5_folder, special_tokens, encoder):
    with_tokens = T5TextEncoder.from_folder(t5_folder, special_tokens=special_tokens)
    plain = encoder.encode("a red circle")
    for chunks_remaining in (1, 3, 12):
        out = with_tokens.encode("a red circle", chunks_remaining)
        assert out.shape == (plain.shape[0] + 2, D_MODEL)
        assert torch.equal(out[0], special_tokens.duration(chunks_remaining)[0])
        assert torch.equal(out[1], special_tokens.token("HQ")[0])
        torch.testing.assert_close(out[2:], plain)


def test_long_prompt_is_cut_to_800(t5_folder, special_tokens):
    with_tokens = T5TextEncoder.from_folder(t5_folder, special_tokens=special_tokens)
    out = with_tokens.encode(" ".join(["grass"] * 1000))
    assert out.shape == (800, D_MODEL)


def test_cache_runs_t5_once_per_prompt(t5_folder, special_tokens):
    encoder = T5TextEncoder.from_folder(t5_folder, special_tokens=special_tokens, cache_size=2)
    calls = count_forwards(encoder)
    first = encoder.encode("a red circle", 3)
    first[:] = 0  # callers own what they get; the cache must not change
    for chunks_remaining in (3, 2, 1):
        encoder.encode("A RED CIRCLE", chunks_remaining)
    assert len(calls) == 1
    assert encoder.encode("a red circle", 3).abs().sum() > 0
    encoder.encode("blue square")
    encoder.encode("green grass")  # evicts "a red circle" (cache_size 2)
    encoder.encode("a red circle")
    assert len(calls) == 4


def test_special_token_width_must_match(t5_folder, tmp_path):
    path = tmp_path / "special_tokens.npz"
    np.savez(path, caption_token=np.zeros((1, 16)), logo_token=np.zeros((1, 16)), other_tokens=np.zeros((100, 16)))
    with pytest.raises(CheckpointError, match="16 wide"):
        T5TextEncoder.from_folder(t5_folder, special_tokens=SpecialTokens.load(path))


def test_offline_and_no_network(t5_folder, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    encoder = T5TextEncoder.from_folder(t5_folder)
    assert encoder.encode("a red circle").shape == (4, D_MODEL)


def copy_without(src, dst, *skip):
    dst.mkdir()
    for file in src.iterdir():
        if file.name not in skip:
            (dst / file.name).write_bytes(file.read_bytes())
    return dst


def test_pickle_only_folder_is_refused(t5_folder, tmp_path):
    folder = copy_without(t5_folder, tmp_path / "pickled", "model.safetensors")
    torch.save({"shared.weight": torch.zeros(2, 2)}, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="pickled") as error:
        T5TextEncoder.from_folder(folder)
    assert "pytorch_model.bin" in str(error.value) and "safe_serialization=True" in str(error.value)


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        T5TextEncoder.from_folder(tmp_path / "nowhere")


@pytest.mark.parametrize("missing, message", [
    ("config.json", "config.json"),
    ("model.safetensors", "model.safetensors"),
    ("tokenizer.json", "tokenizer"),
])
def test_incomplete_folder_names_what_is_missing(t5_folder, tmp_path, missing, message):
    folder = copy_without(t5_folder, tmp_path / "partial", missing)
    if missing == "tokenizer.json":
        (folder / "tokenizer_config.json").unlink()
    with pytest.raises(CheckpointError, match=message):
        T5TextEncoder.from_folder(folder)


def test_missing_shard_is_named(t5_folder, tmp_path):
    folder = copy_without(t5_folder, tmp_path / "sharded", "model.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {"shared.weight": "model-00001-of-00002.safetensors"}}))
    with pytest.raises(CheckpointError, match="model-00001-of-00002.safetensors"):
        T5TextEncoder.from_folder(folder)


def test_corrupt_weights_become_checkpoint_errors(t5_folder, tmp_path):
    folder = copy_without(t5_folder, tmp_path / "corrupt", "model.safetensors")
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        T5TextEncoder.from_folder(folder)


def test_spiece_only_folder_without_protobuf_says_what_to_do(t5_folder, tmp_path, monkeypatch):
    import magi_engine.text.t5 as t5

    folder = copy_without(t5_folder, tmp_path / "spiece", "tokenizer.json")
    (folder / "spiece.model").write_bytes(b"\x00")  # MAGI-1's folder ships spiece.model only
    monkeypatch.setattr(t5, "_protobuf_available", lambda: False)
    with pytest.raises(CheckpointError, match="protobuf"):
        T5TextEncoder.from_folder(folder)


def test_non_finite_features_are_reported(t5_folder):
    from magi_engine.errors import ConfigError

    def overflow(module, args, output):  # what float16 T5 v1.1 can do
        output.last_hidden_state.fill_(float("nan"))

    encoder = T5TextEncoder.from_folder(t5_folder)
    encoder.model.register_forward_hook(overflow)
    with pytest.raises(ConfigError, match="non-finite"):
        encoder.encode("a red circle")


def test_an_offloaded_encoder_gives_the_same_rows_and_visits_its_device_once_per_resident_block(t5_folder, encoder):
    offloaded = T5TextEncoder.from_folder(t5_folder, offload_to="cpu")
    assert offloaded.offloaded and not encoder.offloaded
    host = {name: t.data_ptr() for name, t in offloaded._weights()}
    with offloaded.resident():
        a = offloaded.encode("a red circle rolls")
        with offloaded.resident():  # nested: no second copy
            b = offloaded.encode("blue square slides right")
    assert offloaded.uploads == 1
    torch.testing.assert_close(a, encoder.encode("a red circle rolls"), rtol=0, atol=0)
    torch.testing.assert_close(b, encoder.encode("blue square slides right"), rtol=0, atol=0)
    # Outside the block the module holds the host copies again.
    assert {name: t.data_ptr() for name, t in offloaded._weights()} == host
    offloaded.encode("green circle over grass")  # one prompt alone: one visit of its own
    assert offloaded.uploads == 2
    assert offloaded.is_cached("green circle over grass") and not offloaded.is_cached("red square")
    offloaded.encode("green circle over grass")  # cached: no visit
    assert offloaded.uploads == 2
