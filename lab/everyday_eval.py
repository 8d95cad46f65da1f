"""studio-mini's evaluation on prompts written with everyday words instead of the training captions' words.

    python -m lab.everyday_eval --words heldout --model studio-mini --storyboards 16 --i2v 0 \
        --rollout-chunks 0 --out eval_everyday_heldout
    python -m lab.everyday_eval --words built ...      # words the lexicon build produced

The evaluator (lab.world.evaluate, all its arguments) runs unchanged on its own held-out storyboards
and sentence shapes; only each caption's words are swapped first: every colour word, and each shape and
motion word that has a swap, for one drawn (seeded) from

* `heldout`: HELDOUT below, everyday synonyms written down for this test and never given to the
  lexicon build (lab/lexicon.py reads only rgb.txt and WordNet); whether the lexicon knows them is
  what this measures;
* `built`: the lexicon's own words for the same trained word, the held-out ones left out.

A model folder without lexicon.json reads the same prompts with the swapped words unknown (the
baseline).
"""

from __future__ import annotations

import argparse
import re
import sys

import numpy as np

from engine.text.words import read_lexicon
from lab.world import evaluate
from resources import resource_path

#: Trained word of the held-out captions -> everyday words for it (colours, then shapes, then motions).
HELDOUT: dict[str, tuple[str, ...]] = {
    "red": ("crimson", "scarlet", "ruby", "cherry"), "green": ("emerald", "lime", "jade"),
    "blue": ("navy", "azure", "cobalt", "sapphire"), "yellow": ("golden", "lemon"),
    "purple": ("violet", "lilac", "lavender", "plum", "mauve"), "orange": ("tangerine", "pumpkin"),
    "ball": ("orb", "globe"), "box": ("crate", "brick"), "triangle": ("trigon",),
    "rises": ("ascends", "soars"), "rising": ("ascending", "soaring"),
    "falls": ("plummets", "plunges", "topples"), "falling": ("plummeting", "plunging", "toppling"),
    "grows": ("enlarges", "balloons"), "growing": ("enlarging", "ballooning"),
    "shrinks": ("diminishes", "deflates"), "shrinking": ("diminishing", "deflating"),
}
COLOUR_WORDS = ("red", "green", "blue", "yellow", "purple", "orange")


def built_words(lexicon_path=None) -> dict[str, tuple[str, ...]]:
    """The lexicon's words for each trained word HELDOUT swaps, the held-out words left out."""
    lexicon = read_lexicon(lexicon_path or resource_path("models", "studio-mini", "lexicon.json"))
    held = {w for words in HELDOUT.values() for w in words}
    found: dict[str, list[str]] = {}
    for word, meaning in lexicon.items():
        if len(meaning) == 1 and meaning[0] in HELDOUT and word not in held:
            found.setdefault(meaning[0], []).append(word)
    return {trained: tuple(sorted(words)) for trained, words in found.items()}


def swap_words(caption: str, swaps: dict[str, tuple[str, ...]], rng: np.random.Generator) -> str:
    """Each word of `caption` with swaps replaced by one of them; "a"/"an" made to fit the next word."""
    words = caption.split(" ")
    for i, token in enumerate(words):
        core = re.sub(r"\W", "", token)
        if core.lower() in swaps:
            choice = swaps[core.lower()][rng.integers(len(swaps[core.lower()]))]
            words[i] = token.replace(core, choice.capitalize() if core[:1].isupper() else choice)
    for i in range(len(words) - 1):
        if words[i].lower() in ("a", "an"):
            article = "an" if words[i + 1][:1].lower() in "aeiou" else "a"
            words[i] = article.capitalize() if words[i][:1].isupper() else article
    return " ".join(words)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--words", choices=("heldout", "built"), required=True)
    known, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    swaps = HELDOUT if known.words == "heldout" else built_words()
    original = evaluate.heldout

    def everyday_heldout(seed: int, chunks: int):
        board, captions = original(seed, chunks)
        rng = np.random.default_rng(seed)
        return board, [swap_words(caption, swaps, rng) for caption in captions]

    evaluate.heldout = everyday_heldout
    return evaluate.main(rest)


if __name__ == "__main__":
    sys.exit(main())
