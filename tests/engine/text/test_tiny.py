"""WordTextEncoder: vocabulary, tokens, batching, save/load and training."""

import pytest
import torch

from magi_engine.errors import CheckpointError, ConfigError
from magi_engine.text import TextEncoder, WordTextEncoder, WordTextEncoderConfig, build_vocabulary
from magi_engine.text.tiny import SPECIAL_WORDS

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
    with pytest.raises(ConfigError, match="positions"):
        WordTextEncoderConfig(vocab=vocab, positions="absolute")
    with pytest.raises(ConfigError, match="even head size"):
        WordTextEncoderConfig(vocab=vocab, embed_dim=6, num_heads=2, positions="rotary")


def test_layers_compute_what_torch_transformer_layers_with_the_same_weights_do(model):
    """Files written when the layers were nn.TransformerEncoderLayer load and encode as they did."""
    config = model.config
    reference = torch.nn.TransformerEncoderLayer(config.embed_dim, config.num_heads, config.ffn_dim, dropout=0.0,
                                                 activation="gelu", batch_first=True, norm_first=True).eval()
    reference.load_state_dict(model.layers[0].state_dict(), strict=True)
    x = torch.randn(3, 7, config.embed_dim)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 5:] = False
    with torch.no_grad():
        ours = model.layers[0](x, mask, None)
        theirs = reference(x, src_key_padding_mask=~mask)
    assert torch.allclose(ours[mask], theirs[mask], atol=1e-5)


def test_rotary_attention_sees_only_distances():
    from magi_engine.text.tiny import SelfAttention, rotary_angles

    torch.manual_seed(0)
    attention = SelfAttention(16, 2).eval()
    x = torch.randn(1, 6, 16)
    mask = torch.ones(1, 6, dtype=torch.bool)
    angles = rotary_angles(16, 8, torch.device("cpu"))
    with torch.no_grad():
        at_start = attention(x, mask, angles[:6])
        shifted = attention(x, mask, angles[9:15])  # the same words, nine places further on
        plain = attention(x, mask, None)
    assert torch.allclose(at_start, shifted, atol=1e-5)
    assert not torch.allclose(at_start, plain, atol=1e-3)  # the angles do reach the attention


def test_a_rotary_encoder_has_no_position_table_and_round_trips(tmp_path):
    torch.manual_seed(0)
    config = WordTextEncoderConfig(vocab=build_vocabulary(CAPTIONS), embed_dim=16, num_layers=2, num_heads=2,
                                   max_tokens=12, ffn_ratio=2.0, positions="rotary")
    rotary = WordTextEncoder(config).eval()
    assert not any("position" in name for name, _ in rotary.named_parameters())
    # Word order still matters: "red" next to other words encodes differently (a bag of words would not).
    a = rotary.encode("a red circle rolls left")  # [<dur>, <bos>, a, red, ...]: "red" is row 3
    b = rotary.encode("rolls left a red circle")  # "red" is row 5
    assert not torch.allclose(a[3], b[5], atol=1e-4)
    rotary.save(tmp_path / "rotary.safetensors")
    loaded = WordTextEncoder.load(tmp_path / "rotary.safetensors")
    assert loaded.config.positions == "rotary"
    assert torch.equal(loaded.encode("a red circle rolls left"), a)


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


def test_lexicon_words_are_read_as_the_trained_words_they_mean(model):
    vocab = model.config.vocab
    model.lexicon = {"crimson": ("red",), "orb": ("circle",)}
    words = [vocab[i] for i in model.tokenize("a crimson orb rolls")][2:]
    assert words == ["a", "red", "circle", "rolls"]
    assert torch.equal(model.encode("a crimson circle rolls"), model.encode("a red circle rolls"))
    assert [vocab[i] for i in model.tokenize("a mauve orb")][2:] == ["a", "<unk>", "circle"]


def test_the_bundle_loader_gives_the_encoder_its_folders_lexicon(tmp_path):
    import json

    from magi_engine.bundle import load_native_bundle, save_native_bundle
    from magi_engine.text.words import LEXICON_FORMAT
    from tests.engine.factories import tiny_bundle

    save_native_bundle(tiny_bundle(), tmp_path)
    assert load_native_bundle(tmp_path, torch.device("cpu"), torch.float32).text_encoder.lexicon == {}
    words = {"crimson": "red", "sparkly": "glittering"}  # the second means nothing the model knows: dropped
    (tmp_path / "lexicon.json").write_text(json.dumps({"format": LEXICON_FORMAT, "words": words}))
    encoder = load_native_bundle(tmp_path, torch.device("cpu"), torch.float32).text_encoder
    assert encoder.lexicon == {"crimson": ("red",)}
    assert torch.equal(encoder.encode("a crimson ball falls"), encoder.encode("a red ball falls"))
