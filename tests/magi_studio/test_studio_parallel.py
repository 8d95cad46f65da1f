"""The studio on several ranks: `magi-studio --ranks 2` (CPU processes, gloo) runs its engine on them, the
status bar says so, a Generate makes its chunk there, and quitting leaves no process behind. Settings ›
Engine offers a "GPUs" choice only where the engine thread found several CUDA GPUs."""

from __future__ import annotations

import multiprocessing

import pytest
from PySide6.QtCore import Qt

from magi_engine.bundle import save_native_bundle
from magi_engine.device_facts import DeviceFacts, DeviceInfo
from magi_engine.parallel.plan import LaunchSpec
from magi_studio.app import parse_app_args
from magi_studio.dialogs.project_prompts import DISCARD
from magi_studio.document.model import ChunkState, chunk_states
from magi_engine.events import Failed
from magi_studio.engine_worker import EngineState, EngineWorker, ModelReleased
from tests.engine.factories import tiny_bundle


def _ranks() -> list:
    return [p for p in multiprocessing.active_children() if p.name.startswith("magi-rank-")]


def test_the_command_line_asks_for_ranks_for_this_session_only(isolated_settings):
    assert parse_app_args([]).launch is None
    assert parse_app_args(["--gpus", "4"]).launch == LaunchSpec(4, "nccl", "auto")
    assert parse_app_args(["--ranks", "2", "--parallel", "sequence"]).launch == LaunchSpec(2, "gloo", "sequence")
    with pytest.raises(SystemExit):
        parse_app_args(["--gpus", "2", "--ranks", "2"])
    assert isolated_settings.parallel_launch() is None
    isolated_settings.gpus = 2
    assert isolated_settings.parallel_launch() == LaunchSpec(2, "nccl")
    isolated_settings.launch_override = LaunchSpec(2, "gloo", "sequence")  # the command line wins, unstored
    assert isolated_settings.parallel_launch() == LaunchSpec(2, "gloo", "sequence")


def test_the_command_routes_options_without_a_command_to_the_app(monkeypatch):
    import magi_studio.app
    from magi_studio.cli import main

    started = []
    monkeypatch.setattr(magi_studio.app, "run_app", lambda argv: started.append(argv) or 0)
    assert main(["--ranks", "2", "project.magi"]) == 0 and main(["-v"]) == 0
    assert started == [["--ranks", "2", "project.magi"], ["-v"]]


def test_the_gpus_choice_shows_only_with_several_cuda_gpus_and_reloads_on_them(qtbot, isolated_settings):
    from magi_studio.dialogs.settings_dialog import SettingsDialog

    dialog = SettingsDialog(isolated_settings)
    qtbot.addWidget(dialog)
    page = dialog.engine_page
    one = DeviceFacts((DeviceInfo("cuda", True, "GPU", None, None), DeviceInfo("cpu", True, "CPU")), "cuda", 1)
    page.set_device_facts(one)
    assert page.gpus_row.isHidden() and page.gpus_choice() == 1
    page.set_device_facts(DeviceFacts(one.devices, "cuda", 4))
    assert not page.gpus_row.isHidden() and page.gpus_spin.maximum() == 4
    page.gpus_spin.setValue(2)
    assert dialog.apply()
    assert isolated_settings.gpus == 2 and isolated_settings.parallel_launch() == LaunchSpec(2, "nccl")


@pytest.mark.slow
def test_the_studio_generates_on_two_cpu_ranks_and_quitting_leaves_no_process(qtbot, make_studio,
                                                                               isolated_settings, tmp_path):
    folder = tmp_path / "tiny"
    save_native_bundle(tiny_bundle(distilled=True), folder)
    isolated_settings.model, isolated_settings.width, isolated_settings.height = str(folder), 64, 64
    isolated_settings.launch_override = parse_app_args(["--ranks", "2", "--parallel", "sequence"]).launch
    studio = make_studio()
    window = studio.window
    qtbot.waitUntil(lambda: studio.worker.state == EngineState.READY, timeout=120_000)
    assert studio.worker.model_info.parallel == "2 CPU ranks (sequence-parallel)"
    assert "2 CPU ranks (sequence-parallel)" in window.engine_status.text()
    ranks = _ranks()
    assert [p.name for p in ranks] == ["magi-rank-1"]

    card = window.timeline.cards()[0]
    card.prompt.setFocus()
    qtbot.keyClicks(card.prompt, "a red ball falls to the floor")
    ended = []
    studio.generation.runEnded.connect(ended.append)
    qtbot.keyClick(window.timeline.strip, Qt.Key.Key_Return,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)  # Generate Shot
    qtbot.waitUntil(lambda: bool(ended), timeout=120_000)
    shot = studio.session.project.shots[0]
    assert ended == ["finished"] and chunk_states(studio.session.project, shot.id) == [ChunkState.DONE]
    assert window.player.store.frames(0).shape == (24, 64, 64, 3)  # decoded with its tiles on both ranks

    studio.projects.prompts.unsaved = DISCARD
    window.action_set["file.quit"].trigger()
    assert not window.isVisible() and not studio.worker.is_running()
    assert not any(p.is_alive() for p in ranks) and not _ranks()


@pytest.mark.slow
def test_a_failed_load_after_the_old_ranks_closed_leaves_no_model_named(qtbot, engine_worker: EngineWorker, tmp_path):
    from magi_studio.widgets.engine_status import EngineStatus

    folder = tmp_path / "tiny"
    save_native_bundle(tiny_bundle(distilled=True), folder)
    launch = parse_app_args(["--ranks", "2"]).launch
    status = EngineStatus(engine_worker)
    qtbot.addWidget(status)
    engine_worker.load_model(str(folder), launch=launch)
    qtbot.waitUntil(lambda: engine_worker.state == EngineState.READY, timeout=120_000)
    assert "2 CPU ranks" in status.text()
    events = []
    engine_worker.event.connect(lambda job, event: events.append(type(event)))
    engine_worker.load_model(str(tmp_path / "no such model"), launch=launch)
    qtbot.waitUntil(lambda: Failed in events, timeout=120_000)
    assert events.index(ModelReleased) < events.index(Failed)
    assert engine_worker.model_info is None and engine_worker.state == EngineState.NO_MODEL
    assert "No model loaded" in status.text() and "tiny" not in status.text().lower()
    assert not _ranks()
