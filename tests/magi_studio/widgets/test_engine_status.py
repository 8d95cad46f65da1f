"""The status bar's engine line: the model, where it runs and, when the memory plan put part of the DiT in CPU
memory, which part (the tooltip holds the plan's sentences)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from magi_engine.variants import MAGI_VARIANTS
from magi_studio.engine_worker import EngineState, ModelInfo
from magi_studio.widgets.engine_status import EngineStatus


class FakeWorker(QObject):
    stateChanged = Signal(str)
    event = Signal(int, object)

    def __init__(self, info: ModelInfo) -> None:
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
