"""Commands on a shot's takes: add one after a generation, commit a finished chunk, rename, switch, delete.

A take remembers what it was made from (model.TakeSpec, recorded by CommitResult), and switching to
it puts that back on the cards: each chunk's prompt and seed, and the shot's prompt, start and
reference image as they were when the take was made — so the take's chunks come back done.

The same contract as commands.py (apply/revert return changes; revert restores the exact document).
Takes never lose results: deleting one hands its results to its children, and the ChunkResults
themselves stay in the project (and on disk), so undo can always bring a take back.
"""

from __future__ import annotations

import copy

from magi_studio.document.commands import Command
from magi_studio.document.model import (ChunkResult, Project, Shot, Take, TakeSpec, children_of, own_spec,
                                        resolve_specs, take_boundary)
from magi_studio.document.observer import ChunkChanged, ShotChanged, ShotsChanged, TakesChanged


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
    """A finished chunk: its result enters the project, `take_id` maps the chunk to it and records the
    specs it was generated from (`spec`, planning's snapshot; None leaves the take's record as it is)."""

    text = "Generate chunk"

    def __init__(self, shot_id: str, take_id: str, chunk_id: str, result: ChunkResult, text: str = "",
                 spec: TakeSpec | None = None) -> None:
        self.shot_id, self.take_id, self.chunk_id, self.result = shot_id, take_id, chunk_id, result
        self.text, self.spec = text or self.text, spec
        self._old_result_id: str | None = None
        self._old_spec: TakeSpec | None = None

    def apply(self, project: Project) -> list:
        take = project.shot(self.shot_id).take(self.take_id)
        self._old_result_id = take.results.get(self.chunk_id)
        self._old_spec = take.specs.get(self.chunk_id)
        project.results[self.result.id] = self.result
        take.results[self.chunk_id] = self.result.id
        if self.spec is not None:
            take.specs[self.chunk_id] = self.spec
        return [TakesChanged(self.shot_id)]

    def revert(self, project: Project) -> list:
        take = project.shot(self.shot_id).take(self.take_id)
        if self._old_result_id is None:
            del take.results[self.chunk_id]
        else:
            take.results[self.chunk_id] = self._old_result_id
        if self._old_spec is None:
            take.specs.pop(self.chunk_id, None)
        else:
            take.specs[self.chunk_id] = self._old_spec
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


class _SpecRestore:
    """Puts a take's specs back on the shot and its chunks, and undoes exactly that.

    Every chunk the take shows (its own or its ancestors') takes back the prompt and seed it was made
    with; the shot takes back the prompt, negative prompt, start and reference image it had when the
    take itself was made (when that image is still in the project). Chunks whose specs are not known
    stay as they are.
    """

    def __init__(self) -> None:
        self._chunks: dict[str, tuple[str, int]] = {}
        self._shot: tuple[str, str, str, str | None] | None = None

    def apply(self, project: Project, shot: Shot, take_id: str | None) -> list:
        self._chunks, self._shot = {}, None
        changes: list = []
        take = shot.find_take(take_id)
        if take is None:
            return changes
        for chunk, spec in zip(shot.chunks, resolve_specs(shot, take_id)):
            if spec is not None and (chunk.prompt, chunk.seed) != (spec.prompt, spec.seed):
                self._chunks[chunk.id] = (chunk.prompt, chunk.seed)
                chunk.prompt, chunk.seed = spec.prompt, spec.seed
                changes.append(ChunkChanged(shot.id, chunk.id))
        spec = own_spec(shot, take)
        if spec is not None:
            old = (shot.prompt, shot.negative_prompt, shot.start, shot.reference_asset_id)
            shot.prompt, shot.negative_prompt = spec.shot_prompt, spec.negative_prompt
            if spec.reference_asset_id is None or spec.reference_asset_id in project.assets:
                shot.start = spec.start
                shot.reference_asset_id = spec.reference_asset_id or shot.reference_asset_id
            if (shot.prompt, shot.negative_prompt, shot.start, shot.reference_asset_id) != old:
                self._shot = old
                changes.append(ShotChanged(shot.id))
        return changes

    def revert(self, shot: Shot) -> list:
        changes: list = []
        for chunk in shot.chunks:
            if chunk.id in self._chunks:
                chunk.prompt, chunk.seed = self._chunks[chunk.id]
                changes.append(ChunkChanged(shot.id, chunk.id))
        if self._shot is not None:
            shot.prompt, shot.negative_prompt, shot.start, shot.reference_asset_id = self._shot
            changes.append(ShotChanged(shot.id))
        return changes


class SetActiveTake(Command):
    """Switch takes: the active path changes at once, nothing is generated, and the cards take back
    what the take was made from (_SpecRestore), so its chunks come back done. One undo step puts back
    both the previous take and the previous specs."""

    text = "Switch take"

    def __init__(self, shot_id: str, take_id: str) -> None:
        self.shot_id, self.take_id, self._old = shot_id, take_id, None
        self._specs = _SpecRestore()

    def apply(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        shot.take(self.take_id)  # raises for an unknown take
        self._old, shot.active_take_id = shot.active_take_id, self.take_id
        return [TakesChanged(self.shot_id)] + self._specs.apply(project, shot, self.take_id)

    def revert(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        shot.active_take_id = self._old
        return [TakesChanged(self.shot_id)] + self._specs.revert(shot)


class DeleteTake(Command):
    """Delete a take without changing what any other take shows.

    Its children are re-parented to its parent; each child also takes over the results it saw
    through the deleted take (the chunks between the deleted take's first chunk and its own), and
    starts where the deleted take started. If the deleted take was active, its parent becomes active
    (for a root take: its first child; with no take left, none) and puts its specs back, as switching
    to it would. The results stay in the project.
    """

    text = "Delete take"

    def __init__(self, shot_id: str, take_id: str) -> None:
        self.shot_id, self.take_id = shot_id, take_id
        self._old_takes: list[Take] = []
        self._old_active: str | None = None
        self._specs = _SpecRestore()

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
                child.specs = {**{c: s for c, s in take.specs.items() if c in inherited},
                               **{c: s for c, s in child.specs.items() if c in kept}}
                child.first_chunk_id = take.first_chunk_id
            child.parent_id = take.parent_id
        shot.takes.remove(take)
        changes: list = [TakesChanged(self.shot_id)]
        if shot.active_take_id == take.id:
            shot.active_take_id = take.parent_id or (children[0].id if children else None)
            changes += self._specs.apply(project, shot, shot.active_take_id)
        else:
            self._specs = _SpecRestore()  # nothing to put back on undo
        return changes

    def revert(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        shot.takes, shot.active_take_id = copy.deepcopy(self._old_takes), self._old_active
        return [TakesChanged(self.shot_id)] + self._specs.revert(shot)
