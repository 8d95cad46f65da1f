"""Settings › Engine: a remote engine is tested (its model, device and memory shown), chosen, connected by the
worker on Apply with the project taking the server's model, and a project of another model is refused by the
generation controller instead of being loaded on this computer."""

from __future__ import annotations

import re

import pytest

from magi_engine.errors import ConfigError
from magi_engine.remote.server import ServerThread
from magi_engine.remote.token import load_or_create_token
from magi_engine.session import GenerationSession
from magi_studio.dialogs.engine_page import describe_server
from magi_studio.dialogs.settings_dialog import SettingsDialog
from magi_studio.document.model import ProjectSettings, new_project
from magi_studio.document.store import ProjectStore
from magi_studio.engine_worker import EngineState
from magi_studio.document_session import DocumentSession
from tests.engine.factories import tiny_bundle


@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("engine") / "remote-token"
    load_or_create_token(path)
    return path


@pytest.fixture(scope="module")
def server(token_file):
    token, _ = load_or_create_token(token_file)
    running = ServerThread(GenerationSession(tiny_bundle()), token, spec="tiny")
    yield running
    running.stop()


def open_dialog(qtbot, settings, **kwargs) -> SettingsDialog:
    dialog = SettingsDialog(settings, **kwargs)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.tabs.setCurrentWidget(dialog.engine_page)
    return dialog


def test_test_connection_shows_the_server_s_model_and_device_or_why_not(qtbot, isolated_settings, server,
                                                                        token_file, tmp_path):
    page = open_dialog(qtbot, isolated_settings).engine_page
    assert page.local_radio.isChecked() and not page.test_button.isEnabled()
    page.remote_radio.setChecked(True)
    page.url_edit.setText(server.url)
    page.token_edit.setText(str(token_file))
    page.test_button.click()
    qtbot.waitUntil(lambda: page.status.text().startswith("Connected"), timeout=10_000)
    # A server without a GPU tells its RAM instead.
    assert re.fullmatch(r"Connected: Tiny test model \(tiny, 64×64\) on cpu \(no GPU\), [\d.]+ of [\d.]+ GiB RAM free",
                        page.status.text()), page.status.text()
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token-0123456789\n")
    wrong.chmod(0o600)
    page.token_edit.setText(str(wrong))
    page.test_button.click()
    qtbot.waitUntil(lambda: "token is wrong" in page.status.text(), timeout=10_000)
    assert page.status.text().startswith("<b>Remote engine problem</b>")
    page.url_edit.setText("gpu-box:8765")
    with pytest.raises(ConfigError, match="ws://"):
        page.choice()


def test_the_description_names_gpu_memory_and_queue():
    info = {"model": {"label": "MAGI-1 4.5B distilled", "spec": "4.5B_distill", "width": 720, "height": 720},
            "device": "cuda:0", "gpu": "NVIDIA H100", "memory": {"free": 40 * 2**30, "total": 80 * 2**30}, "queue": 2}
    assert describe_server(info) == ("MAGI-1 4.5B distilled (4.5B_distill, 720×720) on NVIDIA H100, 40.0 of 80.0 GiB "
                                     "free; 2 runs in progress or waiting")
    cpu = {**info, "device": "cpu", "gpu": None, "memory": {"free": 12 * 2**30, "total": 24 * 2**30}, "queue": 0}
    assert describe_server(cpu) == ("MAGI-1 4.5B distilled (4.5B_distill, 720×720) on cpu (no GPU), 12.0 of 24.0 GiB "
                                    "RAM free")


def test_apply_connects_the_worker_and_the_project_takes_the_server_s_model(qtbot, isolated_settings, engine_worker,
                                                                            server, token_file, tmp_path):
    project = new_project(ProjectSettings())
    session = DocumentSession(project, ProjectStore.create(tmp_path / "Film"))
    dialog = open_dialog(qtbot, isolated_settings, worker=engine_worker, session=session)
    page = dialog.engine_page
    page.remote_radio.setChecked(True)
    page.url_edit.setText(server.url)
    page.token_edit.setText(str(token_file))
    assert dialog.apply()
    qtbot.waitUntil(lambda: "Loaded" in dialog.load_label.text(), timeout=10_000)
    info = engine_worker.model_info
    assert (info.remote, info.spec, engine_worker.state) == (server.url, "tiny", EngineState.READY)
    assert dialog.load_label.text() == f"Loaded Tiny test model on cpu at {server.url}."
    assert (isolated_settings.engine_url, isolated_settings.engine_token_file) == (server.url, str(token_file))
    assert project.settings.model == "tiny"
    session.undo_stack.undo()  # the server's model came as one undoable step
    assert project.settings.model == "studio-mini"
    again = open_dialog(qtbot, isolated_settings).engine_page
    assert again.remote_radio.isChecked() and again.url_edit.text() == server.url


def test_a_project_of_another_model_is_refused_not_loaded_locally(qtbot, isolated_settings, engine_worker, server,
                                                                  token_file, tmp_path):
    from magi_studio.controllers.generation import GenerationController

    job = engine_worker.connect_remote(server.url, token_file=str(token_file))
    qtbot.waitUntil(lambda: job not in engine_worker.live_jobs, timeout=10_000)
    project = new_project(ProjectSettings(model="studio-mini", width=64, height=64))
    session = DocumentSession(project, ProjectStore.create(tmp_path / "Film"))
    controller = GenerationController(session, engine_worker, settings=isolated_settings)
    errors = []
    controller.errorReported.connect(errors.append)
    controller.generate_storyboard()
    qtbot.waitUntil(lambda: bool(errors), timeout=10_000)
    assert "the remote engine at" in str(errors[0]) and "serves 'tiny'" in str(errors[0])
    assert engine_worker.model_info.remote == server.url  # still the remote engine, nothing loaded here
