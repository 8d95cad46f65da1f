"""Carrying a trained word text encoder over to a new vocabulary."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from magi_engine.errors import CheckpointError
from magi_engine.text.tiny import WordTextEncoder, WordTextEncoderConfig, build_vocabulary
from lab.training.vocabulary import carry_rows, revocab_parts

OLD = build_vocabulary(["a red ball rolls left", "watch the ball"])
NEW = build_vocabulary(["a red ball rolls left", "a red ball is rolling left"])


def encoder(vocab) -> WordTextEncoder:
    torch.manual_seed(0)
    return WordTextEncoder(WordTextEncoderConfig(vocab, embed_dim=16, num_layers=1, num_heads=2, max_tokens=12)).eval()


def test_shared_words_keep_their_rows_new_words_get_fresh_small_ones():
    weight = torch.randn(len(OLD), 16)
    carried = carry_rows(weight, OLD, NEW, generator=torch.Generator().manual_seed(0))
    assert carried.shape == (len(NEW), 16)
    for row, word in enumerate(NEW):
        if word in OLD:
            assert torch.equal(carried[row], weight[OLD.index(word)])
        else:  # "is", "rolling"
            assert word in ("is", "rolling") and 0 < carried[row].std() < 0.05
    with pytest.raises(CheckpointError, match="rows"):
        carry_rows(weight[:-1], OLD, NEW)


def test_carried_parts_encode_shared_words_as_before(tmp_path):
    old = encoder(OLD)
    tensors = {f"model.{name}.{k}": v.clone() for name in ("text", "ema_text") for k, v in old.state_dict().items()}
    save_file(tensors, str(tmp_path / "text.safetensors"))
    assert revocab_parts(tmp_path, OLD, NEW)
    assert not revocab_parts(tmp_path, NEW, NEW)
    new = encoder(NEW)
    state = load_file(str(tmp_path / "text.safetensors"))
    new.load_state_dict({k.removeprefix("model.ema_text."): v for k, v in state.items() if k.startswith("model.ema_text.")})
    prompt = "a red ball rolls left"
    assert torch.allclose(new.encode(prompt), old.encode(prompt))
    # "watch" left the vocabulary: it now reads as the unknown word, as it does in the old encoder's <unk>.
    assert new.tokenize("watch")[-1] == new.tokenize("zebra")[-1]
    assert not torch.allclose(new.encode("a red ball is rolling left"), old.encode("a red ball is rolling left"))
