"""Build studio-mini's lexicon: everyday words of its world, each read as the trained words it means.

    python -m lab.lexicon [--out resources/models/studio-mini/lexicon.json]

studio-mini's word-level text encoder knows only the words of its training captions. People write
"a crimson orb ascends" for "a red ball rises"; the lexicon (magi_engine.text.words reads it, the encoder
replaces each lexicon word by its meaning before the layers) makes such words mean what they say.
It is built from three published resources, never from the evaluation's held-out words
(lab/everyday_eval.py), which measure how far these rules reach:

* Colour names with RGB values: X11's rgb.txt (Debian's x11-common, /usr/share/X11/rgb.txt) and the
  xkcd colour survey's names (matplotlib.colors.XKCD_COLORS). A single-word name goes to the trained
  colour nearest to it in CIELAB when it is saturated enough to be drawn as a colour (chroma >=
  MIN_CHROMA) and near enough (distance <= MAX_COLOUR_DISTANCE); a name that spells trained colours
  keeps to them. A survey name is taken only where WordNet reads it as a colour (a colour sense, no
  entry, or a most frequent noun sense that is a material, plant or food colours are named after:
  cobalt, lime, pumpkin; not an artifact, place or body part: brick, desert), not as a form of a
  trained verb, and not as a shape or motion word of the rules below.
* WordNet 3.0 (Debian's wordnet-base, read through nltk's WordNetCorpusReader): the synonyms, the
  similar adjectives and the direct hyponyms (troponyms for verbs) of the followed senses of each
  trained content word (colours, shapes, motion verbs, directions, sizes, places): its first senses,
  and for a shape word every sense WordNet files under noun.shape. Each lemma is put in the trained
  word's form ("ascend" as "rises" where the trained word is "rises", "ascending" where it is
  "rising"). Also: WordNet's antonym of a trained verb for the opposite motion (grow/shrink,
  up/down), and the verb that two or more trained verbs of one meaning, and no other's, are kinds of.
  A word two trained words of different meanings reach goes to the one whose trained word heads the
  verb gloss that reached it ("drop steeply"), and is left out where none or both do; a form of a
  trained verb is never made a thing ("drop", a small sphere in WordNet).
* Also from WordNet, adding only words the rules above do not reach (fourth build): every verb whose gloss says
  which motion it is, in one of its first senses and where WordNet's counts use it most as a verb
  (gloss_meaning: "lower: move ... to a lower position" sinks, "widen: become wider" grows, "plunge: drop
  steeply" falls; never a direction-less kind of moving, which the rules above leave out too), and every noun
  whose most frequent sense is a kind of a kind of a trained shape word's noun.shape sense ("dewdrop").
* Also from WordNet, adding only words no rule above reaches (fifth build, travel_verbs): every verb whose first
  sense is a kind of travelling (its hypernyms reach travel.v.01, "move"'s first sense) and names no direction,
  turning, circling or stopping, used most as a verb, is read as the generic trained verb "moves" ("strolls",
  "sprints"); the prompt's own "left" or "down" says where it goes.

A trained word is never redefined; multi-word lemmas, proper nouns and words of two letters or fewer
are skipped. nltk and matplotlib are lab dependencies (`pip install -e ".[lab]"`), not the app's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from magi_engine.text.words import LEXICON_FORMAT, Vocabulary, read_encoder_words
from lab.world.scene import COLOURS
from magi_resources import resource_path

RGB_TXT = Path("/usr/share/X11/rgb.txt")
WORDNET = Path("/usr/share/wordnet")
LEXNAMES_MAN = Path("/usr/share/man/man5/lexnames.5WN.gz")
MODEL = resource_path("models", "studio-mini")
MIN_CHROMA = 30.0
#: WordNet's files of the things colours are named after (materials, pigments and metals; plants, their flowers
#: and fruits; foods): a colour-list name whose most frequent noun sense is one of them is read as the colour.
#: Not noun.artifact, made things: the world's object words are noun.artifact or noun.shape in their most
#: frequent sense (ball, box, block, disc, tile), so a made thing's name stands where a prompt's object does.
NAMED_AFTER = {"noun.substance", "noun.plant", "noun.food"}
MAX_COLOUR_DISTANCE = 70.0
#: Senses of a trained word followed (WordNet orders senses by frequency).
SENSES = 2
#: A WordNet lemma the lexicon may add: one plain lower-case word (not multi-word, not a name, not too short).
PLAIN_WORD = re.compile(r"[a-z]{3,}")

#: Trained content words by what they mean, and the WordNet parts of speech to look them up as.
#: Words of one group mean the same to the model (each maps to itself); a new word goes to the first
#: trained word that reaches it, in its inflection.
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "circle": ("n", ("circle", "ball", "disc", "dot", "sphere")),
    "square": ("n", ("square", "box", "block", "cube", "tile")),
    "triangle": ("n", ("triangle", "wedge", "pyramid")),
    "up": ("v", ("rise", "climb", "float")),
    "down": ("v", ("sink", "descend")),
    "horizontal": ("v", ("move", "roll", "slide", "drift", "travel", "glide")),
    "still": ("v", ("stay", "rest", "sit", "wait", "remain")),
    "fall": ("v", ("fall", "drop", "tumble", "bounce")),
    "grow": ("v", ("grow", "expand", "swell", "inflate")),
    "shrink": ("v", ("shrink", "contract", "dwindle")),
    "upward": ("ra", ("upward",)),
    "downward": ("ra", ("downward",)),
    "leftward": ("ra", ("leftward",)),
    "rightward": ("ra", ("rightward",)),
    "slowly": ("r", ("slowly",)),
    "motionless": ("a", ("motionless", "still")),
    "big": ("a", ("big", "large")),
    "small": ("a", ("small", "little", "tiny")),
    "grass": ("n", ("grass", "lawn")),
    "sand": ("n", ("sand", "beach")),
    "water": ("n", ("water", "lake")),
    "sky": ("n", ("sky",)),
    "sunset": ("n", ("sunset", "evening")),
    "dark": ("a", ("dark",)),
    **{colour: ("an", (colour,)) for colour in COLOURS},  # "crimson": a red (noun), and red (adjective)
}
#: Groups that mean what another does (a word both reach is not ambiguous).
SAME_MEANING = {"upward": "up", "downward": "down"}
#: Verb groups of opposite meaning: WordNet's antonym of one's trained verb means the other.
OPPOSITES = {"grow": "shrink", "shrink": "grow", "up": "down", "down": "up"}
SHAPES = ("circle", "square", "triangle")
TRAINED_VERBS = {lemma for parts, lemmas in GROUPS.values() if "v" in parts for lemma in lemmas}
#: Groups of motion in no particular direction: a kind of them ("ascend": travel up) means the
#: direction its gloss names, and is left out when it names none.
GENERIC = {"horizontal"}
#: Direction words of a gloss -> the group, and the trained verb of that group a word is inflected like.
DIRECTION_WORDS = {"up": "up", "upward": "up", "upwards": "up", "down": "down", "downward": "down",
                   "downwards": "down"}
DIRECTION_VERBS = {"up": "rise", "down": "descend"}
DIRECTION_FORMS = {"up": ("rise", "rises", "rising"), "down": ("descend", "descends", "descending")}


def direction_group(synset) -> str | None:
    directions = {DIRECTION_WORDS[w] for w in re.findall(r"[a-z]+", synset.definition()) if w in DIRECTION_WORDS}
    return directions.pop() if len(directions) == 1 else None


#: WordNet lexicographer files a followed sense must come from (keeps "ball" the dance out).
LEXNAMES = {"n": {"noun.shape", "noun.artifact", "noun.object", "noun.location", "noun.time", "noun.phenomenon",
                  "noun.substance", "noun.plant", "noun.attribute"},
            "v": {"verb.motion", "verb.change", "verb.stative", "verb.contact"},
            "r": {"adv.all"}, "a": {"adj.all", "adj.ppl"}}


# Inflection -------------------------------------------------------------------------------------
def third_person(verb: str) -> str:
    if re.search(r"(s|sh|ch|x|z|o)$", verb):
        return verb + "es"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ies"
    return verb + "s"


def present_participle(verb: str) -> str:
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        return verb[:-1] + "ing"
    if re.fullmatch(r"[^aeiou]*[aeiou][^aeiouwxy]", verb):  # one syllable ending consonant-vowel-consonant
        return verb + verb[-1] + "ing"
    return verb + "ing"


def inflect_like(lemma: str, trained_lemma: str, trained_form: str) -> str | None:
    """`lemma` in the inflection `trained_form` has of `trained_lemma` (None: a form not made here)."""
    if trained_form == trained_lemma:
        return lemma
    if trained_form == third_person(trained_lemma):
        return third_person(lemma)
    if trained_form == present_participle(trained_lemma):
        return present_participle(lemma)
    return None


# Resources ------------------------------------------------------------------------------------
def wordnet_reader(folder: Path = WORDNET):
    """nltk's reader over Debian's WordNet files. Debian ships the lexicographer file names as the
    lexnames(5WN) manual page rather than the `lexnames` file the reader wants: it is written out
    from there beside copies of the data files (nltk refuses links that lead out of its folder)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    view = Path(tempfile.mkdtemp(prefix="wordnet-"))
    for path in folder.iterdir():
        if path.is_file():
            shutil.copyfile(path, view / path.name)
    rows = [line for line in gzip.open(LEXNAMES_MAN, "rt").read().splitlines() if re.match(r"\d\d\t", line)]
    syntactic = {"adj": 3, "noun": 1, "verb": 2, "adv": 4}  # the lexnames file's third column
    (view / "lexnames").write_text("".join(f"{n}\t{name.strip()}\t{syntactic[name.split('.')[0]]}\n"
                                           for n, name, *_ in (row.split("\t") for row in rows)))
    nltk.data.path.append(str(view))

    class DebianWordNet(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            return None  # English WordNet 3.0 alone: nothing to map to nltk's downloadable copy

    return DebianWordNet(str(view), None)


def srgb_to_lab(rgb) -> np.ndarray:
    """CIELAB (D65) of 8-bit sRGB colours [..., 3]."""
    c = np.asarray(rgb, np.float64) / 255.0
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = c @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def nearest_colours(named_rgb: dict[str, tuple[int, int, int]]) -> dict[str, str]:
    """Colour name -> the trained colour nearest to its RGB in CIELAB, for saturated names near one. A name
    that spells trained colours ("darkblue", "orangered") keeps to them: it is left out unless it spells
    exactly one and that one is the nearest."""
    names = list(COLOURS)
    trained = srgb_to_lab([COLOURS[n] for n in names])
    found = {}
    for name, rgb in named_rgb.items():
        lab = srgb_to_lab(rgb)
        distances = np.linalg.norm(trained - lab, axis=1)
        nearest = names[int(distances.argmin())]
        spelled = {colour for colour in names if colour in name}
        if spelled and spelled != {nearest}:
            continue
        if np.hypot(lab[1], lab[2]) >= MIN_CHROMA and distances.min() <= MAX_COLOUR_DISTANCE:
            found[name] = nearest
    return found


def colour_names(path: Path = RGB_TXT) -> dict[str, str]:
    """Single-word colour names of rgb.txt -> the trained colour nearest in CIELAB (saturated ones only)."""
    named = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4 and not line.startswith("!") and parts[3].isalpha() and parts[3].islower():
            named[parts[3]] = tuple(int(v) for v in parts[:3])
    return nearest_colours(named)


def survey_colour_names() -> dict[str, str]:
    """Single-word names of the xkcd colour survey (949 names people gave to colours, as matplotlib
    ships them in matplotlib.colors.XKCD_COLORS) -> the trained colour nearest in CIELAB."""
    from matplotlib.colors import XKCD_COLORS

    named = {}
    for key, hex_colour in XKCD_COLORS.items():
        name = key.removeprefix("xkcd:")
        if name.isalpha() and name.islower():
            named[name] = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return nearest_colours(named)


def read_as_colour(wn, word: str) -> bool:
    """Whether WordNet lets `word` be read as a colour: it has a colour sense (a gloss naming colour), or
    WordNet does not know it, or its most frequent noun sense is a thing colours are named after (NAMED_AFTER:
    "cobalt" a metal, "lime" a substance, "pumpkin" a plant). A colour list also names colours after other
    things; where WordNet's most frequent sense of the word is one of those (an artifact: "brick", a block of
    clay; a place: "desert"; a body part), the word is left to mean the thing. A form of a trained verb
    ("rose": rise) is that verb's."""
    if wn.morphy(word, "v") in TRAINED_VERBS:
        return False
    senses = wn.synsets(word, "n") + wn.synsets(word, "a") + wn.synsets(word, "s")
    if not senses or any("colo" in sense.definition() for sense in senses):
        return True
    nouns = wn.synsets(word, "n")
    return bool(nouns) and nouns[0].lexname() in NAMED_AFTER


def followed_senses(wn, group: str, pos: str, lemma: str) -> list:
    """The senses of a group's trained word that the build follows: the first SENSES of the parts of
    speech's lexicographer files; for a shape word also every sense WordNet files under noun.shape
    ("ball": an object with a spherical shape is its third sense); for a colour word its colour senses."""
    if pos == "a":
        candidates = wn.synsets(lemma, "a") + wn.synsets(lemma, "s")
    else:
        candidates = wn.synsets(lemma, pos)
    senses = [s for s in candidates if s.lexname() in LEXNAMES[pos]][:SENSES]
    if group in SHAPES and pos == "n":
        senses += [s for s in candidates if s.lexname() == "noun.shape" and s not in senses]
    if group in COLOURS:  # a colour word's colour senses only ("yellow": cowardly is not one)
        senses = [sense for sense in senses if "colo" in sense.definition()]
    return senses


def gloss_genus(synset) -> str:
    """The head word of a verb's gloss, the kind of act it defines ("drop steeply": drop)."""
    words = re.findall(r"[a-z]+", synset.definition().lower())
    return words[0] if words else ""


def names_group(meaning: str, word: str) -> bool:
    """Whether `word` is one of the trained lemmas of the group `meaning` (its own or its direction's)."""
    return word in GROUPS[meaning][1] or word in DIRECTION_FORMS.get(meaning, ())


# Fourth build: what a verb's gloss says it does, and kinds of kinds of shapes ---------------------------
#: General verbs of motion: a gloss they head means the one direction it names ("move ... to a lower position").
GLOSS_MOTION_VERBS = {"move", "go", "come", "travel"}
#: General verbs of change: a gloss they head means the size it names ("make larger", "become narrower").
GLOSS_CHANGE_VERBS = {"make", "become", "get", "grow"}
#: Direction words of a gloss, its comparatives too ("to a lower position", "to a higher level").
GLOSS_DIRECTIONS = {**DIRECTION_WORDS, "higher": "up", "lower": "down"}
#: Size words of a gloss (comparatives only: "make a small cut" says nothing of becoming smaller).
GLOSS_SIZES = {"larger": "grow", "bigger": "grow", "wider": "grow", "broader": "grow", "greater": "grow",
               "smaller": "shrink", "narrower": "shrink"}
#: Groups whose trained verb heading a gloss of motion means the group ("drop sharply": fall). Not "grow",
#: which heads glosses of development ("grow old"), not "still" (states, not motion) and not the generic
#: "horizontal", whose kinds going no one way the build leaves out.
GLOSS_HEAD_GROUPS = ("up", "down", "fall", "shrink")


def single_meanings(reached: dict[str, set[tuple[str, str]]]) -> dict[str, str]:
    """Word -> trained form, for each word every rule that reached it gave one group (the group's first form);
    a word two groups reach is left out."""
    return {word: sorted(targets)[0][1] for word, targets in reached.items() if len({g for g, _ in targets}) == 1}


def gloss_head(synset) -> tuple[str, list[str]]:
    """The head verb of a gloss's first clause ("cause to" passed over) and the words after it."""
    words = re.findall(r"[a-z]+", synset.definition().lower().split(";")[0])
    if words[:2] == ["cause", "to"]:
        words = words[2:]
    return (words[0], words[1:]) if words else ("", [])


def gloss_meaning(synset) -> str | None:
    """The group a verb sense means by what its gloss says it does, or None: a verb of motion (verb.motion)
    headed by a trained verb of GLOSS_HEAD_GROUPS ("plunge: drop steeply"), or by a general verb of motion or a
    horizontal trained verb with one direction ("lower: move ... to a lower position"); a verb of motion or
    change (verb.change) headed by a general verb of change with sizes of one meaning ("widen: become
    wider")."""
    head, rest = gloss_head(synset)
    motion = synset.lexname() == "verb.motion"
    for group in GLOSS_HEAD_GROUPS:
        if motion and head in GROUPS[group][1]:
            return group
    if motion and (head in GLOSS_MOTION_VERBS or head in GROUPS["horizontal"][1]):
        directions = {GLOSS_DIRECTIONS[w] for w in rest if w in GLOSS_DIRECTIONS}
        return directions.pop() if len(directions) == 1 else None
    if synset.lexname() in ("verb.motion", "verb.change") and head in GLOSS_CHANGE_VERBS:
        sizes = {GLOSS_SIZES[w] for w in rest if w in GLOSS_SIZES}
        return sizes.pop() if len(sizes) == 1 else None
    return None


def used_most_as(wn, word: str, pos: str) -> bool:
    """Whether WordNet's tagged counts read `word` as part of speech `pos` at least as often as any other
    ("wells" is an adverb's form first, "skins" a noun's: neither is read as a verb)."""
    counts = {p: sum(lemma.count() for lemma in wn.lemmas(word, p)) for p in "nvar"}
    counts["a"] += sum(lemma.count() for lemma in wn.lemmas(word, "s"))
    return counts[pos] >= max(counts.values())


def gloss_verbs(wn, known: set[str]) -> dict[str, str]:
    """New word -> trained form, for every verb of WordNet whose gloss says which motion it is (gloss_meaning),
    in one of the verb's first SENSES senses, where the verb is used most as a verb; inflected like the
    group's first trained verb; a word two meanings reach is left out."""
    reached: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for synset in wn.all_synsets("v"):
        group = gloss_meaning(synset)
        if group is None:
            continue
        trained = GROUPS[group][1][0]
        forms = sorted(w for w in known if inflect_like(trained, trained, w) == w)
        for lemma in synset.lemma_names():
            if (not PLAIN_WORD.fullmatch(lemma) or synset not in wn.synsets(lemma, "v")[:SENSES]
                    or not used_most_as(wn, lemma, "v")):
                continue
            for form in forms:
                word = inflect_like(lemma, trained, form)
                if word and word not in known:
                    reached[word].add((group, form))
    return single_meanings(reached)


def shape_kinds(wn, known: set[str]) -> dict[str, str]:
    """New noun -> trained shape word, for every noun whose most frequent sense is a kind of a kind of a trained
    shape word's noun.shape sense ("dewdrop", a drop, a kind of sphere: "sphere"), where the noun is used most
    as a noun; a noun two shapes reach is left out. (Kinds of the shape senses themselves are the first rules'.)"""
    shape_senses: dict[object, tuple[str, str]] = {}
    for group in SHAPES:
        for trained in GROUPS[group][1]:
            for sense in followed_senses(wn, group, "n", trained):
                if sense.lexname() == "noun.shape":
                    shape_senses.setdefault(sense, (group, trained))
    reached: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for sense, target in shape_senses.items():
        for kind in sense.hyponyms():
            for kind_of_kind in kind.hyponyms():
                for lemma in kind_of_kind.lemma_names():
                    if (PLAIN_WORD.fullmatch(lemma) and lemma not in known
                            and wn.synsets(lemma, "n")[:1] == [kind_of_kind] and used_most_as(wn, lemma, "n")):
                        reached[lemma].add(target)
    return single_meanings(reached)


# Fifth build: kinds of travelling that name no direction, read as the generic "moves" ---------------------
#: The trained verb every direction of the captions is said with ("moves up", "moves to the left"): a kind of
#: travelling that names no direction is read as it, and the prompt's own "left" or "down" says where.
GENERIC_VERB = "move"
#: WordNet's travel sense (travel, go, move, locomote: "change location"), the first sense of the generic verb.
TRAVEL = "travel.v.01"
#: Kinds of travelling that are not going somewhere: circling ("circle: travel around something", "move in
#: circles"), keeping still ("hover: be motionless"), and going with or after someone else (escort, hound).
NOT_TRAVELLING = {"circle.v.01", "circle.v.02", "hover.v.03", "accompany.v.02", "hound.v.01"}
#: Gloss words of turning, circling or stopping: such a verb is not read as going anywhere.
TURN_OR_STOP = re.compile(r"\b(turn|spin|rotat|revolv|gyrat|whirl|twirl|circl|around|loop|motionless|stop|halt|still)")
#: Gloss words of a vertical direction beyond GLOSS_DIRECTIONS ("ski downhill", "reappear on the surface").
VERTICAL = {"downhill", "uphill", "surface", "dive", "fall", "rise", "sink", "descend", "climb"}


def travel_verbs(wn, known: set[str], settled: set[str]) -> dict[str, str]:
    """New word -> a form of the generic trained verb, for every verb whose first sense is a kind of travelling
    (its hypernyms reach WordNet's travel sense, the generic verb's own first sense) and names no direction, where
    the verb is used most as a verb ("hurry": move very fast; "stroll": walk leisurely). Left out: a sense under a
    followed sense of a trained verb of another meaning (kinds of rising, descending, floating or falling are the
    old rules' or none), kinds of NOT_TRAVELLING, glosses of turning, stopping or a vertical direction, words
    `settled` (reached by the earlier rules, chosen or left out) and forms of trained verbs."""
    travel = wn.synset(TRAVEL)
    directed = {sense for group, (parts, lemmas) in GROUPS.items() if "v" in parts and group not in GENERIC
                for lemma in lemmas for sense in followed_senses(wn, group, "v", lemma)}
    forms = sorted(w for w in known if inflect_like(GENERIC_VERB, GENERIC_VERB, w) == w)
    found = {}
    for lemma in sorted({name for synset in wn.all_synsets("v") for name in synset.lemma_names()}):
        if not PLAIN_WORD.fullmatch(lemma) or lemma in TRAINED_VERBS:
            continue
        first = wn.synsets(lemma, "v")[0]
        kinds_of = set(first.closure(lambda s: s.hypernyms())) | {first}
        gloss = set(re.findall(r"[a-z]+", first.definition().lower()))
        if (first.lexname() != "verb.motion" or travel not in kinds_of or kinds_of & directed
                or {s.name() for s in kinds_of} & NOT_TRAVELLING or TURN_OR_STOP.search(first.definition().lower())
                or gloss & (set(GLOSS_DIRECTIONS) | VERTICAL) or not used_most_as(wn, lemma, "v")):
            continue
        words = {form: inflect_like(lemma, GENERIC_VERB, form) for form in forms}
        if any(word in known or word in settled or wn.morphy(word, "v") in TRAINED_VERBS for word in words.values()):
            continue  # the earlier rules' word, or a form of a trained verb, in any of its forms
        found.update({word: form for form, word in words.items()})
    return found


def wordnet_words(wn, known: set[str]) -> tuple[dict[str, str], dict[str, set[str]]]:
    """New word -> trained word, from the followed senses of each group's words; also who reached what."""
    reached: dict[str, set[tuple[str, str]]] = defaultdict(set)  # word -> {(group, trained form)}
    via: dict[str, set[tuple[str, object]]] = defaultdict(set)  # word -> {(group, synset that reached it)}

    def forms_of(lemma: str) -> list[str]:
        return sorted(w for w in known if w == lemma or inflect_like(lemma, lemma, w) == w)

    def reach(lemmas, pos: str, meaning: str, trained_lemma: str, forms: list[str], synset) -> None:
        for lemma in lemmas:
            if not PLAIN_WORD.fullmatch(lemma):
                continue
            for form in forms:
                word = inflect_like(lemma, trained_lemma, form) if pos == "v" else lemma
                if word and word not in known:
                    reached[word].add((meaning, form))
                    via[word].add((meaning, synset))

    hypernyms: dict[object, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))  # synset -> group -> lemmas
    for group, (parts, lemmas) in GROUPS.items():
        for pos, lemma_of_group in ((pos, lemma) for pos in parts for lemma in lemmas):
            group_forms = forms_of(lemma_of_group)
            senses = followed_senses(wn, group, pos, lemma_of_group)
            related = [(sense, group) for sense in senses]
            for sense in senses:
                for near in sense.hyponyms() + (sense.similar_tos() if pos == "a" else []):
                    related.append((near, direction_group(near) if group in GENERIC else group))
                if pos == "v":
                    for hypernym in sense.hypernyms():
                        hypernyms[hypernym][group].add(lemma_of_group)
                # The opposite group's word for WordNet's antonym of the trained verb ("inflate": deflate).
                opposite = OPPOSITES.get(group) if pos == "v" else None
                for antonym in (a for lemma in sense.lemmas() if lemma.name() == lemma_of_group for a in lemma.antonyms()):
                    if opposite:
                        trained = GROUPS[opposite][1][0]
                        reach([antonym.name()], pos, opposite, trained, forms_of(trained), antonym.synset())
            for synset, meaning in related:
                if meaning is None:
                    continue  # a kind of motion going no one way
                if meaning != group:  # "ascend" (travel up) under "move": the direction's own trained word
                    forms = sorted(w for w in known if w in DIRECTION_FORMS[meaning])
                    reach(synset.lemma_names(), pos, meaning, DIRECTION_VERBS[meaning], forms, synset)
                else:
                    reach(synset.lemma_names(), pos, group, lemma_of_group, group_forms, synset)
    # A group's own hypernym: the verb that two or more of its trained words are kinds of, and no other
    # group's ("shrink", "contract" and "dwindle" are kinds of "decrease"; "rise" and "fall" of "travel").
    for hypernym, by_group in hypernyms.items():
        if len(by_group) == 1:
            (group, lemmas_under), = by_group.items()
            if len(lemmas_under) >= 2:
                trained = GROUPS[group][1][0]
                reach(hypernym.lemma_names(), "v", group, trained, forms_of(trained), hypernym)
    chosen = {}
    for word, targets in reached.items():
        meanings = {SAME_MEANING.get(group, group) for group, _ in targets}
        if len(meanings) > 1:
            # Two meanings: the one whose trained word heads the gloss that reached the word ("plunge":
            # drop steeply, a kind of "descend" and of "drop"), when exactly one does.
            named = {SAME_MEANING.get(group, group) for group, synset in via[word]
                     if synset.pos() == "v" and names_group(group, gloss_genus(synset))}
            if len(named) != 1:
                continue
            targets = {(group, form) for group, form in targets if SAME_MEANING.get(group, group) in named}
        # One meaning ("ascending": the verb "up" and the adjective "upward" agree); the first trained form of it.
        chosen[word] = sorted(targets)[0][1]
    return chosen, {w: {g for g, _ in t} for w, t in reached.items()}


def build(out: Path) -> dict:
    known = set(read_encoder_words(MODEL / "text_encoder.safetensors"))
    wn = wordnet_reader()
    x11 = {w: c for w, c in colour_names().items() if w not in known}
    survey = {w: c for w, c in survey_colour_names().items() if w not in known and w not in x11}
    survey = {w: c for w, c in survey.items() if read_as_colour(wn, w)}
    synonyms, reached = wordnet_words(wn, known)
    # A survey name WordNet gives another meaning of the world (a shape, a motion) means neither.
    survey = {w: c for w, c in survey.items() if reached.get(w, set()) <= set(COLOURS)}
    # A form of a trained verb means that verb, never a thing ("drop" is also a small sphere in WordNet).
    synonyms = {w: m for w, m in synonyms.items()
                if wn.morphy(w, "v") not in TRAINED_VERBS or wn.morphy(m, "v") in TRAINED_VERBS}
    words = {w: m for w, m in synonyms.items() if w not in survey}
    words.update(x11)  # a colour's measured RGB decides over WordNet
    words.update(survey)
    # The fourth build's rules add words only: none the rules above reach (chosen, or left out as ambiguous),
    # no colour name; a form of a trained verb is never made a shape.
    glossed = {w: m for w, m in gloss_verbs(wn, known).items() if w not in reached and w not in words}
    kinds = {w: m for w, m in shape_kinds(wn, known).items()
             if w not in reached and w not in words and w not in glossed and wn.morphy(w, "v") not in TRAINED_VERBS}
    words.update(glossed)
    words.update(kinds)
    # The fifth build's rule adds words only, none that any rule above reaches or chose.
    travelling = travel_verbs(wn, known, set(reached) | set(words))
    words.update(travelling)
    words = dict(sorted(Vocabulary(known, {w: (m,) for w, m in words.items()}).lexicon.items()))
    data = {"format": LEXICON_FORMAT, "version": 2,
            "sources": {
                "rgb.txt": {"from": "X11 rgb.txt (Debian x11-common, /usr/share/X11/rgb.txt)",
                            "rule": f"single-word names, CIELAB chroma >= {MIN_CHROMA}, nearest trained colour "
                                    f"within {MAX_COLOUR_DISTANCE}", "words": len(x11)},
                "xkcd": {"from": "the xkcd colour survey's names (matplotlib.colors.XKCD_COLORS)",
                         "rule": "as rgb.txt, for names rgb.txt lacks that WordNet has a colour sense of, does "
                                 "not know, or knows first as a material, plant or food (noun.substance, "
                                 "noun.plant, noun.food), and that WordNet does not give a shape or motion meaning",
                         "words": len(survey)},
                "wordnet": {"from": "WordNet 3.0 (Debian wordnet-base) through nltk's WordNetCorpusReader",
                            "rule": f"lemmas, similar adjectives and direct hyponyms of the first {SENSES} senses "
                                    "of the trained content words (and every noun.shape sense of a shape word), "
                                    "inflected like them; the antonyms of the trained verbs for the opposite verb; "
                                    "the verb two or more trained verbs of one meaning are kinds of; a word of two "
                                    "meanings goes to the one its gloss's head verb names, else it is left out; a form of a "
                                    "trained verb is never made a thing",
                            "words": len(set(synonyms) - set(x11) - set(survey))},
                "wordnet glosses": {"from": "WordNet 3.0, as above",
                                    "rule": "a verb (in one of its first senses, used most as a verb) whose gloss, "
                                            "headed by a trained verb of rising, sinking, falling or shrinking, or by "
                                            "move/go/come/travel with one direction word (up, down, higher, lower), "
                                            "or by make/become/get/grow with size words of one meaning (larger, "
                                            "wider, smaller, narrower), says that motion; inflected like its group's "
                                            "first trained verb; only words the rules above do not reach",
                                    "words": len(glossed)},
                "wordnet shape kinds": {"from": "WordNet 3.0, as above",
                                        "rule": "a noun (used most as a noun) whose most frequent sense is a kind of "
                                                "a kind of a trained shape word's noun.shape sense; only words the "
                                                "rules above do not reach",
                                        "words": len(kinds)},
                "wordnet travel verbs": {"from": "WordNet 3.0, as above",
                                         "rule": "a verb (used most as a verb) whose first sense is a kind of "
                                                 "travelling (travel.v.01) and names no direction, turning, circling "
                                                 "or stopping, and is not under a trained verb of another meaning, "
                                                 "read as the generic move/moves/moving; only words the rules above "
                                                 "do not reach", "words": len(travelling)}},
            "words": {w: " ".join(m) for w, m in words.items()}}
    out.write_text(json.dumps(data, indent=0, sort_keys=False) + "\n", encoding="utf-8")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODEL / "lexicon.json")
    args = parser.parse_args(argv)
    data = build(args.out)
    print(f"{args.out}: {len(data['words'])} words "
          + ", ".join(f"{name} {source['words']}" for name, source in data["sources"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
