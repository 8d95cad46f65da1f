"""From the document to engine requests, and from engine events back to the document.

    plan = plan_resume(project, store, shot.id, sampling=sampling_for(project.settings, session.default_sampling))
    committer = ResultCommitter(plan, store, session.sampling_for(plan.request))
    for event in session.generate(plan.request, cancel):            # worker thread
        if isinstance(event, ChunkFinished):
            result = committer.write(event)                              # worker thread: files on disk
            undo_stack.push(committer.command_for(project, result))     # GUI thread

`plan_generation` snapshots what a run needs into a frozen GenerationRequest: the chunk specs from
chunk N to the end of the shot (each chunk's prompt joined to its shot's prompt, model.joined_prompt),
the clean latents of the (up to four) chunks before N on the active path, read back bit-exactly from the
results (never re-encoded from pixels), the reference image of an "image" shot, and for a "continue" shot the
previous shot's last latents as context.

A continued shot's chunks sit after that context in the request (request index = shot index +
`index_offset`), because the engine places context chunks before `start_chunk`.

Where the results go: if every chunk from N on is empty and the active take owns chunk N, the run
fills the active take (a first run, or resuming after a cancel or crash); otherwise it becomes a new
take, a child of the active take, which becomes active once its first chunk is finished. Each
finished chunk is written to disk and committed on its own, so an interrupted run keeps every
finished chunk, and `plan_resume` continues from the first chunk that is not done. Each committed
chunk also records on its take the specs it was generated from (model.TakeSpec), so switching back
to the take later restores them.

Variations (`plan_variations`): N plans of the same chunks with seeds that differ, each its own new
take, a sibling of the others under the active take, none made active (the user previews and picks).

Drafts (`draft=True`, the project's Draft mode): the same request made quicker by the engine's one
definition of a draft (magi_engine.draft.draft_request: fewer steps, and half the size unless the picture
is small or earlier chunks fix it); each chunk's TakeSpec says `draft`. Chunks made after drafts are drafts too, at their size.
`plan_final_quality` makes a draft take's chunks again at the project's settings from the specs the take
recorded, as a new take; the draft take stays.
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from magi_engine.config import SamplingConfig
from magi_engine.draft import draft_request
from magi_engine.events import ChunkFinished
# Torch-free. Imported with the document, not at the first Generate: its first import took 27-50 ms of the
# GUI thread inside the click (the longest stall of a run in benchmarks/gui_storyboard.py).
from magi_engine.loading.memory import MemoryTarget
from magi_engine.requests import MAX_PROMPT_CHARS, ChunkSpec, GenerationRequest
from magi_studio.document.commands import Command, InsertChunk, MacroCommand, SetSeed
from magi_studio.document.errors import ProjectError
from magi_studio.document.model import (CONTEXT_CHUNKS, Chunk, ChunkResult, ChunkState, Project, ProjectSettings, Shot,
                                        Take, TakeSpec, active_path, chunk_spec, chunk_states, context_prefix,
                                        continues_previous, draft_span, first_pending_chunk, joined_prompt, new_id,
                                        next_take_name, previous_shot, resolve_specs, resolve_take, take_boundary,
                                        take_chain)
from magi_studio.document.take_commands import AddTake, CommitResult


def _in_project(project: Project, chunk_id: str) -> bool:
    return any(c.id == chunk_id for s in project.shots for c in s.chunks)


def sampling_for(settings: ProjectSettings, default: SamplingConfig) -> SamplingConfig:
    """The model's default sampling with the project's steps, window and guidance scale applied."""
    return default.overridden(steps=settings.steps, window=settings.window, guidance_scale=settings.guidance_scale)


@dataclass(frozen=True)
class GenerationPlan:
    shot_id: str
    #: N: the shot index of the first chunk generated.
    start_index: int
    #: Ids of the chunks generated, N to the end of the shot, in order (parallel to request.chunks).
    chunk_ids: tuple[str, ...]
    request: GenerationRequest
    #: request chunk index = shot chunk index + index_offset (the context chunks of a continued shot).
    index_offset: int
    #: Result ids whose latents are request.context_latents, oldest first.
    context_ids: tuple[str, ...]
    #: Fingerprint of request.reference_image (None without one).
    reference_fingerprint: str | None
    #: The take the results fill; None: a new take whose parent is `parent_take_id`.
    extend_take_id: str | None
    parent_take_id: str | None
    model: str
    #: The active take when planned, then its ancestors: where the results hang if takes are deleted meanwhile.
    lineage: tuple[str, ...] = ()
    #: (chunk id, result id) of the chunks before N as the run saw them (its context, and what a new take shows).
    base_results: tuple[tuple[str, str], ...] = ()
    #: What each generated chunk is made from, as the user wrote it (parallel to chunk_ids): recorded
    #: on the take as each chunk is committed.
    specs: tuple[TakeSpec, ...] = ()
    #: Whether the new take becomes the shot's active one when its first chunk is committed.
    activate: bool = True

    def shot_index(self, event_chunk: int) -> int:
        return event_chunk - self.index_offset

    @property
    def creates_take(self) -> bool:
        return self.extend_take_id is None


def memory_target(settings: ProjectSettings, project: Project | None = None) -> MemoryTarget:
    """What the engine fits a model's memory to for this project: its size and window, and the most chunks one
    run of it attends, a continued shot's context from the shot before counted (capped at a full cache,
    CONTEXT_CHUNKS + 1: longer runs need no more). No project: any length."""
    chunks = None
    if project is not None:
        runs = [len(shot.chunks) + (min(CONTEXT_CHUNKS, len(previous_shot(project, shot).chunks))
                                    if continues_previous(project, shot) else 0) for shot in project.shots]
        chunks = max(1, min(max(runs, default=1), CONTEXT_CHUNKS + 1))
    return MemoryTarget(settings.width, settings.height, settings.window, chunks)


def missing_context(project: Project, shot: Shot, from_index: int) -> str | None:
    """Why generating `shot` from chunk `from_index` on would be refused for want of its context (the chunks
    before it, and the end of the shot it continues), as one sentence; None when they are all generated.
    plan_generation's own conditions, so that Generate / Regenerate From can be disabled beforehand."""
    path = active_path(shot)
    missing = next((index for index in range(from_index) if path[index] is None), None)
    if missing is not None:
        return f"Generate the chunks before it first: chunk {missing + 1} of {shot.name} is not generated yet."
    prefix = context_prefix(project, shot)
    if prefix and any(r is None for r in prefix[-CONTEXT_CHUNKS:]):
        return (f"Generate the chunks before it first: {shot.name} continues the shot before it, "
                "whose last chunks are not generated yet.")
    return None


def plan_generation(project: Project, store, shot_id: str, from_index: int = 0, *,
                    sampling: SamplingConfig | None = None, previews: bool = True,
                    seeds: tuple[int, ...] | None = None, stop_index: int | None = None,
                    new_take: bool = False, activate: bool = True, on_take: str | None = None,
                    draft: bool = False, from_specs: tuple[TakeSpec, ...] | None = None) -> GenerationPlan:
    """Plan generating chunks `from_index`..end of a shot (regenerate from N). `store` reads latents and assets.

    `stop_index` ends the run before that chunk (an in/out range, a variation). For variations: `seeds`
    replaces the chunks' seeds (one per chunk generated), `new_take` always makes a new take (never fills
    the active one) and `activate=False` leaves the active take as it is. `on_take` plans on that take
    instead of the active one, and fills it where it has no chunks yet (a variation that was paused goes on).

    `draft` makes a draft (magi_engine.draft: fewer steps, and half the size unless the picture is small or
    earlier chunks fix it); a run that continues draft chunks is a draft too, at their size, so that no final
    chunk is conditioned on a draft. `from_specs` (one per chunk generated) replaces what the cards say —
    prompts, seeds, the shot's prompt, negative prompt and reference image — with what a take was made from
    (Render at Final Quality).
    """
    shot = project.shot(shot_id)
    if not shot.chunks:
        raise ProjectError(f"{shot.name} has no chunks to generate.")
    if not 0 <= from_index < len(shot.chunks):
        raise ProjectError(f"{shot.name} has no chunk {from_index + 1}.")
    settings = project.settings
    take_id = shot.active_take_id if on_take is None else on_take
    path = resolve_take(shot, take_id)
    for index in range(from_index):
        if path[index] is None:
            raise ProjectError(f"Chunk {index + 1} of {shot.name} is not generated yet; "
                               f"generate {shot.name} from chunk {index + 1} first.")
    prefix = context_prefix(project, shot)
    if prefix and any(r is None for r in prefix[-CONTEXT_CHUNKS:]):
        raise ProjectError(f"{shot.name} continues the shot before it, whose last chunks are not generated yet; "
                           "generate that shot first.")
    context_ids = tuple((prefix + path[:from_index])[-CONTEXT_CHUNKS:])
    offset = min(len(prefix), CONTEXT_CHUNKS)
    after_drafts = _context_drafts(project, shot, take_id, from_index)
    if from_specs is not None and after_drafts:  # a final render conditioned on drafts would be none
        raise ProjectError(f"{shot.name} continues the shot before it, whose last chunks are drafts; render that "
                           "shot at final quality first.")
    draft = draft or after_drafts

    chunks = shot.chunks[from_index:stop_index]
    if from_specs is not None and len(from_specs) != len(chunks):
        raise ProjectError(f"{len(from_specs)} chunk specs were given for {len(chunks)} chunks of {shot.name}.")
    first = from_specs[0] if from_specs else chunk_spec(shot, chunks[0]) if chunks else None
    reference, fingerprint = None, None
    if from_index == 0 and first is not None and first.start == "image":
        asset = project.assets.get(first.reference_asset_id) if first.reference_asset_id else None
        if asset is None:
            raise ProjectError(f"{shot.name} starts from a reference image, but none is set. "
                               "Drop an image on the shot or make it start from text.")
        from magi_engine.video_io import load_image  # cv2: only when a shot starts from an image

        reference, fingerprint = load_image(store.asset_path(asset)), asset.fingerprint

    active = shot.find_take(take_id)
    fills_active = not new_take and all(r is None for r in path[from_index:]) and (
        active is None or from_index >= take_boundary(shot, active))
    if not chunks:
        raise ProjectError(f"There is no chunk of {shot.name} to generate between chunk {from_index + 1} "
                           f"and chunk {stop_index}.")
    if from_specs is not None:
        specs = tuple(dataclasses.replace(spec, draft=draft) for spec in from_specs)
    else:
        seeds = tuple(c.seed for c in chunks) if seeds is None else tuple(seeds)
        if len(seeds) != len(chunks):
            raise ProjectError(f"{len(seeds)} seeds were given for {len(chunks)} chunks of {shot.name}.")
        specs = tuple(chunk_spec(shot, c, seed, draft=draft) for c, seed in zip(chunks, seeds))
    prompts = tuple(joined_prompt(spec.shot_prompt, spec.prompt) for spec in specs)
    for index, prompt in enumerate(prompts, from_index + 1):
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ProjectError(f"Chunk {index} of {shot.name}: the shot's prompt and the chunk's prompt together "
                               f"are {len(prompt)} characters long; the limit is {MAX_PROMPT_CHARS}.")
    # A run continues its context at the context's size (a draft's, after drafts); a draft without context is
    # made smaller, by the engine's one definition of a draft (magi_engine.draft).
    width, height = (settings.width, settings.height)
    if draft and context_ids:
        last = project.results[context_ids[-1]]
        width, height = last.width, last.height
    request = GenerationRequest(
        chunks=tuple(ChunkSpec(p, spec.seed, spec.negative_prompt) for p, spec in zip(prompts, specs)),
        width=width, height=height,
        sampling=sampling, start_chunk=from_index + offset,
        context_latents=tuple(store.read_latent(project.results[result_id]) for result_id in context_ids),
        reference_image=reference, shot_length=len(shot.chunks) + offset, previews=previews, decode=True)
    if draft:
        if sampling is None:
            raise ValueError("a draft is planned from the model's sampling settings: pass `sampling`")
        request = draft_request(request, sampling, distilled=sampling.guidance.mode == "distilled")
    return GenerationPlan(
        shot_id=shot.id, start_index=from_index, chunk_ids=tuple(c.id for c in chunks), request=request,
        index_offset=offset, context_ids=context_ids, reference_fingerprint=fingerprint,
        extend_take_id=active.id if fills_active and active is not None else None,
        parent_take_id=None if fills_active else take_id, model=settings.model,
        lineage=tuple(take.id for take in take_chain(shot, take_id)),
        base_results=tuple((c.id, r) for c, r in zip(shot.chunks[:from_index], path) if r is not None),
        specs=specs, activate=activate)


def _context_drafts(project: Project, shot: Shot, take_id: str | None, from_index: int) -> bool:
    """Whether any chunk that conditions chunk `from_index` (seen through `take_id`) is a draft."""
    previous = previous_shot(project, shot) if continues_previous(project, shot) else None
    prefix = resolve_specs(previous, previous.active_take_id) if previous is not None else []
    context = (prefix + resolve_specs(shot, take_id)[:from_index])[-CONTEXT_CHUNKS:]
    return any(spec is not None and spec.draft for spec in context)


def plan_final_quality(project: Project, store, shot_id: str, draft_take_id: str, *,
                       sampling: SamplingConfig | None = None, previews: bool = True,
                       filling: str | None = None) -> GenerationPlan | None:
    """Render at Final Quality: the draft chunks take `draft_take_id` shows (model.draft_span) made again at the
    project's settings from the specs that take recorded (prompts, seeds, negative prompt, reference image), as a
    new take under it; the draft take stays as it was. The new take becomes active if the draft take was.
    `filling`: the take a stopped or paused final render made; it goes on from its first chunk without one
    (None when it has them all)."""
    shot = project.shot(shot_id)
    take = shot.find_take(draft_take_id)
    if take is None:
        raise ProjectError(f"The draft take of {shot.name} was deleted; there is nothing to render at final quality.")
    span = draft_span(shot, take)
    if span is None:
        raise ProjectError(f"{take.name} of {shot.name} has no draft chunks to render at final quality.")
    start, stop = span
    specs = resolve_specs(shot, take.id)
    if any(spec is None for spec in specs[start:stop]):
        raise ProjectError(f"{take.name} of {shot.name} does not record what all its chunks were made from; "
                           "regenerate them instead.")
    new_take, on_take = True, take.id
    if filling is not None and shot.find_take(filling) is not None:
        path = resolve_take(shot, filling)
        start = next((i for i in range(start, stop) if path[i] is None), None)
        if start is None:
            return None
        new_take, on_take = False, filling
    return plan_generation(project, store, shot_id, start, sampling=sampling, previews=previews, stop_index=stop,
                           new_take=new_take, activate=shot.active_take_id == take.id, on_take=on_take,
                           from_specs=tuple(specs[start:stop]))


def variation_seeds(project: Project, shot_id: str, from_index: int, count: int, stop_index: int | None = None,
                    rng: random.Random | None = None) -> list[tuple[int, ...]]:
    """`count` seed lists for chunks from_index..stop_index of a shot: every chunk's seed differs from its
    current seed and from the same chunk's seed in every other variation (locks are ignored: asking for
    variations asks for new seeds)."""
    if not 1 <= count <= 16:
        raise ProjectError(f"Between 1 and 16 variations can be generated at once, not {count}.")
    rng = rng or random.Random()
    chunks = project.shot(shot_id).chunks[from_index:stop_index]
    taken = [{c.seed} for c in chunks]
    variations = []
    for _ in range(count):
        seeds = []
        for used in taken:
            seed = next(s for s in iter(lambda: rng.randrange(2**31), None) if s not in used)
            used.add(seed)
            seeds.append(seed)
        variations.append(tuple(seeds))
    return variations


def plan_variations(project: Project, store, shot_id: str, from_index: int, count: int, *,
                    stop_index: int | None = None, sampling: SamplingConfig | None = None, previews: bool = True,
                    rng: random.Random | None = None) -> list[GenerationPlan]:
    """`count` plans of chunks from_index..stop_index with distinct seeds (variation_seeds): each makes a new
    take, a child of the active take (so the variations are siblings), and none becomes active."""
    return [plan_generation(project, store, shot_id, from_index, sampling=sampling, previews=previews, seeds=seeds,
                            stop_index=stop_index, new_take=True, activate=False)
            for seeds in variation_seeds(project, shot_id, from_index, count, stop_index, rng)]


def plan_resume(project: Project, store, shot_id: str, *, sampling: SamplingConfig | None = None,
                previews: bool = True) -> GenerationPlan | None:
    """Plan the shot from its first chunk that is not done (empty or stale); None when all are done."""
    index = first_pending_chunk(project, shot_id)
    if index is None:
        return None
    return plan_generation(project, store, shot_id, index, sampling=sampling, previews=previews)


def reseed_for_regeneration(project: Project, shot_id: str, index: int,
                            rng: random.Random | None = None) -> Command | None:
    """Before "regenerate from here" on a done chunk: a new seed unless it is locked, or the same
    prompt and seed would make the same chunk again. None when nothing needs to change."""
    shot = project.shot(shot_id)
    chunk = shot.chunks[index]
    if chunk.seed_locked or chunk_states(project, shot_id)[index] is not ChunkState.DONE:
        return None
    seed = chunk.seed
    while seed == chunk.seed:
        seed = (rng or random.Random()).randrange(2**31)
    command = SetSeed(shot_id, chunk.id, seed)
    command.text = f"New seed for {shot.name}, chunk {index + 1}"  # the history says why the seed changed
    command.merge_key = None  # a step of its own: a seed typed just before or after never merges into it
    return command


class ResultCommitter:
    """Turns the ChunkFinished events of one plan into results on disk and commands for the document.

    `write(event)` touches only the disk (run it on the worker thread: encoding a chunk's frames can
    take longer than a GUI frame); `command_for(project, result)` builds the undoable command (GUI
    thread). `commit` does both, for code with one thread (the command line, tests).
    """

    def __init__(self, plan: GenerationPlan, store, sampling: SamplingConfig | None = None) -> None:
        self.plan, self.store = plan, store
        # JSON-normalised (tuples become lists) so that a saved and reopened result compares equal.
        self._sampling = json.loads(json.dumps(sampling.to_dict())) if sampling is not None else {}
        self._context = list(plan.context_ids)
        self.take_id = plan.extend_take_id
        self.written: list[ChunkResult] = []  # in order

    def commit(self, project: Project, event: ChunkFinished) -> Command:
        return self.command_for(project, self.write(event))

    def write(self, event: ChunkFinished) -> ChunkResult:
        """Write the finished chunk's files (latent, frames, thumbnail) and describe it as a ChunkResult."""
        plan = self.plan
        position = plan.shot_index(event.chunk) - plan.start_index
        if not 0 <= position < len(plan.chunk_ids) or event.frames is None:
            raise ProjectError(f"The engine delivered chunk {event.chunk}, which this generation did not ask for.")
        spec = plan.request.chunks[position]
        result = ChunkResult(
            id=new_id(), chunk_id=plan.chunk_ids[position], prompt=spec.prompt, seed=spec.seed, model=plan.model,
            sampling=self._sampling, width=plan.request.width, height=plan.request.height,
            context_ids=tuple(self._context[-CONTEXT_CHUNKS:]),
            reference_fingerprint=plan.reference_fingerprint if position == 0 else None,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"), negative_prompt=spec.negative_prompt)
        result = self.store.write_result(result, event.latent, np.asarray(event.frames[event.prefix_frames:]))
        self._context.append(result.id)
        self.written.append(result)
        return result

    def command_for(self, project: Project, result: ChunkResult) -> Command:
        """The command that puts a written result on its take (creating the take for the first one).

        Edits made while the run went on never lose the result (`notice_for` says what happened): a chunk
        deleted meanwhile comes back with it, and when the take it belongs to, or the parent a new take was
        planned under, was deleted, the result goes to a new take under the nearest take that is left."""
        plan = self.plan
        shot = project.shot(plan.shot_id)
        commands: list[Command] = []
        spec = plan.specs[plan.chunk_ids.index(result.chunk_id)] if result.chunk_id in plan.chunk_ids[:len(
            plan.specs)] else None
        index = next((i for i, c in enumerate(shot.chunks) if c.id == result.chunk_id), None)
        # The history names the chunk ("Generate Shot 1, chunk 3"), so a run's steps can be told apart.
        if index is None and not _in_project(project, result.chunk_id):
            index = self._restore_position(shot, result.chunk_id)
            prompt = spec.prompt if spec is not None else result.prompt  # the chunk's own part, not the joined text
            commands.append(InsertChunk(plan.shot_id, index, Chunk(result.chunk_id, prompt, result.seed)))
            text = f"Generate {shot.name}, chunk {index + 1} (brought back)"
        else:
            text = f"Generate {shot.name}, " + (f"chunk {index + 1}" if index is not None else "a moved chunk")
        if self.take_id is not None and shot.find_take(self.take_id) is None:
            self.take_id = None  # the take this run filled was deleted: the rest goes to a new take
        if self.take_id is None:
            self.take_id = new_id()
            parent, first, inherited = self._attachment(project, shot, result)
            take = Take(self.take_id, next_take_name(shot), parent, first, inherited)
            commands.append(AddTake(plan.shot_id, take, activate=plan.activate))
            text += f" · {take.name}"
        commands.append(CommitResult(plan.shot_id, self.take_id, result.chunk_id, result, text=text, spec=spec))
        return commands[0] if len(commands) == 1 else MacroCommand(commands, text)

    def notice_for(self, project: Project, chunk_id: str) -> str | None:
        """One sentence for the user when the chunk `chunk_id` finishes somewhere an edit changed (None: as planned)."""
        shot = project.find_shot(self.plan.shot_id)
        if shot is None:
            return None
        if not any(c.id == chunk_id for c in shot.chunks):
            if _in_project(project, chunk_id):
                return (f"A chunk of {shot.name} was moved to another shot while it was being generated; its new "
                        f"result stays with {shot.name}'s takes, in the project.")
            number = self._restore_position(shot, chunk_id) + 1
            return (f"Chunk {number} of {shot.name} was deleted while it was being generated; it is back with its "
                    "new result (delete it again if you do not want it).")
        return None

    def _restore_position(self, shot, chunk_id: str) -> int:
        """Where a chunk of this plan that was removed goes back: after the planned chunk before it that is left."""
        ids = [c.id for c in shot.chunks]
        planned = list(self.plan.chunk_ids)
        before = planned[:planned.index(chunk_id)] if chunk_id in planned else []
        for previous in reversed(before):
            if previous in ids:
                return ids.index(previous) + 1
        return min(self.plan.start_index, len(ids))

    def _attachment(self, project: Project, shot, result: ChunkResult) -> tuple[str | None, str | None, dict]:
        """(parent id, first chunk id, inherited results) of the take this run's results start."""
        plan = self.plan
        if plan.parent_take_id is not None and shot.find_take(plan.parent_take_id) is not None:
            return plan.parent_take_id, plan.chunk_ids[0], {}
        if plan.parent_take_id is None and not self.written[:-1] and not plan.lineage:
            return None, None, {}  # a first run: a root take
        # The take it was planned on is gone: hang it on the nearest ancestor left (none: a root), and give it
        # the results the run was made on where that ancestor shows others, as DeleteTake does for children.
        first_owned = 0 if plan.parent_take_id is None else 1  # lineage[0] is the take a new one hangs under
        ancestors = plan.lineage[first_owned:] if plan.extend_take_id is None else plan.lineage[1:]
        parent = next((t for t in ancestors if shot.find_take(t) is not None), None)
        seen = dict(plan.base_results)
        seen.update((r.chunk_id, r.id) for r in self.written if r.id != result.id)
        through_parent = resolve_take(shot, parent)
        stop = next((i for i, c in enumerate(shot.chunks) if c.id == result.chunk_id), len(shot.chunks))
        inherited, first = {}, None
        for i, chunk in enumerate(shot.chunks[:stop]):
            own = seen.get(chunk.id)
            if own is not None and own in project.results and (first is not None or own != through_parent[i]):
                first = chunk.id if first is None else first
                inherited[chunk.id] = own
        if parent is None:
            return None, None, inherited
        return parent, first or result.chunk_id, inherited
