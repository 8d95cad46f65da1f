"""JobProgress: the status bar's progress for what the engine is doing, with a Stop button.

A single engine job (a model load, or a generation a test or a tool started directly) shows "Chunk i/n ·
step s/S · elapsed · about T left" over a bar of denoising steps; a load shows the engine's message and
fraction. Everything comes through EngineWorker.event, dispatched on the event's type.

`follow_run(generation)` hands generation to a GenerationController: a run of Generate may span several
shots, one engine job each (and a model load first), so while it runs the widget shows the run's
GenerationProgress from its first second — "Loading model studio-mini… · 0:02", "Planning Shot 1 · 0:03",
"Shot 1 · chunk 3 (1 of 4 in this run) · step 5/32 · 0:12 · about 1:40 left" — refreshed every second
between the engine's steps, over a bar of the whole run; Stop stops the whole run.

While a remote server runs other clients' runs first, the engine's job waits in the server's queue
(magi_engine.remote.protocol.Queued: how many runs are ahead); the widget then says "Waiting for the server: 2nd
in its queue · 0:14" instead of a progress that does not move, until the run starts there.

When a job or run ends the widget hides and sends its outcome ("Generated 5 chunks in 0:42") as
`outcome(text, completed)`: the main window shows it with its other status messages (one owner of the
status bar's message area) and asks for attention when it is not the active window. A model that loaded has no
outcome: the engine line beside (EngineStatus) says "studio-mini (built in) · cpu · … · ready" already.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QElapsedTimer, QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from magi_engine.events import Cancelled, ChunkFinished, Failed, Finished, GenerationStarted, StepProgress
from magi_engine.remote.protocol import Queued
from magi_studio.controllers.run_state import RunPhase, clock_text
from magi_studio.engine_worker import EngineState, EngineWorker, JobStarted, LoadProgress, ModelLoaded, is_final
from magi_studio.theme import icon
from magi_studio.widgets.engine_status import engine_line

BAR_RESOLUTION = 1000
#: Room for the longest usual progress text, so the status bar's layout does not jump as the text changes.
LABEL_CHARS = 64

__all__ = ["JobProgress", "DeferredProgressBar", "clock_text", "BAR_RESOLUTION"]


class DeferredProgressBar(QProgressBar):
    """A progress bar whose new value is painted with the rest of the window, in its next paint.

    QProgressBar.setValue repaints at once (QWidget.repaint), and an immediate repaint paints everything
    waiting to be painted in the whole window there and then: during a run that was the storyboard's
    overview, the scrub bar and the cards, several times between two frames (12-70 ms stalls)."""

    def setValue(self, value: int) -> None:
        self.setUpdatesEnabled(False)  # the repaint inside finds updates off; turning them on asks for an update
        super().setValue(value)
        self.setUpdatesEnabled(True)


class JobProgress(QWidget):
    #: (text, completed) when a job or a run has ended: "Generated 3 chunks in 0:42" (True), "Stopped — …" (False).
    outcome = Signal(str, bool)

    def __init__(self, worker: EngineWorker, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("JobProgress")
        self._worker = worker
        self.job_id: int | None = None
        self._kind = ""
        self._chunks: tuple[int, ...] = ()
        self._done_chunks = 0
        self._step = self._total_steps = 0
        self._current_chunk: int | None = None
        self._elapsed = QElapsedTimer()
        self._eta_s: float | None = None
        self._load_message = ""
        self._load_fraction: float | None = None
        #: Runs ahead of this job on a busy remote server (0: not waiting there).
        self._runs_ahead = 0
        self._run = None  # the GenerationController whose runs are shown (follow_run)
        self._run_active = False
        self._run_chunks = 0
        self._run_clock = QElapsedTimer()
        #: The last outcome sent (tests and the window read it).
        self.last_outcome = ""
        self._said = ""  # the label's text, without the dot that leads it while the engine loads

        self.label = QLabel()
        self.label.setObjectName("JobProgressText")
        self.label.setTextFormat(Qt.TextFormat.RichText)  # see _say
        self.label.setMinimumWidth(self.label.fontMetrics().averageCharWidth() * LABEL_CHARS)
        self.bar = DeferredProgressBar()
        self.bar.setFixedWidth(180)
        self.bar.setTextVisible(False)
        self.cancel_button = QToolButton()
        self.cancel_button.setIcon(icon("cancel"))
        self.cancel_button.setIconSize(QSize(16, 16))
        self.cancel_button.setToolTip("Stop (finished chunks are kept)")
        self.cancel_button.setAccessibleName("Stop")
        self.cancel_button.setAutoRaise(True)
        self.cancel_button.clicked.connect(self.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 0, 6, 0)
        layout.setSpacing(8)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)

        self._ticker = QTimer(self)  # keeps "elapsed" (and the run's phase) moving between steps
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._tick)
        worker.event.connect(self._on_event)
        worker.stateChanged.connect(self._on_engine_state)
        self.hide()

    def text(self) -> str:
        return self._said

    def _on_engine_state(self, _state: str) -> None:
        self._say(self._said)

    def _say(self, text: str) -> None:
        """Show `text`. While the engine loads, the engine line (EngineStatus, beside this) says nothing and its
        amber dot leads this text instead, as it leads its own: two widgets would leave a gap between dot and text."""
        self._said = text
        loading = self._worker.state == EngineState.LOADING
        self.label.setText(engine_line(EngineState.LOADING, text) if loading else escape(text))

    def follow_run(self, generation) -> None:
        """Show `generation`'s runs (GenerationController) instead of their single engine jobs."""
        self._run = generation
        generation.generatingChanged.connect(self._on_run_active)
        generation.progressChanged.connect(self._show_run)
        generation.chunkCommitted.connect(self._on_run_chunk)
        generation.runEnded.connect(self._on_run_ended)

    def cancel(self) -> None:
        if self._run_active:
            self._run.cancel()
        elif self.job_id is not None:
            self._worker.cancel(self.job_id)
        else:
            return
        self.cancel_button.setEnabled(False)
        self._say("Stopping after this step…")

    # A GenerationController's run -------------------------------------------------------------
    def _on_run_active(self, running: bool) -> None:
        if not running:
            return  # runEnded says how it ended
        self._run_active, self._run_chunks = True, 0
        self._run_clock.start()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self.bar.show()
        self._ticker.start()
        self.show()
        self._show_run(self._run.progress())

    def _show_run(self, progress) -> None:
        if not self._run_active or progress is None:
            return
        if self._runs_ahead:
            self.bar.setRange(0, 0)  # no fraction while the server runs other clients' work
            if self.cancel_button.isEnabled():
                elapsed = clock_text(self._run_clock.elapsed() / 1000)
                self._say(f"{waiting_text(self._runs_ahead)} · {elapsed}")
            return
        if progress.phase is RunPhase.LOADING and self._load_fraction is not None:
            self.bar.setRange(0, BAR_RESOLUTION)
            self.bar.setValue(round(self._load_fraction * BAR_RESOLUTION))
        elif progress.phase in (RunPhase.LOADING, RunPhase.PLANNING):
            self.bar.setRange(0, 0)  # busy: no fraction to show yet
        else:
            self.bar.setRange(0, BAR_RESOLUTION)
            self.bar.setValue(round(progress.fraction * BAR_RESOLUTION))
        if progress.stopping:
            self.cancel_button.setEnabled(False)
        if self.cancel_button.isEnabled() or progress.stopping:  # "Stopping…" stays until the run has ended
            self._say(progress.text())

    def _on_run_chunk(self, *_ids) -> None:
        self._run_chunks += int(self._run_active)

    def _on_run_ended(self, outcome: str) -> None:
        if not self._run_active:
            return
        self._run_active = False
        n = self._run_chunks
        chunks = f"{n} chunk{'s' * (n != 1)}"
        failed = len(self._run.failed_requests())
        if outcome == "finished" and failed:  # the others went on: say both
            done = f"Generated {chunks} in {clock_text(self._run_clock.elapsed() / 1000)}" if n else "Nothing generated"
            self._end(f"{done} · {failed} request{'s' * (failed != 1)} failed (see the queue)", completed=False)
        elif outcome == "finished":
            elapsed = clock_text(self._run_clock.elapsed() / 1000)
            self._end(f"Generated {chunks} in {elapsed}" if n else "Nothing left to generate")
        elif outcome == "cancelled":
            self._end(f"Stopped — {n} finished chunk{'s' * (n != 1)} kept", completed=False)
        else:
            self._end("Generation stopped — see the message above", completed=False)

    # The engine's own jobs --------------------------------------------------------------------
    def _on_event(self, job_id: int, event) -> None:
        if job_id == self.job_id and (isinstance(event, (Queued, GenerationStarted, StepProgress)) or is_final(event)):
            waiting = event.position if isinstance(event, Queued) else 0
            if waiting != self._runs_ahead:
                self._runs_ahead = waiting
                self._tick()
            if isinstance(event, Queued):
                return None
        if isinstance(event, JobStarted):
            return self._on_job_started(job_id, event.kind)
        if isinstance(event, LoadProgress):
            return self._on_load_progress(job_id, event)
        if isinstance(event, ModelLoaded):
            self._load_fraction = None
            if job_id == self.job_id and not self._run_active:
                self._stop_showing()  # no outcome: the engine line beside says "<model> · ready" already
            return None
        if self._run_active or job_id != self.job_id:
            if isinstance(event, (Cancelled, Failed)) and job_id == self.job_id:
                self._load_fraction = None  # a load the run waited for ended without a model
            return None  # a run's own jobs are shown as the run
        if isinstance(event, GenerationStarted):
            self._chunks, self._total_steps = tuple(event.chunks), event.total_steps
            self.bar.setRange(0, max(1, event.total_steps))
            self.bar.setValue(0)
        elif isinstance(event, StepProgress):
            self._step, self._total_steps = event.step, event.total_steps
            if event.chunk_steps:
                self._current_chunk = min(event.chunk_steps)  # the oldest chunk in the window finishes next
            if event.step:
                self._eta_s = event.elapsed_s / event.step * (event.total_steps - event.step)
            self.bar.setValue(event.step)
        elif isinstance(event, ChunkFinished):
            self._done_chunks += 1
        elif isinstance(event, Finished):
            n = len(event.chunks)
            return self._end(f"Generated {n} chunk{'s' * (n != 1)} in {clock_text(event.elapsed_s)}")
        elif isinstance(event, Cancelled):
            kept = len(event.finished_chunks)
            detail = f" — {kept} finished chunk{'s' * (kept != 1)} kept" if self._kind == "generate" else ""
            return self._end(f"Stopped{detail}", completed=False)
        elif isinstance(event, Failed):
            return self._end(f"{getattr(event.error, 'title', 'Engine error')} — see the message above",
                             completed=False)
        self._render()
        return None

    def _on_job_started(self, job_id: int, kind: str) -> None:
        self._runs_ahead = 0
        if self._run_active:
            self.job_id, self._kind = job_id, kind  # the run's load or generation: its progress is the run's
            return
        self.job_id, self._kind = job_id, kind
        self._chunks, self._done_chunks, self._step, self._total_steps = (), 0, 0, 0
        self._current_chunk, self._eta_s, self._load_message = None, None, ""
        self._elapsed.start()
        self.bar.setRange(0, 0)  # busy until the first progress arrives
        self.bar.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self._ticker.start()
        self._render()
        self.show()

    def _on_load_progress(self, job_id: int, event: LoadProgress) -> None:
        if job_id != self.job_id:
            return
        self._load_message, self._load_fraction = event.message, event.fraction
        if self._run_active:
            return self._show_run(self._run.progress())
        self.bar.setRange(0, BAR_RESOLUTION)
        self.bar.setValue(round(event.fraction * BAR_RESOLUTION))
        self._render()
        return None

    def _tick(self) -> None:
        if self._run_active:
            self._show_run(self._run.progress())
        else:
            self._render()

    def _end(self, outcome: str, completed: bool = True) -> None:
        self._stop_showing()
        self.last_outcome = outcome
        self.outcome.emit(outcome, completed)

    def _stop_showing(self) -> None:
        self._ticker.stop()
        self.job_id = None
        self.hide()

    # Text -------------------------------------------------------------------------------------
    def _render(self) -> None:
        if self.job_id is None or self._run_active:
            return
        elapsed = clock_text(self._elapsed.elapsed() / 1000)
        if self._kind == "load":
            fraction = self._load_fraction
            text = self._load_message or "Loading model"
            text += f" · {round(fraction * 100)}%" if fraction else ""
            self._say(f"{text} · {elapsed}")
            return
        if self._runs_ahead:
            self._say(f"{waiting_text(self._runs_ahead)} · {elapsed}")
            return
        parts = []
        if self._chunks:
            position = (self._chunks.index(self._current_chunk) if self._current_chunk in self._chunks
                        else min(self._done_chunks, len(self._chunks) - 1))
            parts.append(f"Chunk {position + 1}/{len(self._chunks)}")
        if self._total_steps:
            parts.append(f"step {self._step}/{self._total_steps}")
        parts.append(elapsed)
        if self._eta_s is not None and self._step < self._total_steps:
            parts.append(f"about {clock_text(self._eta_s)} left")
        self._say(" · ".join(parts) if self._chunks else f"Preparing · {elapsed}")


def waiting_text(runs_ahead: int) -> str:
    """"Waiting for the server: 2nd in its queue" for a job with one run ahead of it (the one running there)."""
    place = runs_ahead + 1
    suffix = "th" if 10 <= place % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(place % 10, "th")
    return f"Waiting for the server: {place}{suffix} in its queue"
