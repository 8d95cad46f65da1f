"""Every edit of the document as a small command object: `apply(project)` and `revert(project)`.

Both return the changes they made (observer.py types) so a Document can tell its views. Commands
hold ids, never objects, so they stay valid when other commands replace objects; anything they need
to undo is recorded on the first apply. Undo is last-in first-out, so a command is always reverted
on exactly the state it produced, and `revert` restores the document field for field.

Continuous edits merge: a command with a `merge_key` (typing a prompt, spinning a seed, renaming)
absorbs a following command with the same key through `merge(other)`, so one undo step undoes the
whole burst. QUndoStack in the UI hosts these; UndoHistory (observer.py) is the plain equivalent.

Structure edits never discard generated results: deleting or moving a chunk leaves every take's
result map as it is (the states become stale or empty through the derived rules in model.py).
Commands on takes (add, commit a result, rename, switch, delete) are in take_commands.py.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from typing import Any, Hashable

from magi_engine.errors import ConfigError, InputError
from magi_engine.requests import MAX_PROMPT_CHARS, MAX_SEED
from magi_studio.document.model import (START_MODES, Asset, Chunk, Project, ProjectSettings, Shot, Take,
                                        active_path, new_id, next_shot_name, resolve_specs, validate_settings)
from magi_studio.document.observer import (ChunkChanged, SettingsChanged, ShotChanged, ShotsChanged,
                                           TakesChanged)

_UNSET: Any = object()


class Command:
    #: Shown in the undo history ("Edit prompt").
    text = ""
    #: Commands with equal non-None keys merge (QUndoCommand.id / mergeWith).
    merge_key: Hashable | None = None

    def apply(self, project: Project) -> list:
        raise NotImplementedError

    def revert(self, project: Project) -> list:
        raise NotImplementedError

    def merge(self, other: "Command") -> bool:
        """Absorb `other` (already applied after this one); True if merged."""
        return False


class MacroCommand(Command):
    """Several commands as one undo step (applied in order, reverted in reverse)."""

    def __init__(self, commands: list[Command], text: str = "") -> None:
        self.commands = list(commands)
        self.text = text or (self.commands[0].text if self.commands else "")

    def apply(self, project: Project) -> list:
        return [change for command in self.commands for change in command.apply(project)]

    def revert(self, project: Project) -> list:
        return [change for command in reversed(self.commands) for change in command.revert(project)]


# --------------------------------------------------------------------------------------------- chunks


class _SetChunkField(Command):
    field_name = ""

    def __init__(self, shot_id: str, chunk_id: str, value: Any) -> None:
        self.shot_id, self.chunk_id, self.value = shot_id, chunk_id, value
        self._old = _UNSET

    def apply(self, project: Project) -> list:
        chunk = project.shot(self.shot_id).chunk(self.chunk_id)
        if self._old is _UNSET:
            self._old = getattr(chunk, self.field_name)
        setattr(chunk, self.field_name, self.value)
        return [ChunkChanged(self.shot_id, self.chunk_id)]

    def revert(self, project: Project) -> list:
        setattr(project.shot(self.shot_id).chunk(self.chunk_id), self.field_name, self._old)
        return [ChunkChanged(self.shot_id, self.chunk_id)]

    def merge(self, other: Command) -> bool:
        if type(other) is type(self) and other.chunk_id == self.chunk_id:
            self.value = other.value
            return True
        return False


class SetPrompt(_SetChunkField):
    text, field_name = "Edit prompt", "prompt"

    def __init__(self, shot_id: str, chunk_id: str, prompt: str) -> None:
        if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS:
            raise InputError(f"A prompt must be text of at most {MAX_PROMPT_CHARS} characters.")
        super().__init__(shot_id, chunk_id, prompt)
        self.merge_key = ("prompt", chunk_id)


class SetSeed(_SetChunkField):
    text, field_name = "Change seed", "seed"

    def __init__(self, shot_id: str, chunk_id: str, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise InputError(f"A seed must be an integer from 0 to {MAX_SEED}, got {seed!r}.")
        super().__init__(shot_id, chunk_id, seed)
        self.merge_key = ("seed", chunk_id)


class SetSeedLocked(_SetChunkField):
    text, field_name = "Lock seed", "seed_locked"

    def __init__(self, shot_id: str, chunk_id: str, locked: bool) -> None:
        super().__init__(shot_id, chunk_id, bool(locked))
        self.text = "Lock seed" if locked else "Unlock seed"

    def merge(self, other: Command) -> bool:
        return False


def next_seed(project: Project, shot_id: str, index: int, rng: random.Random | None = None) -> int:
    """The seed a chunk inserted at `index` gets under the project's seed policy."""
    policy = project.settings.seed_policy
    if policy == "random":
        return (rng or random.Random()).randrange(2**31)
    shot = project.shot(shot_id)
    before = shot.chunks[:index]
    if not before:  # the chunk before it in the storyboard: the previous shot's last one
        shot_position = project.shot_index(shot_id)
        before = next((s.chunks for s in reversed(project.shots[:shot_position]) if s.chunks), [])
    if not before:
        return 0
    return before[-1].seed if policy == "fixed" else (before[-1].seed + 1) % (MAX_SEED + 1)


def new_chunk(project: Project, shot_id: str, index: int, prompt: str = "", rng: random.Random | None = None) -> Chunk:
    """A chunk ready to insert at `index` (fresh id, seed by the project's policy)."""
    return Chunk(new_id(), prompt, next_seed(project, shot_id, index, rng))


class InsertChunk(Command):
    text = "Insert chunk"

    def __init__(self, shot_id: str, index: int | None, chunk: Chunk) -> None:
        self.shot_id, self.index, self.chunk = shot_id, index, copy.deepcopy(chunk)

    def apply(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        index = len(shot.chunks) if self.index is None else max(0, min(self.index, len(shot.chunks)))
        shot.chunks.insert(index, copy.deepcopy(self.chunk))
        return [ShotChanged(self.shot_id)]

    def revert(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        del shot.chunks[shot.chunk_index(self.chunk.id)]
        return [ShotChanged(self.shot_id)]


class AddChunk(InsertChunk):
    text = "Add chunk"

    def __init__(self, shot_id: str, chunk: Chunk) -> None:
        super().__init__(shot_id, None, chunk)


class DuplicateChunk(InsertChunk):
    """A copy (prompt, seed, lock; no result) right after the original."""

    text = "Duplicate chunk"

    def __init__(self, project: Project, shot_id: str, chunk_id: str) -> None:
        shot = project.shot(shot_id)
        original = shot.chunk(chunk_id)
        super().__init__(shot_id, shot.chunk_index(chunk_id) + 1, dataclasses.replace(original, id=new_id()))


def _retarget_takes(shot: Shot, removed_id: str, position: int) -> list[tuple[str, str | None]]:
    """Takes that started at a chunk being removed from `position` now start at the chunk that follows it,
    so the range each take owns stays where it was. Returns (take id, old first chunk) to undo."""
    if position >= len(shot.chunks):
        return []  # no follower: such a take now owns nothing (model.take_boundary), which is right
    follower = shot.chunks[position].id
    changed = [(take.id, take.first_chunk_id) for take in shot.takes if take.first_chunk_id == removed_id]
    for take in shot.takes:
        if take.first_chunk_id == removed_id:
            take.first_chunk_id = follower
    return changed


def _restore_targets(shot: Shot, changed: list[tuple[str, str | None]]) -> None:
    for take_id, first in changed:
        shot.take(take_id).first_chunk_id = first


class DeleteChunk(Command):
    text = "Delete chunk"

    def __init__(self, shot_id: str, chunk_id: str) -> None:
        self.shot_id, self.chunk_id = shot_id, chunk_id
        self._index, self._chunk, self._retargeted = 0, None, []

    def apply(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        self._index = shot.chunk_index(self.chunk_id)
        self._chunk = shot.chunks.pop(self._index)
        self._retargeted = _retarget_takes(shot, self.chunk_id, self._index)
        return [ShotChanged(self.shot_id), TakesChanged(self.shot_id)]

    def revert(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        shot.chunks.insert(self._index, self._chunk)
        _restore_targets(shot, self._retargeted)
        return [ShotChanged(self.shot_id), TakesChanged(self.shot_id)]


class MoveChunk(Command):
    """Move a chunk to `to_index` (its index after the move) of its shot or of another shot."""

    text = "Move chunk"

    def __init__(self, shot_id: str, chunk_id: str, to_index: int, to_shot_id: str | None = None) -> None:
        self.shot_id, self.chunk_id, self.to_index = shot_id, chunk_id, to_index
        self.to_shot_id = to_shot_id or shot_id
        self._from_index, self._retargeted = 0, []

    def apply(self, project: Project) -> list:
        source, target = project.shot(self.shot_id), project.shot(self.to_shot_id)
        self._from_index = source.chunk_index(self.chunk_id)
        chunk = source.chunks.pop(self._from_index)
        self._retargeted = _retarget_takes(source, self.chunk_id, self._from_index)
        target.chunks.insert(max(0, min(self.to_index, len(target.chunks))), chunk)
        return self._changes()

    def revert(self, project: Project) -> list:
        source, target = project.shot(self.shot_id), project.shot(self.to_shot_id)
        chunk = target.chunks.pop(target.chunk_index(self.chunk_id))
        source.chunks.insert(self._from_index, chunk)
        _restore_targets(source, self._retargeted)
        return self._changes()

    def _changes(self) -> list:
        changes = [ShotChanged(self.shot_id), TakesChanged(self.shot_id)]
        return changes + ([ShotChanged(self.to_shot_id)] if self.to_shot_id != self.shot_id else [])


# --------------------------------------------------------------------------------------------- shots


class AddShot(Command):
    text = "Add shot"

    def __init__(self, shot: Shot, index: int | None = None) -> None:
        self.shot, self.index = copy.deepcopy(shot), index

    def apply(self, project: Project) -> list:
        index = len(project.shots) if self.index is None else max(0, min(self.index, len(project.shots)))
        project.shots.insert(index, copy.deepcopy(self.shot))
        return [ShotsChanged()]

    def revert(self, project: Project) -> list:
        del project.shots[project.shot_index(self.shot.id)]
        return [ShotsChanged()]


class DeleteShot(Command):
    """Removes the shot; its results stay in the project (undo brings everything back)."""

    text = "Delete shot"

    def __init__(self, shot_id: str) -> None:
        self.shot_id, self._index, self._shot = shot_id, 0, None

    def apply(self, project: Project) -> list:
        self._index = project.shot_index(self.shot_id)
        self._shot = project.shots.pop(self._index)
        return [ShotsChanged()]

    def revert(self, project: Project) -> list:
        project.shots.insert(self._index, self._shot)
        return [ShotsChanged()]


class SplitShot(Command):
    """Chunks from `index` on become a new shot right after, which continues this one.

    The new shot gets one root take holding the results its chunks had on the active path: a
    continued shot is conditioned on the previous shot's last chunks, exactly as before the split,
    so those chunks stay done. The old shot's takes are left untouched (undo just moves chunks back).
    """

    text = "Split shot"

    def __init__(self, shot_id: str, index: int, new_shot_id: str | None = None, name: str | None = None) -> None:
        self.shot_id, self.index = shot_id, index
        self.new_shot_id, self.name = new_shot_id or new_id(), name
        self._take_id = new_id()

    def apply(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        if not 0 < self.index < len(shot.chunks):
            raise ValueError(f"cannot split {shot.name!r} at chunk {self.index}: it has {len(shot.chunks)} chunks")
        results = dict((c.id, r) for c, r in zip(shot.chunks[self.index:], active_path(shot)[self.index:]) if r)
        specs = dict((c.id, s) for c, s in zip(shot.chunks[self.index:], resolve_specs(shot, shot.active_take_id)
                                                [self.index:]) if s and c.id in results)
        self.name = self.name or next_shot_name(project)
        moved, shot.chunks = shot.chunks[self.index:], shot.chunks[:self.index]
        # The new shot keeps the prompt its chunks were generated with, so they stay done.
        new = Shot(self.new_shot_id, self.name, moved, start="continue", prompt=shot.prompt,
                   negative_prompt=shot.negative_prompt)
        if results:
            new.takes = [Take(self._take_id, "Take 1", None, None, results, specs)]
            new.active_take_id = self._take_id
        project.shots.insert(project.shot_index(self.shot_id) + 1, new)
        return [ShotsChanged(), ShotChanged(self.shot_id)]

    def revert(self, project: Project) -> list:
        new = project.shots.pop(project.shot_index(self.new_shot_id))
        project.shot(self.shot_id).chunks.extend(new.chunks)
        return [ShotsChanged(), ShotChanged(self.shot_id)]


class _SetShotField(Command):
    field_name = ""

    def __init__(self, shot_id: str, value: Any) -> None:
        self.shot_id, self.value, self._old = shot_id, value, _UNSET

    def apply(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        if self._old is _UNSET:
            self._old = getattr(shot, self.field_name)
        setattr(shot, self.field_name, self.value)
        return [ShotChanged(self.shot_id)]

    def revert(self, project: Project) -> list:
        setattr(project.shot(self.shot_id), self.field_name, self._old)
        return [ShotChanged(self.shot_id)]


class RenameShot(_SetShotField):
    text, field_name = "Rename shot", "name"

    def __init__(self, shot_id: str, name: str) -> None:
        super().__init__(shot_id, name)
        self.merge_key = ("shot-name", shot_id)

    def merge(self, other: Command) -> bool:
        if isinstance(other, RenameShot) and other.shot_id == self.shot_id:
            self.value = other.value
            return True
        return False


class SetShotPrompt(_SetShotField):
    """The shot's own prompt (subject, setting, style), which every chunk's prompt extends. Editing it
    makes the shot's generated chunks stale (they were made from the old joined text)."""

    text, field_name = "Edit shot prompt", "prompt"

    def __init__(self, shot_id: str, prompt: str) -> None:
        if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS:
            raise InputError(f"A shot prompt must be text of at most {MAX_PROMPT_CHARS} characters.")
        super().__init__(shot_id, prompt)
        self.merge_key = ("shot-prompt", shot_id)

    def merge(self, other: Command) -> bool:
        if isinstance(other, SetShotPrompt) and other.shot_id == self.shot_id:
            self.value = other.value
            return True
        return False


class SetShotNegativePrompt(_SetShotField):
    """What no chunk of the shot should show. Editing it makes the shot's generated chunks stale."""

    text, field_name = "Edit negative prompt", "negative_prompt"

    def __init__(self, shot_id: str, prompt: str) -> None:
        if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS:
            raise InputError(f"A negative prompt must be text of at most {MAX_PROMPT_CHARS} characters.")
        super().__init__(shot_id, prompt)
        self.merge_key = ("shot-negative-prompt", shot_id)

    def merge(self, other: Command) -> bool:
        if isinstance(other, SetShotNegativePrompt) and other.shot_id == self.shot_id:
            self.value = other.value
            return True
        return False


class SetShotStart(_SetShotField):
    """How the shot starts: "text", "image" (its reference image) or "continue" (the previous shot)."""

    text, field_name = "Change how the shot starts", "start"

    def __init__(self, shot_id: str, start: str) -> None:
        if start not in START_MODES:
            raise ConfigError(f"A shot starts from one of {START_MODES}, not {start!r}.")
        super().__init__(shot_id, start)


class SetReferenceImage(Command):
    """Make `asset` (imported by the store) the shot's first frame, or clear it with None."""

    text = "Set reference image"

    def __init__(self, shot_id: str, asset: Asset | None) -> None:
        self.shot_id, self.asset = shot_id, asset
        self._old: tuple[str | None, str] | None = None
        self._added_asset = False

    def apply(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        self._old = (shot.reference_asset_id, shot.start)
        if self.asset is not None:
            self._added_asset = self.asset.id not in project.assets
            project.assets.setdefault(self.asset.id, self.asset)
            shot.reference_asset_id, shot.start = self.asset.id, "image"
        else:
            shot.reference_asset_id = None
            shot.start = "text" if shot.start == "image" else shot.start
        return [ShotChanged(self.shot_id)]

    def revert(self, project: Project) -> list:
        shot = project.shot(self.shot_id)
        shot.reference_asset_id, shot.start = self._old
        if self._added_asset:
            del project.assets[self.asset.id]
        return [ShotChanged(self.shot_id)]


# --------------------------------------------------------------------------------------------- settings


class SetProjectSettings(Command):
    """Change any ProjectSettings fields at once, e.g. SetProjectSettings(width=256, height=256)."""

    text = "Change project settings"

    def __init__(self, **changes: Any) -> None:
        try:  # each field is validated on its own, so checking them over the defaults is enough
            validate_settings(dataclasses.replace(ProjectSettings(), **changes))
        except TypeError as error:
            raise ConfigError(f"Unknown project setting: {error}") from None
        self.changes, self._old = changes, None

    def apply(self, project: Project) -> list:
        self._old = project.settings
        project.settings = dataclasses.replace(project.settings, **self.changes)
        return [SettingsChanged(tuple(self.changes))]

    def revert(self, project: Project) -> list:
        project.settings = self._old
        return [SettingsChanged(tuple(self.changes))]
