"""VariationRun: "Generate N takes" of a shot from chunk N on, with different seeds, one take each.

It asks the generation controller for N queue items (GenerationController.generate_variations: each
carries its own seeds, from planning.variation_seeds, and makes a new take that is not made active), so
the variations show in the queue panel like any request, can be moved, removed or paused there, and
join the queue behind a run already going on. They are siblings under the take that is active when they
are planned; the takes view compares them and the user makes the best one active. This object only
follows its items through the queue, for the takes view's "Variation 2 of 4" and its end.
"""

from __future__ import annotations

import random

from PySide6.QtCore import QObject, Signal



class VariationRun(QObject):
    #: (takes made, "finished" | "cancelled" | "failed") when none of the series' items is left in the queue.
    ended = Signal(int, str)

    def __init__(self, generation, session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.generation, self.session = generation, session
        self._items: list[int] = []  # the queue items of the series still waiting or under way
        self._takes: dict[str, int] = {}  # shot id -> its number of takes before the series
        self._count = 0
        self._outcome = "finished"
        generation.queueChanged.connect(lambda: self._follow())
        generation.runEnded.connect(self._on_run_ended)

    @property
    def running(self) -> bool:
        return bool(self._items)

    def progress_text(self) -> str:
        """"Variation 2 of 4" while one of the series is generated, "waiting in the queue" before ("" after)."""
        if not self._items:
            return ""
        current = next((item for item in self.generation.queue() if item.current and item.id in self._items), None)
        return current.label.capitalize() if current is not None else "waiting in the queue"

    def start(self, shot_id: str, index: int, count: int, rng: random.Random | None = None) -> None:
        """Queue `count` takes of chunks index..end of the shot (after any series still queued: `ended` then
        counts both). ProjectError (from the controller) says why they cannot be queued."""
        takes_before = len(self.session.document.project.shot(shot_id).takes)
        items = self.generation.generate_variations(shot_id, index, count, rng=rng)
        if not self._items:
            self._takes, self._count, self._outcome = {}, 0, "finished"
        self._takes.setdefault(shot_id, takes_before)
        self._items += items
        self._count += count
        self._follow()

    def _follow(self, outcome: str | None = None) -> None:
        if not self._items or (outcome is None and not self.generation.is_generating()):
            return  # nothing of ours; or the run is over, and its end (runEnded, just after) says how
        waiting = {item.id for item in self.generation.queue()}
        self._items = [item_id for item_id in self._items if item_id in waiting]
        if not self._items:
            shots = {shot.id: shot for shot in self.session.document.project.shots}
            made = sum(len(shots[shot_id].takes) - before for shot_id, before in self._takes.items()
                       if shot_id in shots)
            self.ended.emit(max(0, min(self._count, made)), self._outcome)

    def _on_run_ended(self, outcome: str) -> None:
        if self._items:
            self._outcome = outcome
            self._follow(outcome)
