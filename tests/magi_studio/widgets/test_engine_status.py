"""The status bar's engine line: the model, where it runs and, when the memory plan put part of the DiT in CPU
memory, which part (the tooltip holds the plan's sentences)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QTextDocumentFragment

from magi_engine.variants import MAGI_VARIANTS
from magi_studio.engine_worker import EngineState, JobStarted, LoadProgress, ModelInfo
from magi_studio.widgets.engine_status import EngineStatus
from magi_studio.widgets.job_progress import JobProgress


class FakeWorker(QObject):
    stateChanged = Signal(str)
    event = Signal(int, object)

    def __init__(self, info: ModelInfo | None) -> None:
        super().__init__()
        self.model_info, self.state = info, EngineState.READY


def info(mode: str) -> ModelInfo:
    return ModelInfo(spec="4.5B_distill_quant", name="4.5B_distill_quant", label="MAGI-1 4.5B distilled FP8",
                     device="cuda:0", dtype="bfloat16", width=720, height=720, fps=24,
                     sampling=MAGI_VARIANTS["4.5B_distill_quant"].sampling, distilled=True, dit_offload=mode,
                     memory_plan="T5 text encoder on the CPU (as set). DiT: the DiT's layers in CPU memory, streamed "
                                 "to cuda:0 a layer ahead (as set; about 10.8 GiB).")


def test_the_status_says_which_part_of_the_dit_waits_in_cpu_memory(qtbot):
    status = EngineStatus(FakeWorker(info("layers")))
    qtbot.addWidget(status)
    assert "MAGI-1 4.5B distilled FP8 · cuda:0 · layers in CPU memory · 720×720 · ready" in status.text()
    assert "DiT: the DiT's layers in CPU memory" in status.toolTip()
    everything = EngineStatus(FakeWorker(info("none")))
    qtbot.addWidget(everything)
    assert "cuda:0 · 720×720 · ready" in everything.text() and "CPU memory ·" not in everything.text()


def test_a_loading_model_is_said_once_in_the_status_bar(qtbot):
    """The engine line and the job's progress sit side by side: while a model loads, the progress says it (with
    its fraction, clock and Stop) and the engine line keeps only its amber dot."""
    worker = FakeWorker(None)
    worker.state = EngineState.LOADING
    status, progress = EngineStatus(worker), JobProgress(worker)
    qtbot.addWidget(status)
    qtbot.addWidget(progress)
    worker.event.emit(1, JobStarted("load"))
    worker.event.emit(1, LoadProgress("Loading studio-mini", 0.4))
    worker.stateChanged.emit(EngineState.LOADING.value)
    said = f"{QTextDocumentFragment.fromHtml(status.text()).toPlainText()} {progress.text()}"
    assert said.count("Loading") == 1 and said.count("studio-mini") == 1, said
    assert said.startswith("● Loading studio-mini · 40%")
    assert status.toolTip() == "Loading studio-mini…"
