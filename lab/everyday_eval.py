"""studio-mini's evaluation on prompts written with everyday words instead of the training captions' words.

    python -m lab.everyday_eval --words heldout --model studio-mini --storyboards 16 --i2v 0 \
        --rollout-chunks 0 --out eval_everyday_heldout
    python -m lab.everyday_eval --words built ...      # words the lexicon build produced

The evaluator (lab.world.evaluate, all its arguments) runs unchanged on its own held-out storyboards
and sentence shapes; only each caption's words are swapped first: every colour word, and each shape and
motion word that has a swap, for one drawn (seeded) from

* `heldout`: HELDOUT below, everyday synonyms written down for this test and never given to the
  lexicon build (lab/lexicon.py reads only rgb.txt, the xkcd survey's names and WordNet); whether the
  lexicon knows them is what this measures (no longer blind: EVAL.md says which rules were made knowing them);
* `heldout2`: HELDOUT_V2, a second set written down blind before a later rule (see its comment);
* `heldout3`: HELDOUT_V3, a third set written down blind before the fourth build's rules (see its comment);
* `heldout4`: HELDOUT_V4, a fourth set written down blind before the fifth build's rule (see its comment);
* `built`: the lexicon's own words for the same trained word, the held-out ones (of both sets) left out.

A model folder without lexicon.json reads the same prompts with the swapped words unknown (the
baseline).

    python -m lab.everyday_eval --coverage benchmarks/results/eval_studio_mini_v7.json

needs no generation: it counts the held-out words (of each set) the lexicon knows, and the everyday prompts that
reach the model exactly as the evaluator's own prompts do (each word read as the same trained word,
so the same tokens, the same seed and the same video); on those the given evaluation's per-chunk
results are the everyday prompts' results.

    python -m lab.everyday_eval --by-known RESULTS.json [--words heldout2] [--model FOLDER] [--colours]

splits a generated evaluation's chunks by the held-out words the model knows: those whose prompt and every
earlier prompt of the storyboard have only known ones, and the rest (an object drawn without its colour word keeps
that colour in the chunks that continue it); `--colours` counts the set's colour words alone, `--model` reads
another folder's lexicon.

    python -m lab.everyday_eval --merge OUT.json SHARD/results.json ...

joins evaluations (or joins of them) of consecutive seed ranges (`--seed 1000 --storyboards 8`, `--seed 1008 ...`: the same
storyboards and swaps as one `--seed 1000 --storyboards 64` run) into one file with the evaluator's
chunk figures recomputed over all of them (benchmarks/run_everyday_eval.sh runs the shards at once).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from magi_engine.text.words import model_vocabulary, read_lexicon, tokenize_words
from lab.world import evaluate
from lab.world import metrics as M
from magi_resources import resource_path

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
#: A second held-out set, blind to the lexicon: written down on 2026-12-07 at 11:28 UTC (issue 22), before the
#: build's colour-name rule for names WordNet knows as things was written, by a helper who had not read
#: lexicon.json, X11's or the xkcd survey's lists or WordNet's entries for any of these words. Procedure: from the
#: helper's own everyday vocabulary, for each trained colour three names people give its shades (a plain shade
#: word, a food or flower, a gem or material; each clearly a shade of that colour alone), for each held-out
#: shape noun the words people type for such an object, and for each motion word of the held-out captions
#: (HELDOUT's and the held-out "-ing" forms "sinking", "heading", "staying") two common verbs of that motion in
#: the same form; every word disjoint from HELDOUT and from the trained words. Its coverage by the lexicon
#: before any rule changed is in the commit that added it (and EVAL.md). The helper knew which kind of word
#: the next rule was for (colour names WordNet knows as things), so the set is blind to the lexicon's
#: contents, not to the gap being worked on.
HELDOUT_V2: dict[str, tuple[str, ...]] = {
    "red": ("vermilion", "strawberry", "garnet"), "green": ("pine", "mint", "moss"),
    "blue": ("ultramarine", "cornflower", "denim"), "yellow": ("canary", "banana", "mustard"),
    "purple": ("orchid", "grape", "eggplant"), "orange": ("apricot", "carrot", "mango"),
    "ball": ("bubble", "marble"), "box": ("carton", "parcel"), "triangle": ("cone",),
    "rises": ("lifts", "levitates"), "rising": ("lifting", "levitating"),
    "falls": ("dives", "collapses"), "falling": ("diving", "collapsing"),
    "grows": ("increases", "widens"), "growing": ("increasing", "widening"),
    "shrinks": ("decreases", "narrows"), "shrinking": ("decreasing", "narrowing"),
    "sinks": ("dips", "lowers"), "sinking": ("dipping", "lowering"),
    "heading": ("shifting", "zooming"), "stays": ("stands", "keeps"), "staying": ("standing", "keeping"),
}
#: A third held-out set, blind to the lexicon: written down on 2026-12-07 at 14:25 UTC (issue 22), before the
#: fourth build's rules (motion verbs read by their gloss, shape nouns by their hypernyms) were written, by a
#: helper who had not read lexicon.json, X11's or the xkcd survey's lists or WordNet's entries for any of these
#: words. Procedure: from the helper's own everyday vocabulary of how people write prompts, for each trained
#: colour three names people give its shades (a plain shade word, a food or flower, a gem or material), for
#: each held-out shape noun three words people type for such an object, and for every motion verb the held-out
#: captions use (lab.world.captions VERBS and the held-out "-ing" forms GERUNDS, not only those HELDOUT_V2
#: swaps) two or three common verbs people write for that motion, in the same form ("-s" or "-ing"; one verb's
#: "-s" and "-ing" forms get the same verbs). Every word is disjoint from the trained words, HELDOUT and
#: HELDOUT_V2, and no verb shares a lemma with theirs ("shifts" is left out for HELDOUT_V2's "shifting").
#: Words EVAL.md already names as the lexicon's (amethyst, burgundy, indigo, bead, crashes, saffron, ...) were
#: left out, so that knowing them chose none of the set's words either way. Its coverage by the lexicon before
#: any rule changed is in the commit that added it (and EVAL.md). The helper knew which kinds of word the next
#: rules were for (motion verbs and shape nouns; the twenty words HELDOUT_V2 still misses), so the set is blind
#: to the lexicon's contents, not to the gap being worked on.
HELDOUT_V3: dict[str, tuple[str, ...]] = {
    "red": ("maroon", "tomato", "cranberry"), "green": ("sage", "forest", "pistachio"),
    "blue": ("cerulean", "blueberry", "lapis"), "yellow": ("gold", "sunflower", "butter"),
    "purple": ("aubergine", "iris", "blackberry"), "orange": ("clementine", "papaya", "amber"),
    "ball": ("pearl", "balloon", "coin"), "box": ("package", "chest", "slab"),
    "triangle": ("prism", "arrowhead", "spike"),
    "moves": ("scoots", "wanders", "advances"), "rolls": ("spins", "trundles", "wheels"),
    "slides": ("skids", "slips", "skates"), "goes": ("runs", "hurries", "speeds"),
    "drifts": ("coasts", "wafts", "sails"), "drifting": ("coasting", "wafting", "sailing"),
    "travels": ("journeys", "roams", "cruises"), "heads": ("veers", "steers", "marches"),
    "heading": ("darting", "racing", "sweeping"),
    "rises": ("rockets", "surges", "mounts"), "rising": ("rocketing", "surging", "mounting"),
    "floats": ("hovers", "bobs", "flutters"), "climbs": ("clambers", "scrambles"),
    "sinks": ("settles", "sags", "droops"), "sinking": ("settling", "sagging", "drooping"),
    "descends": ("declines", "alights"), "glides": ("swoops", "skims"),
    "stays": ("lingers", "halts", "pauses"), "staying": ("lingering", "halting", "pausing"),
    "rests": ("lies", "lounges", "idles"), "sits": ("perches", "squats"),
    "waits": ("freezes", "holds", "hesitates"), "remains": ("persists", "dwells"),
    "falls": ("slumps", "tips", "flops"), "falling": ("slumping", "tipping", "flopping"),
    "drops": ("plops", "thuds", "lands"), "bounces": ("rebounds", "hops", "springs"),
    "tumbles": ("spills", "cascades", "somersaults"),
    "grows": ("magnifies", "bulges", "blooms"), "growing": ("magnifying", "bulging", "blooming"),
    "gets": ("becomes", "turns"), "expands": ("stretches", "spreads", "extends"),
    "swells": ("bloats", "fattens", "puffs"), "inflates": ("fills", "pumps"),
    "shrinks": ("compresses", "condenses", "recedes"), "shrinking": ("compressing", "condensing", "receding"),
    "contracts": ("tightens", "squeezes", "shrivels"), "dwindles": ("fades", "wanes", "tapers"),
}
#: A fourth held-out set, blind to the lexicon: written down on 2026-12-07 by 15:52 UTC (issue 22), before the
#: fifth build's rule (motion verbs that name no direction read as the trained generic motion verb) was written, by
#: a helper who had not read lexicon.json, X11's or the xkcd survey's lists, WordNet's entries for any of these
#: words, EVAL.md's lists of unknown words, or HELDOUT_V3's words (only its keys and comment; a few of its colour,
#: shape and last motion words were seen while reading its format). Procedure: the same keys as HELDOUT_V3 (every
#: motion verb of the held-out captions, "-s" and "-ing" forms alike, the six colours, the three shape nouns), for
#: each two or three words from the helper's own everyday vocabulary of how people write prompts; then mechanically,
#: every word that is a trained word or a word of HELDOUT, HELDOUT_V2 or HELDOUT_V3, or shares a verb's lemma with
#: one of theirs, was dropped (75 of 136 first written; most of the motion verbs collided with HELDOUT_V3's), the
#: thinned keys got a second round of 58 words from the same vocabulary, checked and dropped the same way (11), and
#: "dwelling" was dropped by hand ("dwells" had collided): 107 words, some keys with one. The helper knew the next
#: rule was for motion verbs of travel (the set has them, and also verbs of turning, stopping and changing size it
#: must not take), so the set is blind to the lexicon's contents, not to the gap being worked on.
HELDOUT_V4: dict[str, tuple[str, ...]] = {
    "red": ("carmine", "wine"), "green": ("olive", "malachite"), "blue": ("cyan", "periwinkle"),
    "yellow": ("buttercup", "daffodil", "citrine"), "purple": ("mulberry", "wisteria", "heather"),
    "orange": ("marigold", "copper"),
    "ball": ("pellet", "bauble"), "box": ("case", "container", "trunk"), "triangle": ("delta", "pennant"),
    "moves": ("proceeds", "migrates"), "rolls": ("revolves", "rotates"), "slides": ("slithers", "shuffles"),
    "goes": ("ventures", "passes", "departs"), "drifts": ("meanders", "strays"), "drifting": ("meandering", "straying"),
    "travels": ("treks", "voyages"), "heads": ("swings", "cuts", "bends"), "heading": ("swinging", "cutting", "bending"),
    "rises": ("shoots", "emerges", "elevates"), "rising": ("shooting", "emerging", "elevating"),
    "floats": ("hangs",), "climbs": ("scales", "creeps"), "sinks": ("subsides", "submerges"),
    "sinking": ("subsiding", "submerging"), "descends": ("comes", "slopes"), "glides": ("flies",),
    "stays": ("sticks", "lasts"), "staying": ("sticking", "lasting"), "rests": ("reposes", "relaxes", "sleeps"),
    "sits": ("lays", "nests", "hunkers"), "waits": ("stops", "stalls"), "remains": ("endures", "abides", "continues"),
    "falls": ("nosedives",), "falling": ("nosediving",), "drops": ("plunks", "dribbles"),
    "bounces": ("jumps", "leaps", "ricochets"), "tumbles": ("flips", "cartwheels"),
    "grows": ("broadens", "sprouts"), "growing": ("broadening", "sprouting"), "gets": ("looks", "appears"),
    "expands": ("amplifies", "unfolds", "dilates"), "swells": ("billows", "mushrooms"), "inflates": ("distends", "bulks"),
    "shrinks": ("reduces", "lessens", "withers"), "shrinking": ("reducing", "lessening", "withering"),
    "contracts": ("constricts", "crumples", "retracts"), "dwindles": ("ebbs", "dissipates", "vanishes"),
}
#: The held-out sets by name (--words).
HELDOUT_SETS = {"heldout": HELDOUT, "heldout2": HELDOUT_V2, "heldout3": HELDOUT_V3, "heldout4": HELDOUT_V4}
COLOUR_WORDS = ("red", "green", "blue", "yellow", "purple", "orange")


def everyday_words(swaps: dict[str, tuple[str, ...]]) -> list[str]:
    """The everyday words of a set of swaps, sorted."""
    return sorted({w for words in swaps.values() for w in words})


def built_words(lexicon_path=None) -> dict[str, tuple[str, ...]]:
    """The lexicon's words for each trained word HELDOUT swaps, the words of every held-out set left out."""
    lexicon = read_lexicon(lexicon_path or resource_path("models", "studio-mini", "lexicon.json"))
    held = {w for swaps in HELDOUT_SETS.values() for w in everyday_words(swaps)}
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


def coverage(results: Path, model: str = "studio-mini") -> dict:
    """Held-out words known, and the prompts read exactly as the evaluation's own (see the module text)."""
    vocabulary = model_vocabulary(model)

    def reads(prompt: str) -> tuple[str, ...]:
        return tuple(m for w in tokenize_words(prompt) for m in (vocabulary.meaning(w) or ("<unk>",)))

    report = {}
    for name, swaps in HELDOUT_SETS.items():
        held = everyday_words(swaps)
        report.update({f"{name}_words": len(held), f"{name}_words_known": sum(vocabulary.knows(w) for w in held),
                       f"{name}_words_unknown": [w for w in held if not vocabulary.knows(w)]})
    boards = [b for b in json.loads(Path(results).read_text())["storyboards"] if len(b["prompts"]) > 1
              and b["seed"] < evaluate.HELDOUT_SEED + 100_000]  # the text-to-video storyboards
    for name, swaps in (*HELDOUT_SETS.items(), ("built", built_words())):
        same, chunks = 0, []
        for board in boards:
            rng = np.random.default_rng(board["seed"])
            for index, prompt in enumerate(board["prompts"]):
                if reads(prompt) == reads(swap_words(prompt, swaps, rng)):
                    same += 1
                    chunks += [c for c in board["chunks"] if c["chunk"] == index]

        def rate(key: str) -> float:
            return round(float(np.mean([c[key] for c in chunks if c.get(key) is not None])), 4)

        report[name] = {"prompts": sum(len(b["prompts"]) for b in boards), "read_as_evaluated": same,
                        "chunks": len(chunks), "colour": rate("colour_ok"), "shape": rate("shape_ok"),
                        "motion": rate("motion_ok")}
    return report


def by_known(results: Path, model: str = "studio-mini", words: str = "heldout", colours_only: bool = False) -> dict:
    """The evaluator's chunk figures over chunks whose prompts so far have only held-out words (of the set
    `words`; with `colours_only` its colour words alone) the model knows, and over the rest (words outside the
    set, "watch", "on", ..., carry no colour, shape or motion)."""
    vocabulary = model_vocabulary(model)
    swaps = HELDOUT_SETS[words]
    if colours_only:
        swaps = {trained: options for trained, options in swaps.items() if trained in COLOUR_WORDS}
    unknown = {w for w in everyday_words(swaps) if not vocabulary.knows(w)}
    groups: dict[str, list] = {"known": [], "unknown": []}
    for board in json.loads(Path(results).read_text())["storyboards"]:
        unknown_so_far = False
        for index, prompt in enumerate(board["prompts"]):
            unknown_so_far = unknown_so_far or bool(unknown.intersection(tokenize_words(prompt)))
            groups["unknown" if unknown_so_far else "known"] += [
                M.ChunkScore(**c) for c in board["chunks"] if c["chunk"] == index]
    return {name: M.chunk_summary(scores) for name, scores in groups.items()}


def merge(shards: list[Path]) -> dict:
    """One result of text-to-video evaluations of consecutive seed ranges: the storyboards of all, and
    the evaluator's chunk figures (lab.world.metrics.chunk_summary) over all their chunks."""
    runs = sorted((json.loads(Path(path).read_text()) for path in shards), key=lambda r: r["seeds"]["t2v"][0])
    for before, after in zip(runs, runs[1:]):
        # One model: the same name (a baseline copy lives in each run's own temporary folder).
        if after["seeds"]["t2v"][0] != before["seeds"]["t2v"][1] + 1 or Path(after["model"]).name != Path(before["model"]).name:
            raise ValueError(f"shards are not consecutive runs of one model: {before['seeds']['t2v']} "
                             f"({before['model']}), then {after['seeds']['t2v']} ({after['model']})")
    boards = [board for run in runs for board in run["storyboards"]]
    scores = [M.ChunkScore(**chunk) for board in boards for chunk in board["chunks"]]
    commands = [command for run in runs for command in run.get("commands", [run.get("command")])]
    return {"commands": commands, "model": runs[0]["model"],
            "runtime_s": round(sum(run["runtime_s"] for run in runs), 1),
            "seeds": {"t2v": [runs[0]["seeds"]["t2v"][0], runs[-1]["seeds"]["t2v"][1]]},
            "t2v": M.chunk_summary(scores), "storyboards": boards}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--coverage"]:
        print(json.dumps(coverage(Path(argv[1])), indent=1))
        return 0
    if argv[:1] == ["--by-known"]:
        parser = argparse.ArgumentParser(prog="python -m lab.everyday_eval --by-known")
        parser.add_argument("results", type=Path)
        parser.add_argument("--words", choices=tuple(HELDOUT_SETS), default="heldout")
        parser.add_argument("--model", default="studio-mini", help="whose vocabulary says which words are known")
        parser.add_argument("--colours", action="store_true", help="split by the set's colour words alone")
        split = parser.parse_args(argv[1:])
        for name, figures in by_known(split.results, split.model, split.words, split.colours).items():
            print(f"{name}: {figures['chunks']} chunks: colour {figures['colour']}, shape {figures['shape']}, "
                  f"motion {figures['motion']}")
        return 0
    if argv[:1] == ["--merge"]:
        merged = merge([Path(p) for p in argv[2:]])
        Path(argv[1]).write_text(json.dumps(merged, indent=1, default=float))
        figures = merged["t2v"]
        print(f"{argv[1]}: {len(merged['storyboards'])} storyboards, {figures['chunks']} chunks: colour "
              f"{figures['colour']}, shape {figures['shape']}, motion {figures['motion']}")
        return 0
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--words", choices=(*HELDOUT_SETS, "built"), required=True)
    known, rest = parser.parse_known_args(argv)
    swaps = HELDOUT_SETS[known.words] if known.words in HELDOUT_SETS else built_words()
    original = evaluate.heldout

    def everyday_heldout(seed: int, chunks: int):
        board, captions = original(seed, chunks)
        rng = np.random.default_rng(seed)
        return board, [swap_words(caption, swaps, rng) for caption in captions]

    evaluate.heldout = everyday_heldout
    return evaluate.main(rest)


if __name__ == "__main__":
    sys.exit(main())
