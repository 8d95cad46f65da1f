"""`generate --engine URL` and `render --engine URL`: the same videos as with this computer's engine."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from magi_engine.bundle import save_native_bundle
from magi_engine.remote.server import ServerThread
from magi_engine.remote.token import load_or_create_token
from magi_engine.session import GenerationSession
from magi_engine.video_io import read_video
from magi_studio.cli import main
from magi_studio.document.commands import AddChunk, SetPrompt, new_chunk
from magi_studio.document.model import ProjectSettings, new_project, storyboard_states
from magi_studio.document.observer import Document
from magi_studio.document.store import ProjectStore, open_project
from tests.engine.factories import TINY_VOCAB_CAPTIONS, tiny_bundle


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "tiny"
    save_native_bundle(tiny_bundle(), folder)
    return folder


@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "remote-token"
    load_or_create_token(path)
    return path


@pytest.fixture(scope="module")
def server(model_dir, token_file):
    token, _ = load_or_create_token(token_file)
    running = ServerThread(GenerationSession.load(str(model_dir)), token, spec=str(model_dir))
    yield running
    running.stop()


def test_generate_with_a_remote_engine_writes_the_local_video(model_dir, server, token_file, tmp_path, capsys):
    image = tmp_path / "ref.png"
    cv2.imwrite(str(image), np.full((100, 150, 3), (20, 40, 200), np.uint8))
    args = ["--prompt", "a red ball falls", "--prompt", "the blue square moves left", "--image", str(image),
            "--seed", "3"]
    assert main(["generate", "--model", str(model_dir), *args, "-o", str(tmp_path / "local.mp4")]) == 0
    assert main(["generate", "--engine", server.url, "--token-file", str(token_file), *args,
                 "-o", str(tmp_path / "remote.mp4")]) == 0
    assert np.array_equal(read_video(tmp_path / "local.mp4"), read_video(tmp_path / "remote.mp4"))
    assert f"connecting to {server.url}" in capsys.readouterr().err


def test_generate_with_a_wrong_token_says_so_in_one_line(server, tmp_path, capsys):
    wrong = tmp_path / "token"
    wrong.write_text("not-the-token-0123456789\n")
    wrong.chmod(0o600)
    assert main(["generate", "--engine", server.url, "--token-file", str(wrong), "--prompt", "a red ball falls",
                 "-o", str(tmp_path / "x.mp4")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: The remote engine at ") and "The token is wrong" in err[-1]
    assert not (tmp_path / "x.mp4").exists()
    wrong.chmod(0o644)
    assert main(["generate", "--engine", server.url, "--token-file", str(wrong), "--prompt", "a", "-o",
                 str(tmp_path / "x.mp4")]) == 1
    assert "can be read by other users" in capsys.readouterr().err


def _project(path, model: str):
    project = new_project(ProjectSettings(model=model, width=64, height=64))
    document = Document(project)
    shot = project.shots[0]
    document.apply(SetPrompt(shot.id, shot.chunks[0].id, TINY_VOCAB_CAPTIONS[0]))
    document.apply(AddChunk(shot.id, new_chunk(project, shot.id, 1, TINY_VOCAB_CAPTIONS[1])))
    store = ProjectStore.create(path)
    store.save(project)
    return store.path


def test_render_with_a_remote_engine_saves_the_chunks_and_exports_the_local_film(model_dir, server, token_file,
                                                                                  tmp_path):
    local = _project(tmp_path / "Local", str(model_dir))
    remote = tmp_path / "Remote"
    shutil.copytree(local, remote)
    assert main(["render", str(local), "-o", str(tmp_path / "local.mp4"), "-q"]) == 0
    assert main(["render", str(remote), "-o", str(tmp_path / "remote.mp4"), "-q", "--engine", server.url,
                 "--token-file", str(token_file)]) == 0
    assert np.array_equal(read_video(tmp_path / "local.mp4"), read_video(tmp_path / "remote.mp4"))
    project, _ = open_project(remote)
    assert [s.value for states in storyboard_states(project).values() for s in states] == ["done", "done"]


def test_render_refuses_a_server_with_another_model(server, token_file, tmp_path, capsys):
    path = _project(tmp_path / "Film", "studio-mini")
    assert main(["render", str(path), "-o", str(tmp_path / "f.mp4"), "--engine", server.url, "--token-file",
                 str(token_file)]) == 1
    assert "the remote engine serves" in capsys.readouterr().err


def test_serve_refuses_half_a_tls_pair_before_loading_anything(tmp_path, capsys):
    assert main(["serve", "--tls-cert", str(tmp_path / "c.pem"), "--token-file", str(tmp_path / "t")]) == 1
    assert "TLS needs both --tls-cert and --tls-key" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_serve_prints_where_to_connect_serves_and_stops_on_ctrl_c(model_dir, tmp_path):
    import os
    import re
    import signal
    import subprocess
    import sys

    from magi_engine.remote.client import RemoteSession
    from tests.conftest import REPO_ROOT

    token_file = tmp_path / "token"
    child = subprocess.Popen([sys.executable, "-c", "import sys; from magi_studio.cli import main; sys.exit(main())",
                              "serve", "--model", str(model_dir), "--port", "0", "--token-file", str(token_file),
                              "--device", "cpu"], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                             # as a background job of a script starts it: with SIGINT inherited ignored
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        lines = []
        for line in child.stdout:  # the child says where it is once it listens
            lines.append(line)
            if line.startswith("connect with:"):
                break
        said = "".join(lines)
        assert f"created a new token in {token_file}" in said and oct(token_file.stat().st_mode & 0o777) == "0o600"
        url = re.search(r"at (ws://127\.0\.0\.1:\d+)", said)[1]
        assert f"--engine {url} --token-file {token_file}" in said
        with RemoteSession.connect(url, token_file=token_file) as session:
            assert session.bundle.name == "tiny" and session.status()["device"] == "cpu"
        child.send_signal(signal.SIGINT)
        assert child.wait(30) == 0 and "stopped" in child.stdout.read()
    finally:
        child.kill()
        child.wait()
