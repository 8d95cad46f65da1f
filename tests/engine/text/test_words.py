"""magi_engine.text.words: the words a word-level encoder knows, read without torch, and a prompt's unknown words."""

import json
import subprocess
import sys

import pytest

from magi_engine.errors import CheckpointError
from magi_engine.text.words import (LEXICON_FORMAT, Vocabulary, edit_distance, model_vocabulary, read_encoder_words,
                               tokenize_words, unknown_words_warning, word_spans)

WORLD_WORDS = ("<pad>", "<unk>", "<bos>", "<dur1>", "a", "ball", "red", "rises", "left", "the", "upward", "toward")


def test_word_spans_point_into_the_prompt_as_typed():
    text = "A Red  BALL, rises<unk>!"
    spans = word_spans(text)
    assert [w for w, _, _ in spans] == ["a", "red", "ball", "rises", "<unk>"]
    assert [text[s:e] for _, s, e in spans] == ["A", "Red", "BALL", "rises", "<unk>"]
    assert tokenize_words(text) == ["a", "red", "ball", "rises", "<unk>"]


def test_edit_distance_counts_a_swap_as_one_edit():
    assert edit_distance("ball", "ball") == 0
    assert edit_distance("bal", "ball") == 1
    assert edit_distance("rsies", "rises") == 1
    assert edit_distance("red", "blue") == 4


def test_unknown_words_name_the_word_its_place_and_known_words_instead():
    vocabulary = Vocabulary(WORLD_WORDS)
    assert "<unk>" not in vocabulary.words and "ball" in vocabulary.words
    prompt = "the rde bal rises upwards, sparkling"
    unknown = vocabulary.unknown_words(prompt)
    assert [(u.word, prompt[u.start:u.end]) for u in unknown] == [
        ("rde", "rde"), ("bal", "bal"), ("upwards", "upwards"), ("sparkling", "sparkling")]
    nearest = {u.word: u.nearest for u in unknown}
    assert nearest["rde"][0] == "red" and nearest["bal"] == ("ball",)
    assert nearest["upwards"][0] == "upward" and nearest["sparkling"] == ()
    assert vocabulary.unknown_words("The red ball rises") == []


def test_lexicon_words_are_known_and_read_as_trained_words():
    vocabulary = Vocabulary(WORLD_WORDS, {"crimson": ("red",), "ascends": ("rises",), "sky": ("blue",),
                                          "ball": ("red",), "glowing": ("shiny",)})
    assert vocabulary.knows("Crimson") and vocabulary.meaning("crimson") == ("red",)
    assert vocabulary.meaning("ball") == ("ball",)  # a trained word keeps its own meaning
    assert not vocabulary.knows("glowing")  # an entry whose meaning the model does not know is dropped
    assert vocabulary.unknown_words("a crimson ball ascends") == []
    assert vocabulary.nearest("crimsn")[0] == "red"  # a slip on a lexicon word suggests what it means


def test_warning_is_one_line_naming_each_unknown_word_once():
    vocabulary = Vocabulary(WORLD_WORDS)
    warning = unknown_words_warning("a bal and a bal rise", vocabulary)
    assert warning.count("'bal'") == 1 and "'rise'" in warning and "ball" in warning and "\n" not in warning
    assert unknown_words_warning("a red ball rises", vocabulary) is None
    assert unknown_words_warning("anything at all", None) is None


def _encoder_file(path, vocab, **metadata):
    header = {"__metadata__": {"magi-studio.word-text-encoder": "1", "config": json.dumps({"vocab": vocab}),
                               **metadata}}
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw)
    return path


def test_vocabulary_is_read_from_the_encoder_header_and_the_lexicon_beside_it(tmp_path):
    _encoder_file(tmp_path / "text_encoder.safetensors", list(WORLD_WORDS))
    (tmp_path / "lexicon.json").write_text(json.dumps({"format": LEXICON_FORMAT, "words": {"scarlet": "red"}}))
    vocabulary = model_vocabulary(str(tmp_path))
    assert vocabulary.words == tuple(sorted(w for w in WORLD_WORDS if not w.startswith("<")))
    assert vocabulary.meaning("scarlet") == ("red",)


def test_damaged_files_give_one_clear_error_and_no_vocabulary(tmp_path):
    bad = tmp_path / "text_encoder.safetensors"
    bad.write_bytes(b"\xff" * 16)
    with pytest.raises(CheckpointError, match="vocabulary"):
        read_encoder_words(bad)
    assert model_vocabulary(str(tmp_path)) is None
    _encoder_file(bad, list(WORLD_WORDS))
    (tmp_path / "lexicon.json").write_text("{not json")
    assert model_vocabulary(str(tmp_path)) is None


def test_magi1_models_have_no_closed_vocabulary(tmp_path):
    assert model_vocabulary("4.5B_distill") is None
    assert model_vocabulary("hub:24B_base") is None
    assert model_vocabulary(str(tmp_path)) is None  # a folder without our word encoder (e.g. MAGI-1's)


def test_studio_mini_vocabulary_is_the_shipped_encoders_and_costs_no_torch():
    code = ("import sys; from magi_engine.text.words import model_vocabulary; v = model_vocabulary('studio-mini'); "
            "print(len(v.words), 'red' in v.words, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    count, has_red, torch_loaded = out.split()
    assert int(count) > 100 and has_red == "True" and torch_loaded == "False"
