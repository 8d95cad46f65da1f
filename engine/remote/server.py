"""`magi-studio serve`: one loaded model behind a WebSocket server (websockets on asyncio).

The event loop only talks; the engine runs in its own thread (one generation at a time, in the order
asked) and the chunks are PNG-encoded in another, so a step or an encode never stalls a connection.
Each run keeps its messages (numbered) until it has ended and aged out or the retained runs grow over
the size limit: a client that drops comes back and asks for what it missed (`resume`). Progress and
queue messages are coalesced (only the newest is kept), so a slow reader skips stale ones and memory
holds only what matters: the finished chunks and the run's end.

Every connection must send a hello with the bearer token within `hello_timeout_s`; until then a
message may be at most MAX_HELLO_BYTES. After it: `max_message_bytes`, `messages_per_s` (token bucket
with `message_burst`), keepalive pings. A wrong token, a malformed or unknown message, a flood or an
oversized message closes that connection only, with a sentence saying why.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
import os
import secrets
import signal
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from magi_engine.errors import ConfigError, EngineError, ProtocolError, RemoteError
from magi_engine.events import CancelToken, Cancelled, Failed, Finished
from magi_engine.remote.protocol import (MAX_HELLO_BYTES, PROTOCOL_VERSION, Message, decode, decode_request, encode,
                                    encode_event, field_int, field_str, is_final, sampling_to_data, _error_name)
from magi_engine.remote.token import same_token

log = logging.getLogger(__name__)

#: WebSocket close codes (RFC 6455): policy violation, and data that is not what was agreed.
POLICY_VIOLATION, INVALID_DATA = 1008, 1007


@dataclass(frozen=True)
class ServerLimits:
    max_message_bytes: int = 256 * 2**20
    hello_timeout_s: float = 10.0
    #: The WebSocket handshake (a client that trickles its HTTP request is dropped after this).
    open_timeout_s: float = 10.0
    messages_per_s: float = 20.0
    message_burst: int = 40
    #: Runs that may wait behind the running one (a further request is rejected until one ends).
    max_waiting: int = 16
    #: How long an ended run's results are kept for a client to fetch again, and the most bytes kept.
    retention_s: float = 3600.0
    retention_bytes: int = 2 * 2**30
    ping_interval_s: float | None = 20.0
    ping_timeout_s: float | None = 20.0
    #: How long a closing handshake may take (a flooding client may not be reading any more).
    close_timeout_s: float = 1.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Bucket:
    """Token bucket: `rate` messages a second on average, `burst` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass
class _Entry:
    seq: int
    kind: str
    data: str | bytes


@dataclass(eq=False)
class Run:
    """One generation: its request, its cancel token and every message it produced, in order."""

    id: str
    request: Any
    cancel: CancelToken = field(default_factory=CancelToken)
    entries: list[_Entry] = field(default_factory=list)
    next_seq: int = 1
    ended_at: float | None = None
    size: int = 0
    grew: asyncio.Event = field(default_factory=asyncio.Event)

    def reserve(self) -> int:
        self.next_seq += 1
        return self.next_seq - 1

    def append(self, seq: int, kind: str, data: str | bytes) -> None:
        last = self.entries[-1] if self.entries else None
        if last is not None and last.kind == kind and kind in ("progress", "queued"):
            self.entries.pop()  # only the newest progress is worth sending
            self.size -= len(last.data)
        self.entries.append(_Entry(seq, kind, data))
        self.size += len(data)
        if is_final(kind):
            self.ended_at = time.monotonic()
        self.grew.set()
        self.grew = asyncio.Event()

    def after(self, seq: int) -> list[_Entry]:
        return [e for e in self.entries if e.seq > seq]


class EngineServer:
    """Serves one GenerationSession. `token=None` (no authentication) is allowed on a loopback address only."""

    def __init__(self, session, token: str | None, *, limits: ServerLimits = ServerLimits(), spec: str = "") -> None:
        self.session, self.token, self.limits = session, token, limits
        self.spec = spec or session.bundle.name
        self.runs: dict[str, Run] = {}
        self._queue: list[Run] = []
        self._running: Run | None = None
        self._engine = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="magi-engine")
        self._encoder = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="magi-encode")
        self._queued = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self.server = None

    # Serving --------------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 8765, ssl_context: ssl.SSLContext | None = None):
        if self.token is None and not is_loopback(host):
            raise ConfigError(f"Refusing to serve on {host} without a token: anyone who can reach it could use "
                              "the GPU. Give a token, or bind to 127.0.0.1 and use an SSH tunnel.")
        limits = self.limits
        self.server = await serve(self._connection, host, port, ssl=ssl_context, max_size=MAX_HELLO_BYTES,
                                  open_timeout=limits.open_timeout_s, ping_interval=limits.ping_interval_s,
                                  ping_timeout=limits.ping_timeout_s, close_timeout=limits.close_timeout_s,
                                  compression=None)
        self._spawn(self._runner())
        self._spawn(self._pruner())
        return self.server

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for run in [*self._queue, *([self._running] if self._running else [])]:
            run.cancel.cancel()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._engine.shutdown(wait=True, cancel_futures=True)
        self._encoder.shutdown(wait=True, cancel_futures=True)

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def describe(self) -> dict[str, Any]:
        """What a client shows: the model, the device, the GPU and its memory, the queue."""
        bundle = self.session.bundle
        info = {"protocol": PROTOCOL_VERSION,
                "model": {"spec": self.spec, "name": bundle.name, "label": bundle.label, "width": bundle.width,
                          "height": bundle.height, "fps": bundle.fps, "distilled": bool(bundle.dit.config.distilled),
                          "sampling": sampling_to_data(bundle.sampling)},
                "device": str(self.session.device), "gpu": None, "memory": None,
                "dtype": str(next(bundle.dit.parameters()).dtype).removeprefix("torch."),
                "queue": len(self._queue) + (self._running is not None)}
        device = self.session.device
        if getattr(device, "type", "") == "cuda":
            import torch

            free, total = torch.cuda.mem_get_info(device)
            info["gpu"] = torch.cuda.get_device_name(device)
            info["memory"] = {"free": free, "total": total}
        elif getattr(device, "type", "") == "cpu":
            info["memory"] = _ram()  # a CPU server's memory is its RAM
        return info

    # Connections ----------------------------------------------------------------------------------
    async def _connection(self, connection: ServerConnection) -> None:
        try:
            if not await self._hello(connection):
                return
            connection.protocol.max_message_size = self.limits.max_message_bytes
            await connection.send(encode({"type": "welcome", **self.describe()}))
            bucket = _Bucket(self.limits.messages_per_s, self.limits.message_burst)
            async for data in connection:
                if not bucket.take():
                    await self._close(connection, POLICY_VIOLATION,
                                      f"Too many messages (more than {self.limits.messages_per_s:g} a second).")
                    return
                try:
                    message = decode(data)
                    await self._handle(connection, message)
                except ProtocolError as error:
                    await self._close(connection, INVALID_DATA, str(error))
                    return
        except ConnectionClosed:
            pass

    async def _hello(self, connection: ServerConnection) -> bool:
        try:
            data = await asyncio.wait_for(connection.recv(), self.limits.hello_timeout_s)
        except (TimeoutError, asyncio.TimeoutError):
            await self._close(connection, POLICY_VIOLATION,
                              f"No hello within {self.limits.hello_timeout_s:g} s; closing.")
            return False
        try:
            message = decode(data)
        except ProtocolError as error:
            await self._close(connection, INVALID_DATA, str(error))
            return False
        if message.type != "hello":
            await self._refuse(connection, "The first message must be a hello with the token.")
            return False
        if message.header.get("protocol") != PROTOCOL_VERSION:
            await self._refuse(connection, f"This server speaks protocol version {PROTOCOL_VERSION}, the client "
                                           f"{message.header.get('protocol')!r}: update the older of the two.")
            return False
        if self.token is not None and not same_token(message.header.get("token"), self.token):
            log.warning("refused a client from %s: wrong or missing token", connection.remote_address)
            missing = not message.header.get("token")
            await self._refuse(connection, ("No token was given" if missing else "The token is wrong") +
                               ": copy the server's token file (magi-studio serve prints where it is).")
            return False
        return True

    async def _refuse(self, connection: ServerConnection, text: str) -> None:
        await connection.send(encode({"type": "refused", "message": text}))
        await connection.close(POLICY_VIOLATION, text[:120])

    async def _close(self, connection: ServerConnection, code: int, text: str) -> None:
        try:
            await connection.send(encode({"type": "error", "message": text}))
            await connection.close(code, text[:120])
        except ConnectionClosed:
            pass

    async def _handle(self, connection: ServerConnection, message: Message) -> None:
        kind = message.type
        if kind == "status":
            await connection.send(encode({"type": "status", **self.describe()}))
        elif kind == "generate":
            await self._submit(connection, message)
        elif kind == "cancel":
            self._cancel(field_str(message.header, "run"))
        elif kind == "resume":
            run = self.runs.get(field_str(message.header, "run"))
            after = field_int(message.header, "after")
            if run is None:
                await connection.send(encode({"type": "error", "run": message.header["run"], "message":
                                              "The server no longer keeps this run (it restarted, or the results "
                                              f"were older than {self.limits.retention_s / 60:g} minutes)."}))
            else:
                self._spawn(self._stream(connection, run, after))
        else:
            raise ProtocolError(f"Unknown message type {kind!r}.")

    async def _submit(self, connection: ServerConnection, message: Message) -> None:
        try:
            if len(self._queue) >= self.limits.max_waiting:
                raise RemoteError(f"The server already has {len(self._queue)} runs waiting; try again when one "
                                  "has finished.")
            request = await asyncio.to_thread(decode_request, message)
            self.session.sampling_for(request)  # the model's guidance mode, as the local engine checks it
        except EngineError as error:
            await connection.send(encode({"type": "rejected", "error": _error_name(error), "message": str(error)}))
            return
        run = Run(secrets.token_hex(16), request)
        self.runs[run.id] = run
        self._queue.append(run)
        self._queued.set()
        self._announce_positions()
        await connection.send(encode({"type": "accepted", "run": run.id, "position": self._position(run)}))
        self._spawn(self._stream(connection, run, 0))

    def _position(self, run: Run) -> int:
        """Runs before this one (the running one included): 0 means it runs now."""
        if run is self._running:
            return 0
        return self._queue.index(run) + (self._running is not None) if run in self._queue else 0

    def _announce_positions(self) -> None:
        for run in self._queue:
            if self._position(run) == 0:
                continue  # next, with nothing running: it starts at once
            seq = run.reserve()
            run.append(seq, "queued", encode({"type": "queued", "run": run.id, "seq": seq,
                                              "position": self._position(run)}))

    def _cancel(self, run_id: str) -> None:
        run = self.runs.get(run_id)
        if run is None:
            return
        run.cancel.cancel()
        if run in self._queue:  # never started: it ends here
            self._queue.remove(run)
            self._record(run, Cancelled((), 0.0))
            self._announce_positions()

    def _record(self, run: Run, event) -> None:
        seq = run.reserve()
        run.append(seq, _kind(event), encode_event(event, run.id, seq))

    async def _stream(self, connection: ServerConnection, run: Run, after: int) -> None:
        """Send `run`'s messages after `after` to `connection` as they come, until the run ends."""
        try:
            while True:
                grew = run.grew
                for entry in run.after(after):
                    await connection.send(entry.data)
                    after = entry.seq
                    if is_final(entry.kind):
                        return
                await grew.wait()
        except ConnectionClosed:
            pass  # the run goes on; its results wait for the client to come back

    # The engine -----------------------------------------------------------------------------------
    async def _runner(self) -> None:
        while True:
            while not self._queue:
                self._queued.clear()
                await self._queued.wait()
            run = self._queue.pop(0)
            self._running = run
            self._announce_positions()
            try:
                await self._execute(run)
            finally:
                self._running = None
                self._prune()

    async def _execute(self, run: Run) -> None:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()

        def work() -> None:  # the engine thread
            try:
                for event in self.session.generate(run.request, run.cancel):
                    loop.call_soon_threadsafe(events.put_nowait, event)
            except BaseException as exc:  # generate reports its errors as events; this is a bug
                log.exception("the engine thread failed")
                loop.call_soon_threadsafe(events.put_nowait, Failed(EngineError(
                    f"The server's engine stopped on an internal error ({type(exc).__name__}).")))

        done = loop.run_in_executor(self._engine, work)
        while True:
            event = await events.get()
            seq = run.reserve()
            try:
                data = await loop.run_in_executor(self._encoder, encode_event, event, run.id, seq)
            except Exception as exc:
                log.exception("encoding an event failed")
                run.cancel.cancel()
                event = Failed(EngineError(f"The server could not encode a result ({type(exc).__name__}: {exc})."))
                data = encode_event(event, run.id, seq)
            run.append(seq, _kind(event), data)
            if isinstance(event, (Finished, Cancelled, Failed)):
                break
        await done

    # Retention ------------------------------------------------------------------------------------
    def _prune(self) -> None:
        now, limits = time.monotonic(), self.limits
        ended = sorted((r for r in self.runs.values() if r.ended_at is not None), key=lambda r: r.ended_at)
        for run in ended:
            if now - run.ended_at > limits.retention_s:
                del self.runs[run.id]
        total = sum(r.size for r in self.runs.values())
        for run in ended:
            if total <= limits.retention_bytes:
                break
            if run.id in self.runs:
                del self.runs[run.id]
                total -= run.size

    async def _pruner(self) -> None:
        while True:
            await asyncio.sleep(min(60.0, self.limits.retention_s / 4))
            self._prune()


def _kind(event) -> str:
    return {"GenerationStarted": "started", "ChunkStarted": "chunk_started", "StepProgress": "progress",
            "ChunkFinished": "chunk_finished", "Finished": "finished", "Cancelled": "cancelled",
            "Failed": "failed"}[type(event).__name__]


class ServerThread:
    """An EngineServer on its own event loop in a background thread (tests, benchmarks, embedding)."""

    def __init__(self, session, token: str | None, *, host: str = "127.0.0.1", port: int = 0,
                 limits: ServerLimits = ServerLimits(), ssl_context: ssl.SSLContext | None = None,
                 spec: str = "") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="magi-serve", daemon=True)
        self._thread.start()
        self.server = EngineServer(session, token, limits=limits, spec=spec)
        asyncio.run_coroutine_threadsafe(self.server.start(host, port, ssl_context), self.loop).result(30)
        scheme = "wss" if ssl_context else "ws"
        self.url = f"{scheme}://{host}:{self.server.port}"

    def call(self, function: Callable[[], Any]) -> Any:
        """Run `function` on the server's loop and return its result (inspect state without races)."""
        async def call():
            return function()
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("TLS needs both --tls-cert and --tls-key.")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(f"Cannot use the TLS certificate '{cert}' with key '{key}': {error}.") from None
    return context


def run_server(model: str, host: str, port: int, token_file, tls_cert, tls_key, *, device: str = "auto",
               dtype: str | None = None, text_on_cpu: bool = False, launch=None, runtime=None,
               say: Callable[[str], None] = lambda text: print(text, flush=True)) -> int:
    """`magi-studio serve`: load the model once, then serve until Ctrl-C. `launch` (an
    magi_engine.parallel LaunchSpec) runs the model on several ranks, this process being rank 0. `runtime`: an
    magi_engine.config.RuntimeConfig (compiled layers, native FP8, the text encoder's place), as `generate` takes."""
    from magi_engine.remote.token import default_token_path, load_or_create_token
    from magi_engine.session import GenerationSession

    context = tls_context(tls_cert, tls_key)
    token_path = token_file or default_token_path()
    token, created = load_or_create_token(token_path)
    say(f"{'created a new token in' if created else 'token from'} {token_path}")
    say(f"loading {model} ...")
    if launch is not None:
        from magi_engine.parallel.session import ParallelSession

        session = ParallelSession.load(model, launch, dtype=dtype, text_on_cpu=text_on_cpu)
        say(f"{launch.ranks} ranks ({launch.backend}): {session.plan.describe()}")
    else:
        session = GenerationSession.load(model, device=device, dtype=dtype, text_on_cpu=text_on_cpu, runtime=runtime)
        if session.bundle.memory_plan:
            say(session.bundle.memory_plan)
    server = EngineServer(session, token, spec=model)

    async def main() -> None:
        await server.start(host, port, context)
        shown = f"[{host}]" if ":" in host else host
        url = f"{'wss' if context else 'ws'}://{shown}:{server.port}"
        say(f"serving {session.bundle.label} on {session.device} at {url}")
        say(f"connect with: magi-studio generate --engine {url} --token-file {token_path} ... "
            "(copy the token file to the other computer)")
        if not is_loopback(host) and context is None:
            say("warning: without --tls-cert the token and the video travel unencrypted; prefer TLS or an SSH "
                "tunnel (ssh -L 8765:127.0.0.1:8765 this-machine) on networks you do not trust")
        # Handlers of our own: a process started from a script in the background inherits SIGINT ignored,
        # and Ctrl-C (or a service manager's SIGTERM) must still stop the server cleanly.
        loop, stopped = asyncio.get_running_loop(), asyncio.get_running_loop().create_future()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, lambda: stopped.done() or stopped.set_result(None))
            except (NotImplementedError, RuntimeError):  # no Unix signals here: Ctrl-C raises KeyboardInterrupt
                pass
        try:
            await stopped
        finally:
            await server.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        if launch is not None:
            session.close()
    say("stopped")
    return 0


def _ram() -> dict[str, int] | None:
    """This computer's RAM (available, total) in bytes, or None where the system does not say."""
    from magi_engine.loading.memory import device_memory_bytes

    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    free = device_memory_bytes("cpu")
    return {"free": int(free), "total": int(total)} if free is not None else None
