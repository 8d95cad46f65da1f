"""Settings › Engine: generate on this computer, or on a remote engine (`magi-studio serve`) at a URL.

    page = EnginePage(settings)
    page.choice()            # ("", "") for this computer, (url, token file) for a remote engine; ConfigError if unusable
    page.test_connection()   # connects on a thread; the status line then shows the server's model, GPU and memory
    page.set_device_facts(facts)   # a computer with several CUDA GPUs gets the "GPUs" choice (hidden otherwise)
    page.gpus_choice()       # how many of them this computer's engine runs on
    page.show_placements(report)   # with a CUDA GPU: the DiT placements of the chosen model and what each needs
    page.placement_choice()  # "auto", "none", "layers", "kv-cache" or "both" (Settings.dit_offload)

The connection itself is the EngineWorker's (SettingsDialog.apply asks it for connect_remote); this page
only chooses, and checks a choice without disturbing the engine in use.
"""

from __future__ import annotations

import threading
from html import escape

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QRadioButton, QSpinBox, QVBoxLayout, QWidget)

from magi_engine.errors import ConfigError, EngineError
from magi_studio.dialogs.model_choice import PLACEMENT_LABELS

GIB = 2**30


class _Probe(QObject):
    #: (server description dict | EngineError), emitted on the probing thread, delivered on the GUI thread.
    answered = Signal(object)


def describe_server(info: dict) -> str:
    """One line on a server: its model, where it runs, its GPU memory (or RAM, without a GPU) and queue."""
    model = info.get("model", {})
    gpu = info.get("gpu")
    where = gpu or f"{info.get('device', '?')} (no GPU)"
    memory = info.get("memory")
    kind = "" if gpu else " RAM"
    free = f", {memory['free'] / GIB:.1f} of {memory['total'] / GIB:.1f} GiB{kind} free" if memory else ""
    queue = info.get("queue", 0)
    busy = f"; {queue} run{'s' * (queue != 1)} in progress or waiting" if queue else ""
    return (f"{model.get('label', '?')} ({model.get('spec', '?')}, {model.get('width')}×{model.get('height')}) "
            f"on {where}{free}{busy}")


class EnginePage(QWidget):
    def __init__(self, settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("EnginePage")
        self.settings = settings
        self.local_radio = QRadioButton("This computer")
        self.gpus_spin = QSpinBox()
        self.gpus_spin.setObjectName("GpusChoice")
        self.gpus_spin.setRange(1, max(1, settings.gpus))
        self.gpus_spin.setValue(settings.gpus)
        self.gpus_spin.setToolTip("Several GPUs make each chunk together (torch.distributed): the guidance passes "
                                  "run side by side and each chunk's tokens are split between them. Rank 0, on "
                                  "the first GPU, also holds the text encoder.")
        self.gpus_row = QWidget()
        gpus_layout = QHBoxLayout(self.gpus_row)
        gpus_layout.setContentsMargins(24, 0, 0, 0)
        gpus_layout.addWidget(QLabel("GPUs:"))
        gpus_layout.addWidget(self.gpus_spin)
        self.gpus_note = QLabel()
        self.gpus_note.setObjectName("SettingsNote")
        gpus_layout.addWidget(self.gpus_note, 1)
        self.gpus_row.hide()  # until the engine thread says this computer has several CUDA GPUs
        self.placement_combo = QComboBox()
        self.placement_combo.setObjectName("DitPlacementChoice")
        self.placement_combo.setToolTip(
            "Where MAGI-1's diffusion transformer keeps its memory. Layers or the KV cache in CPU memory are copied "
            "to the GPU a layer ahead of use, for cards that cannot hold everything: streaming the layers cost 2.7% "
            "a chunk on an H100, both 10%. Automatic takes, of the placements measured on a GPU, the one that fits "
            "and copies least.")
        self.placement_note = QLabel()
        self.placement_note.setObjectName("SettingsNote")
        self.placement_note.setWordWrap(True)
        self.placement_row = QWidget()
        placement_layout = QVBoxLayout(self.placement_row)
        placement_layout.setContentsMargins(24, 0, 0, 0)
        combo_row = QHBoxLayout()
        combo_row.addWidget(QLabel("DiT placement:"))
        combo_row.addWidget(self.placement_combo, 1)
        placement_layout.addLayout(combo_row)
        placement_layout.addWidget(self.placement_note)
        self.placement_row.hide()  # until the engine thread says this computer has a CUDA GPU
        self._placement, self._placements = settings.dit_offload, None
        self.placement_combo.activated.connect(self._on_placement_chosen)
        self.remote_radio = QRadioButton("A remote engine (magi-studio serve on another computer)")
        group = QButtonGroup(self)
        group.addButton(self.local_radio)
        group.addButton(self.remote_radio)
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("ws://gpu-box:8765  (or wss://… with TLS)")
        self.token_edit = QLineEdit()
        from magi_engine.remote.token import default_token_path

        self.token_edit.setPlaceholderText(str(default_token_path()))
        self.token_button = QPushButton("Choose…")
        self.token_button.setAutoDefault(False)
        self.token_button.clicked.connect(self._choose_token)
        self.test_button = QPushButton("Test Connection")
        self.test_button.setAutoDefault(False)
        self.test_button.clicked.connect(self.test_connection)
        self.status = QLabel()
        self.status.setObjectName("EngineTestStatus")
        self.status.setWordWrap(True)
        self._probe = _Probe(self)
        self._probe.answered.connect(self._on_answer)

        token_row = QHBoxLayout()
        token_row.addWidget(self.token_edit, 1)
        token_row.addWidget(self.token_button)
        form = QFormLayout()
        form.addRow("Address:", self.url_edit)
        form.addRow("Token file:", token_row)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addStretch(1)
        form.addRow("", test_row)
        note = QLabel("Run <code>magi-studio serve --model MODEL</code> on the computer with the GPU; it prints the "
                      "address and where its token file is. Copy that file here. The server's model is used (the "
                      "Model tab is for this computer); generated chunks come back losslessly and are saved in the "
                      "project here.")
        note.setObjectName("SettingsNote")
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 14, 14, 14)
        layout.addWidget(self.local_radio)
        layout.addWidget(self.gpus_row)
        layout.addWidget(self.placement_row)
        layout.addWidget(self.remote_radio)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(note)
        layout.addStretch(1)

        self.url_edit.setText(settings.engine_url)
        self.token_edit.setText(settings.engine_token_file)
        (self.remote_radio if settings.engine_url else self.local_radio).setChecked(True)
        group.buttonToggled.connect(self._sync_enabled)
        self._sync_enabled()

    def set_device_facts(self, facts) -> None:
        """The machine's devices (magi_engine.device_facts.DeviceFacts): with several CUDA GPUs, offer them."""
        count = getattr(facts, "cuda_count", 0)
        self.gpus_spin.setRange(1, max(count, self.settings.gpus, 1))
        self.gpus_note.setText(f"of the {count} on this computer, all at once for each chunk")
        self.gpus_row.setVisible(count > 1)

    def show_placements(self, report, *, cuda: bool) -> None:
        """The DiT placements of the chosen model (model_choice.dit_placements' PlacementReport) on a computer with a
        CUDA GPU (`cuda`); without one the choice stays hidden. A report of None on a GPU: a model with no choice
        (studio-mini, or another device chosen)."""
        self.placement_row.setVisible(cuda)
        combo = self.placement_combo
        combo.clear()
        if report is None:
            combo.addItem("Automatic", "auto")
            combo.setEnabled(False)
            self.placement_note.setText("The chosen model runs whole on its device: the placement applies to MAGI-1 "
                                        "models on the GPU.")
            return
        auto = report.row(report.auto)
        self._placements = None
        label = PLACEMENT_LABELS[report.auto]
        combo.addItem(f"Automatic — takes {label[0].lower()}{label[1:]} (about {auto.gib:.1f} GiB)", "auto")
        for row in report.rows:
            combo.addItem(row.text, row.mode)
        combo.setEnabled(True)
        combo.setCurrentIndex(max(0, combo.findData(self._placement)))
        self._placements = report
        self._say_placement()

    def _on_placement_chosen(self) -> None:
        self._placement = self.placement_combo.currentData()
        self._say_placement()

    def _say_placement(self) -> None:
        report, mode = self._placements, self._placement
        if report is None:
            return
        where = f"At {report.target.describe()}, Automatic"
        if mode == "auto":
            return self.placement_note.setText(f"{where} plans: {report.plan_text}")
        unchecked = "" if report.row(mode).measured else \
            "; its memory was never measured on a GPU, so its estimate is unchecked"
        self.placement_note.setText(f"{PLACEMENT_LABELS[mode]} applies at the next load{unchecked}. {where} would "
                                    f"plan: {report.plan_text}")

    def placement_choice(self) -> str:
        """The DiT placement (Settings.dit_offload): the combo's, or the stored one while the choice is hidden."""
        return self._placement if not self.placement_row.isHidden() else self.settings.dit_offload

    def gpus_choice(self) -> int:
        """The GPUs this computer's engine runs on (Settings.gpus unless the choice is shown)."""
        return self.gpus_spin.value() if not self.gpus_row.isHidden() else self.settings.gpus

    def choice(self) -> tuple[str, str]:
        """(URL, token file) of the remote engine, ("", "") for this computer; ConfigError when unusable."""
        if self.local_radio.isChecked():
            return "", ""
        url = self.url_edit.text().strip()
        if not url.startswith(("ws://", "wss://")) or len(url) < 8:
            raise ConfigError("A remote engine's address looks like ws://gpu-box:8765 (or wss://… with TLS).")
        return url, self.token_edit.text().strip()

    def test_connection(self) -> None:
        """Connect on a thread with the choices as they are, show what the server says, disconnect."""
        try:
            url, token_file = self.choice()
        except ConfigError as error:
            return self._on_answer(error)
        if not url:
            return
        from magi_engine.remote.client import RemoteSession
        from magi_engine.remote.token import default_token_path

        self.test_button.setEnabled(False)
        self.status.setText(f"Connecting to {escape(url)}…")

        def probe() -> None:
            try:
                with RemoteSession.connect(url, token_file=token_file or default_token_path(),
                                           open_timeout_s=10) as session:
                    self._probe.answered.emit(session.status())
            except EngineError as error:
                self._probe.answered.emit(error)

        threading.Thread(target=probe, name="magi-engine-test", daemon=True).start()

    def _on_answer(self, answer) -> None:
        self.test_button.setEnabled(self.remote_radio.isChecked())
        if isinstance(answer, EngineError):
            self.status.setText(f"<b>{escape(answer.title)}</b>: {escape(str(answer))}")
        else:
            self.status.setText(f"Connected: {escape(describe_server(answer))}")

    def _choose_token(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose the remote engine's token file", self.token_edit.text())
        if path:
            self.token_edit.setText(path)

    def _sync_enabled(self, *_) -> None:
        remote = self.remote_radio.isChecked()
        for widget in (self.url_edit, self.token_edit, self.token_button, self.test_button):
            widget.setEnabled(remote)
        self.gpus_spin.setEnabled(not remote)
        self.placement_row.setEnabled(not remote)
