"""VariationRun: "Generate N takes" of a shot from chunk N on, with different seeds, one take each.

It drives the generation controller through its public entry points only (generate_from, runEnded):
for each variation, one undo step puts the seeds of that variation (planning.variation_seeds: every
chunk's seed differs from its current one and from the other variations') on the chunks, with the
take the variations branch from made active again (SetActiveTake puts its specs back), then
generate_from makes a new take under it. The variations are therefore siblings, each a take; the
last one made stays active, and the takes view compares them. A run that is cancelled or fails ends
the series (the takes already made are kept).

planning.plan_variations plans the same series without touching the cards (none made active); a
controller whose queue takes plans can use it instead.
"""

from __future__ import annotations

import random

from PySide6.QtCore import QObject, QTimer, Signal

from magi_studio.document.commands import MacroCommand, SetSeed
from magi_studio.document.errors import ProjectError
from magi_studio.document.planning import variation_seeds
from magi_studio.document.take_commands import SetActiveTake


class VariationRun(QObject):
    #: (takes made, outcome of the last run: "finished" | "cancelled" | "failed") when the series is over.
    ended = Signal(int, str)

    def __init__(self, generation, session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.generation, self.session = generation, session
        self._pending: list[tuple[int, ...]] = []
        self._shot_id, self._index, self._parent_take = "", 0, None
        self._made = 0
        self._running = False
        generation.runEnded.connect(self._on_run_ended)

    @property
    def running(self) -> bool:
        return self._running

    def progress_text(self) -> str:
        """"Variation 2 of 4" while the series runs ("" otherwise)."""
        return f"Variation {self._made + 1} of {self._made + 1 + len(self._pending)}" if self._running else ""

    def start(self, shot_id: str, index: int, count: int, rng: random.Random | None = None) -> None:
        """Generate `count` takes of chunks index..end of the shot. ProjectError says why it cannot start."""
        if self._running or self.generation.is_generating():
            raise ProjectError("A generation is running; variations can start when it has finished.")
        project = self.session.document.project
        shot = project.shot(shot_id)
        if not 0 <= index < len(shot.chunks):
            raise ProjectError(f"{shot.name} has no chunk {index + 1}.")
        self._pending = variation_seeds(project, shot_id, index, count, rng=rng)
        self._shot_id, self._index, self._parent_take = shot_id, index, shot.active_take_id
        self._made, self._running = 0, True
        self._next()

    def _next(self) -> None:
        if not self._pending:
            return self._end("finished")
        project = self.session.document.project
        shot = next((s for s in project.shots if s.id == self._shot_id), None)
        if shot is None or self._index >= len(shot.chunks):
            return self._end("cancelled")  # the shot or its chunks went away meanwhile
        seeds = self._pending.pop(0)
        number = self._made + 1
        commands = []
        if self._parent_take is not None and shot.find_take(self._parent_take) is not None \
                and shot.active_take_id != self._parent_take:
            commands.append(SetActiveTake(shot.id, self._parent_take))
        commands += [SetSeed(shot.id, chunk.id, seed) for chunk, seed in zip(shot.chunks[self._index:], seeds)]
        total = number + len(self._pending)
        self.session.push(MacroCommand(commands, f"Seeds of variation {number} of {total} · {shot.name}"))
        self.generation.generate_from(shot.id, self._index)
        if not self.generation.is_generating():  # nothing to do (an empty range): go on without waiting
            self._made += 1
            self._next()

    def _on_run_ended(self, outcome: str) -> None:
        if not self._running:
            return
        self._made += 1
        if outcome != "finished":
            return self._end(outcome)
        QTimer.singleShot(0, self._next)  # after every listener of this run's end has heard of it

    def _end(self, outcome: str) -> None:
        self._running, self._pending = False, []
        self.ended.emit(self._made, outcome)
