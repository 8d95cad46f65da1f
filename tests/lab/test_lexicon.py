"""lab.lexicon (studio-mini's lexicon build) and the lexicon it shipped; lab.everyday_eval's word swaps."""

import json

import numpy as np
import pytest

from magi_engine.text.words import LEXICON_FORMAT, model_vocabulary, read_encoder_words
from lab.everyday_eval import HELDOUT, swap_words
from lab.lexicon import (colour_names, gloss_genus, inflect_like, nearest_colours, present_participle, read_as_colour,
                         srgb_to_lab, third_person)
from magi_resources import resource_path

SHIPPED = resource_path("models", "studio-mini", "lexicon.json")


@pytest.mark.parametrize("verb, s, ing", [("ascend", "ascends", "ascending"), ("soar", "soars", "soaring"),
                                          ("rise", "rises", "rising"), ("skid", "skids", "skidding"),
                                          ("carry", "carries", "carrying"), ("lie", "lies", "lying"),
                                          ("slosh", "sloshes", "sloshing"), ("float", "floats", "floating")])
def test_verbs_are_inflected_as_the_trained_form_is(verb, s, ing):
    assert third_person(verb) == s and present_participle(verb) == ing
    assert inflect_like(verb, "rise", "rises") == s and inflect_like(verb, "rise", "rising") == ing
    assert inflect_like(verb, "rise", "rise") == verb and inflect_like(verb, "rise", "rose") is None


def test_colour_names_go_to_the_nearest_trained_colour_when_saturated(tmp_path):
    assert np.allclose(srgb_to_lab([255, 255, 255]), [100, 0, 0], atol=0.5)
    rgb = tmp_path / "rgb.txt"
    rgb.write_text("! comment\n220  20  60\t\tcrimson\n  0   0 128\t\tnavy\n"
                   "128 128 128\t\tgray\n255 215   0\t\tgold\n 34 139  34\t\tforest green\n 34 139 34\t\tForestGreen\n")
    assert colour_names(rgb) == {"crimson": "red", "navy": "blue", "gold": "yellow"}  # gray: no hue; two words


def test_a_colour_name_that_spells_trained_colours_keeps_to_them():
    named = {"darkblue": (3, 7, 100), "purpleish": (150, 50, 190), "greenblue": (35, 196, 139), "amethyst": (155, 95, 192)}
    assert nearest_colours(named) == {"purpleish": "purple", "amethyst": "purple"}  # darkblue is nearest purple


class FakeSynset:
    def __init__(self, definition, lexname="noun.artifact"):
        self._definition, self._lexname = definition, lexname

    def definition(self):
        return self._definition

    def lexname(self):
        return self._lexname


class FakeWordNet:
    """Senses by word and part of speech; morphy as WordNet's for the few verbs given."""

    def __init__(self, senses, verbs):
        self.senses, self.verbs = senses, verbs

    def synsets(self, word, pos):
        return [FakeSynset(*sense) if isinstance(sense, tuple) else FakeSynset(sense)
                for sense in self.senses.get((word, pos), ())]

    def morphy(self, word, pos):
        return self.verbs.get(word)


def test_a_survey_colour_name_is_a_colour_only_where_wordnet_reads_it_as_one():
    wn = FakeWordNet({("amethyst", "n"): ("a transparent purple variety of quartz", "a light purple colour"),
                      ("brick", "n"): ("rectangular block of clay baked by the sun or in a kiln",),
                      ("rose", "n"): ("a dusty pink color",)}, {"rose": "rise", "rust": "rust"})
    assert read_as_colour(wn, "amethyst") and read_as_colour(wn, "blurple")  # a colour sense; unknown to WordNet
    assert not read_as_colour(wn, "brick")  # WordNet knows only the thing
    assert not read_as_colour(wn, "rose")  # a form of the trained verb "rise"


def test_a_survey_colour_name_is_a_colour_where_wordnet_knows_it_first_as_a_material_plant_or_food():
    wn = FakeWordNet({("cobalt", "n"): (("a hard ferromagnetic silver-white metallic element", "noun.substance"),),
                      ("pumpkin", "n"): (("a coarse vine grown for its large pulpy round orange fruit", "noun.plant"),
                                         ("usually large pulpy deep-yellow round fruit", "noun.food")),
                      ("brick", "n"): (("rectangular block of clay baked by the sun or in a kiln", "noun.artifact"),
                                       ("a good fellow", "noun.person")),
                      ("grapeshot", "n"): (("a cluster of small projectiles fired together", "noun.artifact"),
                                           ("a juicy fruit", "noun.food")),
                      ("desert", "n"): (("arid land with little or no vegetation", "noun.location"),)},
                     {"desert": "desert"})
    assert read_as_colour(wn, "cobalt") and read_as_colour(wn, "pumpkin")
    # A made thing, as the world's objects are (ball, box, block), or a place: the thing, even with a food sense after.
    assert not read_as_colour(wn, "brick") and not read_as_colour(wn, "grapeshot") and not read_as_colour(wn, "desert")


def test_a_verb_gloss_is_headed_by_its_first_word():
    assert gloss_genus(FakeSynset("drop steeply")) == "drop"
    assert gloss_genus(FakeSynset("(computing) move data")) == "computing" and gloss_genus(FakeSynset("")) == ""


def test_the_shipped_lexicon_is_small_and_means_only_trained_words():
    data = json.loads(SHIPPED.read_text())
    assert data["format"] == LEXICON_FORMAT and SHIPPED.stat().st_size < 100_000
    known = set(read_encoder_words(resource_path("models", "studio-mini", "text_encoder.safetensors")))
    words = data["words"]
    assert not set(words) & known  # a trained word is never redefined
    assert all(set(meaning.split()) <= known for meaning in words.values())
    assert sum(source["words"] for source in data["sources"].values()) >= len(words)
    vocabulary = model_vocabulary("studio-mini")
    assert vocabulary.meaning("crimson") == ("red",) and vocabulary.unknown_words("a crimson ball") == []
    assert set(data["sources"]) == {"rgb.txt", "xkcd", "wordnet", "wordnet glosses", "wordnet shape kinds",
                                    "wordnet travel verbs"}
    # A survey colour, a noun.shape sense, the verb two trained verbs are kinds of (none of them held out).
    assert vocabulary.meaning("amethyst") == ("purple",) and vocabulary.meaning("bead") == ("sphere",)
    assert vocabulary.meaning("increases") == ("grows",) and vocabulary.meaning("decreasing") == ("shrinking",)
    assert not vocabulary.knows("rose") and not vocabulary.knows("drop")  # forms of "rise" and "drops", never things
    # Survey names WordNet knows first as a material, plant or food; not one it knows first as a made thing.
    assert [vocabulary.meaning(w) for w in ("cobalt", "lime", "pumpkin")] == [("blue",), ("green",), ("orange",)]
    assert not vocabulary.knows("brick")


def test_everyday_captions_swap_words_and_keep_articles_right():
    rng = np.random.default_rng(0)
    text = swap_words("Over the grass, a red ball rises", {"red": ("emerald",), "ball": ("orb",)}, rng)
    assert text == "Over the grass, an emerald orb rises"
    assert swap_words("An orange box falls", {"orange": ("crimson",)}, rng) == "A crimson box falls"
    assert all(word not in HELDOUT for words in HELDOUT.values() for word in words)
