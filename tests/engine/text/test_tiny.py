"""WordTextEncoder: vocabulary, tokens, batching, save/load and training."""

import pytest
import torch

from engine.errors import CheckpointError, ConfigError
from engine.text import TextEncoder, WordTextEncoder, WordTextEncoderConfig, build_vocabulary
from engine.text.tiny import SPECIAL_WORDS

CAPTIONS = [
    "a red circle rolls to the left over green grass",
    "A blue square slides to the right over yellow sand.",
    "a red triangle bounces; the camera stays still",
]


@pytest.fixture
def model():
    torch.manual_seed(0)
    config = WordTextEncoderConfig(vocab=build_vocabulary(CAPTIONS), embed_dim=16, num_layers=2, num_heads=2,
                                   max_tokens=12, ffn_ratio=2.0)
    return WordTextEncoder(config).eval()


def test_build_vocabulary_is_sorted_and_deterministic():
    vocab = build_vocabulary(CAPTIONS)
    assert vocab[: len(SPECIAL_WORDS)] == SPECIAL_WORDS
    assert SPECIAL_WORDS[:3] == ("<pad>", "<unk>", "<bos>") and "<dur8>" in SPECIAL_WORDS
    words = vocab[len(SPECIAL_WORDS):]
    assert list(words) == sorted(words) and len(set(words)) == len(words)
    assert {"a", "red", "circle", "the", "sand", "bounces"} <= set(words)
    assert "sand." not in words and "A" not in words  # lower-cased, split on punctuation
    assert build_vocabulary(reversed(CAPTIONS)) == vocab
    assert set(build_vocabulary(CAPTIONS, min_count=2)[len(SPECIAL_WORDS):]) == {"a", "red", "the", "to", "over"}


def test_tokenize_layout_and_unknown_words(model):
    ids = model.tokenize("A red UNICORN, rolls!", chunks_remaining=3)
    vocab = model.config.vocab
    assert [vocab[i] for i in ids] == ["<dur3>", "<bos>", "a", "red", "<unk>", "rolls"]
    # Training writes the unknown word into captions literally; it is one word, not "unk".
    assert [vocab[i] for i in model.tokenize("a <unk> red ball")][2:] == ["a", "<unk>", "red", "<unk>"]
    assert build_vocabulary(["a <unk> ball"]) == SPECIAL_WORDS + ("a", "ball")
    assert vocab[model.tokenize("", 20)[0]] == "<dur8>"  # capped at 8
    assert len(model.tokenize(" ".join(["red"] * 50))) == model.max_tokens
    with pytest.raises(ConfigError, match="chunks_remaining"):
        model.tokenize("red", 0)


def test_encode_follows_the_protocol(model):
    assert isinstance(model, TextEncoder)
    out = model.encode("a red circle")
    assert out.shape == (5, 16) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert not out.requires_grad
    assert model.encode("").shape == (2, 16)  # duration + <bos>: never empty


def test_unknown_words_share_one_embedding(model):
    assert torch.equal(model.encode("a zebra"), model.encode("a giraffe"))
    assert not torch.allclose(model.encode("a zebra"), model.encode("a circle"))


def test_duration_token_changes_the_output(model):
    one, five = model.encode("a red circle", 1), model.encode("a red circle", 5)
    assert one.shape == five.shape and not torch.allclose(one, five)
    assert torch.equal(model.encode("a red circle", 8), model.encode("a red circle", 30))


def test_encode_batch_mask_and_consistency(model):
    prompts = ["a red circle rolls to the left", "a square", ""]
    features, mask = model.encode_batch(prompts, [1, 2, 3])
    assert features.shape == (3, 9, 16) and mask.dtype == torch.bool
    assert mask.sum(dim=1).tolist() == [9, 4, 2]  # duration + <bos> + words
    assert mask[1, :4].all() and not mask[1, 4:].any()
    assert (features[~mask] == 0).all()
    for row, (prompt, chunks) in enumerate(zip(prompts, [1, 2, 3])):
        alone = model.encode(prompt, chunks)
        torch.testing.assert_close(features[row, : alone.shape[0]], alone, rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError):
        model.encode_batch(["a", "b"], [1])


def test_save_load_round_trip(model, tmp_path):
    path = model.save(tmp_path / "text_encoder.safetensors")
    loaded = WordTextEncoder.load(path)
    assert loaded.config == model.config
    for prompt in ["a red circle rolls to the left over green grass", "unknown words here", ""]:
        assert torch.equal(loaded.encode(prompt, 2), model.encode(prompt, 2))


def test_load_refuses_foreign_files(tmp_path, model):
    from safetensors.torch import save_file

    with pytest.raises(CheckpointError, match="does not exist"):
        WordTextEncoder.load(tmp_path / "missing.safetensors")
    pickled = tmp_path / "encoder.pt"
    torch.save(model.state_dict(), pickled)
    with pytest.raises(CheckpointError, match="safetensors"):
        WordTextEncoder.load(pickled)
    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(1)}, str(plain))
    with pytest.raises(CheckpointError, match="not written by"):
        WordTextEncoder.load(plain)


def test_config_validation():
    vocab = build_vocabulary(CAPTIONS)
    with pytest.raises(ConfigError, match="num_heads"):
        WordTextEncoderConfig(vocab=vocab, embed_dim=10, num_heads=3)
    with pytest.raises(ConfigError, match="start with"):
        WordTextEncoderConfig(vocab=("red", "blue"))
    with pytest.raises(ConfigError, match="duplicate"):
        WordTextEncoderConfig(vocab=vocab + ("red",))
    with pytest.raises(ConfigError, match="never produces"):
        WordTextEncoderConfig(vocab=vocab + ("Red",))
    with pytest.raises(ConfigError, match="max_tokens"):
        WordTextEncoderConfig(vocab=vocab, max_tokens=1)
    with pytest.raises(ConfigError, match="ffn_ratio"):
        WordTextEncoderConfig(vocab=vocab, ffn_ratio=0)
    with pytest.raises(ConfigError, match="num_layers"):
        WordTextEncoderConfig(vocab=vocab, num_layers=0)


def test_gradients_flow_and_a_step_reduces_the_loss(model):
    model.train()
    target = torch.randn(16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def loss_fn():
        features, mask = model.encode_batch(CAPTIONS, [1, 2, 3])
        pooled = (features * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)  # [B, C]
        return ((pooled - target) ** 2).mean()

    before = loss_fn()
    before.backward()
    assert model.token_embedding.weight.grad.abs().sum() > 0
    assert model.position_embedding.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.layers[0].parameters())
    optimizer.step()
    optimizer.zero_grad()
    assert loss_fn().item() < before.item()
