"""The timeline's edits as document commands: what each mouse or keyboard gesture means for the storyboard.

Plain functions, no widgets: each takes the project and the ids the user pointed at and returns an
`Edit` (the command to push and the chunk to select afterwards) or None when the gesture means
nothing there (moving the first chunk left, splitting at a shot's first chunk, deleting the only
chunk of the project). Nothing here changes the project; the session pushes the command.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from magi_engine.requests import MAX_SEED
from magi_studio.document.commands import (AddShot, Command, DeleteChunk, DeleteShot, DuplicateChunk, InsertChunk,
                                           MacroCommand, MoveChunk, SetSeed, SetSeedLocked, SplitShot, new_chunk)
from magi_studio.document.model import Project, new_id, new_shot


@dataclass(frozen=True)
class Edit:
    command: Command
    #: (shot id, chunk id) to select once the command is applied; None keeps the selection.
    select: tuple[str, str] | None = None


def add_chunk_after(project: Project, shot_id: str, chunk_id: str | None) -> Edit:
    """A new chunk right after `chunk_id` (at the shot's end when None), seeded by the project's policy."""
    shot = project.shot(shot_id)
    index = shot.chunk_index(chunk_id) + 1 if chunk_id else len(shot.chunks)
    chunk = new_chunk(project, shot_id, index)
    command = InsertChunk(shot_id, index, chunk)
    command.text = "Add chunk"
    return Edit(command, (shot_id, chunk.id))


def insert_chunk_before(project: Project, shot_id: str, chunk_id: str) -> Edit:
    shot = project.shot(shot_id)
    index = shot.chunk_index(chunk_id)
    chunk = new_chunk(project, shot_id, index)
    return Edit(InsertChunk(shot_id, index, chunk), (shot_id, chunk.id))


def duplicate_chunk(project: Project, shot_id: str, chunk_id: str) -> Edit:
    command = DuplicateChunk(project, shot_id, chunk_id)
    return Edit(command, (shot_id, command.chunk.id))


def delete_chunk(project: Project, shot_id: str, chunk_id: str) -> Edit | None:
    """Delete a chunk; its shot goes with it when it was the shot's only chunk (never the project's last)."""
    shot = project.shot(shot_id)
    index = shot.chunk_index(chunk_id)
    if len(shot.chunks) > 1:
        follower = shot.chunks[index + 1] if index + 1 < len(shot.chunks) else shot.chunks[index - 1]
        return Edit(DeleteChunk(shot_id, chunk_id), (shot_id, follower.id))
    if sum(len(s.chunks) for s in project.shots) <= 1:
        return None  # a storyboard keeps at least one chunk to write in
    position = project.shot_index(shot_id)
    later = [s for s in project.shots[position + 1:] if s.chunks]
    earlier = [s for s in project.shots[:position] if s.chunks]
    target = (later[0].id, later[0].chunks[0].id) if later else (earlier[-1].id, earlier[-1].chunks[-1].id)
    command = DeleteShot(shot_id)
    command.text = "Delete chunk"
    return Edit(command, target)


def move_chunk(project: Project, shot_id: str, chunk_id: str, step: int) -> Edit | None:
    """One place left (step -1) or right (+1); past a shot's edge the chunk joins the neighbouring shot."""
    shot = project.shot(shot_id)
    index = shot.chunk_index(chunk_id) + step
    if 0 <= index < len(shot.chunks):
        return move_chunk_to(project, shot_id, chunk_id, shot_id, index + (step > 0))
    neighbour = project.shot_index(shot_id) + step
    if not 0 <= neighbour < len(project.shots):
        return None
    target = project.shots[neighbour]
    return move_chunk_to(project, shot_id, chunk_id, target.id, len(target.chunks) if step < 0 else 0)


def move_chunk_to(project: Project, shot_id: str, chunk_id: str, to_shot_id: str, slot: int) -> Edit | None:
    """Drag and drop: put the chunk in gap `slot` of `to_shot_id` (gap i is before its chunk i, counted
    before the chunk leaves). A shot emptied by the move is removed in the same undo step."""
    source = project.shot(shot_id)
    from_index = source.chunk_index(chunk_id)
    to_index = slot - 1 if to_shot_id == shot_id and slot > from_index else slot
    if to_shot_id == shot_id and to_index == from_index:
        return None
    command: Command = MoveChunk(shot_id, chunk_id, to_index, to_shot_id)
    if to_shot_id != shot_id and len(source.chunks) == 1:
        command = MacroCommand([command, DeleteShot(shot_id)], "Move chunk")
    return Edit(command, (to_shot_id, chunk_id))


def split_shot(project: Project, shot_id: str, chunk_id: str) -> Edit | None:
    """The chunk and those after it become a new shot that continues this one."""
    shot = project.shot(shot_id)
    index = shot.chunk_index(chunk_id)
    if index == 0:
        return None
    new_shot_id = new_id()
    return Edit(SplitShot(shot_id, index, new_shot_id), (new_shot_id, chunk_id))


def new_shot_after(project: Project, shot_id: str | None, rng: random.Random | None = None) -> Edit:
    """A new shot (one empty chunk) after `shot_id`, or at the end; its seed follows the project's policy."""
    position = project.shot_index(shot_id) + 1 if shot_id else len(project.shots)
    before = next((s.chunks for s in reversed(project.shots[:position]) if s.chunks), [])
    policy = project.settings.seed_policy
    if policy == "random":
        seed = (rng or random.Random()).randrange(2**31)
    else:
        seed = (before[-1].seed + (policy == "increment")) % (MAX_SEED + 1) if before else 0
    shot = new_shot(project, seed=seed)
    return Edit(AddShot(shot, position), (shot.id, shot.chunks[0].id))


def set_seed_locked(project: Project, shot_id: str, chunk_id: str, locked: bool) -> Edit:
    return Edit(SetSeedLocked(shot_id, chunk_id, locked))


def new_seed(project: Project, shot_id: str, chunk_id: str, rng: random.Random | None = None) -> Edit:
    """A fresh random seed, as its own undo step (it never merges with typing a seed)."""
    current = project.shot(shot_id).chunk(chunk_id).seed
    seed = current
    while seed == current:
        seed = (rng or random.Random()).randrange(2**31)
    command = SetSeed(shot_id, chunk_id, seed)
    command.text, command.merge_key = "New seed", None
    return Edit(command)
