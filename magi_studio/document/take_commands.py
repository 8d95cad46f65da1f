"""Commands on a shot's takes: add one after a generation, commit a finished chunk, rename, switch, delete.

The same contract as commands.py (apply/revert return changes; revert restores the exact document).
Takes never lose results: deleting one hands its results to its children, and the ChunkResults
themselves stay in the project (and on disk), so undo can always bring a take back.
"""

from __future__ import annotations

import copy

from magi_studio.document.commands import Command
from magi_studio.document.model import ChunkResult, Project, Take, active_path, children_of, take_boundary
from magi_studio.document.observer import ChunkChanged, ShotsChanged, TakesChanged


class AddTake(Command):
    """A take made by a generation (planning.ResultCommitter builds it); by default it becomes active."""

    text = "Add take"

    def __init__(self, shot_id: str, take: Take, activate: bool = True) -> None:
        self.shot_id, self.take, self.activate = shot_id, copy.deepcopy(take), activate
        self._old_active: str | None = None

    def apply(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        shot.takes.append(copy.deepcopy(self.take))
        self._old_active = shot.active_take_id
        if self.activate:
            shot.active_take_id = self.take.id
        return [TakesChanged(self.shot_id)]

    def revert(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        shot.takes.remove(shot.take(self.take.id))
        shot.active_take_id = self._old_active
        return [TakesChanged(self.shot_id)]


class CommitResult(Command):
    """A finished chunk: its result enters the project and `take_id` maps the chunk to it."""

    text = "Generate chunk"

    def __init__(self, shot_id: str, take_id: str, chunk_id: str, result: ChunkResult, text: str = "") -> None:
        self.shot_id, self.take_id, self.chunk_id, self.result = shot_id, take_id, chunk_id, result
        self.text = text or self.text
        self._old_result_id: str | None = None

    def apply(self, project: Project) -> list:
        take = project.shot(self.shot_id).take(self.take_id)
        self._old_result_id = take.results.get(self.chunk_id)
        project.results[self.result.id] = self.result
        take.results[self.chunk_id] = self.result.id
        return [TakesChanged(self.shot_id)]

    def revert(self, project: Project) -> list:
        take = project.shot(self.shot_id).take(self.take_id)
        if self._old_result_id is None:
            del take.results[self.chunk_id]
        else:
            take.results[self.chunk_id] = self._old_result_id
        del project.results[self.result.id]  # its files stay on disk: redo needs them
        return [TakesChanged(self.shot_id)]


class KeepResult(Command):
    """A finished chunk whose shot was deleted while it generated: the result stays in the project, on no take."""

    text = "Keep generated chunk"

    def __init__(self, result: ChunkResult) -> None:
        self.result = result

    def apply(self, project: Project) -> list:
        project.results[self.result.id] = self.result
        return [ShotsChanged()]

    def revert(self, project: Project) -> list:
        del project.results[self.result.id]
        return [ShotsChanged()]


class RenameTake(Command):
    text = "Rename take"

    def __init__(self, shot_id: str, take_id: str, name: str) -> None:
        self.shot_id, self.take_id, self.name, self._old = shot_id, take_id, name, ""
        self.merge_key = ("take-name", take_id)

    def apply(self, project: Project) -> list:
        take = project.shot(self.shot_id).take(self.take_id)
        self._old, take.name = take.name, self.name
        return [TakesChanged(self.shot_id)]

    def revert(self, project: Project) -> list:
        project.shot(self.shot_id).take(self.take_id).name = self._old
        return [TakesChanged(self.shot_id)]

    def merge(self, other: Command) -> bool:
        if isinstance(other, RenameTake) and other.take_id == self.take_id:
            self.name = other.name
            return True
        return False


class SetActiveTake(Command):
    """Switch takes: the active path changes at once, nothing is generated.

    Where the new path shows another result than the old one, the chunk takes back the seed that
    result was made with (when its prompt is still the chunk's): Regenerate re-rolls a chunk's seed,
    and the take made before it must come back done, not stale. An edited prompt stays edited, so
    such a chunk stays stale. Undo puts the seeds back with the take.
    """

    text = "Switch take"

    def __init__(self, shot_id: str, take_id: str) -> None:
        self.shot_id, self.take_id, self._old = shot_id, take_id, None
        self._old_seeds: dict[str, int] = {}

    def apply(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        shot.take(self.take_id)  # raises for an unknown take
        before = active_path(shot)
        self._old, shot.active_take_id = shot.active_take_id, self.take_id
        self._old_seeds = {}
        changes = [TakesChanged(self.shot_id)]
        for chunk, old_id, new_id in zip(shot.chunks, before, active_path(shot)):
            result = project.results.get(new_id) if new_id is not None and new_id != old_id else None
            if result is not None and result.prompt == chunk.prompt and result.seed != chunk.seed:
                self._old_seeds[chunk.id], chunk.seed = chunk.seed, result.seed
                changes.append(ChunkChanged(self.shot_id, chunk.id))
        return changes

    def revert(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        shot.active_take_id = self._old
        changes = [TakesChanged(self.shot_id)]
        for chunk in shot.chunks:
            if chunk.id in self._old_seeds:
                chunk.seed = self._old_seeds[chunk.id]
                changes.append(ChunkChanged(self.shot_id, chunk.id))
        return changes


class DeleteTake(Command):
    """Delete a take without changing what any other take shows.

    Its children are re-parented to its parent; each child also takes over the results it saw
    through the deleted take (the chunks between the deleted take's first chunk and its own), and
    starts where the deleted take started. If the deleted take was active, its parent becomes active
    (for a root take: its first child; with no take left, none). The results stay in the project.
    """

    text = "Delete take"

    def __init__(self, shot_id: str, take_id: str) -> None:
        self.shot_id, self.take_id = shot_id, take_id
        self._old_takes: list[Take] = []
        self._old_active: str | None = None

    def apply(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        take = shot.take(self.take_id)
        self._old_takes, self._old_active = copy.deepcopy(shot.takes), shot.active_take_id
        position = {chunk.id: i for i, chunk in enumerate(shot.chunks)}
        start = take_boundary(shot, take)
        children = children_of(shot, take.id)
        for child in children:
            own_start = take_boundary(shot, child)
            if own_start > start:  # the child saw the deleted take's results in [start, own_start)
                inherited = {c: r for c, r in take.results.items() if start <= position.get(c, -1) < own_start}
                kept = {c: r for c, r in child.results.items() if position.get(c, own_start) >= own_start}
                child.results = {**inherited, **kept}
                child.first_chunk_id = take.first_chunk_id
            child.parent_id = take.parent_id
        shot.takes.remove(take)
        if shot.active_take_id == take.id:
            shot.active_take_id = take.parent_id or (children[0].id if children else None)
        return [TakesChanged(self.shot_id)]

    def revert(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        shot.takes, shot.active_take_id = copy.deepcopy(self._old_takes), self._old_active
        return [TakesChanged(self.shot_id)]
