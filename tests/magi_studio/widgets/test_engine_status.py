"""The status bar's engine line: the model, where it runs and, when the memory plan put part of the DiT in CPU
memory, which part (the tooltip holds the plan's sentences)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor, QTextDocumentFragment
from PySide6.QtWidgets import QMainWindow

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
    said = f"{plain(status.text())}{plain(progress.label.text())}".replace("\xa0", " ")
    assert said.count("Loading") == 1 and said.count("studio-mini") == 1, said
    assert said.startswith("●  Loading studio-mini · 40%"), said  # the engine's dot leads the progress's text
    assert progress.text().startswith("Loading studio-mini · 40%")
    assert status.toolTip() == "Loading studio-mini…"


def plain(html: str) -> str:
    return QTextDocumentFragment.fromHtml(html).toPlainText()


def ink_runs(window: QMainWindow) -> list[tuple[int, int, QColor]]:
    """The status bar's marks, left to right: (first x, last x, colour in its middle) of each run of ink on its
    middle rows, runs more than 5 px apart (the gap between two words is less)."""
    image = window.grab().toImage()
    bar = window.statusBar().geometry()
    background = image.pixelColor(bar.left() + 2, bar.center().y())
    def ink(x: int) -> QColor | None:
        for y in range(bar.top() + 6, bar.bottom() - 5):
            colour = image.pixelColor(x, y)
            if sum(abs(a - b) for a, b in zip(colour.getRgb()[:3], background.getRgb()[:3])) > 60:
                return colour
        return None
    runs: list[list[int]] = []
    for x in range(bar.left(), bar.right()):
        if ink(x) is not None:
            if runs and x - runs[-1][1] <= 5:
                runs[-1][1] = x
            else:
                runs.append([x, x])
    return [(first, last, image.pixelColor((first + last) // 2, bar.center().y())) for first, last in runs]


def status_bar(qtbot, worker) -> QMainWindow:
    window = QMainWindow()
    qtbot.addWidget(window)
    window.resize(1280, 600)
    window.statusBar().addPermanentWidget(EngineStatus(worker))  # as the main window lays them out
    window.statusBar().addPermanentWidget(JobProgress(worker))
    window.show()
    qtbot.waitExposed(window)
    return window


def test_the_loading_dot_sits_by_its_text_as_the_ready_dot_does(qtbot, app_theme):
    """A load is said by two widgets, the engine line's dot and the job's progress text: the dot must not stand
    apart from its text (it did, by 32 px) but sit beside it as the dot of the ready line does (10 px)."""
    ready = FakeWorker(info("none"))
    dot, text = ink_runs(status_bar(qtbot, ready))[:2]
    ready_gap = text[0] - dot[1]
    loading = FakeWorker(None)
    loading.state = EngineState.LOADING
    window = status_bar(qtbot, loading)
    loading.event.emit(1, JobStarted("load"))
    loading.event.emit(1, LoadProgress("Loading studio-mini", 0.4))
    loading.stateChanged.emit(EngineState.LOADING.value)
    qtbot.waitUntil(lambda: "Loading" in plain(window.findChild(JobProgress).label.text()))
    dot, text = ink_runs(window)[:2]
    assert dot[2].red() > dot[2].blue() + 80  # amber: the loading dot
    assert abs((text[0] - dot[1]) - ready_gap) <= 2, (text[0] - dot[1], ready_gap)
