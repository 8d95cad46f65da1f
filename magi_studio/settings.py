"""Typed application settings on QSettings, with their defaults in code and a schema version.

    settings = Settings()              # the user's settings (an INI file in the platform's config folder)
    settings.model                     # "studio-mini" unless the user chose another
    settings.steps = 16                # validated; written at once
    settings.add_recent_file(path)     # most recent first, at most 10

Each setting is a `Setting` descriptor: key, type, default, validation. Reading never fails: a value
that is missing, unparsable or invalid reads as the default (and is logged), so a hand-edited or
damaged file cannot stop the app from starting. Values that mean "whatever the model says"
(resolution, steps, window, guidance) are None by default and are not stored until set.

The file carries `meta/schema_version`. On open, older layouts are migrated one version at a time
(MIGRATIONS[v] turns version v into v + 1); a file from a newer MAGI Studio is read as far as its keys
are understood and never rewritten to an older version number. Tests get a fresh, temporary store
from the `isolated_settings` fixture (tests/magi_studio/conftest.py), never the user's file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar

from PySide6.QtCore import QByteArray, QObject, QSettings, QStandardPaths, Signal

log = logging.getLogger(__name__)

ORGANIZATION = "MAGI Studio"
APPLICATION = "MAGI Studio"
SCHEMA_VERSION = 1
SCHEMA_KEY = "meta/schema_version"
MAX_RECENT_FILES = 10
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")  # magi_engine.device.DEVICE_CHOICES, without importing torch
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")
TEXT_ENCODER_CHOICES = ("auto", "gpu", "cpu", "offload")  # magi_engine.config.TEXT_ENCODER_PLACEMENTS and auto
DIT_OFFLOAD_CHOICES = ("auto", "none", "layers", "kv-cache", "both")  # magi_engine.config.DIT_OFFLOAD_MODES and auto

T = TypeVar("T")


def migrate_store(store: QSettings, migrations: dict[int, Callable[[QSettings], None]] | None = None,
                  target: int = SCHEMA_VERSION) -> int:
    """Bring `store` to schema `target` one version at a time; returns the version it now has."""
    migrations = MIGRATIONS if migrations is None else migrations
    found = _stored_version(store)
    if found > target:
        log.warning("settings file %s was written by a newer MAGI Studio (schema %d, this one knows %d); "
                    "reading what is understood", store.fileName(), found, target)
        return found
    for version in range(found, target):
        log.info("migrating settings from schema %d to %d", version, version + 1)
        migrations[version](store)
        store.setValue(SCHEMA_KEY, version + 1)
    store.sync()
    return target


def _stored_version(store: QSettings) -> int:
    raw = store.value(SCHEMA_KEY)
    if raw is None:
        return 0
    try:
        return int(raw)
    except (TypeError, ValueError):
        log.warning("settings schema version %r is not a number; treating the file as unversioned", raw)
        return 0


def _from_unversioned(store: QSettings) -> None:
    # Version 0 is any file without a version key: the same key names, written before versioning.
    # Keep the keys this schema declares and drop everything else, so stale keys cannot shadow
    # future ones with incompatible types.
    known = {setting.key for setting in Settings.declared().values()} | {SCHEMA_KEY}
    for key in store.allKeys():
        if key not in known:
            store.remove(key)


#: MIGRATIONS[v] upgrades a store from schema v to v + 1, in place.
MIGRATIONS: dict[int, Callable[[QSettings], None]] = {0: _from_unversioned}



def app_data_folder() -> Path:
    """The app's own data folder (untitled projects' scratch bundles, the log, the open projects' locks):
    QStandardPaths' AppDataLocation, e.g. ~/.local/share/MAGI Studio/MAGI Studio on Linux."""
    return Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation))

class Setting(Generic[T]):
    """One typed setting: stored under `key`, read back as `kind`, `default` when absent or invalid."""

    def __init__(self, key: str, kind: type, default: T, *, optional: bool = False,
                 check: Callable[[Any], str | None] | None = None, doc: str = "") -> None:
        self.key, self.kind, self.default, self.optional, self.check = key, kind, default, optional, check
        self.__doc__ = doc
        self.name = key

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, settings: "Settings | None", owner=None):
        if settings is None:
            return self
        return settings.read(self)

    def __set__(self, settings: "Settings", value: T) -> None:
        settings.write(self, value)

    # Conversion -------------------------------------------------------------------------------
    def validate(self, value: Any) -> None:
        """Raise ValueError with a message naming the setting when `value` is not allowed."""
        if value is None:
            if not self.optional:
                raise ValueError(f"setting {self.name!r} cannot be empty")
            return
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.kind) or (self.kind is int and isinstance(value, bool)):
            raise ValueError(f"setting {self.name!r} must be {self.kind.__name__}, got {type(value).__name__}")
        problem = self.check(value) if self.check else None
        if problem:
            raise ValueError(f"setting {self.name!r}: {problem} (got {value!r})")

    def encode(self, value: Any) -> Any:
        if self.kind is list:
            return json.dumps(list(value))  # JSON: QSettings would turn a 1-item list into a string
        if self.kind is bool:
            return "true" if value else "false"
        return value

    def decode(self, raw: Any) -> Any:
        if self.kind is bool:
            text = str(raw).strip().lower()
            if text not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return text in ("true", "1")
        if self.kind is int:
            return int(str(raw))
        if self.kind is float:
            return float(str(raw))
        if self.kind is list:
            value = json.loads(raw)
            if not isinstance(value, list):
                raise ValueError(raw)
            return value
        if self.kind is QByteArray:
            return raw if isinstance(raw, QByteArray) else QByteArray(bytes(raw))
        return str(raw)


def _positive(value) -> str | None:
    return None if value >= 1 else "must be 1 or more"


def _one_of(choices: tuple[str, ...]):
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


def _video_side(value: int) -> str | None:
    return None if 64 <= value <= 4096 and value % 16 == 0 else "must be a multiple of 16 from 64 to 4096"


def _window(value: int) -> str | None:
    return None if 1 <= value <= 4 else "must be from 1 to 4 chunks"


def _guidance(value: float) -> str | None:
    return None if 0.0 <= value <= 30.0 else "must be from 0 to 30"


def _paths(value: list) -> str | None:
    return None if all(isinstance(item, str) and item for item in value) else "must be a list of file paths"


class Settings(QObject):
    """The app's settings. Every assignment is validated and stored at once; `changed(name)` follows."""

    changed = Signal(str)

    # Model and engine
    model = Setting("model/spec", str, "studio-mini", check=lambda v: None if v.strip() else "must not be empty",
                    doc="studio-mini, a checkpoint folder, or a MAGI-1 hub variant such as 4.5B_distill")
    device = Setting("model/device", str, "auto", check=_one_of(DEVICE_CHOICES))
    dtype = Setting("model/dtype", str, "auto", check=_one_of(DTYPE_CHOICES))
    hub_offline = Setting("model/hub_offline", bool, False, doc="never contact the Hugging Face hub")
    # Off in the app although `generate` compiles on CUDA: compiling delays a session's first chunk
    # (54 s instead of 22 s on an H100 with a cold compiler cache, 29 s warm) and pays back 1.6 s a chunk,
    # so only after about 20 chunks in that session (BENCHMARKS.md, "Compiled layers").
    compile_layers = Setting("model/compile_layers", bool, False,
                             doc="compile the DiT's layers on CUDA: 13% faster chunks, a later first chunk")
    text_encoder = Setting("model/text_encoder", str, "auto", check=_one_of(TEXT_ENCODER_CHOICES),
                           doc="where MAGI-1's T5 runs: auto (the first that fits), gpu, cpu or offload")
    dit_offload = Setting("model/dit_offload", str, "auto", check=_one_of(DIT_OFFLOAD_CHOICES),
                          doc="what of MAGI-1's DiT waits in CPU memory: auto (the memory plan decides), none, layers, "
                              "kv-cache or both (magi_engine.loading.memory.plan_memory)")
    engine_url = Setting("engine/url", str, "", check=lambda v: None if not v or v.startswith(("ws://", "wss://"))
                         else "must start with ws:// or wss://", doc="a remote engine (magi-studio serve); '' = this computer")
    engine_token_file = Setting("engine/token_file", str, "", doc="the remote engine's token file; '' = the default")
    gpus = Setting("engine/gpus", int, 1, check=lambda v: None if 1 <= v <= 64 else "must be from 1 to 64",
                   doc="CUDA GPUs this computer's engine runs on (several: torch.distributed, NCCL)")
    # Generation; None means "the loaded model's default"
    width = Setting("generation/width", int, None, optional=True, check=_video_side)
    height = Setting("generation/height", int, None, optional=True, check=_video_side)
    steps = Setting("generation/steps", int, None, optional=True, check=_positive)
    window = Setting("generation/window", int, None, optional=True, check=_window)
    guidance = Setting("generation/guidance", float, None, optional=True, check=_guidance)
    # Files and window
    recent_files = Setting("files/recent", list, [], check=_paths)
    last_folder = Setting("files/last_folder", str, "")
    image_folder = Setting("files/image_folder", str, "", doc="where the reference-image dialog opens ('' = home)")
    reopen_last_project = Setting("files/reopen_last_project", bool, True,
                                  doc="start with the project that was open last (recent_files[0])")
    window_geometry = Setting("window/geometry", QByteArray, QByteArray())
    window_state = Setting("window/state", QByteArray, QByteArray())
    welcome_dismissed = Setting("window/welcome_dismissed", bool, False)
    frame_numbers = Setting("player/frame_numbers", bool, False, doc="the player counts frames instead of timecode")
    timeline_zoom = Setting("timeline/zoom", int, 1, check=lambda v: None if v >= 0 else "must be 0 or more",
                            doc="the storyboard's zoom level (0: widest; timeline.view.ZOOM_LEVELS, whose "
                                "DEFAULT_ZOOM is the default; a level past the last reads as the last)")

    def __init__(self, store: QSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # INI everywhere: one readable format, no Windows registry, and QSettings.setPath isolates tests.
        self.store = store if store is not None else QSettings(
            QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)
        migrate_store(self.store)
        #: This session's ranks, from the command line (`magi-studio --gpus N` or `--ranks N`), over `gpus`:
        #: a magi_engine.parallel.plan.LaunchSpec, or None. Never stored.
        self.launch_override = None

    def runtime_config(self):
        """The engine's RuntimeConfig of these settings (magi_engine.config: plain data, no torch)."""
        from magi_engine.config import RuntimeConfig

        return RuntimeConfig(compile_layers=self.compile_layers,
                             text_encoder=None if self.text_encoder == "auto" else self.text_encoder,
                             dit_offload=None if self.dit_offload == "auto" else self.dit_offload)

    def parallel_launch(self):
        """The LaunchSpec the engine on this computer runs on (None: one device)."""
        if self.launch_override is not None:
            return self.launch_override if self.launch_override.ranks > 1 else None
        if self.gpus > 1:
            from magi_engine.parallel.plan import LaunchSpec

            return LaunchSpec(self.gpus, "nccl")
        return None

    def load_options(self) -> dict:
        """How this computer's engine runs whichever model it loads: EngineWorker.load_model's device, dtype,
        runtime and launch arguments. The model and the memory target stay the caller's (Settings' model or a
        project's own, fitted to a project's size)."""
        return dict(device=self.device, dtype=self.dtype, runtime=self.runtime_config(),
                    launch=self.parallel_launch())

    @classmethod
    def declared(cls) -> dict[str, Setting]:
        return {name: value for name, value in vars(cls).items() if isinstance(value, Setting)}

    # Reading and writing ----------------------------------------------------------------------
    def read(self, setting: Setting):
        raw = self.store.value(setting.key)
        if raw is None:
            return _copy(setting.default)
        try:
            value = setting.decode(raw)
            setting.validate(value)
            return value
        except (TypeError, ValueError, json.JSONDecodeError):
            log.warning("ignoring invalid stored setting %s=%r; using the default", setting.key, raw)
            return _copy(setting.default)

    def write(self, setting: Setting, value) -> None:
        if setting.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        setting.validate(value)
        if value is None:
            self.store.remove(setting.key)
        else:
            self.store.setValue(setting.key, setting.encode(value))
        self.store.sync()
        self.changed.emit(setting.name)

    def reset(self, name: str) -> None:
        """Forget the stored value of setting `name`, so that it reads as its default."""
        setting = self.declared()[name]
        self.store.remove(setting.key)
        self.store.sync()
        self.changed.emit(name)

    def file_name(self) -> str:
        return self.store.fileName()

    # Recent files -----------------------------------------------------------------------------
    def add_recent_file(self, path: str | Path) -> list[str]:
        """Put `path` first in the recent list (once, absolute), keep MAX_RECENT_FILES; returns the list."""
        text = str(Path(path).expanduser().absolute())
        recent = [text] + [p for p in self.recent_files if p != text]
        self.recent_files = recent[:MAX_RECENT_FILES]
        return self.recent_files

    def remove_recent_file(self, path: str | Path) -> None:
        text = str(Path(path).expanduser().absolute())
        self.recent_files = [p for p in self.recent_files if p != text]

    def clear_recent_files(self) -> None:
        self.recent_files = []


def _copy(value):
    # Defaults are shared class data: hand out copies of the mutable ones.
    if isinstance(value, list):
        return list(value)
    if isinstance(value, QByteArray):
        return QByteArray(value)
    return value
