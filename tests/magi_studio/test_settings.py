"""Typed settings: defaults in code, validation, persistence, recent files, schema migration, isolation."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QByteArray, QSettings

from magi_studio.settings import MAX_RECENT_FILES, SCHEMA_KEY, SCHEMA_VERSION, Settings, migrate_store


def reopen(settings: Settings) -> Settings:
    return Settings(QSettings(settings.file_name(), QSettings.Format.IniFormat))


def test_defaults_come_from_code(isolated_settings):
    s = isolated_settings
    assert (s.model, s.device, s.dtype, s.hub_offline) == ("studio-mini", "auto", "auto", False)
    assert (s.width, s.height, s.steps, s.window, s.guidance) == (None, None, None, None, None)  # the model's
    assert s.recent_files == [] and s.last_folder == "" and s.window_geometry.isEmpty()
    assert s.welcome_dismissed is False


def test_runtime_settings_become_the_engine_s_runtime_config(isolated_settings):
    from magi_engine.config import RuntimeConfig

    s = isolated_settings
    assert (s.compile_layers, s.text_encoder) == (False, "auto")  # no compile in the app: a sooner first chunk
    assert s.runtime_config() == RuntimeConfig(compile_layers=False, text_encoder=None)
    s.compile_layers, s.text_encoder = True, "offload"
    assert s.runtime_config() == RuntimeConfig(compile_layers=True, text_encoder="offload")


def test_load_options_give_the_engine_the_device_dtype_runtime_and_gpus_of_the_settings(isolated_settings):
    from magi_engine.config import RuntimeConfig
    from magi_engine.parallel.plan import LaunchSpec

    s = isolated_settings
    assert s.load_options() == dict(device="auto", dtype="auto", runtime=RuntimeConfig(compile_layers=False),
                                    launch=None)
    s.device, s.dtype, s.text_encoder, s.dit_offload, s.gpus = "cuda", "bfloat16", "cpu", "layers", 2
    assert s.load_options() == dict(device="cuda", dtype="bfloat16", launch=LaunchSpec(2, "nccl"),
                                    runtime=RuntimeConfig(compile_layers=False, text_encoder="cpu",
                                                          dit_offload="layers"))


def test_every_test_gets_a_fresh_store_outside_the_users_home(isolated_settings, tmp_path_factory):
    path = Path(isolated_settings.file_name())
    assert str(path).startswith(str(tmp_path_factory.getbasetemp()))
    assert not str(path).startswith(str(Path.home() / ".config"))
    isolated_settings.model = "/models/magi"  # written here, gone for the next test


def test_values_persist_with_their_types(isolated_settings):
    s = isolated_settings
    s.model, s.device, s.dtype = "4.5B_distill", "cpu", "bfloat16"
    s.width, s.height, s.steps, s.window, s.guidance = 512, 288, 16, 2, 7
    s.hub_offline = True
    s.recent_files = ["/projects/one.magi"]  # one item: QSettings alone would hand back a plain string
    s.window_geometry = QByteArray(b"\x01\x02geometry")
    again = reopen(s)
    assert (again.model, again.device, again.dtype) == ("4.5B_distill", "cpu", "bfloat16")
    assert (again.width, again.height, again.steps, again.window) == (512, 288, 16, 2)
    assert again.guidance == 7.0 and isinstance(again.guidance, float)
    assert again.hub_offline is True and again.recent_files == ["/projects/one.magi"]
    assert bytes(again.window_geometry) == b"\x01\x02geometry"
    again.steps = None  # back to "the model's default"
    assert reopen(s).steps is None


@pytest.mark.parametrize("name, value, message", [
    ("device", "tpu", "one of auto, cpu, cuda, mps"),
    ("steps", 0, "1 or more"),
    ("steps", "8", "must be int"),
    ("width", 100, "multiple of 16"),
    ("window", 5, "from 1 to 4"),
    ("guidance", -1.0, "from 0 to 30"),
    ("model", "  ", "must not be empty"),
    ("hub_offline", None, "cannot be empty"),
])
def test_invalid_values_are_refused_with_the_settings_name(isolated_settings, name, value, message):
    with pytest.raises(ValueError, match=message) as error:
        setattr(isolated_settings, name, value)
    assert repr(name) in str(error.value)


def test_a_damaged_file_reads_as_defaults(isolated_settings):
    store = isolated_settings.store
    store.setValue("generation/steps", "many")
    store.setValue("model/device", "quantum")
    store.setValue("files/recent", "{not json")
    store.setValue("model/hub_offline", "perhaps")
    s = reopen(isolated_settings)
    assert (s.steps, s.device, s.recent_files, s.hub_offline) == (None, "auto", [], False)


def test_recent_files_most_recent_first_unique_and_bounded(isolated_settings, tmp_path):
    s = isolated_settings
    paths = [tmp_path / f"p{i}.magi" for i in range(12)]
    for path in paths:
        s.add_recent_file(path)
    assert len(s.recent_files) == MAX_RECENT_FILES
    assert s.recent_files[0] == str(paths[-1]) and str(paths[0]) not in s.recent_files
    s.add_recent_file(paths[5])
    assert s.recent_files[0] == str(paths[5]) and s.recent_files.count(str(paths[5])) == 1
    s.remove_recent_file(paths[5])
    assert str(paths[5]) not in s.recent_files
    s.clear_recent_files()
    assert reopen(s).recent_files == []


def test_changed_names_the_setting(isolated_settings, qtbot):
    with qtbot.waitSignal(isolated_settings.changed) as blocker:
        isolated_settings.steps = 12
    assert blocker.args == ["steps"]


def test_a_new_file_is_stamped_with_the_schema_version(isolated_settings):
    assert int(isolated_settings.store.value(SCHEMA_KEY)) == SCHEMA_VERSION


def test_an_unversioned_file_is_migrated_keeping_known_keys(tmp_path):
    path = tmp_path / "old.ini"
    old = QSettings(str(path), QSettings.Format.IniFormat)
    old.setValue("model/spec", "/models/magi-4.5b")
    old.setValue("legacy/resolution", "256x256")
    old.sync()
    s = Settings(QSettings(str(path), QSettings.Format.IniFormat))
    assert s.model == "/models/magi-4.5b"
    assert s.store.value("legacy/resolution") is None
    assert int(s.store.value(SCHEMA_KEY)) == SCHEMA_VERSION


def test_migrations_run_in_order_and_a_newer_file_is_never_downgraded(tmp_path):
    store = QSettings(str(tmp_path / "chain.ini"), QSettings.Format.IniFormat)
    store.setValue(SCHEMA_KEY, 1)
    store.setValue("generation/resolution", "512x288")
    ran = []

    def v1_to_v2(s):  # e.g. split one "WxH" key into two typed ones
        ran.append(1)
        width, height = s.value("generation/resolution").split("x")
        s.setValue("generation/width", int(width))
        s.setValue("generation/height", int(height))
        s.remove("generation/resolution")

    def v2_to_v3(s):
        ran.append(2)
        s.setValue("generation/steps", 16)

    assert migrate_store(store, {1: v1_to_v2, 2: v2_to_v3}, target=3) == 3
    assert ran == [1, 2] and int(store.value(SCHEMA_KEY)) == 3
    assert (int(store.value("generation/width")), int(store.value("generation/height"))) == (512, 288)

    store.setValue(SCHEMA_KEY, 99)  # written by a newer MAGI Studio
    store.setValue("model/spec", "future-model")
    s = Settings(store)
    assert int(store.value(SCHEMA_KEY)) == 99 and s.model == "future-model"
