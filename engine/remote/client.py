"""RemoteSession: the magi_engine.GenerationSession interface, served by `magi-studio serve` on another machine.

    session = RemoteSession.connect("ws://gpu-box:8765", token_file="remote-token")
    session.bundle.label, session.bundle.width, session.default_sampling, session.sampling_for(request)
    for event in session.generate(request, cancel):   # GenerationStarted ... ChunkFinished ... Finished
        ...

`generate` yields the engine's own typed events, decoded bit-exactly (frames from PNG, latents from
safetensors), and ends with exactly one of Finished, Cancelled or Failed; problems of the connection
become a Failed event with a RemoteError, never an exception out of the generator. One event is the
remote's own: `Queued(position)` while other clients' runs go first (a consumer that does not know it
ignores it). A dropped connection is reopened (for up to `reconnect_s`) and the run resumed from the
last message received: finished chunks are never lost while the server keeps them. Closing the
generator early cancels the run on the server.

The websockets sync client: `generate` runs on whatever thread iterates it (the studio's engine thread,
the command line's main thread). Importing this module costs no torch; decoding a chunk imports it.
"""

from __future__ import annotations

import os
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from magi_engine.config import CHUNK_FRAMES, SamplingConfig, model_sampling
from magi_engine.errors import EngineError, ProtocolError, RemoteError
from magi_engine.events import CancelToken, Cancelled, ChunkFinished, Event, Failed
from magi_engine.remote.protocol import (PROTOCOL_VERSION, Queued, decode, decode_event, encode, encode_request, field_int,
                                    is_final, sampling_from_data, EVENT_TYPES, MAX_PREFIX_FRAMES)
from magi_engine.remote.token import check_token, read_token
from magi_engine.requests import GenerationRequest

#: The most bytes one message from the server may have (24 frames of 4096x4096 PNG fit).
MAX_EVENT_BYTES = 2**30
#: How often the generator looks at the cancel token while it waits for the server.
POLL_S = 0.05


@dataclass(frozen=True)
class RemoteModel:
    """The server's model as the studio and the command line see a bundle: names, size, rate, sampling."""

    spec: str
    name: str
    label: str
    width: int
    height: int
    fps: int
    distilled: bool
    sampling: SamplingConfig


def serves_model(spec: str, name: str, wanted: str) -> bool:
    """Whether a server started with `--model spec` (its model named `name`) is the model `wanted`; a folder
    matches by its last name, since the server's path need not be the laptop's."""
    return wanted in (spec, name) or Path(wanted).name in (Path(spec).name, name)


class RemoteSession:
    def __init__(self, url: str, token: str | None, *, ca_file: str | os.PathLike | None = None,
                 open_timeout_s: float = 10.0, reconnect_s: float = 30.0) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise RemoteError(f"A remote engine's address starts with ws:// or wss://, not '{url[:80]}'.")
        self.url, self.reconnect_s, self.open_timeout_s = url, reconnect_s, open_timeout_s
        self._token = check_token(token) if token is not None else None
        self._ssl = (ssl.create_default_context(cafile=str(ca_file) if ca_file else None) if url.startswith("wss://")
                     else None)
        self._connection: ClientConnection | None = None
        self.info: dict[str, Any] = {}
        self._open()

    @classmethod
    def connect(cls, url: str, *, token: str | None = None, token_file: str | os.PathLike | None = None,
                **options) -> "RemoteSession":
        """Open a session on the server at `url` with the token given or read from `token_file`."""
        if token is None and token_file is not None:
            token = read_token(token_file)
        return cls(url, token, **options)

    # Information -------------------------------------------------------------------------------------
    @property
    def bundle(self) -> RemoteModel:
        model = self.info["model"]
        return RemoteModel(model["spec"], model["name"], model["label"], model["width"], model["height"],
                           model["fps"], model["distilled"], sampling_from_data(model["sampling"]))

    @property
    def device(self) -> str:
        gpu = f" ({self.info['gpu']})" if self.info.get("gpu") else ""
        return f"{self.info['device']}{gpu} at {self.url}"

    @property
    def default_sampling(self) -> SamplingConfig:
        return self.bundle.sampling

    def sampling_for(self, request: GenerationRequest) -> SamplingConfig:
        model = self.bundle
        return model_sampling(request.sampling, model.sampling, distilled=model.distilled, label=model.label)

    def status(self) -> dict[str, Any]:
        """The server's model, device, GPU, memory and queue length, asked now (not while a generate of this
        session is being iterated: the answer shares its connection)."""
        self._send({"type": "status"})
        deadline = time.monotonic() + self.open_timeout_s
        while time.monotonic() < deadline:
            message = self._receive(max(0.0, deadline - time.monotonic()))
            if message is not None and message.type == "status":
                self.info = dict(message.header)
                return self.info
        raise RemoteError(f"The remote engine at {self.url} did not answer in {self.open_timeout_s:g} s.")

    # Connection --------------------------------------------------------------------------------------
    def _open(self) -> None:
        try:
            connection = connect(self.url, ssl=self._ssl, open_timeout=self.open_timeout_s, max_size=MAX_EVENT_BYTES,
                                 compression=None, close_timeout=2, legacy=True)
        except InvalidURI:
            raise RemoteError(f"'{self.url}' is not a remote engine address (ws://HOST:PORT).") from None
        except ssl.SSLError as error:
            raise RemoteError(f"The TLS connection to {self.url} failed ({error.reason or error}).") from None
        except (OSError, InvalidHandshake, TimeoutError) as error:
            raise RemoteError(f"Cannot reach the remote engine at {self.url} ({error}). Is `magi-studio serve` "
                              "running there, and the address and port right?") from None
        self._connection = connection
        self._send({"type": "hello", "protocol": PROTOCOL_VERSION, "token": self._token})
        message = self._receive(self.open_timeout_s)
        if message is None:
            connection.close()
            raise RemoteError(f"The remote engine at {self.url} did not answer the hello.")
        if message.type in ("refused", "error"):
            connection.close()
            raise RemoteError(f"The remote engine at {self.url} refused this connection: {message.header.get('message')}")
        if message.type != "welcome" or message.header.get("protocol") != PROTOCOL_VERSION:
            connection.close()
            raise RemoteError(f"The server at {self.url} does not speak protocol version {PROTOCOL_VERSION}.")
        self.info = dict(message.header)

    def _reopen(self, cancel: CancelToken | None = None) -> None:
        """Reconnect after a drop, for up to reconnect_s (RemoteError when it stays unreachable; at once when
        `cancel` is set: a stopped run need not wait for the network)."""
        deadline, pause = time.monotonic() + self.reconnect_s, 0.1
        while True:
            if cancel is not None and cancel.is_set():
                raise RemoteError(f"The connection to {self.url} dropped and the run was stopped.")
            try:
                self._open()
                return
            except RemoteError as error:
                if "refused" in str(error) or time.monotonic() + pause > deadline:
                    raise RemoteError(f"The connection to {self.url} dropped and could not be restored "
                                      f"({error}).") from None
            time.sleep(pause)
            pause = min(2.0, pause * 2)

    def _send(self, header: dict[str, Any]) -> None:
        self._send_raw(encode(header))

    def _send_raw(self, data: str | bytes) -> None:
        if self._connection is None:
            raise ConnectionClosed(None, None)
        self._connection.send(data)

    def _receive(self, timeout: float):
        """The next message, or None after `timeout` seconds; ConnectionClosed when the connection ends."""
        try:
            data = self._connection.recv(timeout=timeout)
        except TimeoutError:
            return None
        return decode(data)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> "RemoteSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # Generation --------------------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, cancel: CancelToken | None = None) -> Iterator[Event | Queued]:
        finished: list[int] = []
        started = time.perf_counter()
        try:
            data = encode_request(self._fitted(request))
            run = self._submit(data)
        except EngineError as error:
            yield Failed(error, ())
            return
        except ConnectionClosed:
            yield Failed(RemoteError(f"The connection to {self.url} dropped before the run was accepted."), ())
            return
        ended, last, cancel_sent = False, 0, False
        try:
            while True:
                if cancel is not None and cancel.is_set() and not cancel_sent:
                    cancel_sent = self._send_quietly({"type": "cancel", "run": run})
                try:
                    message = self._receive(POLL_S)
                except ConnectionClosed:
                    try:
                        self._reopen(cancel)
                        self._send({"type": "resume", "run": run, "after": last})
                    except (RemoteError, ConnectionClosed) as error:
                        ended = True
                        if cancel is not None and cancel.is_set():  # stopped while cut off: what arrived is kept
                            yield Cancelled(tuple(finished), time.perf_counter() - started)
                            return
                        yield Failed(error if isinstance(error, RemoteError) else
                                     RemoteError(f"The connection to {self.url} dropped again."), tuple(finished))
                        return
                    cancel_sent = False
                    continue
                if message is None or message.header.get("run") != run:
                    continue
                if message.type == "error":
                    ended = True
                    yield Failed(RemoteError(str(message.header.get("message"))), tuple(finished))
                    return
                seq = field_int(message.header, "seq")
                if seq <= last:
                    continue  # already delivered before a reconnect
                last = seq
                if message.type == "queued":
                    yield Queued(field_int(message.header, "position"))
                    continue
                if message.type not in EVENT_TYPES:
                    raise ProtocolError(f"Unknown message type {message.type!r} from the server.")
                event = decode_event(message)
                if isinstance(event, ChunkFinished):
                    finished.append(event.chunk)
                ended = is_final(message.type)
                yield event
                if ended:
                    return
        except ProtocolError as error:
            ended = True
            self._send_quietly({"type": "cancel", "run": run})
            yield Failed(error, tuple(finished))
        finally:
            if not ended:  # the caller stopped iterating: the server need not go on
                self._send_quietly({"type": "cancel", "run": run})

    def _submit(self, data: str | bytes) -> str:
        self._send_raw(data)
        deadline = time.monotonic() + max(self.open_timeout_s, 60.0)
        while time.monotonic() < deadline:
            message = self._receive(max(0.0, deadline - time.monotonic()))
            if message is None:
                break
            if message.type == "accepted":
                return message.header["run"] if isinstance(message.header.get("run"), str) else ""
            if message.type == "rejected":
                from magi_engine.remote.protocol import error_from

                raise error_from(message.header.get("error"), message.header.get("message"))
            if message.type == "error":
                raise RemoteError(str(message.header.get("message")))
        raise RemoteError(f"The remote engine at {self.url} did not accept the request in time.")

    def _send_quietly(self, header: dict[str, Any]) -> bool:
        try:
            self._send(header)
            return True
        except (ConnectionClosed, OSError, RuntimeError):
            return False

    def _fitted(self, request: GenerationRequest) -> GenerationRequest:
        """The request with its pictures fitted to the video's size as the engine fits them ('cover', which
        leaves a fitted picture as it is, so the server's result is the local one) and the prefix cut to
        the frames the engine attends: what travels is never bigger than the video."""
        import dataclasses

        if request.reference_image is None and request.prefix_video is None:
            return request
        from magi_engine.video_io import fit_image

        import numpy as np

        width, height = request.width, request.height
        image = request.reference_image
        if image is not None:
            image = fit_image(image, width, height, "cover")
        video = request.prefix_video
        if video is not None:
            keep = min(self.sampling_for(request).cache_chunks * CHUNK_FRAMES, MAX_PREFIX_FRAMES)
            video = np.stack([fit_image(frame, width, height, "cover") for frame in video[-keep:]])
        return dataclasses.replace(request, reference_image=image, prefix_video=video)
