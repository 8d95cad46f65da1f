"""The new seeds of Regenerate From Here, kept with their requests until each request is over.

    reseeds = Reseeds()
    reseeds.roll(session, item_id, shot_id, index, rng)    # chunk `index`'s new seed, pushed (none: locked, edited)
    reseeds.settle(session, {item_id}, made)               # over: kept when it made a chunk, else taken back
    reseeds.reroll(session, item_id, rng)                  # one taken back is asked for again: a new seed

A regeneration re-rolls its chunk's seed before its run, so the card says what is being made. A run that then
makes nothing (the model fails to load, the engine fails, the user stops it first) must not leave that seed
behind: the storyboard would claim a seed that made nothing. The seed is taken back off the history when it is
still its last step (DocumentSession.withdraw: no undo or redo step left), else restored by an undoable step of
its own when nothing set another seed since. A request that made a chunk keeps its seed, which made it.
GenerationController (generation.py and its mixins) calls these where a request ends.
"""

from __future__ import annotations

from magi_studio.document.commands import SetSeed
from magi_studio.document.planning import reseed_for_regeneration


class Reseeds:
    def __init__(self) -> None:
        self._pending: dict[int, tuple[SetSeed, int]] = {}  # queue item id -> (its new seed, the seed before)
        self._withdrawn: dict[int, tuple[str, str]] = {}  # queue item id -> (shot id, chunk id) of one taken back

    def clear(self) -> None:
        self._pending, self._withdrawn = {}, {}

    def pending(self) -> set[int]:
        return set(self._pending)

    def forget(self, item_id: int) -> None:
        """The request is over and keeps its seed (it made chunks), or its row is gone: nothing to take back."""
        self._pending.pop(item_id, None)
        self._withdrawn.pop(item_id, None)

    def roll(self, session, item_id: int, shot_id: str, index: int, rng) -> None:
        """Chunk `index`'s new seed for the regeneration `item_id`, pushed now (none when locked or edited)."""
        project = session.document.project
        reseed = reseed_for_regeneration(project, shot_id, index, rng)
        if reseed is not None:
            old = project.shot(shot_id).chunks[index].seed
            session.push(reseed)
            self._pending[item_id] = (reseed, old)

    def settle(self, session, item_ids: set[int], made) -> None:
        """These requests are over: the seed of each that made no chunk (`made(item_id)` false) is taken back."""
        for item_id in reversed([i for i in self._pending if i in item_ids]):  # the newest is the last step
            reseed, old = self._pending.pop(item_id)
            if made(item_id) or session is None:
                continue
            self._withdrawn[item_id] = (reseed.shot_id, reseed.chunk_id)
            if session.withdraw(reseed):
                continue
            shot = session.document.project.find_shot(reseed.shot_id)
            chunk = next((c for c in shot.chunks if c.id == reseed.chunk_id), None) if shot is not None else None
            if chunk is not None and chunk.seed == reseed.value:  # nothing set another seed since
                restore = SetSeed(shot.id, chunk.id, old)
                restore.text, restore.merge_key = f"Seed restored for {shot.name}: regenerating made nothing", None
                session.push(restore)

    def reroll(self, session, item_id: int, rng) -> None:
        """A regeneration whose seed was taken back is asked for again (Retry, a stopped run continued): it
        re-rolls, as the first time."""
        shot_id, chunk_id = self._withdrawn.pop(item_id, ("", ""))
        if session is None or not shot_id:
            return
        shot = session.document.project.find_shot(shot_id)
        if shot is not None and any(c.id == chunk_id for c in shot.chunks):
            self.roll(session, item_id, shot_id, shot.chunk_index(chunk_id), rng)
