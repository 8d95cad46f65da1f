"""SpecialTokens: loading MAGI-1's special_tokens.npz without pickle, order, duration and truncation."""

import numpy as np
import pytest
import torch

from magi_engine.errors import CheckpointError, ConfigError
from magi_engine.text.special_tokens import SpecialTokens, find_special_tokens

C = 8  # channel width; MAGI-1's file has 4096


def make_npz(path, width=C, seed=0, **overrides):
    rng = np.random.default_rng(seed)
    arrays = {
        "caption_token": rng.normal(size=(1, width)) * 8,  # float64, norm ~ 8 as in MAGI-1's file
        "logo_token": rng.normal(size=(1, width)) * 8,
        "other_tokens": rng.normal(size=(100, width)) * 8,
    }
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return arrays


@pytest.fixture
def npz(tmp_path):
    path = tmp_path / "special_tokens.npz"
    return path, make_npz(path)


def rounded(array):
    return torch.from_numpy(array.astype(np.float16)).float()


def test_order_is_duration_then_hq_then_text(npz):
    path, arrays = npz
    tokens = SpecialTokens.load(path)
    text = torch.randn(5, C)
    for chunks_remaining, k in [(1, 1), (3, 3), (8, 8), (20, 8)]:
        out = tokens.prepend(text, chunks_remaining)
        assert out.shape == (7, C)
        assert torch.equal(out[0], rounded(arrays["other_tokens"][7 + k - 1]))  # DURATION_k
        assert torch.equal(out[1], rounded(arrays["other_tokens"][1]))  # HQ
        assert torch.equal(out[2:], text)


def test_values_are_rounded_through_float16(npz):
    path, arrays = npz
    tokens = SpecialTokens.load(path)
    hq = tokens.token("HQ")[0]
    assert hq.dtype == torch.float32
    assert torch.equal(hq, torch.tensor(arrays["other_tokens"][1].astype(np.float16), dtype=torch.float32))
    assert not torch.equal(hq, torch.tensor(arrays["other_tokens"][1], dtype=torch.float32))


def test_truncates_to_max_length(npz):
    path, _ = npz
    tokens = SpecialTokens.load(path)
    text = torch.randn(800, C)  # a prompt that filled the tokenizer's 800 slots
    out = tokens.prepend(text, 2)
    assert out.shape == (800, C)
    assert torch.equal(out[2:], text[:798])  # the tail goes, as in MAGI-1
    short = SpecialTokens.load(path, max_length=4).prepend(torch.randn(10, C), 1)
    assert short.shape == (4, C)


def test_enabled_tokens_follow_the_official_order_whatever_the_argument_order(npz):
    path, arrays = npz
    tokens = SpecialTokens.load(path, enabled=("DURATION", "TWO_D_ANIME", "HQ", "STATIC_FIRST_FRAMES"))
    assert tokens.enabled == ("STATIC_FIRST_FRAMES", "HQ", "TWO_D_ANIME", "DURATION")
    prefix = tokens.prefix(2)
    rows = arrays["other_tokens"]
    expected = [rows[8], rows[16], rows[1], rows[2]]  # DURATION_2, TWO_D_ANIME, HQ, STATIC
    assert torch.equal(prefix, torch.stack([rounded(r) for r in expected]))


def test_nothing_enabled_leaves_the_text_alone(npz):
    path, _ = npz
    text = torch.randn(3, C)
    assert torch.equal(SpecialTokens.load(path, enabled=()).prepend(text, 5), text)


def test_negative_prefix_order(npz):
    path, arrays = npz
    tokens = SpecialTokens.load(path)
    expected = [arrays["other_tokens"][4], arrays["other_tokens"][0], arrays["logo_token"][0],
                arrays["caption_token"][0]]  # BORDERNESS, TRANS, LOGO, CAPTION
    assert torch.equal(tokens.negative_prefix(), torch.stack([rounded(r) for r in expected]))


def test_prepend_keeps_the_feature_dtype(npz):
    path, _ = npz
    out = SpecialTokens.load(path).prepend(torch.randn(2, C, dtype=torch.bfloat16), 1)
    assert out.dtype == torch.bfloat16


def test_bad_arguments(npz):
    path, _ = npz
    tokens = SpecialTokens.load(path)
    with pytest.raises(ConfigError, match="chunks_remaining"):
        tokens.prepend(torch.randn(2, C), 0)
    with pytest.raises(ConfigError, match="width"):
        tokens.prepend(torch.randn(2, C + 1), 1)
    with pytest.raises(ConfigError, match="unknown"):
        SpecialTokens.load(path, enabled=("HQ", "SHARPNESS"))


def test_pickled_object_array_is_refused(tmp_path):
    path = tmp_path / "special_tokens.npz"
    make_npz(path, other_tokens=np.array([{"row": 1}, None], dtype=object))
    with pytest.raises(CheckpointError, match="other_tokens") as error:
        SpecialTokens.load(path)
    assert str(path) in str(error.value) and "pickle" in str(error.value)


def test_pickle_file_is_refused(tmp_path):
    import pickle

    path = tmp_path / "special_tokens.npz"
    path.write_bytes(pickle.dumps({"other_tokens": [1, 2, 3]}))
    with pytest.raises(CheckpointError, match="pickle"):
        SpecialTokens.load(path)


def test_missing_array_is_named(tmp_path):
    path = tmp_path / "special_tokens.npz"
    make_npz(path, logo_token=None)
    with pytest.raises(CheckpointError, match="logo_token") as error:
        SpecialTokens.load(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("overrides", [
    {"other_tokens": np.zeros((10, C))},  # too few rows for DURATION_8 / TWO_D_ANIME
    {"caption_token": np.zeros((1, C + 1))},  # widths disagree
    {"logo_token": np.zeros((C,))},  # not [1, C]
])
def test_wrong_shapes_are_refused(tmp_path, overrides):
    path = tmp_path / "special_tokens.npz"
    make_npz(path, **overrides)
    with pytest.raises(CheckpointError, match="shape"):
        SpecialTokens.load(path)


def test_missing_or_corrupt_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        SpecialTokens.load(tmp_path / "nope.npz")
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError):
        SpecialTokens.load(broken)


def test_find_special_tokens(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    assert find_special_tokens(a, b, None) is None
    make_npz(b / "special_tokens.npz")
    assert find_special_tokens(None, a, b) == b / "special_tokens.npz"
    assert find_special_tokens(b / "special_tokens.npz") == b / "special_tokens.npz"
    assert find_special_tokens(str(tmp_path / "missing"), str(b)) == b / "special_tokens.npz"
