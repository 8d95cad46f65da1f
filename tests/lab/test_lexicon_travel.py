"""lab.lexicon's fifth-build rule: kinds of travelling that name no direction read as the generic "moves"."""

import importlib.util
import json

import pytest

from lab.lexicon import WORDNET, travel_verbs, wordnet_reader
from magi_engine.text.words import model_vocabulary, read_encoder_words, tokenize_words
from magi_resources import resource_path

KNOWN = set(read_encoder_words(resource_path("models", "studio-mini", "text_encoder.safetensors")))


@pytest.mark.skipif(not WORDNET.exists() or importlib.util.find_spec("nltk") is None,
                    reason="needs Debian's wordnet-base and nltk (the lab extra)")
def test_a_kind_of_travelling_that_names_no_direction_is_read_as_moves_in_each_of_its_forms():
    wn = wordnet_reader()
    words = travel_verbs(wn, KNOWN, settled={"wanders"})
    assert words["strolls"] == "moves" and words["strolling"] == "moving" and words["stroll"] == "move"
    assert words["sprints"] == "moves" and words["tiptoes"] == "moves"
    # Settled by an earlier rule in one form: the verb is left to it in every form.
    assert not {"wanders", "wandering", "wander"} & set(words)
    # Trained verbs and the old rules' kinds of rising or descending; circling, keeping still, a vertical gloss;
    # turning (not travelling in WordNet); going with someone.
    for word in ("glides", "soars", "descends", "plummets", "circumnavigates", "poises", "schusses", "resurfaces",
                 "jounces", "spins", "rotates", "stops", "escorts"):
        assert word not in words, word
    assert set(words.values()) == {"move", "moves", "moving"}


def test_the_shipped_lexicon_reads_travel_verbs_as_moves_and_keeps_every_earlier_reading():
    data = json.loads(resource_path("models", "studio-mini", "lexicon.json").read_text())
    assert data["sources"]["wordnet travel verbs"]["words"] > 0
    vocabulary = model_vocabulary("studio-mini")
    assert vocabulary.meaning("strolls") == ("moves",) and vocabulary.meaning("sprinting") == ("moving",)

    def reads(prompt):
        return [m for w in tokenize_words(prompt) for m in (vocabulary.meaning(w) or ("<unk>",))]

    # The direction is the prompt's own: "strolls left" reaches the model as the trained "moves left".
    assert reads("a red ball strolls left") == reads("a red ball moves left")
    # Earlier readings stay: a kind of rising, of dropping, a sideways verb.
    assert vocabulary.meaning("soars") == ("rises",) and vocabulary.meaning("plunges") == ("drops",)
    assert vocabulary.meaning("skids") == ("slides",) and vocabulary.meaning("lowers") == ("sinks",)
    assert not any(vocabulary.knows(w) for w in ("circumnavigates", "poises", "schusses", "spins", "stops"))
