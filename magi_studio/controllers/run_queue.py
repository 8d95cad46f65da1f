"""The queue side of a GenerationController: the requests that fill a run's queue, and the user's hand on it.

    generation.generate_shot(shot_id)              # idle: a run starts; during a run: joins its queue, last
    generation.generate_variations(shot_id, 2, 4)  # four queue items: sibling takes with distinct seeds
    generation.queue()                     # [QueueItem]: the request under way first, then the waiting ones
    generation.move_queued(item_id, -1)    # earlier; remove_queued(item_id) takes it out of the run
    generation.pause()                     # within one step; finished chunks kept; resume_paused() goes on
    generation.cancel_request(item_id)     # that request alone stops (finished chunks kept); the run goes on
    generation.ended_requests()            # [QueueItem] failed (with why) or cancelled: retry(item_id) or remove
    generation.completed()                 # [CompletedRequest]: what each done request made; clear_completed()

The project keeps the queue (Project.render_queue, saved with it): what had not finished — failed, cancelled,
under way or waiting — comes back as stopped rows to Retry or Remove, and the Completed list as it was.

A request made during a run joins the end of its queue (a paused run stays paused until Resume); one that
the run already makes as asked (`_made_by_run`) is not added twice, and `queueNotice` says so. One made while
the run is stopping starts the next run, once it has stopped. The exception is a request to generate the shot
under way again from a chunk its job has already reached (Regenerate or Generate From Here on the chunk
being denoised, or on one before it): what that job still makes would be thrown away, so the job stops
within one step, its finished chunks kept, and the request goes first; the rest of the queue follows.
A request from a later chunk waits behind the job, which makes the chunks it needs as context.

A mixin of GenerationController (generation.py), kept apart to keep that file small: it reads and changes
the controller's run (`_queue`, `_current`, `_phase`) and moves the phase only through the controller's
`_enter`, so the state machine stays in one place.
"""

from __future__ import annotations

import dataclasses
import itertools
import random

from magi_studio.controllers.run_state import (ChunkJobState, CompletedRequest, QueuedShot, QueueItem, RequestState,
                                               RunPhase)
from magi_studio.document.errors import ProjectError
from magi_studio.document.model import chunk_spec, draft_span, first_pending_chunk, resolve_take
from magi_studio.document.planning import variation_seeds

_item_ids = itertools.count(1)


def _draft_label(label: str, draft: bool) -> str:
    """What the queue calls a request: "variation 2 of 4", "draft", "variation 2 of 4 · draft"."""
    return " · ".join(part for part in (label, "draft" if draft else "") if part)


def _already_text(already: list[tuple[str, bool]]) -> str:
    """The status bar's sentence for requests that added nothing: their shots are generated as asked already."""
    names = list(dict.fromkeys(name for name, _ in already))
    if len(names) == 1:
        where = "being generated" if all(making for _, making in already) else "in the queue"
        return f"{names[0]} is already {where} as asked: nothing was added to the queue."
    return f"{', '.join(names[:-1])} and {names[-1]} are already in the run as asked: nothing was added for them."


class RunQueue:
    """Requests and queue methods of GenerationController (which provides the attributes and signals they use)."""

    # Requests ---------------------------------------------------------------------------------
    def generate_storyboard(self) -> None:
        """Every shot, in order, from its first chunk that is not done (this is also Resume)."""
        if self._session is not None:
            self.generate_shots([shot.id for shot in self._session.document.project.shots])

    resume = generate_storyboard

    def generate_shots(self, shot_ids: list[str]) -> None:
        """These shots, in this order, each from its first chunk that is not done (a resumed run)."""
        draft = self._draft_mode()
        self._request([QueuedShot(next(_item_ids), shot_id, None, label=_draft_label("", draft), draft=draft)
                       for shot_id in shot_ids])

    def generate_shot(self, shot_id: str) -> None:
        """One shot from its first chunk that is not done (empty or stale)."""
        self.generate_shots([shot_id])

    def generate_from(self, shot_id: str, index: int, stop_index: int | None = None) -> None:
        """Chunk `index` of the shot and every later one (up to chunk `stop_index`, excluded, when given: an
        in/out range); the chunks before it are kept as they are."""
        self._request([self._from_item(shot_id, index, stop_index)])

    def regenerate_from(self, shot_id: str, index: int) -> None:
        """As generate_from, re-rolling chunk `index`'s seed first (undoably) unless it is locked or edited. The new
        seed is taken back if the request makes no chunk (reseeds.py)."""
        if self._session is None:
            return
        item = self._from_item(shot_id, index)
        self._reseeds.roll(self._session, item.id, shot_id, index, self.seed_source)
        self._request([item])

    def _from_item(self, shot_id: str, index: int, stop_index: int | None = None) -> QueuedShot:
        draft = self._draft_mode()
        return QueuedShot(next(_item_ids), shot_id, index, stop_index=stop_index, label=_draft_label("", draft),
                          draft=draft)

    def _settle_reseeds(self, item_ids: set[int]) -> None:
        """These requests are over: a regeneration among them that committed no chunk takes its new seed back."""
        self._reseeds.settle(self._session, item_ids, made=lambda item_id: bool(self._item_made.get(item_id)))

    def generate_variations(self, shot_id: str, index: int, count: int,
                            rng: random.Random | None = None) -> list[int]:
        """`count` takes of chunks index..end of the shot, one queue item each, with seeds that differ from the
        chunks' and from each other's (planning.variation_seeds). Each makes a new take under the take that is
        active when it is planned (so they are siblings) and none becomes active. Returns the items' ids;
        ProjectError says why none can be queued."""
        if self._session is None:
            return []
        project = self._session.document.project
        shot = project.find_shot(shot_id)
        if shot is None or not 0 <= index < len(shot.chunks):
            raise ProjectError(f"{shot.name} has no chunk {index + 1}." if shot else "That shot no longer exists.")
        seeds = variation_seeds(project, shot_id, index, count, rng=rng or self.seed_source)
        draft = self._draft_mode()
        items = [QueuedShot(next(_item_ids), shot_id, index, variation, new_take=True, activate=False,
                            label=_draft_label(f"variation {number} of {count}", draft), draft=draft)
                 for number, variation in enumerate(seeds, 1)]
        self._request(items)
        return [item.id for item in items]

    def render_final_quality(self, shot_id: str, take_id: str) -> None:
        """A new take of the draft chunks take `take_id` shows, at the project's settings, from the same specs
        (planning.plan_final_quality), queued like any request; the draft take stays. ProjectError says why not."""
        if self._session is None:
            return
        project = self._session.document.project
        shot = project.find_shot(shot_id)
        take = shot.find_take(take_id) if shot is not None else None
        span = draft_span(shot, take) if take is not None else None
        if span is None:
            raise ProjectError(f"{take.name} of {shot.name} is not a draft: it is at final quality already."
                               if take is not None else "That take no longer exists.")
        self._request([QueuedShot(next(_item_ids), shot_id, span[0], new_take=True, label="at final quality",
                                  stop_index=span[1], final_of=take_id)])

    def _draft_mode(self) -> bool:
        return self._session is not None and self._session.document.project.settings.draft

    def _request(self, items: list[QueuedShot]) -> None:
        if self._session is None or not items:
            return
        if self._phase is RunPhase.IDLE:
            return self._begin(items)
        if self._stop is not None:  # the run is stopping: these make the next run, once it has ended
            self._after_stop += items
            return self.queueNotice.emit("The run is stopping; what you asked for starts once it has stopped.")
        project = self._session.document.project
        already = []  # (shot name, whether the request under way makes it) of requests that would add nothing
        for item in items:
            making = self._made_by_run(project, item)
            if making is not None:
                already.append((project.shot(item.shot_id).name, making))
                continue
            if self._replaces_current(item):
                self._queue.insert(0, item)
                self._dropping_current = True
                if self._phase is RunPhase.RUNNING:
                    self.worker.cancel(self._job.job_id)  # its finished chunks are still committed
                # PLANNING: the plan's delivery is dropped; DRAINING: the job has ended already
            else:
                self._queue.append(item)
            self._run_chunks += [(item.shot_id, chunk_id) for chunk_id in self._mark_queued(project, item)]
        if self._marked is not None:
            self._mark_run(self._session.store)  # the marker lists what a restart should offer to resume
        if already:
            self.queueNotice.emit(_already_text(already))
        self.queueChanged.emit()
        self._emit_progress()

    def _made_by_run(self, project, item: QueuedShot) -> bool | None:
        """Whether a plain request of the run for the same shot (the one under way, or one waiting) makes every
        chunk `item` would, from the specs those chunks have now, so that asking again would add nothing: True
        when the request under way does, False when a waiting one does, None when `item` adds something (a
        chunk edited since its job was planned is made again after it)."""
        if item.seeds is not None or item.new_take or not item.activate or item.final_of is not None:
            return None  # a variation is new by its seeds, a final render by its quality
        wanted = {chunk.id for chunk in self._chunks_of(project, item)}
        made: set[str] = set()
        for request in [self._current] + self._queue:
            if request is None or request.shot_id != item.shot_id or request.seeds is not None or request.new_take:
                continue
            if request.draft != item.draft:
                continue  # a draft does not make what a final request asks for, nor the other way round
            if request is self._current and self._job is not None:
                shot = project.shot(item.shot_id)
                now = {chunk.id: chunk_spec(shot, chunk, draft=item.draft) for chunk in shot.chunks}
                made |= {chunk_id for chunk_id, spec in zip(self._job.plan.chunk_ids, self._job.plan.specs)
                         if now.get(chunk_id) == spec}
            else:
                made |= {chunk.id for chunk in self._chunks_of(project, request)}
            if wanted <= made:
                return request is self._current
        return None

    def _replaces_current(self, item: QueuedShot) -> bool:
        """Whether `item` asks again for the shot under way from a chunk its job has reached (see the module)."""
        current = self._current
        if (current is None or item.shot_id != current.shot_id or item.seeds is not None or item.from_index is None
                or item.final_of is not None or current.final_of is not None
                or self._stop is not None or self._pausing or self._dropping_current):
            return False
        if self._job is not None:
            reached = self._job.plan.start_index + len(self._job.finished)  # chunks finish in order
        else:  # being planned: it starts where it was asked to
            reached = current.from_index if current.from_index is not None else \
                first_pending_chunk(self._session.document.project, current.shot_id)
        return reached is not None and item.from_index <= reached

    def _mark_queued(self, project, item: QueuedShot) -> list[str]:
        """The chunks a queued request will generate show as queued (a chunk being denoised keeps saying so),
        and count in the run's estimate; returns them."""
        chunks = self._chunks_of(project, item)
        if chunks:
            self._progress.estimates[item.id] = len(chunks) + self._progress.finished_in.get(item.id, 0)
        for chunk in chunks:
            if self._states.get(chunk.id)[0] != ChunkJobState.DENOISING:
                self._states.set(item.shot_id, chunk.id, ChunkJobState.QUEUED)
        return [chunk.id for chunk in chunks]

    def _chunks_of(self, project, item: QueuedShot) -> list:
        """The chunks `item` would generate now (a variation: as many as it has seeds, less those its take has)."""
        shot = project.find_shot(item.shot_id)
        if shot is None:
            return []
        start = first_pending_chunk(project, item.shot_id) if item.from_index is None else item.from_index
        if start is None:
            return []
        if item.seeds is not None or item.final_of is not None:
            chunks = shot.chunks[start:start + len(item.seeds)] if item.seeds is not None else \
                shot.chunks[start:item.stop_index]
            take_id = self._item_takes.get(item.id)
            path = resolve_take(shot, take_id) if shot.find_take(take_id) is not None else None
            return [c for c in chunks if path is None or path[shot.chunks.index(c)] is None]
        return shot.chunks[start:item.stop_index]

    def _waiting_chunks(self) -> set[str]:
        """Chunks that waiting requests will generate (they stay QUEUED when another request lets them go)."""
        project = self._session.document.project if self._session is not None else None
        return {chunk.id for item in self._queue for chunk in self._chunks_of(project, item)} if project else set()

    # The queue --------------------------------------------------------------------------------
    def queue(self) -> list[QueueItem]:
        """What the run will generate, in order: the request under way first (when one is), with its own
        progress; in a paused run, the request it holds first (PAUSED)."""
        if self._session is None or self._phase is RunPhase.IDLE:
            return []
        names = {shot.id: shot.name for shot in self._session.document.project.shots}
        rows = [self._current_row(names)] if self._current is not None and self._current.shot_id in names else []
        for position, item in enumerate(self._queue):
            if item.shot_id in names:
                held = position == 0 and self._phase is RunPhase.PAUSED
                done = self._progress.finished_in.get(item.id, 0)
                chunks = self._progress.estimates.get(item.id, 0)  # an estimate until it is planned
                rows.append(QueueItem(item.id, item.shot_id, names[item.shot_id], item.from_index, False, item.label,
                                      item.stop_index, state=RequestState.PAUSED if held else RequestState.QUEUED,
                                      chunk=done, chunks=chunks, fraction=done / max(1, chunks)))
        return rows

    def _current_row(self, names: dict[str, str]) -> QueueItem:
        """The request under way, with its progress: chunk c of n (its own chunks), the share done, its ETA."""
        item, job = self._current, self._job
        chunks = self._progress.estimates.get(item.id, 0) if job is not None else 0
        done = self._progress.finished_in.get(item.id, 0)
        eta, partial = None, 0.0
        if job is not None:
            taken, needed = job.next_chunk_steps()
            partial = taken / needed if needed else 0.0
            progress = self.progress()
            eta = progress.request_eta_s if progress is not None else None
        stopping = "cancelling" if self._cancelling_current else "stopping" if self._stop is not None else \
            "pausing" if self._pausing else ""
        return QueueItem(item.id, item.shot_id, names[item.shot_id], item.from_index, True, item.label,
                         item.stop_index, state=RequestState.RUNNING, chunk=min(chunks, done + 1), chunks=chunks,
                         fraction=min(1.0, (done + partial) / chunks) if chunks else 0.0, eta_s=eta,
                         stopping=stopping)

    def ended_requests(self) -> list[QueueItem]:
        """The requests that failed (each with its sentence, `failed`) or were cancelled, oldest first: listed
        until the user retries or removes them, or a request that fills their shot is done."""
        return [row for _, row in self._ended]

    def failed_requests(self) -> list[QueueItem]:
        """The requests of this run (or the last one) that could not be generated, each with its sentence."""
        return [row for _, row in self._ended if row.id in self._run_failed and row.state is RequestState.FAILED]

    def completed(self) -> list[CompletedRequest]:
        """The requests done, oldest first, with what they made (a take, its chunks, the time taken)."""
        return list(self._completed)

    def clear_completed(self) -> None:
        if self._completed:
            self._completed = []
            self.completedChanged.emit()

    def retry(self, item_id: int) -> bool:
        """Ask again for a request that failed or was cancelled, planned from the document as it is now, as
        Generate would: a plain request from its shot's first chunk not done (up to its range's end), a
        variation filling its take from its first chunk without one. False: no such row."""
        ended = next((item for item, _ in self._ended if item.id == item_id), None)
        if ended is None or self._session is None:
            return False
        self._ended = [(item, row) for item, row in self._ended if item.id != item_id]
        self._stopped = [item for item in self._stopped if item.id != item_id]
        self._reseeds.reroll(self._session, item_id, self.seed_source)  # a regeneration re-rolls, as the first time
        again = ended if ended.seeds is not None or ended.final_of is not None else \
            QueuedShot(ended.id, ended.shot_id, None, label=ended.label, stop_index=ended.stop_index,
                       draft=ended.draft)
        self.queueChanged.emit()
        self._request([again])
        return True

    def cancel_request(self, item_id: int) -> bool:
        """Stop one request and go on with the rest of the queue: a waiting one leaves the queue, the one under
        way stops within one step (its finished chunks kept); either is listed as cancelled (Retry asks for it
        again). The only request of the run: the run stops (cancel). False: not in the run."""
        current = self._current is not None and self._current.id == item_id
        if not current and not any(item.id == item_id for item in self._queue):
            return False
        if current and (self._dropping_current or self._phase is RunPhase.DRAINING):
            return False  # already given up, or its last chunks are being committed: it is about done
        if current and not self._queue:
            self.cancel()
            return True
        if not current:
            item = next(item for item in self._queue if item.id == item_id)
            self.remove_queued(item_id)
            self._end_request(item, RequestState.CANCELLED)
            self.queueChanged.emit()
            return True
        self._dropping_current = self._cancelling_current = True  # listed as cancelled once it has stopped
        if self._phase is RunPhase.RUNNING:
            self.worker.cancel(self._job.job_id)  # its finished chunks are still committed; then the next request
        # PLANNING: the plan's delivery is dropped and the next request planned
        self.queueChanged.emit()
        self._emit_progress()
        return True

    def move_queued(self, item_id: int, offset: int) -> None:
        """Move a waiting request `offset` places later (negative: earlier) in the queue."""
        position = next((i for i, item in enumerate(self._queue) if item.id == item_id), None)
        if position is None:
            return
        item = self._queue.pop(position)
        self._queue.insert(max(0, min(len(self._queue), position + offset)), item)
        self.queueChanged.emit()

    def remove_queued(self, item_id: int) -> None:
        """Take a waiting request out of the run (the one under way is stopped with cancel, not removed), or a
        failed or cancelled one off the list."""
        if any(ended.id == item_id for ended, _ in self._ended):
            self._ended = [(ended, row) for ended, row in self._ended if ended.id != item_id]
            self._stopped = [item for item in self._stopped if item.id != item_id]
            self._reseeds.forget(item_id)
            return self.queueChanged.emit()
        item = next((item for item in self._queue if item.id == item_id), None)
        if item is None:
            return
        self._queue.remove(item)
        self._settle_reseeds({item.id})
        self._progress.estimates.pop(item.id, None)
        project = self._session.document.project
        # Its chunks are no longer queued, unless another request will make them or the one under way makes them.
        current = set(self._job.plan.chunk_ids) if self._job is not None else \
            {chunk.id for chunk in self._chunks_of(project, self._current)} if self._current is not None else set()
        self._states.settle(chunk_ids={chunk.id for chunk in self._chunks_of(project, item)}
                            - self._waiting_chunks() - current)
        self.queueChanged.emit()
        self._emit_progress()

    def pause(self) -> None:
        """Hold the run: a running job stops within one step (its finished chunks kept); its request goes back to
        the head of the queue and generates from its first chunk not done when the run is resumed."""
        if self._phase in (RunPhase.IDLE, RunPhase.PAUSED) or self._stop is not None or self._pausing:
            return
        self._pausing = True
        if self._phase is RunPhase.RUNNING:
            self.worker.cancel(self._job.job_id)
            self._emit_progress()  # "Pausing after this step…"
        elif self._phase is RunPhase.LOADING:
            self._hold()
        # PLANNING: the plan's delivery holds the run; DRAINING: the end of the draining does

    def resume_paused(self) -> None:
        if self._phase is RunPhase.PAUSED:
            self._pausing = False
            self._when_model_ready()

    def is_paused(self) -> bool:
        return self._phase is RunPhase.PAUSED

    def _hold(self) -> None:
        if self._current is not None:
            self._leave_current(self._current)
            self._list_cancelled_current(self._current)
        if self._current is not None and not self._dropping_current:
            item = self._again(self._current)
            self._queue.insert(0, item)
            self._mark_queued(self._session.document.project, item)
        self._current, self._dropping_current = None, False
        self._set_busy([])
        self._enter(RunPhase.PAUSED)

    # Kept with the project ---------------------------------------------------------------------
    def saved_queue(self) -> dict:
        """The queue as the project keeps it (Project.render_queue; {} when empty): every request not finished —
        failed, cancelled, under way, waiting — each with why it failed ("" otherwise) and the take a variation
        fills, then the Completed list."""
        failed = {item.id: row.failed for item, row in self._ended}
        current = [self._again(self._current)] if self._current is not None and not self._dropping_current else []
        unfinished = {item.id: item for item in [i for i, _ in self._ended] + current + self._queue + self._after_stop}
        if not unfinished and not self._completed:
            return {}
        return {"unfinished": [{**_fields(item), "seeds": list(item.seeds) if item.seeds is not None else None,
                                "failed": failed.get(item.id, ""), "take": self._item_takes.get(item.id)}
                               for item in unfinished.values()],
                "completed": [_fields(request) for request in self._completed]}

    def _restore_queue(self, project) -> None:
        """The queue the project kept: its unfinished requests listed as failed or stopped (Retry, Remove), its
        Completed list. A request the document cannot make any more (its shot, range or take gone) is left out."""
        saved = project.render_queue or {}
        shots = {shot.id: shot for shot in project.shots}
        for entry in saved.get("unfinished", []):
            shot = shots.get(entry["shot_id"])
            if shot is None or not _fits(entry, shot):
                continue
            seeds = tuple(entry["seeds"]) if entry["seeds"] is not None else None
            item = _restored(QueuedShot, entry, seeds=seeds)
            if entry.get("take") and shot.find_take(entry["take"]) is not None:
                self._item_takes[item.id] = entry["take"]
            self._end_request(item, RequestState.FAILED if entry["failed"] else RequestState.CANCELLED, entry["failed"])
        self._run_failed.clear()  # failures of an earlier session, not of this run
        self._completed = [_restored(CompletedRequest, entry) for entry in saved.get("completed", [])]

    def _record_queue(self) -> None:
        if self._session is not None:
            self._session.document.project.render_queue = self.saved_queue()

    def _again(self, item: QueuedShot) -> QueuedShot:
        """A stopped request, to go on later: once a chunk of it finished, a plain one goes on from its shot's
        first chunk not done (it fills the take it made); otherwise, and for a variation, it is asked again as
        it was: a variation then fills the take it made from its first chunk without one
        (job_planning.plan_request)."""
        if item.seeds is not None or item.final_of is not None or not self._progress.finished_in.get(item.id):
            return item
        return QueuedShot(item.id, item.shot_id, None, label=item.label, stop_index=item.stop_index, draft=item.draft)


def _kept_names(kind) -> list[str]:
    """The fields of a request (QueuedShot, CompletedRequest) the project keeps: all but its id (ids are this
    session's)."""
    return [f.name for f in dataclasses.fields(kind) if f.name != "id"]


def _fields(request) -> dict:
    """A request's fields as the project keeps them."""
    return {name: getattr(request, name) for name in _kept_names(request)}


def _restored(kind, entry: dict, **given):
    """A request of `kind` from the fields the project kept, with an id of this session; `given` fields replace the
    entry's (its seeds as a tuple)."""
    return kind(next(_item_ids), **({name: entry[name] for name in _kept_names(kind)} | given))


def _fits(entry: dict, shot) -> bool:
    """Whether a kept request still fits its shot: its range inside the shot, its draft take still there."""
    count = len(shot.chunks)
    start, stop = entry["from_index"], entry["stop_index"]
    if start is not None and start >= count or stop is not None and not (start or 0) < stop <= count:
        return False
    if entry["seeds"] is not None and (start is None or not entry["seeds"]):
        return False
    return entry["final_of"] is None or shot.find_take(entry["final_of"]) is not None
