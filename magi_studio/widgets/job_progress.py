"""JobProgress: the status bar's progress for the engine's current job, with a cancel button.

Generation shows "Chunk i/n · step s/S · elapsed · about T left" over a bar of denoising steps;
loading shows the engine's message and fraction. Fed by EngineWorker signals; the cancel button
calls worker.cancel(job). After a job ends its outcome stays visible for a few seconds.

`follow_run(generation)` hands generation to a GenerationController: a run of Generate may span
several shots, one engine job each (and a model load first), so while it runs the widget shows the
run's GenerationProgress ("Shot 2 · chunk 4/9 · step 3/32 · 0:05 · about 0:07 left") over a bar of
the whole run, Cancel stops the whole run, and the outcome is the run's, not its last job's.
"""

from __future__ import annotations

from PySide6.QtCore import QElapsedTimer, QSize, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from magi_studio.engine_worker import EngineWorker
from magi_studio.theme import icon

#: How long the outcome ("Finished 5 chunks in 0:42") stays before the widget hides.
OUTCOME_VISIBLE_MS = 5000
BAR_RESOLUTION = 1000


def clock_text(seconds: float) -> str:
    """Seconds → "m:ss" (or "h:mm:ss")."""
    whole = max(0, int(round(seconds)))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class JobProgress(QWidget):
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
        self._run = None  # the GenerationController whose runs are shown (follow_run)
        self._run_active = False
        self._run_chunks = 0
        self._run_clock = QElapsedTimer()

        self.label = QLabel()
        self.label.setObjectName("JobProgressText")
        self.bar = QProgressBar()
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

        self._ticker = QTimer(self)  # keeps "elapsed" moving between steps
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._render)
        self._hide_timer = QTimer(self)
        self._hide_timer.setSingleShot(True)
        self._hide_timer.timeout.connect(self.hide)

        worker.jobStarted.connect(self._on_job_started)
        worker.loadProgress.connect(self._on_load_progress)
        worker.generationStarted.connect(self._on_generation_started)
        worker.stepProgress.connect(self._on_step)
        worker.chunkFinished.connect(self._on_chunk_finished)
        worker.finished.connect(self._on_finished)
        worker.cancelled.connect(self._on_cancelled)
        worker.failed.connect(self._on_failed)
        worker.modelLoaded.connect(self._on_model_loaded)
        self.hide()

    def is_active(self) -> bool:
        return self.job_id is not None and self._ticker.isActive()

    def text(self) -> str:
        return self.label.text()

    def follow_run(self, generation) -> None:
        """Show `generation`'s runs (GenerationController) instead of their single engine jobs."""
        self._run = generation
        generation.generatingChanged.connect(self._on_run_active)
        generation.progressChanged.connect(self._on_run_progress)
        generation.chunkCommitted.connect(self._on_run_chunk)
        generation.runEnded.connect(self._on_run_ended)

    def cancel(self) -> None:
        if self._run_active:
            self._run.cancel()
            self.cancel_button.setEnabled(False)
            self.label.setText("Stopping after this step…")
        elif self.job_id is not None:
            self._worker.cancel(self.job_id)
            self.cancel_button.setEnabled(False)
            self.label.setText("Stopping after this step…")

    # A GenerationController's run -------------------------------------------------------------
    def _on_run_active(self, running: bool) -> None:
        if not running:
            return  # runEnded says how it ended
        self._run_active, self._run_chunks = True, 0
        self._run_clock.start()
        self._ticker.stop()  # the run's progress brings its own elapsed time
        self._hide_timer.stop()
        self.bar.setRange(0, 0)  # busy while the model loads and the first shot is planned
        self.bar.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self.label.setText("Preparing…")
        self.show()

    def _on_run_progress(self, progress) -> None:
        if not self._run_active:
            return
        self.bar.setRange(0, BAR_RESOLUTION)
        if progress.eta_s is not None and progress.elapsed_s > 0:  # done / total, partial chunks included
            fraction = progress.elapsed_s / (progress.elapsed_s + progress.eta_s)
        else:
            fraction = (progress.chunk - 1) / max(1, progress.chunks)
        self.bar.setValue(round(fraction * BAR_RESOLUTION))
        if self.cancel_button.isEnabled():  # "Stopping…" stays until the run has ended
            self.label.setText(progress.text())

    def _on_run_chunk(self, *_ids) -> None:
        self._run_chunks += int(self._run_active)

    def _on_run_ended(self, outcome: str) -> None:
        if not self._run_active:
            return
        self._run_active = False
        n, elapsed = self._run_chunks, clock_text(self._run_clock.elapsed() / 1000)
        chunks = f"{n} chunk{'s' * (n != 1)}"
        if outcome == "finished":
            self._end(f"Generated {chunks} in {elapsed}" if n else "Nothing left to generate")
        elif outcome == "cancelled":
            self._end(f"Stopped — {n} finished chunk{'s' * (n != 1)} kept", completed=False)
        else:
            self._end("Generation stopped — see the message above", completed=False)

    def _in_run(self, job_id: int) -> bool:
        # The run's own engine jobs are shown as the run; a model load it waits for is shown as itself.
        return self._run_active and job_id == self.job_id and self._kind == "generate"

    # Worker signals ---------------------------------------------------------------------------
    def _on_job_started(self, job_id: int, kind: str) -> None:
        if self._run_active and kind == "generate":
            self.job_id, self._kind = job_id, kind
            return
        self.job_id, self._kind = job_id, kind
        self._chunks, self._done_chunks, self._step, self._total_steps = (), 0, 0, 0
        self._current_chunk, self._eta_s, self._load_message = None, None, ""
        self._elapsed.start()
        self.bar.setRange(0, 0)  # busy until the first progress arrives
        self.bar.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self._hide_timer.stop()
        self._ticker.start()
        self._render()
        self.show()

    def _on_load_progress(self, job_id: int, message: str, fraction: float) -> None:
        if job_id == self.job_id:
            self._load_message = message
            self.bar.setRange(0, BAR_RESOLUTION)
            self.bar.setValue(round(fraction * BAR_RESOLUTION))
            self._render()

    def _on_generation_started(self, job_id: int, event) -> None:
        if self._in_run(job_id):
            return
        if job_id == self.job_id:
            self._chunks, self._total_steps = tuple(event.chunks), event.total_steps
            self.bar.setRange(0, max(1, event.total_steps))
            self.bar.setValue(0)
            self._render()

    def _on_step(self, job_id: int, event) -> None:
        if self._in_run(job_id):
            return
        if job_id != self.job_id:
            return
        self._step, self._total_steps = event.step, event.total_steps
        if event.chunk_steps:
            self._current_chunk = min(event.chunk_steps)  # the oldest chunk in the window finishes next
        if event.step:
            self._eta_s = event.elapsed_s / event.step * (event.total_steps - event.step)
        self.bar.setValue(event.step)
        self._render()

    def _on_chunk_finished(self, job_id: int, event) -> None:
        if self._in_run(job_id):
            return
        if job_id == self.job_id:
            self._done_chunks += 1
            self._render()

    def _on_finished(self, job_id: int, event) -> None:
        if self._in_run(job_id):
            return
        if job_id == self.job_id:
            n = len(event.chunks)
            self._end(f"Generated {n} chunk{'s' * (n != 1)} in {clock_text(event.elapsed_s)}")

    def _on_model_loaded(self, job_id: int, info) -> None:
        if job_id == self.job_id and self._run_active:  # the run goes on with this model
            self.label.setText(f"Loaded {info.label} · preparing…")
            self.bar.setRange(0, 0)
        elif job_id == self.job_id:
            self._end(f"Loaded {info.label}")

    def _on_cancelled(self, job_id: int, event) -> None:
        if self._in_run(job_id):
            return
        if job_id == self.job_id:
            kept = len(event.finished_chunks)
            detail = f" — {kept} finished chunk{'s' * (kept != 1)} kept" if self._kind == "generate" else ""
            self._end(f"Stopped{detail}", completed=False)

    def _on_failed(self, job_id: int, error) -> None:
        if self._in_run(job_id):
            return
        if job_id == self.job_id:
            self._end(f"{getattr(error, 'title', 'Engine error')} — see the message above", completed=False)

    def _end(self, outcome: str, completed: bool = True) -> None:
        self._ticker.stop()
        self.job_id = None
        self.cancel_button.hide()
        self.bar.setVisible(completed)  # a full bar would claim a stopped or failed job was done
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 1)
        self.bar.setValue(self.bar.maximum())
        self.label.setText(outcome)
        self._hide_timer.start(OUTCOME_VISIBLE_MS)

    # Text -------------------------------------------------------------------------------------
    def _render(self) -> None:
        if self.job_id is None or self._in_run(self.job_id):
            return
        elapsed = clock_text(self._elapsed.elapsed() / 1000)
        if self._kind == "load":
            fraction = self.bar.value() / BAR_RESOLUTION if self.bar.maximum() else None
            text = self._load_message or "Loading model"
            text += f" · {round(fraction * 100)}%" if fraction else ""
            self.label.setText(f"{text} · {elapsed}")
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
        self.label.setText(" · ".join(parts) if self._chunks else f"Preparing · {elapsed}")
