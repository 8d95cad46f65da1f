"""The storyboard document: plain dataclasses (no Qt, no torch) and the state derived from them.

    Project ─ settings, assets (reference images), results (generated chunks, stored once)
      └ Shot ─ prompt, start ("text" | "image" | "continue"), chunks, takes (a tree), active take
          └ Chunk ─ id, prompt, seed, seed_locked

A shot's prompt says what every chunk of it shares (subject, setting, style); a chunk's prompt says
what that chunk adds. The engine receives the two joined (`joined_prompt`). A shot's negative prompt
says what none of its chunks should show; base (guidance) models use it, distilled models cannot.

A take is one generation of a shot from some chunk on. It maps chunk ids to result ids for the chunks
from its first chunk (by position) to the end; the chunks before come from its parent chain. The
shot's active take therefore resolves to one result (or none) per chunk: the active path. A take also
keeps, per chunk it generated, the specs it was generated from (TakeSpec), so making it active again
can put them back on the cards.

Nothing derived is stored. Whether a chunk is empty, done or stale is computed here by comparing what
its result recorded at generation time (prompt, seed, resolution, reference image, the results it was
conditioned on) with the document now; see `storyboard_states`. Edits never discard results: an
edited chunk and everything after it simply becomes stale.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from typing import Iterator

from magi_engine.config import CHUNK_FRAMES, SUPPORTED_STEPS
from magi_engine.draft import draft_size
from magi_engine.errors import ConfigError
from magi_engine.requests import MAX_SIZE, MIN_SIZE

#: Clean chunks before a chunk that condition it (MAGI-1's longest attention span is 5 chunks, itself included).
CONTEXT_CHUNKS = 4
START_MODES = ("text", "image", "continue")
SEED_POLICIES = ("increment", "random", "fixed")
#: studio-mini's training resolution (lab/world: 128 x 128 frames).
DEFAULT_SIZE = (128, 128)


def new_id() -> str:
    """A short random id; 48 bits make a collision inside one project practically impossible."""
    return uuid.uuid4().hex[:12]


@dataclass
class Chunk:
    id: str
    prompt: str = ""
    seed: int = 0
    #: A locked seed is kept when the chunk is regenerated; an unlocked one is re-rolled.
    seed_locked: bool = False


@dataclass(frozen=True)
class TakeSpec:
    """What one chunk of a take was generated from, as the user wrote it: making the take active puts
    these back. (The engine-side settings — model, size, steps, guidance — are in its ChunkResult.)"""

    #: The chunk's own prompt (what it adds to the shot's prompt).
    prompt: str
    seed: int
    #: The shot's prompt, how the shot started and its reference image (an asset id) at that time.
    shot_prompt: str = ""
    start: str = "text"
    reference_asset_id: str | None = None
    #: The shot's negative prompt at that time.
    negative_prompt: str = ""
    #: Made in draft mode (magi_engine.draft: fewer steps, a smaller picture); Render at Final Quality
    #: makes the same chunks again from these specs at the project's settings.
    draft: bool = False


@dataclass
class Take:
    id: str
    name: str
    parent_id: str | None = None
    #: The chunk this take was regenerated from; None: a root take that covers the whole shot. A take
    #: owns the chunks from this chunk's position on; if the id is no longer in the shot it owns none.
    first_chunk_id: str | None = None
    #: chunk id -> result id, for the chunks this take generated.
    results: dict[str, str] = field(default_factory=dict)
    #: chunk id -> the specs that chunk was generated from (a chunk missing here: not known).
    specs: dict[str, TakeSpec] = field(default_factory=dict)


@dataclass
class Shot:
    id: str
    name: str
    chunks: list[Chunk] = field(default_factory=list)
    start: str = "text"
    #: The reference image (an asset id); used while `start` is "image", kept otherwise so that
    #: switching back restores it.
    reference_asset_id: str | None = None
    takes: list[Take] = field(default_factory=list)
    active_take_id: str | None = None
    #: What every chunk of the shot shares (subject, setting, style); each chunk's prompt extends it.
    prompt: str = ""
    #: What no chunk of the shot should show (the guidance passes of base models steer away from it).
    negative_prompt: str = ""

    def chunk_index(self, chunk_id: str) -> int:
        for i, chunk in enumerate(self.chunks):
            if chunk.id == chunk_id:
                return i
        raise KeyError(f"no chunk {chunk_id!r} in shot {self.name!r}")

    def chunk(self, chunk_id: str) -> Chunk:
        return self.chunks[self.chunk_index(chunk_id)]

    def take(self, take_id: str) -> Take:
        for take in self.takes:
            if take.id == take_id:
                return take
        raise KeyError(f"no take {take_id!r} in shot {self.name!r}")

    def find_take(self, take_id: str | None) -> Take | None:
        return next((t for t in self.takes if t.id == take_id), None) if take_id else None


@dataclass(frozen=True)
class Asset:
    """A reference image copied into the project (stored once per distinct file content)."""

    id: str
    #: Relative to the project folder, e.g. "assets/3fa2c1d09b7e4a55.png".
    path: str
    #: sha256 of the file's bytes: a changed image makes the chunks that used it stale.
    fingerprint: str
    original_name: str = ""


@dataclass(frozen=True)
class ChunkResult:
    """One generated chunk: what it was made from, and where its files are. Written once, never changed."""

    id: str
    chunk_id: str
    prompt: str
    seed: int
    model: str
    #: The sampler settings used (SamplingConfig.to_dict(), JSON-normalised).
    sampling: dict
    width: int
    height: int
    #: Result ids of the clean chunks it was conditioned on, oldest first (at most CONTEXT_CHUNKS).
    context_ids: tuple[str, ...] = ()
    #: Fingerprint of the reference image it started from (first chunk of an "image" shot only).
    reference_fingerprint: str | None = None
    #: Relative paths: {"latent": ..., "frames": ..., "thumbnail": ...}.
    files: dict = field(default_factory=dict)
    frames_format: str = "png-strip"
    created: str = ""
    #: The negative prompt the engine was given ("" : none).
    negative_prompt: str = ""


@dataclass
class ProjectSettings:
    #: "studio-mini", a checkpoint folder or a MAGI-1 hub variant (anything GenerationSession.load accepts).
    model: str = "studio-mini"
    width: int = DEFAULT_SIZE[0]
    height: int = DEFAULT_SIZE[1]
    fps: int = 24
    #: None: the model's own default.
    steps: int | None = None
    window: int | None = None
    guidance_scale: float | None = None
    #: How a new chunk's seed is chosen: previous + 1, random, or the previous one again.
    seed_policy: str = "increment"
    #: Draft mode: runs asked for while it is on make drafts (magi_engine.draft), for iterating quickly.
    draft: bool = False


@dataclass
class Project:
    settings: ProjectSettings = field(default_factory=ProjectSettings)
    shots: list[Shot] = field(default_factory=list)
    results: dict[str, ChunkResult] = field(default_factory=dict)
    assets: dict[str, Asset] = field(default_factory=dict)
    #: Results whose files were found unusable when the project was opened (result id -> the problem,
    #: one sentence). Found by store.check_files, never saved: the files decide.
    damaged: dict[str, str] = field(default_factory=dict, compare=False)
    #: The render queue kept with the project: {"unfinished": [...], "completed": [...]}, the requests that had not
    #: finished (waiting, stopped or failed) and those done, as GenerationController.saved_queue() writes them
    #: (checked at read: validation.RENDER_QUEUE). Not part of the undoable document; replaced whole, never
    #: changed in place (snapshots share it).
    render_queue: dict = field(default_factory=dict)

    def shot_index(self, shot_id: str) -> int:
        shot = self.shot(shot_id)  # KeyError for an id the project lacks
        return next(i for i, s in enumerate(self.shots) if s is shot)

    def find_shot(self, shot_id: str) -> Shot | None:
        """The shot with this id, or None when the project has none (`shot` raises KeyError instead)."""
        for shot in self.shots:
            if shot.id == shot_id:
                return shot
        return None

    def shot(self, shot_id: str) -> Shot:
        found = self.find_shot(shot_id)
        if found is None:
            raise KeyError(f"no shot {shot_id!r} in the project")
        return found


def validate_settings(settings: ProjectSettings) -> None:
    """Raise ConfigError naming the field when a setting cannot be used."""
    if not isinstance(settings.model, str) or not settings.model.strip():
        raise ConfigError("The project's model must be named (studio-mini, a folder or a MAGI-1 variant).")
    for name in ("width", "height"):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or not MIN_SIZE <= value <= MAX_SIZE or value % 16:
            raise ConfigError(f"Video {name} must be a multiple of 16 from {MIN_SIZE} to {MAX_SIZE} pixels, "
                              f"got {value!r}.")
    if isinstance(settings.fps, bool) or not isinstance(settings.fps, int) or not 1 <= settings.fps <= 240:
        raise ConfigError(f"Frames per second must be an integer from 1 to 240, got {settings.fps!r}.")
    if settings.steps is not None and settings.steps not in SUPPORTED_STEPS:
        raise ConfigError(f"Steps must be one of {SUPPORTED_STEPS}, got {settings.steps!r}.")
    if settings.window is not None and (not isinstance(settings.window, int) or not 1 <= settings.window <= 8):
        raise ConfigError(f"The window must be an integer from 1 to 8, got {settings.window!r}.")
    if settings.guidance_scale is not None and not 0.0 <= settings.guidance_scale <= 50.0:
        raise ConfigError(f"The guidance scale must lie in [0, 50], got {settings.guidance_scale!r}.")
    if settings.seed_policy not in SEED_POLICIES:
        raise ConfigError(f"The seed policy must be one of {SEED_POLICIES}, got {settings.seed_policy!r}.")


def joined_prompt(shot_prompt: str, chunk_prompt: str) -> str:
    """The text the engine receives for a chunk: the shot's prompt, then what the chunk adds.

    "A red ball on a table" + "it rolls left" -> "A red ball on a table. it rolls left": the two are
    stripped and joined by ". ", or by " " when the shot's prompt already ends in punctuation
    (".!?;:,"). Either alone is used as it is (a chunk of a shot without a prompt gets exactly its own
    text, so results made before shots had prompts still match).
    """
    shot = shot_prompt.strip()
    if not shot:
        return chunk_prompt
    chunk = chunk_prompt.strip()
    if not chunk:
        return shot
    return shot + (" " if shot[-1] in ".!?;:," else ". ") + chunk


def new_shot(project: Project, *, name: str | None = None, prompt: str = "", seed: int = 0) -> Shot:
    """A shot with one empty chunk, named "Shot N" after the shots already there."""
    return Shot(id=new_id(), name=name or next_shot_name(project), chunks=[Chunk(new_id(), prompt, seed)])


def new_project(settings: ProjectSettings | None = None) -> Project:
    """What File > New makes: one shot with one chunk."""
    project = Project(settings=settings or ProjectSettings())
    project.shots.append(new_shot(project))
    return project


def next_shot_name(project: Project) -> str:
    return f"Shot {_next_number((s.name for s in project.shots), 'Shot ')}"


def next_take_name(shot: Shot) -> str:
    return f"Take {_next_number((t.name for t in shot.takes), 'Take ')}"


def _next_number(names: Iterator[str], prefix: str) -> int:
    numbers = [int(n[len(prefix):]) for n in names if n.startswith(prefix) and n[len(prefix):].isdigit()]
    return max(numbers, default=0) + 1


# --------------------------------------------------------------------------------------------- takes


def take_chain(shot: Shot, take_id: str | None) -> list[Take]:
    """The take and its ancestors, the take first (a damaged, cyclic tree stops at the repeat)."""
    chain: list[Take] = []
    take = shot.find_take(take_id)
    while take is not None and take not in chain:
        chain.append(take)
        take = shot.find_take(take.parent_id)
    return chain


def take_boundary(shot: Shot, take: Take) -> int:
    """Position of the first chunk `take` owns (len(chunks) when its first chunk is gone)."""
    if take.first_chunk_id is None:
        return 0
    return next((i for i, c in enumerate(shot.chunks) if c.id == take.first_chunk_id), len(shot.chunks))


def resolve_take(shot: Shot, take_id: str | None) -> list[str | None]:
    """The result id (or None) of every chunk of the shot, as seen through take `take_id`."""
    path: list[str | None] = [None] * len(shot.chunks)
    for take in reversed(take_chain(shot, take_id)):  # root first; each descendant overrides its own range
        for i in range(take_boundary(shot, take), len(shot.chunks)):
            path[i] = take.results.get(shot.chunks[i].id)
    return path


def resolve_specs(shot: Shot, take_id: str | None) -> list[TakeSpec | None]:
    """The specs (or None: not known, not generated) every chunk of the shot was made from, through `take_id`."""
    specs: list[TakeSpec | None] = [None] * len(shot.chunks)
    for take in reversed(take_chain(shot, take_id)):
        for i in range(take_boundary(shot, take), len(shot.chunks)):
            specs[i] = take.specs.get(shot.chunks[i].id)
    return specs


def chunk_spec(shot: Shot, chunk: Chunk, seed: int | None = None, *, draft: bool = False) -> TakeSpec:
    """What generating `chunk` now would be made from (with `seed` instead of its own, for a variation)."""
    return TakeSpec(chunk.prompt, chunk.seed if seed is None else seed, shot.prompt, shot.start,
                    shot.reference_asset_id, shot.negative_prompt, draft)


def is_draft_take(take: Take) -> bool:
    """Whether `take` made any of its chunks in draft mode."""
    return any(spec.draft for spec in take.specs.values())


def draft_span(shot: Shot, take: Take) -> tuple[int, int] | None:
    """(first, stop) positions of the chunks `take` shows that are drafts (its own or its ancestors'), or None:
    what Render at Final Quality makes again, so that no final chunk is conditioned on a draft."""
    drafts = [i for i, spec in enumerate(resolve_specs(shot, take.id)) if spec is not None and spec.draft]
    return (drafts[0], drafts[-1] + 1) if drafts else None


def own_spec(shot: Shot, take: Take) -> TakeSpec | None:
    """The spec of the first chunk `take` generated itself: the shot as it was when the take was made."""
    return next((take.specs[c.id] for c in shot.chunks[take_boundary(shot, take):] if c.id in take.specs), None)


def active_path(shot: Shot) -> list[str | None]:
    return resolve_take(shot, shot.active_take_id)


def children_of(shot: Shot, take_id: str) -> list[Take]:
    return [t for t in shot.takes if t.parent_id == take_id]


# --------------------------------------------------------------------------------------------- state


class ChunkState(str, enum.Enum):
    EMPTY = "empty"
    DONE = "done"
    STALE = "stale"
    #: Its result's files are missing or unreadable (Project.damaged): regenerate it.
    DAMAGED = "damaged"


def previous_shot(project: Project, shot: Shot) -> Shot | None:
    index = project.shot_index(shot.id)
    return project.shots[index - 1] if index > 0 else None


def continues_previous(project: Project, shot: Shot) -> bool:
    """A "continue" shot with no chunks before it (first shot, or an empty one before) starts from text."""
    previous = previous_shot(project, shot) if shot.start == "continue" else None
    return previous is not None and bool(previous.chunks)


def reference_fingerprint(project: Project, shot: Shot) -> str | None:
    """Fingerprint of the image the shot's first chunk starts from (None unless start is "image")."""
    if shot.start != "image" or shot.reference_asset_id is None:
        return None
    asset = project.assets.get(shot.reference_asset_id)
    return asset.fingerprint if asset else None


def context_prefix(project: Project, shot: Shot) -> list[str | None]:
    """Results before the shot's first chunk that condition it: the previous shot's active path, if continued."""
    return active_path(previous_shot(project, shot)) if continues_previous(project, shot) else []


def expected_context(prefix: list[str | None], path: list[str | None], index: int) -> tuple[str | None, ...]:
    """Result ids chunk `index` is conditioned on when generated now (None marks a missing one)."""
    return tuple((prefix + path[:index])[-CONTEXT_CHUNKS:])


def storyboard_states(project: Project) -> dict[str, list[ChunkState]]:
    """Every chunk's state, by shot id. One pass in storyboard order (a continued shot depends on its predecessor)."""
    states: dict[str, list[ChunkState]] = {}
    previous_path: list[str | None] = []
    previous_done = True
    for shot in project.shots:
        continued = continues_previous(project, shot)
        prefix = previous_path if continued else []
        upstream_done = previous_done if continued else True
        path = active_path(shot)
        specs: list[TakeSpec | None] | None = None  # only asked for where a result's size is not the project's
        shot_states = []
        for index, (chunk, result_id) in enumerate(zip(shot.chunks, path)):
            result = project.results.get(result_id) if result_id else None
            draft = False
            if result is not None and (result.width, result.height) != (project.settings.width,
                                                                         project.settings.height):
                specs = specs if specs is not None else resolve_specs(shot, shot.active_take_id)
                draft = specs[index] is not None and specs[index].draft
            if result is None:
                state = ChunkState.EMPTY
            elif upstream_done and _result_matches(project, shot, index, chunk, result, prefix, path, draft):
                state = ChunkState.DONE
            else:
                state = ChunkState.STALE
            upstream_done = upstream_done and state is ChunkState.DONE  # damaged files do not make later chunks stale
            if result is not None and result.id in project.damaged:
                state = ChunkState.DAMAGED
            shot_states.append(state)
        states[shot.id] = shot_states
        previous_path = path
        previous_done = upstream_done  # every chunk of this shot (and of what it continues) is done
    return states


def _result_matches(project: Project, shot: Shot, index: int, chunk: Chunk, result: ChunkResult,
                    prefix: list[str | None], path: list[str | None], draft: bool = False) -> bool:
    """Does `result` still show what the document asks for at this position? (The stale rules.) A draft is
    done at the project's size or at the draft's: drafts are made again only when asked (Render at Final Quality)."""
    settings = project.settings
    expected_reference = reference_fingerprint(project, shot) if index == 0 else None
    sizes = {(settings.width, settings.height)} | ({draft_size(settings.width, settings.height)} if draft else set())
    return (result.prompt == joined_prompt(shot.prompt, chunk.prompt) and result.seed == chunk.seed
            and result.negative_prompt == shot.negative_prompt
            and (result.width, result.height) in sizes
            and tuple(result.context_ids) == expected_context(prefix, path, index)
            and result.reference_fingerprint == expected_reference)


def chunk_states(project: Project, shot_id: str) -> list[ChunkState]:
    return storyboard_states(project)[shot_id]


def first_missing_chunk(project: Project, shot_id: str) -> int | None:
    """Index of the shot's first chunk with no result on the active path (None: all have one)."""
    return next((i for i, s in enumerate(chunk_states(project, shot_id)) if s is ChunkState.EMPTY), None)


def first_pending_chunk(project: Project, shot_id: str) -> int | None:
    """Index of the shot's first chunk that is not done (empty or stale): where resuming starts."""
    return next((i for i, s in enumerate(chunk_states(project, shot_id)) if s is not ChunkState.DONE), None)


# --------------------------------------------------------------------------------------------- time


@dataclass(frozen=True)
class ChunkRef:
    """Where a chunk sits: in its shot, in the whole storyboard, and in frames of the whole storyboard."""

    shot_id: str
    shot_position: int
    chunk_id: str
    index: int  # in the shot
    position: int  # in the storyboard
    start_frame: int
    stop_frame: int


def storyboard_chunks(project: Project) -> list[ChunkRef]:
    """Every chunk in playing order. Chunk i of a shot covers frames [24 i, 24 i + 24) of that shot."""
    refs, frame = [], 0
    for shot_position, shot in enumerate(project.shots):
        for index, chunk in enumerate(shot.chunks):
            refs.append(ChunkRef(shot.id, shot_position, chunk.id, index, len(refs), frame, frame + CHUNK_FRAMES))
            frame += CHUNK_FRAMES
    return refs


def total_frames(project: Project) -> int:
    return CHUNK_FRAMES * sum(len(shot.chunks) for shot in project.shots)


def shot_frame_range(project: Project, shot_id: str) -> tuple[int, int]:
    start = 0
    for shot in project.shots:
        stop = start + CHUNK_FRAMES * len(shot.chunks)
        if shot.id == shot_id:
            return start, stop
        start = stop
    raise KeyError(f"no shot {shot_id!r} in the project")


def chunk_frame_range(project: Project, shot_id: str, index: int) -> tuple[int, int]:
    start, stop = shot_frame_range(project, shot_id)
    if not 0 <= index < (stop - start) // CHUNK_FRAMES:
        raise IndexError(f"chunk index {index} is outside the shot")
    return start + CHUNK_FRAMES * index, start + CHUNK_FRAMES * (index + 1)


def locate_frame(project: Project, frame: int) -> tuple[ChunkRef, int] | None:
    """The chunk that shows storyboard frame `frame`, and the frame's offset in it (None past the end)."""
    if frame < 0:
        return None
    refs = storyboard_chunks(project)
    position = frame // CHUNK_FRAMES
    return (refs[position], frame - refs[position].start_frame) if position < len(refs) else None
