"""Edit > Settings: the model (studio-mini, a MAGI-1 checkpoint folder, or a hub variant with a download),
the device, and the generation defaults (size, steps, window, guidance), persisted with Settings.

    dialog = SettingsDialog(settings, worker, session=session, parent=window)
    dialog.failed.connect(window.report_error)
    dialog.open()

Apply (or OK) stores every choice, sets HF_HUB_OFFLINE for offline mode, gives the open project the
same model and generation settings (one undoable SetProjectSettings), and — when the model or the
device changed — reloads the model through the EngineWorker, whose loadProgress the dialog shows.
A folder is checked as it is typed (magi_engine.magi_checkpoint.locate_magi_checkpoint): what was found,
or the CheckpointError. Hub variants show their memory estimate at their default size, whether this
device can hold them and whether the hub cache has them; Download runs huggingface_hub in an executor
thread awaited by a qasync slot, with a progress bar and Cancel.
"""

from __future__ import annotations

import asyncio
import functools
from html import escape

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QCheckBox, QComboBox, QDialog, QDialogButtonBox,
                               QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QRadioButton, QSpinBox, QTableWidget,
                               QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget)
from qasync import asyncSlot

from magi_engine.config import SUPPORTED_STEPS
from magi_engine.errors import CheckpointError, ConfigError, EngineError
from magi_engine.events import CancelToken, Failed
from magi_engine.loading.hub import DownloadCancelled, download_variant
from magi_engine.model_files import STUDIO_MINI
from magi_engine.variants import MAGI_VARIANTS
from magi_studio.dialogs.engine_page import EnginePage
from magi_studio.dialogs.model_choice import (available_devices, describe_folder, dit_placements, model_default_size,
                                              set_hub_offline, variant_rows)
from magi_studio.document.commands import SetProjectSettings
from magi_studio.engine_worker import LoadProgress, ModelLoaded

DEVICES = (("auto", "Automatic (best available)"), ("cuda", "NVIDIA GPU (CUDA)"), ("mps", "Apple GPU (Metal)"),
           ("cpu", "CPU"))
WINDOWS = (1, 2, 4)
LOAD_BAR = 1000


class _DownloadSignals(QObject):
    #: (done, total) bytes, emitted on hub download threads, delivered on the GUI thread.
    progressed = Signal(int, int)


class StatusLine(QLabel):
    """A status label that takes no room while it has nothing to say (the dialog keeps its rhythm)."""

    def __init__(self, object_name: str) -> None:
        super().__init__()
        self.setObjectName(object_name)
        self.setWordWrap(True)
        self.hide()

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setVisible(bool(text))


class SettingsDialog(QDialog):
    #: After Apply stored the choices.
    applied = Signal()
    #: (EngineError) a load or a download failed, or a choice cannot be used; also shown in the dialog.
    failed = Signal(object)

    def __init__(self, settings, worker=None, *, session=None, cache_dir=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SettingsDialog")
        self.setWindowTitle("Settings")
        self.settings, self.worker, self.session, self.cache_dir = settings, worker, session, cache_dir
        self._load_job: int | None = None
        self._download_token: CancelToken | None = None
        self.download_task: asyncio.Task | None = None
        self._signals = _DownloadSignals(self)
        self._signals.progressed.connect(self._on_download_progress)

        # Model ------------------------------------------------------------------------------
        self.mini_radio = QRadioButton("studio-mini — built in, runs on this computer's CPU, no download")
        self.folder_radio = QRadioButton("A MAGI-1 checkpoint folder on this computer")
        self.hub_radio = QRadioButton("MAGI-1 from the Hugging Face hub (sand-ai/MAGI-1)")
        self.source_group = QButtonGroup(self)
        for button in (self.mini_radio, self.folder_radio, self.hub_radio):
            self.source_group.addButton(button)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("Folder with ckpt/magi/<variant>/inference_weight…")
        self.folder_button = QPushButton("Choose…")
        self.folder_button.clicked.connect(self._choose_folder)
        self.folder_status = StatusLine("FolderStatus")
        self.variant_table = QTableWidget(len(MAGI_VARIANTS), 4)
        self.variant_table.setHorizontalHeaderLabels(["Variant", "Memory needed", "This device", "Hub cache"])
        self.variant_table.verticalHeader().hide()
        self.variant_table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 12)
        self.variant_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.variant_table.horizontalHeader().setStretchLastSection(True)
        self.variant_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.variant_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.variant_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(self.download_selected)
        self.cancel_download_button = QPushButton("Cancel Download")
        self.cancel_download_button.clicked.connect(self.cancel_download)
        self.download_bar = QProgressBar()
        self.download_bar.setRange(0, LOAD_BAR)
        self.download_status = StatusLine("DownloadStatus")
        self.offline_check = QCheckBox("Offline mode: never contact the Hugging Face hub (HF_HUB_OFFLINE)")
        self.offline_check.toggled.connect(lambda: self._fill_variants())

        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.folder_button)
        download_row = QHBoxLayout()
        download_row.addWidget(self.download_button)
        download_row.addWidget(self.download_bar, 1)
        download_row.addWidget(self.cancel_download_button)
        model_box = QWidget()
        model_layout = QVBoxLayout(model_box)
        model_layout.setContentsMargins(14, 14, 14, 14)
        for item in (self.mini_radio, self.folder_radio, folder_row, self.folder_status, self.hub_radio,
                     self.variant_table, download_row, self.download_status, self.offline_check):
            model_layout.addLayout(item) if isinstance(item, QHBoxLayout) else model_layout.addWidget(item)

        # Generation -------------------------------------------------------------------------
        self.device_combo = QComboBox()
        # What the devices are and hold comes from the engine worker (asked once, on its thread): until it
        # answers, only Automatic and the CPU are offered and no variant says whether it fits.
        self.device_facts = worker.ask_device_facts() if worker is not None else None
        for name, _text in DEVICES:
            self.device_combo.addItem("", name)
        self._show_devices()
        self.device_combo.currentIndexChanged.connect(lambda: self._fill_variants())
        self.compile_check = QCheckBox("Compile the model's layers (CUDA)")
        self.compile_check.setToolTip(
            "About 13% faster chunks on a CUDA GPU, but the first chunk after the model loads waits for the "
            "compiler: 54 s instead of 22 s on an H100 the first time (29 s once its cache is warm). It pays back "
            "after about 20 chunks in one session, so it is off unless you render long sequences.")
        self.text_encoder_combo = QComboBox()
        for name, text in (("auto", "Automatic (the first that fits the GPU)"), ("gpu", "On the GPU"),
                           ("offload", "Offloaded (on the GPU only while encoding)"), ("cpu", "On the CPU")):
            self.text_encoder_combo.addItem(text, name)
        self.text_encoder_combo.setToolTip(
            "Where MAGI-1's T5 text encoder (9 GiB) runs. Offloaded keeps it in memory and copies it to the GPU "
            "only to encode new prompts; on the CPU it is slower to encode but takes no GPU memory. Prompts "
            "already encoded are never encoded again.")
        self.size_default_check = QCheckBox()
        self.width_spin, self.height_spin = QSpinBox(), QSpinBox()
        for spin in (self.width_spin, self.height_spin):
            spin.setRange(64, 4096)
            spin.setSingleStep(16)
            spin.setSuffix(" px")
            spin.editingFinished.connect(lambda spin=spin: spin.setValue(round(spin.value() / 16) * 16))
        self.size_default_check.toggled.connect(self._sync_enabled)
        self.steps_combo = QComboBox()
        self.steps_combo.addItem("Model default", None)
        for steps in SUPPORTED_STEPS:
            self.steps_combo.addItem(str(steps), steps)
        self.window_combo = QComboBox()
        self.window_combo.addItem("Model default", None)
        for window in WINDOWS:
            self.window_combo.addItem(f"{window} chunk{'s' * (window > 1)} at once", window)
        self.guidance_default_check = QCheckBox("Model default")
        self.guidance_spin = QDoubleSpinBox()
        self.guidance_spin.setRange(0.0, 30.0)
        self.guidance_spin.setSingleStep(0.5)
        self.guidance_default_check.toggled.connect(self._sync_enabled)
        size_row, guidance_row = QHBoxLayout(), QHBoxLayout()
        for widget in (self.size_default_check, self.width_spin, QLabel("×"), self.height_spin):
            size_row.addWidget(widget)
        size_row.addStretch(1)
        guidance_row.addWidget(self.guidance_default_check)
        guidance_row.addWidget(self.guidance_spin)
        guidance_row.addStretch(1)
        generation_box = QWidget()
        form = QFormLayout(generation_box)
        form.setContentsMargins(14, 14, 14, 14)
        form.addRow("Device:", self.device_combo)
        form.addRow("", self.compile_check)
        form.addRow("Text encoder:", self.text_encoder_combo)
        form.addRow("Video size:", size_row)
        form.addRow("Denoising steps:", self.steps_combo)
        form.addRow("Window:", self.window_combo)
        form.addRow("Guidance scale:", guidance_row)
        note = QLabel("These apply to the open project (undoably) and to new projects. “Model default” follows "
                      "whichever model is chosen. The window is how many chunks are denoised at once.")
        note.setObjectName("SettingsNote")
        note.setWordWrap(True)
        form.addRow(note)
        self.reopen_check = QCheckBox("Reopen the last project when MAGI Studio starts")
        form.addRow("Start-up:", self.reopen_check)

        # Load status and buttons ------------------------------------------------------------
        self.load_bar = QProgressBar()
        self.load_bar.setRange(0, LOAD_BAR)
        self.load_bar.hide()
        self.load_label = StatusLine("LoadStatus")
        for button in (self.folder_button, self.download_button, self.cancel_download_button):
            button.setAutoDefault(False)  # Return means OK
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Apply
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.apply_button = self.buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.apply_button.clicked.connect(self.apply)
        self.buttons.accepted.connect(lambda: self.apply() and self.accept())
        self.buttons.rejected.connect(self.reject)
        # Two tabs keep the dialog within a 1366x768 screen.
        self.tabs = QTabWidget()
        self.tabs.addTab(model_box, "Model")
        self.tabs.addTab(generation_box, "Generation")
        self.engine_page = EnginePage(settings)
        if self.device_facts is not None:
            self.engine_page.set_device_facts(self.device_facts)
        self.tabs.addTab(self.engine_page, "Engine")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 18, 18, 14)  # as every dialog of the app (ShortcutsDialog, ExportDialog)
        layout.setSpacing(12)
        layout.addWidget(self.tabs)
        layout.addWidget(self.load_bar)
        layout.addWidget(self.load_label)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(800)  # the variant table without a horizontal scroll bar

        self.source_group.buttonToggled.connect(self._sync_enabled)
        # The DiT placements follow the model, the device, the text encoder, the size and the window chosen.
        for signal in (self.source_group.buttonToggled, self.variant_table.itemSelectionChanged,
                       self.folder_edit.textChanged, self.device_combo.currentIndexChanged,
                       self.text_encoder_combo.currentIndexChanged, self.size_default_check.toggled,
                       self.width_spin.valueChanged, self.height_spin.valueChanged,
                       self.window_combo.currentIndexChanged):
            signal.connect(self._show_placements)
        self.folder_edit.textChanged.connect(self._check_folder)
        self.variant_table.itemSelectionChanged.connect(self._sync_enabled)
        if worker is not None:
            worker.event.connect(self._on_engine_event)
            worker.deviceFactsChanged.connect(self._on_device_facts)
        self._load_from_settings()

    # Reading the choices ----------------------------------------------------------------------
    def selected_variant(self) -> str | None:
        rows = self.variant_table.selectionModel().selectedRows()
        return self.variant_table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole) if rows else None

    def select_variant(self, name: str) -> None:
        for row in range(self.variant_table.rowCount()):
            if self.variant_table.item(row, 0).data(Qt.ItemDataRole.UserRole) == name:
                self.variant_table.selectRow(row)

    def model_spec(self) -> str:
        """What Settings.model becomes; raises the error that says why the choice cannot be used."""
        if self.folder_radio.isChecked():
            report = describe_folder(self.folder_edit.text())
            if not report.ok:
                raise CheckpointError(report.text)
            return self.folder_edit.text().strip()
        if self.hub_radio.isChecked():
            if self.selected_variant() is None:
                raise ConfigError("Choose a MAGI-1 variant in the list (or another kind of model).")
            return self.selected_variant()
        return STUDIO_MINI

    def memory_target(self):
        """What the model's memory is fitted to: the size and window chosen here, the open project's chunks."""
        from magi_studio.document.model import ProjectSettings
        from magi_studio.document.planning import memory_target

        spec = self._spec_shown()
        width, height = (self.width_spin.value(), self.height_spin.value()) \
            if not self.size_default_check.isChecked() else model_default_size(spec)
        project = self.session.document.project if self.session is not None else None
        return memory_target(ProjectSettings(model=spec, width=width, height=height,
                                             window=self.window_combo.currentData()), project)

    def _spec_shown(self) -> str:
        """The model the choices describe (what model_spec would store, without refusing an unfinished one)."""
        if self.folder_radio.isChecked():
            return self.folder_edit.text().strip()
        if self.hub_radio.isChecked():
            return self.selected_variant() or ""
        return STUDIO_MINI

    def _show_placements(self, *_) -> None:
        facts = self.device_facts
        gpu = facts.device("cuda") if facts is not None else None
        report = dit_placements(self._spec_shown(), self.memory_target(), facts,
                                self.device_combo.currentData() or "auto", self.text_encoder_combo.currentData(),
                                self.settings.dtype)
        self.engine_page.show_placements(report, cuda=gpu is not None and gpu.available)

    def variant_status(self, name: str) -> tuple[str, str, str]:
        """(memory, this device, hub cache) texts of a variant's row."""
        row = list(MAGI_VARIANTS).index(name)
        return tuple(self.variant_table.item(row, column).text() for column in (1, 2, 3))

    # Apply ------------------------------------------------------------------------------------
    def apply(self) -> bool:
        """Store the choices, update the open project, reload the model if it or the device changed (or
        connect to the remote engine chosen in the Engine tab, whose model the project then uses)."""
        try:
            engine_url, token_file = self.engine_page.choice()
            spec = self.model_spec() if not engine_url else self.settings.model
        except EngineError as error:
            self._show_error(error)
            return False
        settings, device = self.settings, self.device_combo.currentData()
        runtime = (self.compile_check.isChecked(), self.text_encoder_combo.currentData(),
                   self.engine_page.placement_choice())
        launch_before, gpus = settings.parallel_launch(), self.engine_page.gpus_choice()
        if gpus != settings.gpus:  # a choice in the dialog replaces the command line's --gpus / --ranks
            settings.gpus, settings.launch_override = gpus, None
        model_changed = (spec != settings.model or device != settings.device
                         or runtime != (settings.compile_layers, settings.text_encoder, settings.dit_offload)
                         or settings.parallel_launch() != launch_before)
        settings.compile_layers, settings.text_encoder, settings.dit_offload = runtime
        engine_changed = (engine_url, token_file) != (settings.engine_url, settings.engine_token_file)
        settings.engine_url, settings.engine_token_file = engine_url, token_file
        settings.model, settings.device = spec, device
        settings.hub_offline = self.offline_check.isChecked()
        settings.reopen_last_project = self.reopen_check.isChecked()
        set_hub_offline(settings.hub_offline)
        custom_size = not self.size_default_check.isChecked()
        for spin in (self.width_spin, self.height_spin):  # sizes are multiples of 16 (the VAE and patches)
            spin.setValue(max(64, round(spin.value() / 16) * 16))
        settings.width = self.width_spin.value() if custom_size else None
        settings.height = self.height_spin.value() if custom_size else None
        settings.steps, settings.window = self.steps_combo.currentData(), self.window_combo.currentData()
        settings.guidance = None if self.guidance_default_check.isChecked() else self.guidance_spin.value()
        if self.session is not None and not self._update_project(None if engine_url else spec):
            return False
        loaded = self.worker.model_info if self.worker is not None else None
        if self.worker is not None and engine_url:
            if engine_changed or loaded is None or loaded.remote != engine_url:
                from magi_engine.remote.token import default_token_path

                self._load_job = self.worker.connect_remote(engine_url,
                                                            token_file=token_file or str(default_token_path()))
                self.load_bar.setRange(0, 0)
                self.load_bar.show()
                self.load_label.setText(f"Connecting to {engine_url}…")
        elif self.worker is not None and (model_changed or loaded is None or loaded.spec != spec or loaded.remote):
            self._load_job = self.worker.load_model(spec, target=self.memory_target(), **settings.load_options())
            self.load_bar.setRange(0, 0)
            self.load_bar.show()
            self.load_label.setText(f"Loading {spec}…")
        elif loaded is not None and loaded.memory_target is not None \
                and not loaded.memory_target.covers(self.memory_target()):
            self.load_label.setText(f"{loaded.label} was fitted to {loaded.memory_target.describe()}: it loads again "
                                    f"for {self.memory_target().describe()} at the next Generate.")
        self.applied.emit()
        return True

    def _update_project(self, spec: str | None) -> bool:
        """Give the open project the generation settings, and the model `spec` (None: keep its own)."""
        spec = spec or self.session.document.project.settings.model
        width, height = (self.settings.width, self.settings.height) if self.settings.width else model_default_size(spec)
        wanted = dict(model=spec, width=width, height=height, steps=self.settings.steps, window=self.settings.window,
                      guidance_scale=self.settings.guidance)
        current = self.session.document.project.settings
        changes = {name: value for name, value in wanted.items() if getattr(current, name) != value}
        try:
            if changes:
                self.session.push(SetProjectSettings(**changes))
        except EngineError as error:
            self._show_error(error)
            return False
        return True

    # Downloads --------------------------------------------------------------------------------
    @asyncSlot()
    async def download_selected(self) -> None:
        """Fetch the selected hub variant into the Hugging Face cache (or find it there, offline)."""
        name = self.selected_variant()
        if name is None or self._download_token is not None:
            return
        self.download_task = asyncio.current_task()
        token = self._download_token = CancelToken()
        self.download_bar.setValue(0)
        self.download_status.setText(f"Downloading MAGI-1 {name}…")
        self._sync_enabled()
        fetch = functools.partial(download_variant, name, cache_dir=self.cache_dir,
                                  progress=self._signals.progressed.emit, cancel=token.is_set,
                                  local_files_only=self.offline_check.isChecked())
        try:
            root = await asyncio.get_running_loop().run_in_executor(None, fetch)
        except DownloadCancelled:
            self.download_status.setText("Download cancelled. Files already downloaded stay in the cache and are "
                                         "not fetched again.")
        except EngineError as error:
            self.download_status.setText(f"<b>{escape(error.title)}</b>: {escape(str(error))}")
            self.failed.emit(error)
        else:
            self.download_bar.setValue(LOAD_BAR)
            self.download_status.setText(f"MAGI-1 {name} is in the cache ({root}).")
        finally:
            self._download_token = None
            self._fill_variants()
            self._sync_enabled()

    def cancel_download(self) -> None:
        if self._download_token is not None:
            self._download_token.cancel()
            self.download_status.setText("Cancelling the download…")

    def is_downloading(self) -> bool:
        return self._download_token is not None

    def _on_download_progress(self, done: int, total: int) -> None:
        if self._download_token is not None and total:
            self.download_bar.setValue(round(LOAD_BAR * done / total))

    # Model loading ----------------------------------------------------------------------------
    def _on_engine_event(self, job: int, event) -> None:
        if isinstance(event, LoadProgress):
            self._on_load_progress(job, event.message, event.fraction)
        elif isinstance(event, ModelLoaded):
            self._on_model_loaded(job, event.info)
        elif isinstance(event, Failed):
            self._on_load_failed(job, event.error)

    def _on_load_progress(self, job: int, message: str, fraction: float) -> None:
        if job == self._load_job:
            self.load_bar.setRange(0, LOAD_BAR)
            self.load_bar.setValue(round(LOAD_BAR * fraction))
            self.load_label.setText(message)

    def _on_model_loaded(self, job: int, info) -> None:
        if job == self._load_job:
            self._load_job = None
            self.load_bar.hide()
            self.load_label.setText(f"Loaded {info.label} on {info.parallel or info.device}.")
            if info.remote and self.session is not None:  # the project generates with the server's model
                project = self.session.document.project.settings
                if project.model != info.spec:
                    self.session.push(SetProjectSettings(model=info.spec))

    def _on_load_failed(self, job: int, error) -> None:
        if job == self._load_job:
            self._load_job = None
            self.load_bar.hide()
            self.load_label.setText(f"<b>{escape(getattr(error, 'title', 'Engine error'))}</b>: {escape(str(error))}")

    # Helpers ----------------------------------------------------------------------------------
    def _load_from_settings(self) -> None:
        settings = self.settings
        spec = settings.model
        self.offline_check.setChecked(settings.hub_offline)
        self.reopen_check.setChecked(settings.reopen_last_project)
        index = self.device_combo.findData(settings.device)
        self.device_combo.setCurrentIndex(index if index >= 0 else 0)
        self.compile_check.setChecked(settings.compile_layers)
        self.text_encoder_combo.setCurrentIndex(max(0, self.text_encoder_combo.findData(settings.text_encoder)))
        self._fill_variants()
        variant = spec.split(":", 1)[-1]
        if spec == STUDIO_MINI:
            self.mini_radio.setChecked(True)
        elif variant in MAGI_VARIANTS:
            self.hub_radio.setChecked(True)
            self.select_variant(variant)
        else:
            self.folder_radio.setChecked(True)
            self.folder_edit.setText(spec)
        default = model_default_size(spec)
        self.size_default_check.setChecked(settings.width is None)
        self.width_spin.setValue(settings.width or default[0])
        self.height_spin.setValue(settings.height or default[1])
        self.steps_combo.setCurrentIndex(max(0, self.steps_combo.findData(settings.steps)))
        self.window_combo.setCurrentIndex(max(0, self.window_combo.findData(settings.window)))
        self.guidance_default_check.setChecked(settings.guidance is None)
        self.guidance_spin.setValue(settings.guidance if settings.guidance is not None else 7.5)
        self._check_folder()
        self._show_placements()

    def _show_devices(self) -> None:
        usable_devices = available_devices(self.device_facts)
        for index, (name, text) in enumerate(DEVICES):
            usable = usable_devices.get(name, False)
            device = self.device_facts.device(name) if self.device_facts is not None else None
            if usable and device is not None and device.name and name not in ("auto", "cpu"):
                text = f"{text} — {device.name}"
            self.device_combo.setItemText(index, text if usable else f"{text} — not available")
            self.device_combo.model().item(index).setEnabled(usable)

    def _on_device_facts(self, facts) -> None:
        self.device_facts = facts
        self.engine_page.set_device_facts(facts)
        self._show_devices()
        self._fill_variants()
        self._show_placements()

    def _fill_variants(self) -> None:
        selected = self.selected_variant()
        rows = variant_rows(self.device_facts, self.device_combo.currentData() or "auto", self.cache_dir)
        for index, row in enumerate(rows):
            name = QTableWidgetItem(row.variant.label)
            name.setData(Qt.ItemDataRole.UserRole, row.variant.name)
            status = row.status_text if row.cached or not self.offline_check.isChecked() else "Not downloaded (offline)"
            cells = (name, QTableWidgetItem(row.memory_text), QTableWidgetItem(row.fit_text), QTableWidgetItem(status))
            cells[2].setToolTip(row.explanation)
            for column, cell in enumerate(cells):
                self.variant_table.setItem(index, column, cell)
        if selected is not None:
            self.select_variant(selected)
        rows_height = sum(self.variant_table.rowHeight(row) for row in range(self.variant_table.rowCount()))
        self.variant_table.setFixedHeight(rows_height + self.variant_table.horizontalHeader().sizeHint().height()
                                          + 2 * self.variant_table.frameWidth())

    def _check_folder(self) -> None:
        report = describe_folder(self.folder_edit.text()) if self.folder_edit.text().strip() else None
        self.folder_status.setText(report.text if report else "")
        self.folder_status.setProperty("problem", bool(report and not report.ok))
        self.folder_status.style().polish(self.folder_status)  # the style sheet colours a problem
        self._sync_enabled()  # the default size follows the folder's model

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose the MAGI-1 checkpoint folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)
            self.folder_radio.setChecked(True)

    def _sync_enabled(self, *_) -> None:
        folder, hub, downloading = self.folder_radio.isChecked(), self.hub_radio.isChecked(), self.is_downloading()
        for widget in (self.folder_edit, self.folder_button, self.folder_status):
            widget.setEnabled(folder)
        self.variant_table.setEnabled(hub and not downloading)
        self.download_button.setEnabled(hub and not downloading and self.selected_variant() is not None)
        self.cancel_download_button.setEnabled(downloading)
        self.width_spin.setEnabled(not self.size_default_check.isChecked())
        self.height_spin.setEnabled(not self.size_default_check.isChecked())
        self.guidance_spin.setEnabled(not self.guidance_default_check.isChecked())
        spec = self.folder_edit.text().strip() if folder else (self.selected_variant() or "") if hub else STUDIO_MINI
        width, height = model_default_size(spec)
        self.size_default_check.setText(f"Model default ({width} × {height})")

    def _show_error(self, error: EngineError) -> None:
        self.load_label.setText(f"<b>{escape(error.title)}</b>: {escape(str(error))}")
        self.failed.emit(error)

    def reject(self) -> None:
        self.cancel_download()  # the download thread stops at its next progress update
        super().reject()
