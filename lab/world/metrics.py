"""Scores of a generated video against its storyboard: colour, shape, motion, continuity, i2v, rollouts.

Inputs are the detector's per-frame output (lab.world.detect) and the storyboard's ground truth;
every threshold is a module constant, chosen on ground-truth renders written through the same mp4
encoder as generated video (lab/world/evaluate.py --ground-truth proves them):

* colour: the prompted colour is detected in at least `MIN_FOUND` of the chunk's frames;
  shape: the majority shape over those frames is the prompted one.
* motion, from the chunk's own frames: start/end = median position of its first/last `ENDS` detections;
  - left/right/up/down/diagonals: travel >= `MIN_TRAVEL` px and direction within `SECTOR`° of the
    prompted one; a diagonal also counts when a wall stopped one component (the object ends against
    that wall and both components moved the prompted way by >= `WALL_COMPONENT` px): the world's
    physics turns a diagonal into a slide along the wall;
  - still: travel <= `STILL_TRAVEL` px and size within `STILL_SIZE`x;
  - grow / shrink: size ratio >= `SIZE_RATIO` / <= 1 / `SIZE_RATIO` (size: the enclosing-circle radius,
    which is ObjectState.size for every shape and survives occlusion; ratio from a line fitted to its log);
  - fall: descends >= `FALL_DROP` px from its highest point (steeper than 45°), or bounces: its height
    reverses by >= `BOUNCE_RISE` px near the floor.
* continuity: jump at a chunk boundary / typical within-chunk frame-to-frame displacement (see
  `continuity`).
* objects the storyboard itself hides (the other object in front, visible < `MIN_VISIBLE`) are left out.

Ground truth through mp4 (700 held-out storyboards, 2,927 chunks): motion right in 99.6% (99.7% where the
prompt changes the motion), colour and shape 100% (`python -m lab.world.evaluate --ground-truth`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from lab.world.detect import Detection, FrameDetections
from lab.world.scene import CHUNK_FRAMES, SIZE, draw
from lab.world.storyboard import Storyboard

# Measured on ground truth through mp4 (about 1,500 chunks): directional chunks travel >= 10.9 px within
# the chunk; still ones 0 px; grow ratio >= 1.20, shrink <= 0.875, every other motion 0.93..1.08 (p1..p99).
MIN_FOUND = 0.5  # fraction of a chunk's frames (issue 4's "found in at least half")
ENDS = 3  # frames whose median is a chunk's start / end: one bad frame cannot move them
MIN_TRAVEL = 8.0  # px
SECTOR = 22.5  # degrees either side: eight equal sectors (cardinal moves are exact, diagonals 45°)
WALL_COMPONENT = 5.0  # px per component of a wall-stopped diagonal (the world asks 8.4 from the state before)
WALL_MARGIN = 3.0  # px between the enclosing circle and the wall for "ends against the wall"
STILL_TRAVEL = 4.0  # px
STILL_SIZE = 1.1  # size ratio band of "still"
SIZE_RATIO = 1.1  # grow / shrink
FALL_DROP = 6.0  # px of descent from the highest point
BOUNCE_RISE = 1.5  # px down before and up after a lowest point, for a bounce
FLOOR_MARGIN = 6.0  # px between the object's bottom and the floor for a bounce
#: An object the storyboard itself hides (the other object passes in front of it) below this visible
#: fraction, in the median frame of a chunk, is not scored there: no video could show it.
MIN_VISIBLE = 0.5
#: Floor of the typical frame-to-frame displacement (px): below it an object counts as still.
MIN_TYPICAL = 1.0
#: i2v: the object in frame 0 must be within this of the reference's (px), and then move without any
#: frame-to-frame step above MAX_STEP px (the world's fastest fall is about 8 px per frame).
I2V_TOLERANCE = 4.0
MAX_STEP = 12.0
#: Motions that translate the object (the typical displacement is measured over their chunks).
TRANSLATING = ("left", "right", "up", "down", "fall", "up_left", "up_right", "down_left", "down_right")
DIRECTIONS = {"right": 0.0, "up_right": 45.0, "up": 90.0, "up_left": 135.0, "left": 180.0,
              "down_left": 225.0, "down": 270.0, "down_right": 315.0}


@dataclass(frozen=True)
class Track:
    """One colour's detections over a video; NaN / None where it was not found."""

    colour: str
    found: np.ndarray  # bool [T]
    x: np.ndarray  # position (Detection.position) [T]
    y: np.ndarray
    radius: np.ndarray
    shapes: tuple[str | None, ...]

    def __len__(self) -> int:
        return len(self.found)

    @classmethod
    def of_states(cls, states: list) -> "Track":
        """The storyboard's own track (ObjectStates, every frame found): what a perfect video would show."""
        return cls(states[0].colour, np.ones(len(states), bool), np.array([s.x for s in states]),
                   np.array([s.y for s in states]), np.array([s.size for s in states]), tuple(s.shape for s in states))

    def window(self, start: int, stop: int) -> "Track":
        return Track(self.colour, self.found[start:stop], self.x[start:stop], self.y[start:stop],
                     self.radius[start:stop], self.shapes[start:stop])


def track(detections: list[FrameDetections], colour: str) -> Track:
    found = np.array([colour in d for d in detections], bool)
    values = np.full((len(detections), 3), np.nan)
    shapes: list[str | None] = []
    for t, frame in enumerate(detections):
        d = frame.get(colour)
        shapes.append(d.shape if d else None)
        if d:
            values[t] = (*d.position, d.radius)
    return Track(colour, found, values[:, 0], values[:, 1], values[:, 2], tuple(shapes))


@dataclass(frozen=True)
class ChunkScore:
    """One object in one chunk."""

    chunk: int
    colour: str
    shape: str
    motion: str
    previous_motion: str | None
    found: float  # fraction of the chunk's frames where its colour was detected
    observed_shape: str | None
    colour_ok: bool
    shape_ok: bool
    motion_ok: bool
    displacement: tuple[float, float] | None  # net (dx, dy), px
    expected_displacement: tuple[float, float]  # the storyboard's own, measured the same way
    size_ratio: float | None
    visible: float  # median fraction of the object the storyboard leaves visible in this chunk

    @property
    def scored(self) -> bool:
        return self.visible >= MIN_VISIBLE

    @property
    def motion_changed(self) -> bool:
        return self.previous_motion is not None and self.previous_motion != self.motion


def motion_measures(t: Track) -> dict | None:
    """Net displacement, end state and size ratio of a chunk's detections (None when too few)."""
    if t.found.sum() < max(ENDS, MIN_FOUND * len(t)):
        return None
    frames = np.flatnonzero(t.found)
    xs, ys, rs = t.x[frames], t.y[frames], t.radius[frames]
    start = np.array([np.median(xs[:ENDS]), np.median(ys[:ENDS])])
    end = np.array([np.median(xs[-ENDS:]), np.median(ys[-ENDS:]), np.median(rs[-ENDS:])])
    # Size change from a line fitted to log(radius): a small object's radius moves in pixel steps, so
    # its two ends alone are too coarse.
    slope = np.polyfit(frames, np.log(np.maximum(rs, 1.0)), 1)[0] if np.ptp(frames) else 0.0
    return {"xs": xs, "ys": ys, "rs": rs, "dx": end[0] - start[0], "dy": end[1] - start[1], "end": end,
            "ratio": float(np.exp(slope * (len(t) - 1)))}


def judge_motion(motion: str, t: Track) -> bool:
    """Whether one chunk's detections of an object show `motion` (see the module docstring)."""
    m = motion_measures(t)
    if m is None:
        return False
    dx, dy, ratio = m["dx"], m["dy"], m["ratio"]
    travel = math.hypot(dx, dy)
    if motion in DIRECTIONS:
        angle = math.degrees(math.atan2(-dy, dx)) % 360.0  # y points down in the image
        off = abs((angle - DIRECTIONS[motion] + 180.0) % 360.0 - 180.0)
        if travel >= MIN_TRAVEL and off <= SECTOR:
            return True
        return "_" in motion and _stopped_diagonal(motion, dx, dy, m["end"])
    if motion == "still":
        return travel <= STILL_TRAVEL and 1 / STILL_SIZE <= ratio <= STILL_SIZE
    if motion == "grow":
        return ratio >= SIZE_RATIO
    if motion == "shrink":
        return ratio <= 1 / SIZE_RATIO
    if motion == "fall":
        drop = m["end"][1] - m["ys"].min()
        return bool(drop >= FALL_DROP and abs(dx) <= drop) or _bounces(m["ys"], m["rs"])
    raise ValueError(f"unknown motion {motion!r}")


def _stopped_diagonal(motion: str, dx: float, dy: float, end: np.ndarray) -> bool:
    wx = -1 if "left" in motion else 1
    wy = -1 if motion.startswith("up") else 1
    if dx * wx < WALL_COMPONENT or dy * wy < WALL_COMPONENT:
        return False
    x, y, r = end
    if abs(dx) < abs(dy):  # the horizontal component is the short one: a side wall stopped it
        return bool(x - r <= WALL_MARGIN if wx < 0 else x + r >= SIZE - 1 - WALL_MARGIN)
    return bool(y - r <= WALL_MARGIN if wy < 0 else y + r >= SIZE - 1 - WALL_MARGIN)


def _bounces(ys: np.ndarray, rs: np.ndarray) -> bool:
    """A lowest point near the floor with a real descent before it and a rise after it."""
    for t in range(1, len(ys) - 1):
        before, after = ys[max(0, t - 4):t], ys[t + 1:t + 5]
        if (ys[t] + rs[t] >= SIZE - 1 - FLOOR_MARGIN and ys[t] - before.min() >= BOUNCE_RISE
                and ys[t] - after.min() >= BOUNCE_RISE and ys[t] >= after.max()):
            return True
    return False


def majority_shape(t: Track) -> str | None:
    shapes = [s for s in t.shapes if s is not None]
    return max(set(shapes), key=shapes.count) if shapes else None


def visibility(board: Storyboard) -> np.ndarray:
    """float [objects, frames]: the fraction of each object not hidden by an object drawn above it."""
    tracks = board.tracks()
    visible = np.ones((len(tracks), len(tracks[0])))
    if len(tracks) == 1:
        return visible
    for t in range(len(tracks[0])):
        covered = np.zeros((SIZE, SIZE), bool)
        for o, states in enumerate(tracks):  # object 0 is drawn last, on top
            canvas = np.zeros((SIZE, SIZE, 3), np.uint8)
            draw(canvas, dataclasses.replace(states[t], colour="red"))
            mask = canvas[..., 0] > 110
            visible[o, t] = (mask & ~covered).sum() / max(mask.sum(), 1)
            covered |= mask
    return visible


def score_video(board: Storyboard, detections: list[FrameDetections],
                visible: np.ndarray | None = None) -> list[ChunkScore]:
    """Every (chunk, object) of a storyboard scored against the detections of its video."""
    visible = visibility(board) if visible is None else visible
    scores = []
    for o, (obj, states) in enumerate(zip(board.objects, board.tracks())):
        full = track(detections, obj.colour)
        for c in range(board.num_chunks):
            expected = motion_measures(Track.of_states(states[c * CHUNK_FRAMES:(c + 1) * CHUNK_FRAMES]))
            part = full.window(c * CHUNK_FRAMES, (c + 1) * CHUNK_FRAMES)
            found = float(part.found.mean()) if len(part) else 0.0
            colour_ok = found >= MIN_FOUND
            observed = majority_shape(part)
            m = motion_measures(part)
            scores.append(ChunkScore(
                chunk=c, colour=obj.colour, shape=obj.shape, motion=board.motions[c][o],
                previous_motion=board.motions[c - 1][o] if c else None, found=found, observed_shape=observed,
                colour_ok=colour_ok, shape_ok=colour_ok and observed == obj.shape,
                motion_ok=colour_ok and judge_motion(board.motions[c][o], part),
                displacement=(round(float(m["dx"]), 2), round(float(m["dy"]), 2)) if m else None,
                expected_displacement=(round(float(expected["dx"]), 2), round(float(expected["dy"]), 2)),
                size_ratio=round(float(m["ratio"]), 3) if m else None,
                visible=float(np.median(visible[o, c * CHUNK_FRAMES:(c + 1) * CHUNK_FRAMES]))))
    return scores


@dataclass(frozen=True)
class Continuity:
    """Chunk-boundary jumps of one object, in units of its typical within-chunk displacement."""

    typical: float  # px per frame
    jumps: tuple[float, ...]  # px, per measured boundary
    ratios: tuple[float, ...]


def continuity(t: Track, motions: list[str]) -> Continuity:
    """Jump between the last frame of chunk k and the first of chunk k+1, divided by the typical
    frame-to-frame displacement: the median over the video's within-chunk steps, taken over the chunks
    whose prompt translates the object (still/grow/shrink chunks would drag it to 0) and floored at
    `MIN_TYPICAL` px, so a still object's boundary counts as a jump only past 2 px."""
    steps = np.hypot(np.diff(t.x), np.diff(t.y))  # step i: frame i -> i+1 (NaN where not found)
    chunk_of = np.arange(len(steps)) // CHUNK_FRAMES
    within = (np.arange(len(steps)) + 1) % CHUNK_FRAMES != 0
    moving = np.array([motions[c] in TRANSLATING for c in chunk_of]) if len(steps) else np.zeros(0, bool)
    usable = steps[within & moving & ~np.isnan(steps)]
    typical = max(float(np.median(usable)) if usable.size else 0.0, MIN_TYPICAL)
    jumps = [float(steps[b]) for b in range(CHUNK_FRAMES - 1, len(steps), CHUNK_FRAMES) if not np.isnan(steps[b])]
    return Continuity(typical, tuple(jumps), tuple(j / typical for j in jumps))


def latent_frame_steps(t: Track, motions: list[str], frames_per_latent: int = 4) -> tuple[list[float], list[float]]:
    """Frame-to-frame steps (px) in chunks that translate the object: (those across the boundary between
    two latent frames, those inside one), chunk boundaries left out. A rendered video moves alike in both;
    a decoder that draws a latent frame's four frames in one place and then jumps does not."""
    steps = np.hypot(np.diff(t.x), np.diff(t.y))  # step i: frame i -> i+1
    across, inside = [], []
    for i, step in enumerate(steps):
        if np.isnan(step) or (i + 1) % CHUNK_FRAMES == 0 or motions[i // CHUNK_FRAMES] not in TRANSLATING:
            continue
        (across if (i + 1) % frames_per_latent == 0 else inside).append(float(step))
    return across, inside


def i2v_object(reference: Detection | None, chunk0: Track, motion: str) -> dict:
    """Image-to-video: is the object of the given first frame the one that then moves as prompted?

    It must be found in generated frame 0 within `I2V_TOLERANCE` px of where the detector finds it in
    the reference (same colour by construction), be tracked through chunk 0 without a step larger than
    `MAX_STEP` px (a new object appearing elsewhere would jump), and show the chunk's motion."""
    distance = None
    if reference is not None and chunk0.found[0]:
        distance = math.hypot(chunk0.x[0] - reference.position[0], chunk0.y[0] - reference.position[1])
    at_reference = distance is not None and distance <= I2V_TOLERANCE
    steps = np.hypot(np.diff(chunk0.x), np.diff(chunk0.y))
    steps = steps[~np.isnan(steps)]
    tracked = bool(chunk0.found.mean() >= MIN_FOUND and (steps.size == 0 or steps.max() <= MAX_STEP))
    moves = judge_motion(motion, chunk0)
    return {"colour": chunk0.colour, "motion": motion, "distance_px": None if distance is None else round(distance, 2),
            "at_reference": at_reference, "tracked": tracked, "motion_ok": moves,
            "ok": bool(at_reference and tracked and moves)}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images of one size (100 for identical images)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return 100.0 if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def summarize(values, *, digits: int = 3) -> dict:
    """Mean, median, p10/p90, min, max and count of a list of numbers."""
    v = np.asarray(list(values), float)
    if v.size == 0:
        return {"n": 0}
    q = np.percentile(v, [10, 50, 90])
    return {"n": int(v.size), "mean": round(float(v.mean()), digits), "p10": round(float(q[0]), digits),
            "median": round(float(q[1]), digits), "p90": round(float(q[2]), digits),
            "min": round(float(v.min()), digits), "max": round(float(v.max()), digits)}


def steady_moves(scores: list[ChunkScore]) -> dict:
    """How far and which way the steady moves (left ... down_right) went, against their storyboard: travel
    as a fraction of the storyboard's, and the angle between the two. A model that moves objects the right
    way but too little, and one that moves them the wrong way, fail motion alike: these tell them apart."""
    ratios, angles = [], []
    for s in scores:
        if not (s.scored and s.motion in DIRECTIONS and s.displacement):
            continue
        (dx, dy), (ex, ey) = s.displacement, s.expected_displacement
        travel, wanted = math.hypot(dx, dy), math.hypot(ex, ey)
        if wanted < MIN_TRAVEL:  # a wall stopped it in the storyboard too
            continue
        ratios.append(travel / wanted)
        if travel >= MIN_TRAVEL:
            turn = math.atan2(dy, dx) - math.atan2(ey, ex)
            angles.append(abs(math.degrees((turn + math.pi) % (2 * math.pi) - math.pi)))
    return {"travel_ratio": summarize(ratios), "direction_off_deg": summarize(angles, digits=1)}


def chunk_summary(scores: list[ChunkScore]) -> dict:
    """Accuracies over the scored (object, chunk) pairs: colour, shape, motion, motion where it changes,
    and how the steady moves went (steady_moves)."""
    scored = [s for s in scores if s.scored]
    found = [s for s in scored if s.colour_ok]
    motions = sorted({s.motion for s in scored})
    return {"chunks": len(scored), "hidden_by_storyboard": len(scores) - len(scored),
            "colour": fraction(s.colour_ok for s in scored),
            "shape": fraction(s.shape_ok for s in found),  # among chunks where the colour was found
            "colour_shape": fraction(s.shape_ok for s in scored),
            "motion": fraction(s.motion_ok for s in scored),
            "motion_changed": fraction(s.motion_ok for s in scored if s.motion_changed),
            "motion_changed_chunks": sum(s.motion_changed for s in scored),
            "motion_by_prompt": {m: fraction(s.motion_ok for s in scored if s.motion == m) for m in motions},
            "steady_moves": steady_moves(scored)}


def continuity_summary(items: list[tuple[Storyboard, int, Continuity]]) -> dict:
    """The distribution of boundary ratios over (storyboard, object index, Continuity) items."""
    ratios = [r for _, _, c in items for r in c.ratios]
    # Boundaries into a chunk that translates the object: there the ground truth jumps by one step.
    moving = [r for board, o, c in items for r, b in zip(c.ratios, range(1, board.num_chunks))
              if board.motions[b][o] in TRANSLATING]
    summary = summarize(ratios)
    return {"ratio": summary, "mean_ratio": summary.get("mean"), "within_2": fraction(r <= 2 for r in ratios),
            "ratio_into_moving_chunks": summarize(moving), "typical_px": summarize(c.typical for _, _, c in items)}


def thresholds() -> dict:
    """Every threshold of the detector and of these metrics, by name (for the report)."""
    from lab.world import detect

    names = ("MIN_FOUND", "ENDS", "MIN_TRAVEL", "SECTOR", "WALL_COMPONENT", "WALL_MARGIN", "STILL_TRAVEL", "STILL_SIZE",
             "SIZE_RATIO", "FALL_DROP", "BOUNCE_RISE", "FLOOR_MARGIN", "MIN_TYPICAL", "MIN_VISIBLE", "I2V_TOLERANCE",
             "MAX_STEP")
    detector = ("PALETTE_DE", "BACKGROUND_DE", "MIN_AREA", "SQUARE_MARGIN", "BACKGROUND_MATCH_DE")
    return {n: globals()[n] for n in names} | {n: getattr(detect, n) for n in detector}


def fraction(flags) -> float | None:
    flags = list(flags)
    return round(sum(bool(f) for f in flags) / len(flags), 4) if flags else None
