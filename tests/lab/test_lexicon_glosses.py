"""lab.lexicon's fourth-build rules: verbs by what their gloss says they do, nouns that are kinds of kinds of
shapes; and what they put in the shipped lexicon."""

import json

from lab.lexicon import gloss_meaning, gloss_verbs, shape_kinds, used_most_as
from magi_engine.text.words import model_vocabulary, read_encoder_words
from magi_resources import resource_path

KNOWN = set(read_encoder_words(resource_path("models", "studio-mini", "text_encoder.safetensors")))


class Sense:
    def __init__(self, definition, lexname, lemmas=(), hyponyms=()):
        self._definition, self._lexname, self._lemmas, self._hyponyms = definition, lexname, list(lemmas), list(hyponyms)

    def definition(self):
        return self._definition

    def lexname(self):
        return self._lexname

    def lemma_names(self):
        return self._lemmas

    def hyponyms(self):
        return self._hyponyms


class Lemma:
    def __init__(self, count):
        self._count = count

    def count(self):
        return self._count


class WordNet:
    """Senses by (word, part of speech), most frequent first; tagged counts by (word, part of speech)."""

    def __init__(self, senses, counts=None):
        self.senses, self.counts = senses, counts or {}

    def synsets(self, word, pos):
        return self.senses.get((word, pos), [])

    def all_synsets(self, pos):
        return list({id(s): s for (_, p), senses in self.senses.items() if p == pos for s in senses}.values())

    def lemmas(self, word, pos):
        return [Lemma(self.counts[(word, pos)])] if (word, pos) in self.counts else []


def test_a_verb_gloss_says_which_motion_it_is():
    assert gloss_meaning(Sense("move something or somebody to a lower position", "verb.motion")) == "down"
    assert gloss_meaning(Sense("cause to rise in the air and float", "verb.motion")) == "up"  # "cause to" passed over
    assert gloss_meaning(Sense("drop sharply", "verb.motion")) == "fall"
    assert gloss_meaning(Sense("become broader or wider or more extensive", "verb.change")) == "grow"
    assert gloss_meaning(Sense("become narrower", "verb.change")) == "shrink"
    # Not: development ("grow" heads it, no size), a small thing made, both directions, a gloss of no motion.
    assert gloss_meaning(Sense("grow old or older", "verb.change")) is None
    assert gloss_meaning(Sense("make a small cut or incision", "verb.change")) is None
    assert gloss_meaning(Sense("raise from a lower to a higher position", "verb.motion")) is None
    assert gloss_meaning(Sense("rise up as in fear", "verb.emotion")) is None
    assert gloss_meaning(Sense("move back and forth", "verb.motion")) is None  # no direction: the exclusion stays


def test_a_gloss_verb_is_taken_in_its_first_senses_where_it_is_used_most_as_a_verb():
    lower = Sense("move something or somebody to a lower position", "verb.motion", ["lower", "take_down"])
    well = Sense("come up, as of a liquid", "verb.motion", ["well"])
    age = Sense("grow old or older", "verb.change", ["age"])
    rare = Sense("go down a slope", "verb.motion", ["slip"])
    wn = WordNet({("lower", "v"): [lower], ("well", "v"): [well], ("age", "v"): [age],
                  ("slip", "v"): [Sense("move smoothly", "verb.motion"), Sense("err", "verb.social"), rare]},
                 {("well", "r"): 139, ("well", "v"): 3, ("lower", "v"): 10, ("lower", "a"): 2})
    assert used_most_as(wn, "lower", "v") and not used_most_as(wn, "well", "v")
    words = gloss_verbs(wn, KNOWN)
    assert words == {"lowers": "sinks", "lowering": "sinking"}  # not "wells" (an adverb first), "ages", a third sense


def test_a_noun_that_is_a_kind_of_a_kind_of_a_shape_sense_is_that_shape():
    dewdrop = Sense("a drop of dew", "noun.object", ["dewdrop"])
    tablet = Sense("a slab of stone", "noun.artifact", ["tablet"])
    die = Sense("a small cube with dots", "noun.artifact", ["die"])
    drop = Sense("a small spherical mass", "noun.shape", ["drop"], [dewdrop, tablet, die])
    sphere = Sense("a solid figure bounded by a spherical surface", "noun.shape", ["sphere"], [drop])
    wn = WordNet({("sphere", "n"): [sphere], ("dewdrop", "n"): [dewdrop], ("die", "n"): [die],
                  ("tablet", "n"): [Sense("a pill", "noun.artifact"), tablet]},
                 {("die", "v"): 40, ("die", "n"): 2})
    # Not "tablet" (its most frequent sense is another), "die" (used most as a verb), "drop" (a direct kind: the
    # first rules' word).
    assert shape_kinds(wn, KNOWN) == {"dewdrop": "sphere"}


def test_the_shipped_lexicon_reads_the_glossed_verbs_and_shape_kinds():
    data = json.loads(resource_path("models", "studio-mini", "lexicon.json").read_text())
    assert data["sources"]["wordnet glosses"]["words"] > 0 and data["sources"]["wordnet shape kinds"]["words"] > 0
    vocabulary = model_vocabulary("studio-mini")
    assert vocabulary.meaning("lowers") == ("sinks",) and vocabulary.meaning("widening") == ("growing",)
    assert vocabulary.meaning("submerges") == ("sinks",) and vocabulary.meaning("dewdrop") == ("sphere",)
    # Left out: an adverb first ("wells"), development ("ages"), "make ... small" ("overshadows").
    assert not any(vocabulary.knows(w) for w in ("wells", "ages", "overshadows", "drop"))
