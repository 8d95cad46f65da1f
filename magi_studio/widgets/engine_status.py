"""EngineStatus: the status bar's word on the engine — which model, on what device, doing what.

While a model loads, the job's progress beside it (JobProgress: "● Loading studio-mini · 40% · 0:03", its bar
and Stop) says so, led by this line's amber dot (`engine_line`); this line says nothing then, so the load is said
once and the dot sits by its text as in every other state."""

from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QLabel, QWidget

from magi_engine.events import Failed, GenerationStarted
from magi_engine.remote.protocol import Queued
from magi_studio.engine_worker import (EngineState, EngineWorker, JobStarted, LoadProgress, ModelInfo, ModelLoaded,
                                      is_final)
from magi_studio.theme import palette

_DOT = {EngineState.NO_MODEL: palette.TEXT_FAINT, EngineState.LOADING: palette.WARNING,
        EngineState.READY: palette.SUCCESS, EngineState.GENERATING: palette.CYAN}


class EngineStatus(QLabel):
    def __init__(self, worker: EngineWorker, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("EngineStatus")
        self._worker = worker
        self._loading_spec = ""
        self._load_error = ""
        self._runs_ahead = 0  # a remote engine busy with other clients' runs
        worker.stateChanged.connect(self._refresh)
        worker.event.connect(self._on_event)
        self._refresh()

    def _on_event(self, job_id: int, event) -> None:
        if isinstance(event, JobStarted) and event.kind == "load" or isinstance(event, ModelLoaded):
            self._load_error = ""
        elif isinstance(event, LoadProgress):
            self._loading_spec = event.message
        elif isinstance(event, Failed) and self._worker.model_info is None:  # a failed load: no model
            self._load_error = f"{getattr(event.error, 'title', 'Engine error')}: {event.error}"
        elif isinstance(event, Queued):
            self._runs_ahead = event.position
        elif isinstance(event, GenerationStarted) or is_final(event):
            self._runs_ahead = 0
        else:
            return
        self._refresh()

    def _refresh(self, *_args) -> None:
        state, info = self._worker.state, self._worker.model_info
        if state == EngineState.LOADING:
            text, tip = "", f"{self._loading_spec or 'Loading model'}…"
        elif state == EngineState.GENERATING and info is not None and self._runs_ahead:
            ahead = f"{self._runs_ahead} run{'s' * (self._runs_ahead > 1)} ahead"
            text, tip = f"Waiting · {ahead} on {info.remote}", "The remote engine is busy with other clients' runs."
        elif state == EngineState.GENERATING and info is not None:
            text, tip = f"Generating · {info.label} on {info.parallel or info.device}{_offloaded(info)}", _describe(info)
        elif info is not None:
            text, tip = (f"{info.label} · {info.parallel or info.device}{_offloaded(info)} · {info.width}×{info.height}"
                         f" · ready", _describe(info))
        elif self._load_error:
            text, tip = "No model loaded", self._load_error
        else:
            text, tip = "No model loaded", "Choose a model in Settings."
        failed = state == EngineState.NO_MODEL and self._load_error
        self.setText("" if state == EngineState.LOADING else engine_line(state, text, failed=failed))
        self.setToolTip(tip)


def engine_line(state: EngineState, text: str, *, failed: bool = False) -> str:
    """The engine line's rich text: the state's dot (red after a failed load), then `text` beside it."""
    colour = palette.DANGER if failed else _DOT[state]
    return f'<span style="color:{colour}">●</span>' + (f"&nbsp; {escape(text)}" if text else "")


#: The status bar's word for a DiT placement other than "everything on the device".
OFFLOADED = {"layers": "layers in CPU memory", "kv-cache": "KV cache in CPU memory",
             "both": "layers and KV cache in CPU memory"}


def _offloaded(info: ModelInfo) -> str:
    mode = getattr(info, "dit_offload", "none")
    return f" · {OFFLOADED[mode]}" if mode in OFFLOADED else ""


def _describe(info: ModelInfo) -> str:
    return (f"{info.label} ({info.spec})\nDevice: {info.device}, {info.dtype}\n"
            + (f"Runs on {info.parallel}, rank 0 on {info.device}\n" if info.parallel else "")
            + f"Resolution: {info.width}×{info.height} at {info.fps} fps\n"
            f"Sampling: {info.sampling.num_steps} steps, window {info.sampling.window}, "
            f"{'distilled' if info.distilled else 'classifier-free guidance'}"
            + (f"\n{info.memory_plan}" if info.memory_plan else ""))
