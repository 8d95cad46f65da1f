"""The procedural world itself: seeded determinism, feasible motions, state continuous across chunk
boundaries, captions that name the right colour and shape, held-out captions never seen in training."""

from __future__ import annotations

import numpy as np

from lab.world.captions import NOUNS, PLACES, storyboard_captions
from lab.world.scene import (BACKGROUNDS, CHUNK_FRAMES, CLASHES, COLOURS, GRAVITY, MAX_SIZE, MIN_SIZE, SIZE,
                                simulate_chunk)
from lab.world.storyboard import random_storyboard, visible

SEEDS = range(200)


def boards(seeds=SEEDS, chunks: int = 4):
    return [(seed, random_storyboard(np.random.default_rng(seed), chunks)) for seed in seeds]


def test_deterministic_from_a_seed():
    for seed in (0, 7, 10_000_123):
        a, b = (random_storyboard(np.random.default_rng(seed), 4) for _ in range(2))
        assert a == b
        assert np.array_equal(a.render(), b.render())
        assert storyboard_captions(a, seed) == storyboard_captions(b, seed)
        assert storyboard_captions(a, seed, heldout=True) == storyboard_captions(b, seed, heldout=True)
    assert random_storyboard(np.random.default_rng(1), 4) != random_storyboard(np.random.default_rng(2), 4)


def test_render_shape_and_scene_rules():
    for seed, board in boards(range(40)):
        frames = board.render()
        assert frames.shape == (4 * CHUNK_FRAMES, SIZE, SIZE, 3) and frames.dtype == np.uint8
        assert board.background in BACKGROUNDS and 1 <= len(board.objects) <= 2
        colours = [o.colour for o in board.objects]
        assert len(set(colours)) == len(colours) and all(c in COLOURS for c in colours)
        assert not any((c, board.background) in CLASHES for c in colours)
        if len(board.objects) == 2:
            assert board.objects[0].shape != board.objects[1].shape


def test_every_chunk_motion_is_feasible():
    """Each chunk's motion is visible from the state the object is in when the chunk starts."""
    for seed, board in boards():
        for o, track in enumerate(board.tracks()):
            for c in range(board.num_chunks):
                before = board.objects[o] if c == 0 else track[c * CHUNK_FRAMES - 1]
                assert visible(before, board.motions[c][o]), (seed, c, board.motions[c][o])


def test_state_is_continuous_across_chunk_boundaries():
    for seed, board in boards():
        for track in board.tracks():
            xs, ys = np.array([s.x for s in track]), np.array([s.y for s in track])
            sizes = np.array([s.size for s in track])
            steps = np.hypot(np.diff(xs), np.diff(ys))
            # One frame's step of the fastest motion (a fall from the top: v² = 2·g·h) bounds every step,
            # the ones across a chunk boundary included: no chunk restarts the object somewhere else.
            assert steps.max() <= np.sqrt(2 * GRAVITY * SIZE) + 1.0, seed
            assert np.abs(np.diff(sizes) / sizes[:-1]).max() < 0.02
            for b in range(CHUNK_FRAMES - 1, len(steps), CHUNK_FRAMES):
                # The first frame of a chunk is one step of the new motion after the last of the previous.
                assert steps[b] <= 8.5
            assert xs.min() >= sizes.min() - 1e-6 and (xs + sizes).max() <= SIZE - 1 + 1e-6
            assert ((ys + sizes) <= SIZE - 1 + 1e-6).all()
            assert sizes.min() >= MIN_SIZE - 1e-6 and sizes.max() <= MAX_SIZE + 1e-6


def test_chunks_simulated_separately_join_up():
    board = random_storyboard(np.random.default_rng(5), 3)
    state, joined = board.objects[0], []
    for chunk in board.motions:
        joined += simulate_chunk(joined[-1] if joined else state, chunk[0])
    assert joined == board.tracks()[0]


def test_captions_name_the_colour_and_shape_of_every_object():
    for seed, board in boards():
        for heldout in (False, True):
            for text in storyboard_captions(board, seed, heldout=heldout):
                # Place phrases may hold a colour word of their own ("in the blue sky", "over green grass").
                plain = text.lower()
                for phrase in PLACES[board.background]:
                    plain = plain.replace(phrase.lower(), " ")
                words = plain.replace(",", " ").split()
                for obj in board.objects:
                    assert obj.colour in words, (text, obj)
                    assert any(noun in words for noun in NOUNS[obj.shape]), (text, obj)
                others = set(COLOURS) - {o.colour for o in board.objects}
                assert not others & set(words), text


def test_heldout_captions_never_equal_a_training_caption_of_the_chunk():
    """Over many caption seeds, no training caption of a chunk equals its held-out caption."""
    for seed, board in boards(range(10_000_000, 10_000_030)):
        heldout = storyboard_captions(board, seed, heldout=True)
        tracks = board.tracks()
        training = [set() for _ in heldout]
        for caption_seed in range(200):
            for c, text in enumerate(storyboard_captions(board, caption_seed, tracks=tracks)):
                training[c].add(text)
        for c, text in enumerate(heldout):
            assert text not in training[c], (seed, c, text)


def test_training_captions_use_every_vocabulary_word_and_heldout_prompts_only_those_and_watch():
    """A vocabulary word no training caption says keeps its random embedding (the held-out "-ing" forms
    were such words until v5), so the vocabulary is exactly what training says, and held-out prompts
    use only those words but the "watch" of their sentence shape."""
    from magi_engine.text.tiny import SPECIAL_WORDS, tokenize_words
    from lab.training.studio_mini import text_config

    vocabulary = set(text_config().vocab) - set(SPECIAL_WORDS)
    said, heldout_words = set(), set()
    for seed, board in boards(range(400)):
        tracks = board.tracks()
        for caption_seed in range(4):
            for text in storyboard_captions(board, seed * 4 + caption_seed, tracks=tracks):
                said |= set(tokenize_words(text))
    for seed, board in boards(range(10_000_000, 10_000_200)):
        for text in storyboard_captions(board, seed, heldout=True):
            heldout_words |= set(tokenize_words(text))
    assert said == vocabulary
    assert heldout_words - vocabulary == {"watch"}
