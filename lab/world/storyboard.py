"""Random storyboards of the procedural world: a scene plus one motion per object per chunk.

Motions are drawn only when they are visible from the object's current state (a "left" chunk for an
object already at the left wall would show nothing), so every chunk's caption is true of its frames.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from lab.world.scene import (BACKGROUNDS, CHUNK_FRAMES, CLASHES, COLOURS, DIAGONALS, MAX_SIZE, MIN_SIZE, MOTIONS,
                                SHAPES, SIZE, ObjectState, render_frames, simulate_chunk)

#: How far (px) a chunk's motion must visibly move the object to count as feasible.
MIN_TRAVEL = 14.0


@dataclass(frozen=True)
class Storyboard:
    background: str
    objects: tuple[ObjectState, ...]  # state before the first frame
    motions: tuple[tuple[str, ...], ...]  # [chunk][object]

    @property
    def num_chunks(self) -> int:
        return len(self.motions)

    def tracks(self) -> list[list[ObjectState]]:
        """Per object, the state of every frame of the whole storyboard."""
        tracks = []
        for o, state in enumerate(self.objects):
            track: list[ObjectState] = []
            for chunk in self.motions:
                track += simulate_chunk(track[-1] if track else state, chunk[o])
            tracks.append(track)
        return tracks

    def render(self) -> np.ndarray:
        """uint8 [chunks · 24, 128, 128, 3]."""
        return render_frames(BACKGROUNDS[self.background], self.tracks())


def visible(state: ObjectState, motion: str) -> bool:
    """Whether `motion`, simulated from `state`, shows clearly within one chunk."""
    frames = simulate_chunk(state, motion)
    end = frames[-1]
    dx, dy = end.x - state.x, end.y - state.y
    if motion == "still":
        return True
    if motion == "grow":
        return end.size > state.size * 1.2
    if motion == "shrink":
        return end.size < state.size / 1.2
    if motion == "fall":
        # A visible descent, or a real bounce: down onto the floor and back up by a few pixels.
        ys = [state.y] + [f.y for f in frames]
        lowest = max(range(len(ys)), key=ys.__getitem__)
        descent = ys[lowest] - min(ys[: lowest + 1])
        rebound = ys[lowest] - min(ys[lowest:])
        return descent > MIN_TRAVEL or (descent > 4.0 and rebound > 4.0)
    want_x = -1 if "left" in motion else 1 if "right" in motion else 0
    want_y = -1 if motion.startswith("up") else 1 if motion.startswith("down") else 0
    if motion in DIAGONALS:
        # Both components, and within 22.5 degrees of the diagonal (not a slide along a wall).
        along_x, along_y = dx * want_x, dy * want_y
        return along_x > MIN_TRAVEL * 0.6 and along_y > MIN_TRAVEL * 0.6 and 0.41 < along_y / along_x < 2.41
    return dx * want_x + dy * want_y > MIN_TRAVEL


def apart(a: list[ObjectState], b: list[ObjectState]) -> bool:
    """Whether two objects stay clear of each other over a chunk (neither hides the other)."""
    return all(math.hypot(p.x - q.x, p.y - q.y) > 0.8 * (p.size + q.size) for p, q in zip(a, b))


def random_object(rng: np.random.Generator, colour: str, avoid: tuple[ObjectState, ...] = ()) -> ObjectState:
    size = float(rng.uniform(12.0, 22.0))
    for _ in range(50):
        x, y = (float(v) for v in rng.uniform(size + 4, SIZE - size - 4, size=2))
        if all(abs(x - o.x) > o.size + size or abs(y - o.y) > o.size + size for o in avoid):
            break
    return ObjectState(shape=SHAPES[rng.integers(len(SHAPES))], colour=colour, x=x, y=y, size=size)


def random_storyboard(rng: np.random.Generator, num_chunks: int, *, two_objects: float = 0.25,
                      still_weight: float = 0.6) -> Storyboard:
    background = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    palette = [c for c in COLOURS if (c, background) not in CLASHES]
    count = 2 if rng.random() < two_objects else 1
    colours = rng.choice(palette, size=count, replace=False)
    objects: tuple[ObjectState, ...] = ()
    for colour in colours:
        objects += (random_object(rng, str(colour), objects),)
    if count == 2 and objects[0].shape == objects[1].shape:
        # Two objects differ in shape too, so captions and the evaluator can tell them apart.
        other = [s for s in SHAPES if s != objects[0].shape]
        objects = (objects[0], dataclasses.replace(objects[1], shape=other[rng.integers(len(other))]))

    weights = np.array([still_weight if m == "still" else 1.0 for m in MOTIONS])
    states = list(objects)
    motions = []
    for _ in range(num_chunks):
        chunk, tracks = [], []
        for o, state in enumerate(states):
            order = rng.choice(len(MOTIONS), size=len(MOTIONS), replace=False, p=weights / weights.sum())
            candidates = [MOTIONS[i] for i in order if visible(state, MOTIONS[i])]
            motion, track = candidates[0], simulate_chunk(state, candidates[0])
            for option in candidates:  # the second object keeps clear of the first when it can
                option_track = simulate_chunk(state, option)
                if not tracks or apart(tracks[0], option_track):
                    motion, track = option, option_track
                    break
            chunk.append(motion)
            tracks.append(track)
            states[o] = track[-1]
        motions.append(tuple(chunk))
    return Storyboard(background, objects, tuple(motions))


def storyboard_frames(board: Storyboard, chunk: int) -> slice:
    return slice(chunk * CHUNK_FRAMES, (chunk + 1) * CHUNK_FRAMES)


__all__ = ["Storyboard", "random_storyboard", "random_object", "visible", "storyboard_frames", "MIN_SIZE", "MAX_SIZE"]
