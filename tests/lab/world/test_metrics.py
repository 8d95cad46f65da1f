"""The evaluator's metrics on ground truth: motion judged right on rendered storyboards (through mp4),
wrong motions rejected, continuity ratio about 1 (and large for a jump), PSNR, visibility, i2v."""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
import pytest

from magi_engine.video_io import read_video, write_video
from lab.world import metrics as M
from lab.world.detect import Detector
from lab.world.scene import BACKGROUNDS, CHUNK_FRAMES, MOTIONS, ObjectState, render_frames
from lab.world.storyboard import Storyboard, random_storyboard

SEEDS = range(20_000_000, 20_000_050)  # 50 storyboards x 4 chunks: over 200 chunks


def through_mp4(frames: np.ndarray, path) -> np.ndarray:
    write_video(path, frames, fps=24)
    return read_video(path)


@pytest.fixture(scope="module")
def ground_truth(tmp_path_factory):
    """(board, detections of its mp4) for 50 random held-out-style storyboards."""
    folder = tmp_path_factory.mktemp("gt")
    out = []
    for seed in SEEDS:
        board = random_storyboard(np.random.default_rng(seed), 4)
        frames = through_mp4(board.render(), folder / f"{seed}.mp4")
        out.append((board, Detector(board.background).detect_video(frames)))
    return out


def test_motion_colour_and_shape_right_on_ground_truth(ground_truth):
    scores = [s for board, det in ground_truth for s in M.score_video(board, det)]
    scored = [s for s in scores if s.scored]
    assert len(scored) >= 200 and len(scored) >= 0.97 * len(scores)  # the world hides a few (see report)
    motion = sum(s.motion_ok for s in scored) / len(scored)
    assert motion >= 0.98, [s for s in scored if not s.motion_ok]
    assert sum(s.colour_ok and s.shape_ok for s in scored) / len(scored) >= 0.99
    changed = [s for s in scored if s.motion_changed]
    assert len(changed) > 100 and sum(s.motion_ok for s in changed) / len(changed) >= 0.98
    assert {s.motion for s in scored} == set(MOTIONS)  # every motion was exercised


def test_wrong_motions_are_rejected():
    """On ground-truth states, a chunk is judged to show its own motion and not the opposite one; the
    only overlaps allowed are the physical ones (a fall also moves down, a diagonal has an axis part)."""
    opposite = {"left": "right", "right": "left", "up": "down", "down": "up", "grow": "shrink", "shrink": "grow",
                "up_left": "down_right", "down_right": "up_left", "up_right": "down_left", "down_left": "up_right",
                "still": "left", "fall": "right"}  # a fall may rebound upward, never sideways
    confusions = collections.Counter()
    chunks = 0
    for seed in range(300):
        board = random_storyboard(np.random.default_rng(seed), 4)
        for o, track in enumerate(board.tracks()):
            for c in range(board.num_chunks):
                part = M.Track.of_states(track[c * CHUNK_FRAMES:(c + 1) * CHUNK_FRAMES])
                motion = board.motions[c][o]
                chunks += 1
                assert not M.judge_motion(opposite[motion], part), (seed, c, motion)
                for other in MOTIONS:
                    if other != motion and M.judge_motion(other, part):
                        confusions[motion, other] += 1
    allowed = {("down", "fall"), ("fall", "down"), ("down_left", "fall"), ("down_right", "fall"), ("fall", "still"),
               ("grow", "fall")}
    for (motion, other), count in confusions.items():
        if (motion, other) not in allowed and not (other in motion or motion in other):  # e.g. up_left ~ up
            assert count / chunks < 0.01, (motion, other, count)


def test_judge_needs_detections():
    states = [ObjectState("circle", "red", 40 + 1.6 * t, 60, 15) for t in range(24)]
    track = M.Track.of_states(states)
    assert M.judge_motion("right", track)
    missing = dataclasses.replace(track, found=np.arange(24) < 8)  # found in a third of the frames
    assert not M.judge_motion("right", missing)
    with pytest.raises(ValueError):
        M.judge_motion("spin", track)


def test_continuity_about_one_on_ground_truth_and_large_for_a_jump(ground_truth, tmp_path):
    ratios, into_moving = [], []
    for board, det in ground_truth:
        for o, obj in enumerate(board.objects):
            cont = M.continuity(M.track(det, obj.colour), [m[o] for m in board.motions])
            ratios += cont.ratios
            into_moving += [r for r, c in zip(cont.ratios, range(1, 4)) if board.motions[c][o] in M.TRANSLATING]
    assert 0.5 < np.mean(ratios) < 1.2 and np.mean(np.array(ratios) <= 2) >= 0.97
    assert 0.8 < np.median(into_moving) < 1.25

    # The same storyboard with chunk 2 drawn 30 px to the left: both its boundaries jump.
    motions = (("right",), ("right",), ("still",), ("right",))
    board = Storyboard("white", (ObjectState("circle", "red", 30.0, 60.0, 12.0),), motions)
    tracks = board.tracks()
    shifted = [[dataclasses.replace(s, x=s.x - 30) if 48 <= t < 72 else s for t, s in enumerate(tr)] for tr in tracks]
    for states, lo, hi in ((tracks, 0.0, 1.5), (shifted, 15.0, 25.0)):
        frames = through_mp4(render_frames(BACKGROUNDS["white"], states), tmp_path / "shift.mp4")
        cont = M.continuity(M.track(Detector("white").detect_video(frames), "red"), [m[0] for m in board.motions])
        assert abs(cont.typical - 1.6) < 0.3
        assert lo <= max(cont.ratios[1:]) <= hi, cont


def test_continuity_of_a_still_object_uses_the_floor():
    states = [ObjectState("square", "blue", 50, 50, 14)] * 96
    cont = M.continuity(M.Track.of_states(states), ["still"] * 4)
    assert cont.typical == M.MIN_TYPICAL and cont.ratios == (0.0, 0.0, 0.0)
    jumped = states[:48] + [dataclasses.replace(s, x=53) for s in states[48:]]
    assert M.continuity(M.Track.of_states(jumped), ["still"] * 4).ratios[1] == pytest.approx(3.0)


def test_latent_frame_steps_tell_a_stutter_from_smooth_motion():
    smooth = [ObjectState("circle", "red", 20 + 1.5 * t, 60, 12) for t in range(48)]
    # The same path drawn in steps: each latent frame's four frames in one place, then a 6 px jump.
    stepped = [dataclasses.replace(s, x=20 + 6.0 * (t // 4)) for t, s in enumerate(smooth)]
    for states, across_px, inside_px in ((smooth, 1.5, 1.5), (stepped, 6.0, 0.0)):
        across, inside = M.latent_frame_steps(M.Track.of_states(states), ["right", "right"])
        assert len(across) == 10 and len(inside) == 36  # 47 steps, the chunk boundary (step 23) left out
        assert np.mean(across) == pytest.approx(across_px) and np.mean(inside) == pytest.approx(inside_px)
    # Chunks that do not translate the object are not counted.
    assert M.latent_frame_steps(M.Track.of_states(smooth), ["grow", "still"]) == ([], [])


def test_psnr():
    a = np.full((8, 8, 3), 100, np.uint8)
    assert M.psnr(a, a) == 100.0
    b = a + 5  # MSE 25
    assert M.psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 25))
    noisy = np.clip(a + np.random.default_rng(0).normal(0, 10, a.shape), 0, 255).astype(np.uint8)
    assert 26 < M.psnr(a, noisy) < 30  # sigma 10: about 28 dB


def test_wrong_colour_and_shape_are_caught(tmp_path):
    board = Storyboard("gray", (ObjectState("triangle", "orange", 64.0, 64.0, 16.0),), (("left",), ("still",)))
    tracks = board.tracks()
    wrong_shape = [[dataclasses.replace(s, shape="circle") for s in tracks[0]]]
    wrong_colour = [[dataclasses.replace(s, colour="blue") for s in tracks[0]]]
    for states, colour_ok, shape_ok in ((tracks, True, True), (wrong_shape, True, False), (wrong_colour, False, False)):
        det = Detector("gray").detect_video(render_frames(BACKGROUNDS["gray"], states))
        for score in M.score_video(board, det):
            assert (score.colour_ok, score.shape_ok) == (colour_ok, shape_ok)
            assert score.motion_ok == colour_ok


def test_hidden_objects_are_not_scored():
    # The second object sits right under the first, bigger one for the whole video.
    big, small = ObjectState("square", "red", 64.0, 64.0, 26.0), ObjectState("circle", "blue", 64.0, 64.0, 10.0)
    board = Storyboard("white", (big, small), (("still", "still"),))
    visible = M.visibility(board)
    assert visible[0].min() == 1.0 and visible[1].max() == 0.0
    scores = M.score_video(board, Detector("white").detect_video(board.render()), visible)
    assert [s.scored for s in scores] == [True, False]


def test_i2v_object():
    board = random_storyboard(np.random.default_rng(20_000_007), 1)
    frames = board.render()
    detector = Detector(board.background)
    det = detector.detect_video(frames)
    obj = board.objects[0]
    reference = detector.detect(frames[0]).get(obj.colour)
    chunk0 = M.track(det, obj.colour).window(0, CHUNK_FRAMES)
    assert M.i2v_object(reference, chunk0, board.motions[0][0])["ok"]
    moved = dataclasses.replace(reference, x=reference.x + 10, cx=reference.cx + 10)
    verdict = M.i2v_object(moved, chunk0, board.motions[0][0])
    assert not verdict["ok"] and not verdict["at_reference"] and verdict["distance_px"] == pytest.approx(10, abs=0.5)
    assert not M.i2v_object(None, chunk0, board.motions[0][0])["ok"]


def test_summaries():
    assert M.summarize([]) == {"n": 0}
    s = M.summarize([1, 2, 3, 4])
    assert s["n"] == 4 and s["mean"] == 2.5 and s["min"] == 1 and s["max"] == 4
    assert M.fraction([True, False, True, True]) == 0.75 and M.fraction([]) is None


def test_steady_moves_travel_about_their_storyboards_on_ground_truth(ground_truth):
    moves = M.steady_moves([s for board, det in ground_truth for s in M.score_video(board, det)])
    assert moves["travel_ratio"]["n"] > 50 and 0.95 <= moves["travel_ratio"]["median"] <= 1.05
    assert moves["direction_off_deg"]["median"] < 5


def test_steady_moves_tell_too_little_travel_from_a_wrong_direction():
    board = Storyboard("gray", (ObjectState("circle", "red", 40.0, 64.0, 12.0),), (("right",), ("right",)))
    states = board.tracks()[0]
    # The first chunk moves the right way at half the speed; the second as far, but straight up.
    slow = [dataclasses.replace(s, x=states[0].x + (s.x - states[0].x) / 2) for s in states[:CHUNK_FRAMES]]
    up = [dataclasses.replace(s, x=slow[-1].x, y=slow[-1].y - (s.x - states[CHUNK_FRAMES].x))
          for s in states[CHUNK_FRAMES:]]
    base = render_frames(BACKGROUNDS["gray"], [slow + up])
    scores = M.score_video(board, Detector("gray").detect_video(base))
    assert [s.motion_ok for s in scores] == [True, False]
    moves = M.steady_moves(scores)
    assert moves["travel_ratio"]["min"] == pytest.approx(0.5, abs=0.05)
    assert moves["travel_ratio"]["max"] == pytest.approx(1.0, abs=0.05)
    assert moves["direction_off_deg"]["max"] == pytest.approx(90, abs=3)
    assert moves["direction_off_deg"]["min"] == pytest.approx(0, abs=3)
