"""The remote engine end to end on 127.0.0.1: a server of the tiny model, RemoteSession clients, hostile ones."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading

import numpy as np
import pytest
import torch
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from magi_engine.errors import ConfigError, InputError, RemoteError
from magi_engine.events import (CancelToken, Cancelled, ChunkFinished, Failed, Finished, GenerationStarted,
                           StepProgress)
from magi_engine.remote.client import Queued, RemoteSession
from magi_engine.remote.protocol import PROTOCOL_VERSION, decode, encode
from magi_engine.remote.server import EngineServer, ServerLimits, ServerThread
from magi_engine.requests import ChunkSpec, GenerationRequest
from magi_engine.session import GenerationSession
from tests.engine.factories import tiny_bundle

TOKEN = "test-token-0123456789abcdef"
PROMPTS = ("a red ball falls", "the blue square moves left", "a green triangle grows")
LIMITS = ServerLimits(max_message_bytes=2**20, hello_timeout_s=0.5, open_timeout_s=0.5, messages_per_s=5,
                      message_burst=20, max_waiting=1)


class GatedSession(GenerationSession):
    """The real engine with two holds a test may set: after a run's first event until the gate opens (a
    deterministic queue), and after each finished chunk until the run is cancelled (a deterministic cancel)."""

    def __init__(self, bundle) -> None:
        super().__init__(bundle)
        self.gate = threading.Event()
        self.gate.set()
        self.hold_after_chunks = False

    def generate(self, request, cancel=None):
        events = super().generate(request, cancel)
        yield next(events)
        self.gate.wait(30)
        for event in events:
            yield event
            if self.hold_after_chunks and isinstance(event, ChunkFinished) and cancel is not None:
                cancel._event.wait(30)


@pytest.fixture(scope="module")
def local() -> GenerationSession:
    return GenerationSession(tiny_bundle())


@pytest.fixture(scope="module")
def server():
    running = ServerThread(GatedSession(tiny_bundle()), TOKEN, limits=LIMITS)
    yield running
    running.stop()


@pytest.fixture
def remote(server):
    with RemoteSession.connect(server.url, token=TOKEN) as session:
        yield session


def request(n: int = 3, **kwargs) -> GenerationRequest:
    return GenerationRequest(chunks=tuple(ChunkSpec(PROMPTS[i % 3], seed=100 + i) for i in range(n)), width=64,
                             height=64, **kwargs)


def finished_chunks(events):
    return {e.chunk: e for e in events if isinstance(e, ChunkFinished)}


def assert_same_chunks(remote_events, local_events):
    theirs, ours = finished_chunks(remote_events), finished_chunks(local_events)
    assert sorted(theirs) == sorted(ours) and ours
    for chunk, event in ours.items():
        assert torch.equal(theirs[chunk].latent, event.latent) and theirs[chunk].latent.dtype == torch.float32
        assert np.array_equal(theirs[chunk].frames, event.frames) and theirs[chunk].frames.dtype == np.uint8
        assert theirs[chunk].prefix_frames == event.prefix_frames


def engine_events(events):
    return [e for e in events if not isinstance(e, Queued)]


def assert_server_serves(server):
    """The server still answers a good client after whatever the test did to it."""
    with RemoteSession.connect(server.url, token=TOKEN) as session:
        status = session.status()
        assert status["queue"] == 0
        # A CPU server has no GPU; it tells its RAM instead (what test connection shows).
        assert status["gpu"] is None and 0 < status["memory"]["free"] <= status["memory"]["total"]


def test_a_remote_run_gives_the_local_frames_latents_and_previews_bit_for_bit(remote, local):
    theirs, ours = list(remote.generate(request(3))), list(local.generate(request(3)))
    assert_same_chunks(theirs, ours)
    theirs = engine_events(theirs)
    assert isinstance(theirs[0], GenerationStarted) and theirs[0] == ours[0]
    assert isinstance(theirs[-1], Finished) and theirs[-1].chunks == ours[-1].chunks == (0, 1, 2)
    last_progress = [e for e in theirs if isinstance(e, StepProgress)][-1]
    local_progress = [e for e in ours if isinstance(e, StepProgress)][-1]
    assert (last_progress.step, last_progress.chunk_steps) == (local_progress.step, local_progress.chunk_steps)
    assert all(np.array_equal(last_progress.previews[c], local_progress.previews[c]) for c in local_progress.previews)
    # The session describes the server's model as a local one describes its bundle.
    assert (remote.bundle.width, remote.bundle.height, remote.bundle.label) == (64, 64, "Tiny test model")
    assert remote.default_sampling == local.default_sampling
    assert remote.sampling_for(request(1)) == local.sampling_for(request(1))


def test_regenerate_from_chunk_2_remotely_equals_the_local_run(remote, local):
    sampling = dataclasses.replace(local.default_sampling, window=1)
    full = finished_chunks(local.generate(request(4, sampling=sampling)))
    again = dataclasses.replace(request(4, sampling=sampling), chunks=request(4).chunks[2:], start_chunk=2,
                                shot_length=4, context_latents=(full[0].latent, full[1].latent))
    theirs = finished_chunks(remote.generate(again))
    assert sorted(theirs) == [2, 3]
    assert all(torch.equal(theirs[c].latent, full[c].latent) and np.array_equal(theirs[c].frames, full[c].frames)
               for c in (2, 3))


def test_reference_image_and_prefix_video_runs_equal_the_local_ones(remote, local):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (80, 120, 3), dtype=np.uint8)  # not the video's size: fitted the same way
    with_image = request(1, reference_image=image)
    assert_same_chunks(list(remote.generate(with_image)), list(local.generate(with_image)))
    prefix = rng.integers(0, 256, (28, 64, 64, 3), dtype=np.uint8)
    continued = request(1, prefix_video=prefix)
    assert_same_chunks(list(remote.generate(continued)), list(local.generate(continued)))


def test_a_request_the_model_cannot_run_fails_as_it_would_locally(remote, local):
    cfg3 = dataclasses.replace(local.default_sampling,
                               guidance=dataclasses.replace(local.default_sampling.guidance, mode="cfg3"))
    (theirs,), (ours,) = list(remote.generate(request(1, sampling=cfg3))), list(local.generate(request(1, sampling=cfg3)))
    assert isinstance(theirs, Failed) and type(theirs.error) is type(ours.error) is ConfigError
    assert str(theirs.error) == str(ours.error)


def test_cancel_mid_run_keeps_the_finished_chunks_and_frees_the_server(remote, server):
    token, events = CancelToken(), []
    server.server.session.hold_after_chunks = True
    try:
        for event in remote.generate(request(3), token):
            events.append(event)
            if isinstance(event, ChunkFinished):
                token.cancel()
    finally:
        server.server.session.hold_after_chunks = False
    assert isinstance(events[-1], Cancelled) and events[-1].finished_chunks == (0,)
    assert [e.chunk for e in events if isinstance(e, ChunkFinished)] == [0]
    assert_server_serves(server)


def test_a_dropped_connection_is_restored_and_no_finished_chunk_is_lost(remote, local):
    events = []
    for event in remote.generate(request(3)):
        events.append(event)
        if len(finished_chunks(events)) == 1 and isinstance(event, ChunkFinished):
            remote._connection.socket.shutdown(socket.SHUT_RDWR)  # the network goes away under the client
    assert isinstance(events[-1], Finished)
    assert [e.chunk for e in events if isinstance(e, ChunkFinished)] == [0, 1, 2]  # each once
    assert_same_chunks(events, list(local.generate(request(3))))


def test_a_second_client_waits_in_the_queue_and_sees_its_position(server, local):
    session = server.server.session
    first, second = RemoteSession.connect(server.url, token=TOKEN), RemoteSession.connect(server.url, token=TOKEN)
    session.gate.clear()
    try:
        a, b = first.generate(request(2)), second.generate(request(1))
        assert isinstance(next(a), GenerationStarted)  # running, held at the gate
        assert next(b) == Queued(1)
        with RemoteSession.connect(server.url, token=TOKEN) as third:
            assert third.status()["queue"] == 2
            (refused,) = list(third.generate(request(1)))  # max_waiting is 1: no room behind the second
            assert isinstance(refused.error, RemoteError) and "1 runs waiting" in str(refused.error)
    finally:
        session.gate.set()
    a_events, b_events = list(a), list(b)
    assert isinstance(a_events[-1], Finished) and isinstance(b_events[-1], Finished)
    assert_same_chunks(b_events, list(local.generate(request(1))))
    first.close(), second.close()


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789"])
def test_a_missing_or_wrong_token_is_refused_and_nothing_runs(server, token):
    runs = server.call(lambda: len(server.server.runs))
    with pytest.raises(RemoteError, match="refused this connection: (No token was given|The token is wrong)"):
        RemoteSession.connect(server.url, token=token)
    with connect(server.url) as raw:  # a raw client that skips the hello and asks for a run
        raw.send(encode({"type": "generate", "request": {}}))
        reply = decode(raw.recv(timeout=5))
        assert reply.type == "refused" and "hello" in reply.header["message"]
    assert server.call(lambda: len(server.server.runs)) == runs
    assert_server_serves(server)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_run_stopped_while_the_server_is_unreachable_ends_cancelled_at_once(remote, server):
    session, token, url = server.server.session, CancelToken(), remote.url
    session.gate.clear()
    try:
        events = remote.generate(request(2), token)
        assert isinstance(next(events), GenerationStarted)
        remote._connection.socket.shutdown(socket.SHUT_RDWR)  # the network goes down and stays down
        remote.url = f"ws://127.0.0.1:{unused_port()}"
        token.cancel()
        (end,) = list(events)
        assert isinstance(end, Cancelled) and end.finished_chunks == ()
    finally:
        remote.url = url
        session.gate.set()
    while server.call(lambda: server.server._running is not None or bool(server.server._queue)):
        pass  # the server's run (never told) finishes on its own


def raw_client(server):
    """A websockets client past the hello, speaking the protocol by hand."""
    connection = connect(server.url, max_size=None, legacy=True)
    connection.send(encode({"type": "hello", "protocol": PROTOCOL_VERSION, "token": TOKEN}))
    assert decode(connection.recv(timeout=5)).type == "welcome"
    return connection


def closed_with(connection) -> tuple[int | None, str]:
    """Read until the server closes; (close code, the last error message it sent)."""
    said = ""
    try:
        while True:
            message = decode(connection.recv(timeout=5))
            said = message.header.get("message", said)
    except ConnectionClosed:
        pass
    return connection.close_code, said


@pytest.mark.parametrize("payload, code, said", [
    ("{not json", 1007, "not valid JSON"),
    ('{"type": "launch-missiles"}', 1007, "Unknown message type"),
    ('{"type": "status", "type": "status"}', 1007, "repeats a key"),
    ("[" * 5000 + "]" * 5000, 1007, "nested too deeply"),
    (b"\x00\x00\x00\x09not json!", 1007, "not valid JSON"),
    (b"x" * (2**20 + 1), 1009, ""),  # over max_message_bytes
])
def test_malformed_unknown_and_oversized_messages_close_only_that_connection(server, payload, code, said):
    connection = raw_client(server)
    connection.send(payload)
    closed, message = closed_with(connection)
    assert closed == code and said in message
    assert_server_serves(server)


def test_malformed_message_is_named(server):
    connection = raw_client(server)
    connection.send('{"type": "launch-missiles"}')
    assert closed_with(connection) == (1007, "Unknown message type 'launch-missiles'.")


def test_a_message_before_the_hello_is_small_or_the_connection_closes(server):
    with connect(server.url, max_size=None) as connection:
        connection.send(b"x" * 20_000)
        assert closed_with(connection)[0] == 1009
    assert_server_serves(server)


def test_a_request_with_bad_fields_is_rejected_with_the_engine_s_own_error(server):
    connection = raw_client(server)
    good = {"chunks": [{"prompt": "a", "seed": 1}], "width": 64, "height": 64, "sampling": None, "start_chunk": 0,
            "shot_length": None, "previews": False, "decode": True, "context_chunks": 0, "prefix_frames": 0}
    for change, error in [({"width": 72}, "ConfigError"), ({"chunks": [{"prompt": "a", "seed": -1}]}, "InputError"),
                          ({"start_chunk": "0"}, "ProtocolError"), ({"sampling": {"shift": "3"}}, "ProtocolError"),
                          ({"sampling": {"num_steps": 5}}, "ConfigError"), ({"pickle": "cos\nsystem"}, "ProtocolError")]:
        connection.send(encode({"type": "generate", "request": {**good, **change}}))
        reply = decode(connection.recv(timeout=5))
        assert (reply.type, reply.header["error"]) == ("rejected", error), change
    connection.close()
    assert server.call(lambda: all(r.ended_at is not None for r in server.server.runs.values()))


def test_slow_clients_are_dropped_without_harming_the_server(server):
    trickle = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
    trickle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the rest of the handshake
    silent = connect(server.url, legacy=True)  # a WebSocket that never says hello
    assert_server_serves(server)  # served while both hang on
    trickle.settimeout(10)
    while trickle.recv(1024):  # the server closes it after open_timeout_s (a timeout here fails the test)
        pass
    assert closed_with(silent) == (1008, "No hello within 0.5 s; closing.")
    trickle.close()


def test_a_flood_of_messages_is_cut_off(server):
    connection = raw_client(server)
    for _ in range(100):
        try:
            connection.send(encode({"type": "status"}))
        except ConnectionClosed:
            break
    assert closed_with(connection) == (1008, "Too many messages (more than 5 a second).")
    assert_server_serves(server)


def test_no_token_is_only_allowed_on_a_loopback_address(local):
    with pytest.raises(ConfigError, match="without a token"):
        asyncio.run(EngineServer(local, None).start("0.0.0.0", 0))


def test_a_run_the_server_no_longer_keeps_fails_with_a_sentence(remote, server):
    events = []
    for event in remote.generate(request(2)):
        events.append(event)
        if isinstance(event, ChunkFinished):
            server.call(lambda: server.server.runs.clear())  # as if it had aged out
            remote._connection.socket.shutdown(socket.SHUT_RDWR)
    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, RemoteError)
    assert "no longer keeps this run" in str(events[-1].error) and events[-1].finished_chunks == (0,)


def test_an_unreachable_server_is_a_remote_error():
    port = unused_port()
    with pytest.raises(RemoteError, match="Cannot reach the remote engine"):
        RemoteSession.connect(f"ws://127.0.0.1:{port}", token=TOKEN, open_timeout_s=2)
    with pytest.raises(RemoteError, match="starts with ws://"):
        RemoteSession.connect("http://127.0.0.1:1", token=TOKEN)


def test_a_bad_image_never_reaches_the_engine(remote):
    bad = request(1)
    object.__setattr__(bad, "reference_image", np.zeros((8, 8), np.float32))
    (event,) = list(remote.generate(bad))
    assert isinstance(event, Failed) and isinstance(event.error, (InputError, RemoteError))
