"""The procedural world studio-mini is trained on: objects, backgrounds, motions and their physics.

A scene is one or two flat-coloured objects (circle, square or triangle) over a background (a plain
colour, a vertical gradient, or a soft texture). A storyboard gives every 24-frame chunk a motion per
object; the object's state (position, velocity, size) carries across chunk boundaries, so a
storyboard renders as one continuous video. Everything is a pure function of a seed.

Coordinates are pixels of a SIZE x SIZE frame, y pointing down; the floor is the bottom edge.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

SIZE = 128
FPS = 24
CHUNK_FRAMES = 24

Shape = Literal["circle", "square", "triangle"]
SHAPES: tuple[Shape, ...] = ("circle", "square", "triangle")

#: Object colours: well apart in RGB, so the evaluator can find each one against any background.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "green": (40, 190, 60), "blue": (40, 80, 230),
    "yellow": (240, 210, 40), "purple": (150, 50, 190), "orange": (250, 130, 20),
}

#: Motions a chunk can give an object. "fall" accelerates under gravity and bounces on the floor.
MOTIONS = ("left", "right", "up", "down", "still", "fall", "grow", "shrink",
           "up_left", "up_right", "down_left", "down_right")
DIAGONALS = ("up_left", "up_right", "down_left", "down_right")

SPEED = 1.6  # px per frame for steady moves
DIAGONAL_SPEED = SPEED / math.sqrt(2) * 1.2
GRAVITY = 0.32  # px per frame²
BOUNCE = 0.7  # fraction of speed kept when bouncing off the floor
GROWTH = 1.013  # size factor per frame when growing
MIN_SIZE, MAX_SIZE = 10.0, 28.0


@dataclass(frozen=True)
class Background:
    kind: Literal["plain", "gradient", "texture"]
    name: str  # caption words, e.g. "green grass"
    top: tuple[int, int, int]
    bottom: tuple[int, int, int]
    texture_seed: int = 0

    def render(self) -> np.ndarray:
        """uint8 [SIZE, SIZE, 3]."""
        top, bottom = np.array(self.top, np.float32), np.array(self.bottom, np.float32)
        ramp = np.linspace(0.0, 1.0, SIZE, dtype=np.float32)[:, None, None]
        image = np.broadcast_to(top + (bottom - top) * ramp, (SIZE, SIZE, 3)).copy()
        if self.kind == "texture":
            # Soft blobs: low-frequency noise, so an 8x8-compressing VAE can still reproduce it.
            rng = np.random.default_rng(self.texture_seed)
            coarse = rng.normal(0, 1, (6, 6)).astype(np.float32)
            import cv2

            noise = cv2.resize(coarse, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)[:, :, None]
            image += noise * 9.0
        return np.clip(image, 0, 255).astype(np.uint8)


#: Backgrounds by caption name. Colours stay clear of the object palette.
BACKGROUNDS: dict[str, Background] = {b.name: b for b in (
    Background("plain", "white", (235, 235, 230), (235, 235, 230)),
    Background("plain", "dark", (35, 35, 40), (35, 35, 40)),
    Background("plain", "gray", (128, 128, 128), (128, 128, 128)),
    Background("gradient", "sky", (120, 175, 235), (225, 238, 250)),
    Background("gradient", "sunset", (70, 40, 90), (225, 150, 110)),
    Background("texture", "grass", (70, 125, 55), (55, 105, 45), texture_seed=11),
    Background("texture", "sand", (215, 195, 150), (200, 178, 130), texture_seed=23),
    Background("texture", "water", (40, 90, 130), (30, 70, 110), texture_seed=37),
)}

#: Colour/background pairs too close for the eye (and the evaluator); the generator avoids them.
CLASHES = {("green", "grass"), ("blue", "water"), ("blue", "sky"), ("yellow", "sand"), ("orange", "sunset"),
           ("purple", "sunset")}


@dataclass(frozen=True)
class ObjectState:
    shape: Shape
    colour: str
    x: float
    y: float
    size: float  # radius of the circumscribed circle, px
    vx: float = 0.0
    vy: float = 0.0

    def bottom_limit(self) -> float:
        return SIZE - 1 - self.size

    def clamp(self) -> "ObjectState":
        x = min(max(self.x, self.size), SIZE - 1 - self.size)
        y = min(max(self.y, self.size), self.bottom_limit())
        return dataclasses.replace(self, x=x, y=y)


def start_motion(state: ObjectState, motion: str) -> ObjectState:
    """Set the velocity a chunk's motion begins with (position and size carry over)."""
    steady = {"left": (-SPEED, 0.0), "right": (SPEED, 0.0), "up": (0.0, -SPEED), "down": (0.0, SPEED),
              "still": (0.0, 0.0), "grow": (0.0, 0.0), "shrink": (0.0, 0.0),
              "up_left": (-DIAGONAL_SPEED, -DIAGONAL_SPEED), "up_right": (DIAGONAL_SPEED, -DIAGONAL_SPEED),
              "down_left": (-DIAGONAL_SPEED, DIAGONAL_SPEED), "down_right": (DIAGONAL_SPEED, DIAGONAL_SPEED)}
    if motion == "fall":
        # Falling keeps the vertical speed it had (a rising object first slows down), drops the rest.
        return dataclasses.replace(state, vx=0.0)
    vx, vy = steady[motion]
    return dataclasses.replace(state, vx=vx, vy=vy)


def step(state: ObjectState, motion: str) -> ObjectState:
    """Advance one frame."""
    vx, vy, size = state.vx, state.vy, state.size
    if motion == "fall" and not (state.vy == 0.0 and state.y >= state.bottom_limit() - 1e-6):
        vy += GRAVITY
    elif motion == "grow":
        size = min(size * GROWTH, MAX_SIZE)
    elif motion == "shrink":
        size = max(size / GROWTH, MIN_SIZE)
    x, y = state.x + vx, state.y + vy
    moved = dataclasses.replace(state, x=x, y=y, vx=vx, vy=vy, size=size)
    if motion == "fall" and y >= moved.bottom_limit():
        if abs(vy) > 1.2:  # bounce: reflect about the floor and keep BOUNCE of the speed
            y = moved.bottom_limit() - (y - moved.bottom_limit())
            vy = -vy * BOUNCE
        else:  # too slow to bounce: it comes to rest on the floor
            y, vy = moved.bottom_limit(), 0.0
        moved = dataclasses.replace(moved, y=y, vy=vy)
    clamped = moved.clamp()
    if clamped.x != moved.x:
        clamped = dataclasses.replace(clamped, vx=0.0)
    if clamped.y != moved.y and motion != "fall":
        clamped = dataclasses.replace(clamped, vy=0.0)
    return clamped


def simulate_chunk(state: ObjectState, motion: str, frames: int = CHUNK_FRAMES) -> list[ObjectState]:
    """States of `frames` frames: frame 0 is the first frame of the chunk (one step after the last of
    the previous chunk, so motion is continuous across the boundary)."""
    current = start_motion(state, motion)
    states = []
    for _ in range(frames):
        current = step(current, motion)
        states.append(current)
    return states


def draw(image: np.ndarray, state: ObjectState) -> None:
    """Draw an object in place, anti-aliased (4x supersampled polygon edges)."""
    import cv2

    colour = COLOURS[state.colour]
    shift = 4
    scale = 1 << shift
    cx, cy, r = state.x * scale, state.y * scale, state.size * scale
    if state.shape == "circle":
        cv2.circle(image, (int(round(cx)), int(round(cy))), int(round(r)), colour, -1, cv2.LINE_AA, shift)
        return
    if state.shape == "square":
        h = r / math.sqrt(2)
        points = [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    else:  # triangle, pointing up, centred on its circumcentre
        points = [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    cv2.fillPoly(image, [np.array(points, np.int32)], colour, cv2.LINE_AA, shift)


def render_frames(background: Background, tracks: list[list[ObjectState]]) -> np.ndarray:
    """uint8 [T, SIZE, SIZE, 3] from per-object state tracks of equal length (first object drawn last: on top)."""
    base = background.render()
    frames = np.empty((len(tracks[0]), SIZE, SIZE, 3), np.uint8)
    for t in range(len(tracks[0])):
        frame = base.copy()
        for track in reversed(tracks):
            draw(frame, track[t])
        frames[t] = frame
    return frames
