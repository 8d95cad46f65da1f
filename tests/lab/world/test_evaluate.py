"""The evaluator script end to end: --ground-truth on a few storyboards (every target passes), and the
command-line path on a tiny random model (plumbing: its scores are near chance)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lab.world import evaluate
from lab.world.captions import storyboard_captions
from lab.world.storyboard import random_storyboard

KEYS = {"command", "runtime_s", "mode", "model", "settings", "seeds", "t2v", "i2v", "rollout", "storyboards",
        "thresholds", "targets"}
CHUNK_KEYS = {"chunks", "hidden_by_storyboard", "colour", "shape", "colour_shape", "motion", "motion_changed",
              "motion_changed_chunks", "motion_by_prompt", "steady_moves"}


def test_ground_truth_mode(tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["--ground-truth", "--storyboards", "4", "--i2v", "2", "--rollout-chunks", "12", "--out", str(out)]
    assert evaluate.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert KEYS <= set(results) and results["mode"] == "ground-truth"
    assert CHUNK_KEYS <= set(results["t2v"]) and CHUNK_KEYS <= set(results["i2v"])
    continuity_keys = {"ratio", "mean_ratio", "within_2", "ratio_into_moving_chunks", "typical_px"}
    assert continuity_keys <= set(results["t2v"]["continuity"])
    assert {"psnr_db", "psnr_at_least_25", "object_at_reference", "object_moves"} <= set(results["i2v"])
    assert {"detected", "memory", "motion", "continuity"} <= set(results["rollout"])
    assert len(results["rollout"]["memory"]["peak_mib_per_chunk"]) == 12
    rollout_board = results["storyboards"][-1]  # its length in chunks of video, scored once per object
    assert results["rollout"]["chunks"] == 12
    assert results["rollout"]["object_chunks"] == 12 * len(rollout_board["objects"])
    assert results["seeds"]["t2v"][0] >= evaluate.HELDOUT_SEED > 1_000_000
    # Ground truth passes every target: the detector and thresholds are sound.
    targets = [row for row in results["targets"] if row["target"]]
    assert len(targets) == 8 and all(row["pass"] for row in targets), targets
    assert results["t2v"]["motion"] >= 0.95 and results["i2v"]["psnr_db"]["mean"] > 30
    assert 0.9 <= results["t2v"]["steady_moves"]["travel_ratio"]["median"] <= 1.1
    # Prompts are the held-out captions of the held-out storyboards.
    first = results["storyboards"][0]
    board = random_storyboard(np.random.default_rng(first["seed"]), 4)
    assert first["prompts"] == storyboard_captions(board, first["seed"], heldout=True)
    assert len(results["storyboards"]) == 4 + 2 + 1 and "i2v" in results["storyboards"][4]
    report = (out / "EVAL.md").read_text()
    assert results["command"] in report and "| Figure | Value | Target | Pass |" in report and "FAIL" not in report
    assert "| Motion right (chunks) |" in capsys.readouterr().out


def test_memory_figures():
    flat = evaluate.memory_figures([900.0] * 5 + [1000.0 + (i % 3) for i in range(55)])
    assert flat["flat"] and flat["chunk10_mib"] == 1001.0 and flat["growth_mib"] == 1.0
    assert abs(flat["slope_mib_per_chunk"]) < 0.1
    growing = evaluate.memory_figures([1000.0 + 5 * i for i in range(60)])
    assert not growing["flat"] and growing["slope_mib_per_chunk"] == pytest.approx(5.0)
    assert "flat" not in evaluate.memory_figures([1.0, 2.0])  # fewer than 10 chunks: nothing to judge


def test_arguments():
    args = evaluate.parse_args(["--ground-truth"])
    assert (args.storyboards, args.chunks, args.seed, args.rollout_chunks, args.i2v) == (64, 4, 1000, 60, 32)
    for bad in (["--ground-truth", "--seed", "-1"], ["--ground-truth", "--chunks", "0"], []):
        with pytest.raises(SystemExit):
            evaluate.parse_args(bad)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from magi_engine.bundle import save_native_bundle
    from tests.engine.factories import tiny_bundle

    folder = tmp_path_factory.mktemp("tiny-model")
    save_native_bundle(tiny_bundle(), folder)
    return folder


@pytest.mark.slow
def test_model_mode_through_the_command_line(tiny_model, tmp_path):
    out = tmp_path / "eval"
    argv = ["--model", str(tiny_model), "--storyboards", "1", "--chunks", "2", "--steps", "4", "--i2v", "1",
            "--i2v-chunks", "1", "--rollout-chunks", "2", "--device", "cpu", "--out", str(out), "--keep-videos"]
    assert evaluate.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["mode"] == "model" and results["model"] == str(tiny_model)
    assert results["t2v"]["chunks"] + results["t2v"]["hidden_by_storyboard"] >= 2
    for figure in ("colour", "colour_shape", "motion"):
        assert 0.0 <= results["t2v"][figure] <= 1.0  # noise: near chance, but measured
    assert results["t2v"]["shape"] is None or 0.0 <= results["t2v"]["shape"] <= 1.0  # None: colour never found
    assert 0 <= results["i2v"]["psnr_db"]["mean"] < 100
    memory = results["rollout"]["memory"]["peak_mib_per_chunk"]
    assert len(memory) == 2 and all(m > 50 for m in memory)  # the generator's own RSS, per chunk
    videos = sorted(p.name for p in (out / "videos").iterdir())
    assert any(v.startswith("t2v_") and v.endswith(".mp4") for v in videos)
    assert any(v.startswith("i2v_") and v.endswith(".png") for v in videos)
    assert "| Motion right (chunks) |" in (out / "EVAL.md").read_text()


def test_a_failing_generation_is_reported(tmp_path):
    args = evaluate.parse_args(["--model", str(tmp_path / "no-such-model"), "--out", str(tmp_path)])
    with pytest.raises(RuntimeError, match="magi-studio generate failed"):
        evaluate.generate_video(args, ["a red ball falls"], 10_000_000, tmp_path / "x.mp4")


def test_diagnostics_resume_only_from_a_whole_video(tmp_path):
    board, _ = evaluate.heldout(evaluate.HELDOUT_SEED + 1000, 2)
    path = tmp_path / "t2v.mp4"
    assert not evaluate.complete_video(path, 2)
    evaluate.render_video(board, path)
    assert evaluate.complete_video(path, 2) and not evaluate.complete_video(path, 3)
    args = evaluate.diagnostic_parser("x", storyboards=16).parse_args(["--out", str(tmp_path)])
    assert (args.model, args.storyboards, args.device, args.steps, args.guidance) == ("studio-mini", 16, "cpu", None, None)
