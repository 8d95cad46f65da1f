"""Build studio-mini's lexicon: everyday words of its world, each read as the trained words it means.

    python -m lab.lexicon [--out resources/models/studio-mini/lexicon.json]

studio-mini's word-level text encoder knows only the words of its training captions. People write
"a crimson orb ascends" for "a red ball rises"; the lexicon (magi_engine.text.words reads it, the encoder
replaces each lexicon word by its meaning before the layers) makes such words mean what they say.
It is built from two published resources, never from the evaluation's held-out words
(lab/everyday_eval.py), which measure how far these rules reach:

* Colour names with RGB values: X11's rgb.txt (Debian's x11-common, /usr/share/X11/rgb.txt). A
  single-word name goes to the trained colour nearest to it in CIELAB when it is saturated enough
  to be drawn as a colour (chroma >= MIN_CHROMA) and near enough (distance <= MAX_COLOUR_DISTANCE).
* WordNet 3.0 (Debian's wordnet-base, read through nltk's WordNetCorpusReader): the synonyms, the
  similar adjectives and the direct hyponyms (troponyms for verbs) of the first senses of each
  trained content word (colours, shapes, motion verbs, directions, sizes, places), each lemma put in
  the trained word's form ("ascend" as "rises" where the trained word is "rises", "ascending" where
  it is "rising"). A word two trained words of different meanings reach is left out.

A trained word is never redefined; multi-word lemmas, proper nouns and words of two letters or fewer
are skipped. nltk is a lab dependency (`pip install -e ".[lab]"`), not one of the app's.
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
MAX_COLOUR_DISTANCE = 70.0
#: Senses of a trained word followed (WordNet orders senses by frequency).
SENSES = 2

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


def colour_names(path: Path = RGB_TXT) -> dict[str, str]:
    """Single-word colour names of rgb.txt -> the trained colour nearest in CIELAB (saturated ones only)."""
    names = list(COLOURS)
    trained = srgb_to_lab([COLOURS[n] for n in names])
    found = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 4 or line.startswith("!") or not parts[3].isalpha() or not parts[3].islower():
            continue
        lab = srgb_to_lab([int(v) for v in parts[:3]])
        distances = np.linalg.norm(trained - lab, axis=1)
        if np.hypot(lab[1], lab[2]) >= MIN_CHROMA and distances.min() <= MAX_COLOUR_DISTANCE:
            found[parts[3]] = names[int(distances.argmin())]
    return found


def wordnet_words(wn, known: set[str]) -> tuple[dict[str, str], dict[str, set[str]]]:
    """New word -> trained word, from the first senses of each group's words; also who reached what."""
    reached: dict[str, set[tuple[str, str]]] = defaultdict(set)  # word -> {(group, trained form)}
    for group, (parts, lemmas) in GROUPS.items():
        for pos, lemma_of_group in ((pos, lemma) for pos in parts for lemma in lemmas):
            group_forms = [w for w in known if w == lemma_of_group or inflect_like(lemma_of_group, lemma_of_group, w) == w]
            trained_lemma = lemma_of_group
            senses = [s for s in wn.synsets(lemma_of_group, pos) if s.lexname() in LEXNAMES[pos]][:SENSES]
            if pos == "a":
                senses = [s for s in wn.synsets(lemma_of_group, "a") + wn.synsets(lemma_of_group, "s")
                          if s.lexname() in LEXNAMES[pos]][:SENSES]
            if group in COLOURS:  # a colour word's colour senses only ("yellow": cowardly is not one)
                senses = [sense for sense in senses if "colo" in sense.definition()]
            related = [(sense, group) for sense in senses]
            for sense in senses:
                for near in sense.hyponyms() + (sense.similar_tos() if pos == "a" else []):
                    related.append((near, direction_group(near) if group in GENERIC else group))
            for synset, meaning in related:
                if meaning is None:
                    continue  # a kind of motion going no one way
                if meaning != group:  # "ascend" (travel up) under "move": the direction's own trained word
                    trained_lemma, forms = DIRECTION_VERBS[meaning], [w for w in known if w in DIRECTION_FORMS[meaning]]
                else:
                    trained_lemma, forms = lemma_of_group, group_forms
                for lemma in synset.lemma_names():
                    if not re.fullmatch(r"[a-z]{3,}", lemma):
                        continue  # multi-word, capitalised (names) or too short
                    for form in forms:
                        if form not in known:
                            continue
                        word = inflect_like(lemma, trained_lemma, form) if pos == "v" else lemma
                        if word and word not in known:
                            reached[word].add((meaning, form))
    chosen = {}
    for word, targets in reached.items():
        # One meaning ("ascending": the verb "up" and the adjective "upward" agree); the first trained form of it.
        if len({SAME_MEANING.get(group, group) for group, _ in targets}) == 1:
            chosen[word] = sorted(targets)[0][1]
    return chosen, {w: {g for g, _ in t} for w, t in reached.items()}


def build(out: Path) -> dict:
    known = set(read_encoder_words(MODEL / "text_encoder.safetensors"))
    colours = {w: c for w, c in colour_names().items() if w not in known}
    wn = wordnet_reader()
    synonyms, _ = wordnet_words(wn, known)
    words = dict(synonyms)
    words.update(colours)  # a colour's measured RGB decides over WordNet
    words = dict(sorted(Vocabulary(known, {w: (m,) for w, m in words.items()}).lexicon.items()))
    data = {"format": LEXICON_FORMAT, "version": 1,
            "sources": {
                "rgb.txt": {"from": "X11 rgb.txt (Debian x11-common, /usr/share/X11/rgb.txt)",
                            "rule": f"single-word names, CIELAB chroma >= {MIN_CHROMA}, nearest trained colour "
                                    f"within {MAX_COLOUR_DISTANCE}", "words": len(colours)},
                "wordnet": {"from": "WordNet 3.0 (Debian wordnet-base) through nltk's WordNetCorpusReader",
                            "rule": f"lemmas, similar adjectives and direct hyponyms of the first {SENSES} senses "
                                    "of the trained content words, inflected like them; ambiguous words left out",
                            "words": len(set(synonyms) - set(colours))}},
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
