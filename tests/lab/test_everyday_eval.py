"""lab.everyday_eval: shards of one evaluation joined into one result; chunks split by the held-out words known;
the second, third and fourth held-out sets."""

import json

import numpy as np
import pytest

from lab.everyday_eval import (COLOUR_WORDS, HELDOUT, HELDOUT_SETS, HELDOUT_V2, HELDOUT_V3, HELDOUT_V4, built_words,
                               by_known, everyday_words, main, merge, swap_words)
from lab.world.captions import GERUNDS, VERBS
from magi_engine.text.words import model_vocabulary


def chunk(ok: bool) -> dict:
    return {"chunk": 0, "colour": "red", "shape": "circle", "motion": "up", "previous_motion": None, "found": 1.0,
            "observed_shape": "circle", "colour_ok": ok, "shape_ok": ok, "motion_ok": ok, "displacement": [0.0, -5.0],
            "expected_displacement": [0.0, -5.0], "size_ratio": 1.0, "visible": 1.0}


def shard(tmp_path, first: int, oks: list[bool], model="studio-mini"):
    path = tmp_path / f"{first}.json"
    boards = [{"seed": first + i, "prompts": ["a red ball rises"], "chunks": [chunk(ok)]} for i, ok in enumerate(oks)]
    path.write_text(json.dumps({"command": f"python -m lab.world.evaluate --seed {first}", "model": model,
                                "runtime_s": 2.0, "seeds": {"t2v": [first, first + len(oks) - 1]},
                                "storyboards": boards}))
    return path


def test_shards_of_consecutive_seeds_join_into_one_result(tmp_path, capsys):
    paths = [shard(tmp_path, 1002, [True, False]), shard(tmp_path, 1000, [True, True])]
    merged = merge(paths)
    assert [b["seed"] for b in merged["storyboards"]] == [1000, 1001, 1002, 1003]
    assert merged["seeds"]["t2v"] == [1000, 1003] and merged["runtime_s"] == 4.0
    assert merged["t2v"]["chunks"] == 4 and merged["t2v"]["colour"] == 0.75 and merged["t2v"]["motion"] == 0.75
    out = tmp_path / "merged.json"
    assert main(["--merge", str(out), *map(str, paths)]) == 0
    assert json.loads(out.read_text())["t2v"]["shape"] == 1.0  # among the chunks whose colour is right
    assert "4 storyboards, 4 chunks" in capsys.readouterr().out
    # A join joins again with the next shard, keeping every command.
    again = merge([out, shard(tmp_path, 1004, [False])])
    assert again["seeds"]["t2v"] == [1000, 1004] and len(again["commands"]) == 3 and again["t2v"]["chunks"] == 5


def test_a_baseline_copy_in_two_temporary_folders_is_one_model(tmp_path):
    merged = merge([shard(tmp_path, 1000, [True], model="/tmp/everyday-a/studio-mini-no-lexicon"),
                    shard(tmp_path, 1001, [False], model="/tmp/everyday-b/studio-mini-no-lexicon")])
    assert merged["t2v"]["chunks"] == 2


def test_shards_with_a_gap_or_of_two_models_are_refused(tmp_path):
    with pytest.raises(ValueError, match="not consecutive"):
        merge([shard(tmp_path, 1000, [True]), shard(tmp_path, 1002, [True])])
    with pytest.raises(ValueError, match="not consecutive"):
        merge([shard(tmp_path, 1000, [True]), shard(tmp_path, 1001, [True], model="/tmp/other")])


def test_chunks_split_by_whether_a_held_out_word_so_far_is_unknown(tmp_path, capsys):
    vocabulary = model_vocabulary("studio-mini")
    held = [w for words in HELDOUT.values() for w in words]
    known = next(w for w in held if vocabulary.knows(w))
    missing = [w for w in held if not vocabulary.knows(w)]
    if not missing:
        pytest.skip("the lexicon knows every held-out word")

    def at(index: int, ok: bool) -> dict:
        return dict(chunk(ok), chunk=index)

    path = tmp_path / "results.json"
    boards = [  # words outside HELDOUT ("watch") do not count; an unknown one counts for the chunks after it too
        {"seed": 1, "prompts": [f"watch a {known} ball rises", f"the {missing[0]} ball falls", "it rises"],
         "chunks": [at(0, True), at(1, False), at(2, False)]},
        {"seed": 2, "prompts": [f"a {known} ball rises"], "chunks": [at(0, True)]},
    ]
    path.write_text(json.dumps({"storyboards": boards}))
    split = by_known(path)
    assert split["known"]["chunks"] == 2 and split["known"]["colour"] == 1.0
    assert split["unknown"]["chunks"] == 2 and split["unknown"]["colour"] == 0.0
    assert main(["--by-known", str(path)]) == 0
    assert "unknown: 2 chunks: colour 0.0" in capsys.readouterr().out



def test_the_second_held_out_set_is_new_words_swapped_for_words_the_held_out_captions_say():
    vocabulary = model_vocabulary("studio-mini")
    first, second = set(everyday_words(HELDOUT)), set(everyday_words(HELDOUT_V2))
    trained = set(vocabulary.words)
    assert not first & second and not second & trained
    assert set(HELDOUT_V2) <= trained  # keys are trained words of the held-out captions
    assert not second & {w for words in built_words().values() for w in words}  # never a built word's swap
    rng = np.random.default_rng(0)
    assert swap_words("watch the red ball sinking on sand", HELDOUT_V2, rng).split()[2:5] != ["red", "ball", "sinking"]


def test_the_third_held_out_set_is_new_words_for_every_motion_verb_the_held_out_captions_say():
    trained = set(model_vocabulary("studio-mini").words)
    third = set(everyday_words(HELDOUT_V3))
    assert HELDOUT_SETS["heldout3"] is HELDOUT_V3
    assert not third & trained and not third & set(everyday_words(HELDOUT)) and not third & set(everyday_words(HELDOUT_V2))
    assert sum(len(words) for words in HELDOUT_V3.values()) == len(third)  # no word written for two trained words
    said = {w for phrase in [*(p for phrases in VERBS.values() for p in phrases), *GERUNDS.values()] for w in phrase.split()}
    verbs = {"moves", "rolls", "slides", "goes", "drifts", "travels", "heads", "rises", "floats", "climbs", "sinks",
             "descends", "glides", "stays", "rests", "sits", "waits", "remains", "falls", "drops", "bounces", "tumbles",
             "grows", "gets", "expands", "swells", "inflates", "shrinks", "contracts", "dwindles"}
    assert verbs <= said and verbs <= set(HELDOUT_V3)  # every motion verb of the held-out captions has swaps
    assert set(HELDOUT_V3) - set(COLOUR_WORDS) - {"ball", "box", "triangle"} <= said
    rng = np.random.default_rng(0)
    assert swap_words("Over the grass, a red ball drifts left", HELDOUT_V3, rng).split()[-1] == "left"
    assert "drifts" not in swap_words("Over the grass, a red ball drifts left", HELDOUT_V3, rng)


def test_chunks_split_by_the_colour_words_alone_leave_other_unknown_words_on_the_known_side(tmp_path, capsys):
    vocabulary = model_vocabulary("studio-mini")
    colour = [w for trained in COLOUR_WORDS for w in HELDOUT_V2[trained] if not vocabulary.knows(w)]
    other = [w for trained, words in HELDOUT_V2.items() if trained not in COLOUR_WORDS
             for w in words if not vocabulary.knows(w)]
    if not colour or not other:
        pytest.skip("the lexicon knows every colour word or every other word of the second set")
    path = tmp_path / "results.json"
    boards = [{"seed": 1, "prompts": [f"a red {other[0]} rises"], "chunks": [dict(chunk(True), chunk=0)]},
              {"seed": 2, "prompts": [f"a {colour[0]} ball rises"], "chunks": [dict(chunk(False), chunk=0)]}]
    path.write_text(json.dumps({"storyboards": boards}))
    assert by_known(path, words="heldout2")["known"]["chunks"] == 0
    split = by_known(path, words="heldout2", colours_only=True)
    assert split["known"]["colour"] == 1.0 and split["unknown"]["colour"] == 0.0
    assert main(["--by-known", str(path), "--words", "heldout2", "--colours"]) == 0
    assert "known: 1 chunks: colour 1.0" in capsys.readouterr().out


def test_the_fourth_held_out_set_is_new_words_for_the_same_trained_words_as_the_third():
    trained = set(model_vocabulary("studio-mini").words)
    fourth = set(everyday_words(HELDOUT_V4))
    assert HELDOUT_SETS["heldout4"] is HELDOUT_V4
    assert set(HELDOUT_V4) == set(HELDOUT_V3)  # every motion verb of the held-out captions, the colours, the shapes
    assert not fourth & trained
    assert not fourth & set(everyday_words(HELDOUT) + everyday_words(HELDOUT_V2) + everyday_words(HELDOUT_V3))
    assert sum(len(words) for words in HELDOUT_V4.values()) == len(fourth)  # no word written for two trained words
    rng = np.random.default_rng(0)
    swapped = swap_words("Over the grass, a red ball travels leftward", HELDOUT_V4, rng).split()
    assert swapped[-1] == "leftward" and swapped[-2] in HELDOUT_V4["travels"] and swapped[-3] in HELDOUT_V4["ball"]
