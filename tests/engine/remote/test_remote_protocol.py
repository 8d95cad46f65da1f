"""The remote engine's wire format and token file, without a server: round trips, refusals, fuzzing; TLS."""

from __future__ import annotations

import dataclasses
import os
import shutil
import struct
import subprocess

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from magi_engine.config import SamplingConfig
from magi_engine.errors import ConfigError, EngineError, InputError, ProtocolError
from magi_engine.events import Cancelled, ChunkFinished, ChunkStarted, Failed, Finished, GenerationStarted, StepProgress
from magi_engine.remote.protocol import (MAX_HEADER_BYTES, decode, decode_event, decode_request, encode, encode_event,
                                    encode_png_strip, encode_request, sampling_from_data, sampling_to_data)
from magi_engine.remote.token import load_or_create_token, read_token, same_token
from magi_engine.requests import ChunkSpec, GenerationRequest

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
RNG = np.random.default_rng(1)


def full_request() -> GenerationRequest:
    return GenerationRequest(chunks=(ChunkSpec("a red ball", 1, "blur, text"), ChunkSpec("it bounces", 2**63 - 1)),
                             width=64, height=80, sampling=SamplingConfig(num_steps=8, window=2), start_chunk=2,
                             shot_length=7,
                             context_latents=(torch.randn(16, 6, 10, 8), torch.randn(16, 6, 10, 8)),
                             reference_image=RNG.integers(0, 256, (80, 64, 3), dtype=np.uint8), previews=False)


def test_a_request_travels_unchanged():
    sent = full_request()
    got = decode_request(decode(encode_request(sent)))
    for name in ("chunks", "width", "height", "sampling", "start_chunk", "shot_length", "previews", "decode"):
        assert getattr(got, name) == getattr(sent, name), name
    assert all(torch.equal(a, b) for a, b in zip(got.context_latents, sent.context_latents))
    assert np.array_equal(got.reference_image, sent.reference_image)
    # A chunk without a negative prompt is sent as before (a server that predates them reads it).
    assert [set(c) for c in decode(encode_request(sent)).header["request"]["chunks"]] == [
        {"prompt", "seed", "negative_prompt"}, {"prompt", "seed"}]
    video = GenerationRequest(chunks=sent.chunks, width=64, height=80,
                              prefix_video=RNG.integers(0, 256, (8, 80, 64, 3), dtype=np.uint8))
    assert np.array_equal(decode_request(decode(encode_request(video))).prefix_video, video.prefix_video)


def test_every_event_travels_unchanged():
    latent, frames = torch.randn(16, 6, 8, 8), RNG.integers(0, 256, (24, 64, 64, 3), dtype=np.uint8)
    events = [GenerationStarted((3, 4), 12), ChunkStarted(3),
              StepProgress(2, 12, {3: 2, 4: 1}, 8, 0.5, {3: RNG.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)}),
              StepProgress(1, 12, {3: 1}, 8, 0.1, None), ChunkFinished(3, frames, latent, 4, 1.5),
              ChunkFinished(4, None, latent), Finished((3, 4), 2.0), Cancelled((3,), 1.0),
              Failed(InputError("The prompt is odd."), (3,)), Failed(RuntimeErrorLike("internal"), ())]
    for seq, event in enumerate(events, 1):
        message = decode(encode_event(event, "run-1", seq))
        assert (message.header["run"], message.header["seq"]) == ("run-1", seq)
        got = decode_event(message)
        assert type(got) is type(event)
        if isinstance(event, ChunkFinished):
            assert torch.equal(got.latent, event.latent) and got.prefix_frames == event.prefix_frames
            assert (got.frames is None and event.frames is None) or np.array_equal(got.frames, event.frames)
        elif isinstance(event, StepProgress):
            assert (got.step, got.chunk_steps, got.steps_per_chunk) == (event.step, event.chunk_steps, 8)
            assert (got.previews is None) == (event.previews is None)
            assert got.previews is None or np.array_equal(got.previews[3], event.previews[3])
        elif isinstance(event, Failed):
            assert type(got.error) is (InputError if isinstance(event.error, InputError) else EngineError)
            assert str(got.error) == str(event.error) and got.finished_chunks == event.finished_chunks
        else:
            assert got == event


class RuntimeErrorLike(EngineError):
    """An EngineError subclass the protocol does not know: it arrives as EngineError."""


@pytest.mark.parametrize("data, words", [
    ('{"type": 1}', 'with a "type"'), ("[]", 'with a "type"'), ('{"type": "x", "n": NaN}', "NaN"),
    ('{"type": "x", "n": Infinity}', "Infinity"), (b"\x00\x00", "shorter than"),
    (b"\xff\xff\xff\xff{}", "announces a header"), (struct.pack(">I", 13) + b'{"type":"x"}1', "not valid JSON"),
    (struct.pack(">I", 12) + b'{"type":"x"} ', "must list its parts"),
    (encode({"type": "x"}, {"a": b"12"})[:-1], "add up to"), ("x" * (MAX_HEADER_BYTES + 1), "over the"),
])
def test_a_malformed_message_is_a_protocol_error(data, words):
    with pytest.raises(ProtocolError, match=words):
        decode(data)


def _request_message(**changes):
    message = decode(encode_request(full_request()))
    message.header["request"].update(changes)
    return message


@pytest.mark.parametrize("changes, error, words", [
    ({"width": 65}, ConfigError, "multiple of 16"), ({"height": True}, ConfigError, "height"),
    ({"chunks": [{"prompt": "a" * 4001, "seed": 1}]}, InputError, "4000"),
    ({"chunks": [{"prompt": "a", "seed": 1.5}]}, InputError, "seed"),
    ({"chunks": [{"prompt": "a", "seed": 1, "pickle": 1}]}, ProtocolError, "nothing else"),
    ({"chunks": [{"prompt": "a", "seed": 1, "negative_prompt": "b" * 4001}]}, InputError, "negative prompt is 4001"),
    ({"chunks": [{"prompt": "a", "seed": 1, "negative_prompt": 3}]}, InputError, "negative prompt must be text"),
    ({"start_chunk": 1}, ConfigError, "2 context chunks given before chunk 1"),
    ({"shot_length": 3}, ConfigError, "shorter than"), ({"context_chunks": 3}, ProtocolError, "expected 3"),
    ({"sampling": {"guidance": {"t_edges": ["a", "b"]}}}, ProtocolError, "wrong type"),
    ({"sampling": {"window": 3}}, ConfigError, "multiple of window"), ({"previews": 1}, ProtocolError, "true or false"),
])
def test_a_bad_request_is_refused_as_the_local_engine_refuses_it(changes, error, words):
    with pytest.raises(error, match=words):
        decode_request(_request_message(**changes))


def test_an_image_of_another_size_is_refused_from_its_png_header():
    request = GenerationRequest(chunks=(ChunkSpec("a", 1),), width=64, height=80,
                                reference_image=RNG.integers(0, 256, (80, 64, 3), dtype=np.uint8))
    message = decode(encode_request(request))
    message.header["request"]["width"] = 80
    with pytest.raises(ProtocolError, match="not an 8-bit RGB PNG of 1 frame"):
        decode_request(message)


def test_latents_that_are_not_finite_float32_of_the_right_shape_are_refused():
    message = decode(encode_request(full_request()))
    from safetensors.numpy import save

    for bad in ({"0": np.zeros((16, 6, 10, 8), np.float64), "1": np.zeros((16, 6, 10, 8), np.float64)},
                {"0": np.full((16, 6, 10, 8), np.nan, np.float32), "1": np.zeros((16, 6, 10, 8), np.float32)},
                {"0": np.zeros((16, 6, 8, 8), np.float32), "1": np.zeros((16, 6, 8, 8), np.float32)}):
        message.parts["context_latents"] = save(bad)
        with pytest.raises(ProtocolError, match="finite float32"):
            decode_request(message)


def test_a_png_whose_pixels_are_damaged_is_refused_after_its_header_passes():
    message = decode(encode_request(full_request()))
    png = bytearray(encode_png_strip(RNG.integers(0, 256, (80, 64, 3), dtype=np.uint8)))
    png[60:80] = b"\x00" * 20
    message.parts["reference_image"] = bytes(png)
    with pytest.raises(ProtocolError, match="damaged"):
        decode_request(message)


def test_sampling_travels_and_wrong_types_are_named():
    sampling = SamplingConfig(num_steps=16, window=1, attention_spans=(3, 2, 2, 1))
    assert sampling_from_data(sampling_to_data(sampling)) == sampling
    with pytest.raises(ProtocolError, match="sampling.shift"):
        sampling_from_data({"shift": [3]})
    with pytest.raises(ProtocolError, match="unknown field"):
        sampling_from_data({"shifty": 3})


@FUZZ
@given(st.binary(max_size=400) | st.text(max_size=400))
def test_random_bytes_never_escape_as_anything_but_protocol_errors(data):
    try:
        message = decode(data)
    except ProtocolError:
        return
    for step in (decode_request, decode_event):
        try:
            step(message)
        except (ProtocolError, ConfigError, InputError):
            pass


REAL_MESSAGES = [encode_event(ChunkFinished(1, np.random.default_rng(2).integers(0, 256, (24, 16, 16, 3), dtype=np.uint8),
                                            torch.zeros(16, 6, 2, 2), 0, 1.0), "r", 1),
                 encode_request(dataclasses.replace(full_request(), reference_image=np.zeros((80, 64, 3), np.uint8)))]


@FUZZ
@given(st.data())
def test_mutated_real_messages_are_decoded_or_refused_with_a_typed_error(data):
    original = bytearray(data.draw(st.sampled_from(REAL_MESSAGES)))
    for _ in range(data.draw(st.integers(1, 4))):
        original[data.draw(st.integers(0, len(original) - 1))] = data.draw(st.integers(0, 255))
    try:
        message = decode(bytes(original))
        (decode_request if message.type == "generate" else decode_event)(message)
    except (ProtocolError, ConfigError, InputError):
        pass


def test_the_token_file_is_made_private_reused_and_refused_when_others_can_read_it(tmp_path):
    path = tmp_path / "config" / "remote-token"
    token, created = load_or_create_token(path)
    assert created and len(token) >= 40 and os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_token(path) == (token, False) and read_token(path) == token
    assert same_token(token, token) and not same_token(token[:-1], token) and not same_token(None, token)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="can be read by other users"):
        read_token(path)
    link = tmp_path / "link"
    link.symlink_to(path)
    with pytest.raises(ConfigError, match="not a regular file"):
        read_token(link)
    short = tmp_path / "short"
    short.write_text("abc")
    short.chmod(0o600)
    with pytest.raises(ConfigError, match="does not hold a token"):
        read_token(short)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls_with_the_server_s_certificate_and_a_refusal_without_trusting_it(tmp_path):
    from magi_engine.remote.client import RemoteSession
    from magi_engine.remote.server import ServerThread, tls_context
    from magi_engine.errors import RemoteError
    from magi_engine.session import GenerationSession
    from tests.engine.factories import tiny_bundle

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    token = "tls-test-token-0123456789"
    server = ServerThread(GenerationSession(tiny_bundle()), token, ssl_context=tls_context(str(cert), str(key)))
    try:
        assert server.url.startswith("wss://")
        with RemoteSession.connect(server.url, token=token, ca_file=cert) as session:
            assert session.status()["model"]["name"] == "tiny"
        with pytest.raises(RemoteError, match="TLS|certificate|Cannot reach"):
            RemoteSession.connect(server.url, token=token)
    finally:
        server.stop()


def test_sizes_that_would_decode_to_a_bomb_are_refused_before_decoding():
    event = decode(encode_event(ChunkFinished(0, np.zeros((24, 64, 64, 3), np.uint8), torch.zeros(16, 6, 8, 8)),
                                "r", 1))
    event.header["frames"] = [24, 64 * 1000, 64]
    with pytest.raises(ProtocolError, match="latents' size"):
        decode_event(event)
    event.header["latent_shape"] = [16, 6, 8, 10_000]
    with pytest.raises(ProtocolError, match="sides up to 512"):
        decode_event(event)
    big = GenerationRequest(chunks=(ChunkSpec("a", 1),), width=4096, height=4096,
                            prefix_video=np.zeros((4, 4096, 4096, 3), np.uint8))
    message = decode(encode_request(big))
    message.header["request"]["prefix_frames"] = 48  # 48 frames of 4096x4096 would take 2.25 GiB
    with pytest.raises(ProtocolError, match="over the 2 GiB"):
        decode_request(message)
