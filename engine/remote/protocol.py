"""The remote engine's wire format, version 1: what a client and `magi-studio serve` say to each other.

Every WebSocket message is one of:

* a text message: one JSON object with a "type" (control messages: hello, status, cancel, resume, and
  the server's welcome, accepted, refused, error and events that carry no arrays);
* a binary message: a 4-byte big-endian length, that many bytes of JSON header (the same kind of object,
  plus "parts": [[name, length], ...]) and then the parts' bytes, in that order. Parts carry bulk data
  in formats with no code in them: PNG strips for frames (lossless, as the project store keeps them),
  safetensors for latents. Never pickle.

Client → server: hello {protocol, token} (first, and only that, before anything else); generate (the
GenerationRequest as data, its arrays as parts: reference_image and prefix_video as PNG strips already
fitted to the video size, context_latents as safetensors); cancel {run}; status; resume {run, after}
(fetch a run's events after sequence number `after`, finished chunks included, e.g. after a drop).

Server → client: welcome {protocol, model, device, gpu, memory}; refused {message} (then it closes);
accepted {run, position}; rejected {error, message}; queued {run, seq, position}; the engine's events as
started / chunk_started / progress / chunk_finished / finished / cancelled / failed, each with {run, seq};
status {...}; error {message}.

Decoding never trusts the bytes: JSON without NaN, repeated keys or deep nesting, every field checked for
type and range, the request rebuilt through GenerationRequest's own constructor (the local engine's
validation), images checked from their PNG header before a pixel is decoded. Every failure is a
ProtocolError with one sentence. Importing this module costs no torch or cv2; the functions that need
them import them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from magi_engine.config import CHUNK_FRAMES, CHUNK_LATENT_FRAMES, GuidanceConfig, SamplingConfig
from magi_engine.errors import (CheckpointError, ConfigError, DeviceError, DownloadError, EngineError, ExportError,
                           InputError, OutOfMemory, ProtocolError, RemoteError)
from magi_engine.events import (Cancelled, ChunkFinished, ChunkStarted, Event, Failed, Finished, GenerationStarted,
                           StepProgress)
from magi_engine.requests import MAX_SEED, ChunkSpec, GenerationRequest

PROTOCOL_VERSION = 1
#: The most bytes a message may have before the sender has shown its token.
MAX_HELLO_BYTES = 16 * 2**10
#: The most bytes of a JSON header (a request of hundreds of chunks with long prompts fits).
MAX_HEADER_BYTES = 8 * 2**20
#: Chunks one request may ask for.
MAX_REQUEST_CHUNKS = 1000
#: Prefix frames a request may carry: the engine attends at most the last few chunks of a prefix.
MAX_PREFIX_FRAMES = 8 * CHUNK_FRAMES
#: The most bytes a request's prefix frames may take once decoded (a PNG of zeros is tiny on the wire).
MAX_DECODED_BYTES = 2 * 2**30
#: Latent pixels a side (4096 video pixels).
MAX_LATENT_SIDE = 512
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CLIENT_TYPES = ("hello", "generate", "cancel", "status", "resume")
EVENT_TYPES = ("started", "chunk_started", "progress", "chunk_finished", "finished", "cancelled", "failed")
#: The typed errors a `failed` event may name; anything else arrives as EngineError.
ERROR_CLASSES = {cls.__name__: cls for cls in (EngineError, ConfigError, CheckpointError, InputError, OutOfMemory,
                                                DownloadError, DeviceError, ExportError, RemoteError, ProtocolError)}


@dataclass(frozen=True)
class Queued:
    """The run waits on the server behind `position` other runs (not an engine event). Here, not in the
    client, so that the studio can tell it apart without importing websockets."""

    position: int


@dataclass(frozen=True)
class Message:
    header: dict[str, Any]
    parts: dict[str, bytes] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.header["type"]


# Envelope --------------------------------------------------------------------------------------------
def encode(header: Mapping[str, Any], parts: Mapping[str, bytes] | None = None) -> str | bytes:
    """A text message for a header alone, a binary one when there are parts."""
    if not parts:
        return json.dumps(header, allow_nan=False, separators=(",", ":"))
    head = json.dumps({**header, "parts": [[name, len(data)] for name, data in parts.items()]}, allow_nan=False,
                      separators=(",", ":")).encode()
    return b"".join([struct.pack(">I", len(head)), head, *parts.values()])


def decode(data: str | bytes) -> Message:
    """The message in `data`, its header checked as an object with a known "type"; ProtocolError if not."""
    if isinstance(data, str):
        if len(data) > MAX_HEADER_BYTES:
            raise ProtocolError(f"A control message of {len(data)} characters is over the {MAX_HEADER_BYTES} limit.")
        return Message(_json_object(data))
    if len(data) < 4:
        raise ProtocolError("A binary message is shorter than its length prefix.")
    (length,) = struct.unpack(">I", data[:4])
    if length > min(MAX_HEADER_BYTES, len(data) - 4):
        raise ProtocolError(f"A binary message announces a header of {length} bytes; it holds {len(data) - 4}.")
    header = _json_object(data[4:4 + length])
    listed = header.pop("parts", None)
    if not isinstance(listed, list) or not listed:
        raise ProtocolError("A binary message must list its parts.")
    parts, offset = {}, 4 + length
    for item in listed:
        if (not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], str) or len(item[0]) > 64
                or not _is_int(item[1]) or item[1] < 0 or item[0] in parts):
            raise ProtocolError("A binary message's parts must be distinct [name, length] pairs.")
        parts[item[0]] = data[offset:offset + item[1]]
        offset += item[1]
    if offset != len(data):
        raise ProtocolError(f"A binary message's parts add up to {offset} bytes; it has {len(data)}.")
    return Message(header, parts)


def _refuse_constant(name: str):
    raise ProtocolError(f"JSON {name} is not a number this protocol accepts.")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ProtocolError("A JSON object repeats a key.")
    return result


def _json_object(text: str | bytes) -> dict[str, Any]:
    try:
        value = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except ProtocolError:
        raise
    except RecursionError:
        raise ProtocolError("A message's JSON is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ProtocolError(f"A message is not valid JSON ({error}).") from None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ProtocolError('A message must be a JSON object with a "type".')
    return value


# Field checks ------------------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def field_int(header: Mapping[str, Any], name: str, low: int = 0, high: int = 2**63 - 1) -> int:
    value = header.get(name)
    if not _is_int(value) or not low <= value <= high:
        raise ProtocolError(f'"{name}" must be a whole number from {low} to {high}, got {value!r}.')
    return value


def field_float(header: Mapping[str, Any], name: str) -> float:
    value = header.get(name)
    if not _is_number(value) or value < 0:
        raise ProtocolError(f'"{name}" must be a finite number of 0 or more, got {value!r}.')
    return float(value)


def field_str(header: Mapping[str, Any], name: str, max_chars: int = 200) -> str:
    value = header.get(name)
    if not isinstance(value, str) or len(value) > max_chars:
        raise ProtocolError(f'"{name}" must be text of at most {max_chars} characters.')
    return value


def field_bool(header: Mapping[str, Any], name: str) -> bool:
    value = header.get(name)
    if not isinstance(value, bool):
        raise ProtocolError(f'"{name}" must be true or false, got {value!r}.')
    return value


def field_ints(header: Mapping[str, Any], name: str, max_items: int = MAX_REQUEST_CHUNKS) -> tuple[int, ...]:
    value = header.get(name)
    if not isinstance(value, list) or len(value) > max_items or not all(_is_int(v) and v >= 0 for v in value):
        raise ProtocolError(f'"{name}" must be a list of at most {max_items} whole numbers of 0 or more.')
    return tuple(value)


def _only_keys(mapping: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise ProtocolError(f"{what} has unknown field(s) {unknown}.")


# Sampling settings as data ------------------------------------------------------------------------------
def _check_like_defaults(data: Any, cls, what: str) -> None:
    """Each field has the JSON type of its dataclass default (numbers finite, lists of numbers or ints)."""
    if not isinstance(data, dict):
        raise ProtocolError(f"{what} must be a JSON object.")
    defaults = {f.name: getattr(cls(), f.name) for f in dataclasses.fields(cls)}
    _only_keys(data, set(defaults), what)
    for name, value in data.items():
        default = defaults[name]
        if isinstance(default, (GuidanceConfig,)):
            _check_like_defaults(value, GuidanceConfig, f"{what}.{name}")
            continue
        if isinstance(default, tuple):
            element = _is_int if all(_is_int(v) for v in default) else _is_number
            ok = isinstance(value, list) and len(value) <= 64 and all(element(v) for v in value)
        elif isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = _is_int(value)
        elif isinstance(default, float):
            ok = _is_number(value)
        else:
            ok = isinstance(value, str) and len(value) <= 64
        if not ok:
            raise ProtocolError(f"{what}.{name} has the wrong type ({value!r}).")


def sampling_from_data(data: Any) -> SamplingConfig:
    """A SamplingConfig from its to_dict() form, every field type-checked, then validated by the class."""
    _check_like_defaults(data, SamplingConfig, "sampling")
    return SamplingConfig.from_dict(data)


def sampling_to_data(sampling: SamplingConfig) -> dict[str, Any]:
    return json.loads(json.dumps(sampling.to_dict()))


# Arrays ------------------------------------------------------------------------------------------------
def encode_png_strip(frames: np.ndarray, compression: int = 1) -> bytes:
    """uint8 RGB [T, H, W, 3] (or [H, W, 3]) as one lossless PNG, the frames stacked vertically."""
    import cv2

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.shape[-1] != 3 or frames.ndim not in (3, 4):
        raise ProtocolError(f"Frames must be uint8 RGB, got {frames.dtype} {tuple(frames.shape)}.")
    strip = frames.reshape(-1, frames.shape[-2], 3)
    ok, data = cv2.imencode(".png", np.ascontiguousarray(strip[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise ProtocolError("Frames could not be encoded as PNG.")
    return data.tobytes()


def decode_png_strip(data: bytes, count: int, width: int, height: int, what: str) -> np.ndarray:
    """uint8 [count, height, width, 3] from a PNG strip; its header is checked before any pixel is decoded."""
    import cv2

    if (len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR"
            or struct.unpack(">II", data[16:24]) != (width, height * count) or data[24:26] != b"\x08\x02"):
        raise ProtocolError(f"The {what} is not an 8-bit RGB PNG of {count} frame(s) of {width}x{height}.")
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.shape != (height * count, width, 3) or pixels.dtype != np.uint8:
        raise ProtocolError(f"The {what} is damaged (its PNG data does not decode).")
    return np.ascontiguousarray(pixels[..., ::-1]).reshape(count, height, width, 3)


def encode_latents(latents) -> bytes:
    """float32 arrays (numpy, or CPU torch tensors) as safetensors bytes, keyed "0", "1", ..."""
    from safetensors.numpy import save

    return save({str(i): np.ascontiguousarray(np.asarray(latent, dtype=np.float32))
                 for i, latent in enumerate(latents)})


def decode_latents(data: bytes, count: int, shape: tuple[int, ...], what: str) -> list[np.ndarray]:
    """`count` float32 arrays of `shape` from safetensors bytes; ProtocolError for anything else."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        arrays = load(bytes(data))
    except (SafetensorError, ValueError, OverflowError) as error:
        raise ProtocolError(f"The {what} are not a valid safetensors file ({error}).") from None
    if sorted(arrays) != sorted(str(i) for i in range(count)):
        raise ProtocolError(f"The {what} hold {sorted(arrays)}; expected {count} tensor(s).")
    result = []
    for i in range(count):
        array = arrays[str(i)]
        if array.dtype != np.float32 or tuple(array.shape) != tuple(shape) or not np.isfinite(array).all():
            raise ProtocolError(f"The {what} must be finite float32 {tuple(shape)}, got {array.dtype} "
                                f"{tuple(array.shape)}.")
        result.append(array)
    return result


def _torch(array: np.ndarray):
    import torch

    return torch.from_numpy(np.array(array))  # a copy: safetensors' arrays may be read-only views


# The request -------------------------------------------------------------------------------------------
_REQUEST_KEYS = {"chunks", "width", "height", "sampling", "start_chunk", "shot_length", "previews", "decode",
                 "context_chunks", "prefix_frames"}
_CHUNK_KEYS = {"prompt", "seed", "negative_prompt"}


def encode_request(request: GenerationRequest) -> str | bytes:
    """A generate message. The reference image and prefix frames must already be width x height (the
    client fits them as the engine would: a fitted picture is left as it is)."""
    data = {
        # A negative prompt travels only when there is one, so a request without one reads as before.
        "chunks": [{"prompt": c.prompt, "seed": c.seed, **({"negative_prompt": c.negative_prompt}
                                                            if c.negative_prompt else {})} for c in request.chunks],
        "width": request.width, "height": request.height,
        "sampling": None if request.sampling is None else sampling_to_data(request.sampling),
        "start_chunk": request.start_chunk, "shot_length": request.shot_length,
        "previews": request.previews, "decode": request.decode,
        "context_chunks": len(request.context_latents),
        "prefix_frames": 0 if request.prefix_video is None else len(request.prefix_video),
    }
    parts = {}
    if request.context_latents:
        parts["context_latents"] = encode_latents([latent.detach().cpu().float().numpy() if hasattr(latent, "detach")
                                                   else latent for latent in request.context_latents])
    if request.reference_image is not None:
        parts["reference_image"] = encode_png_strip(request.reference_image)
    if request.prefix_video is not None:
        parts["prefix_video"] = encode_png_strip(request.prefix_video)
    return encode({"type": "generate", "request": data}, parts)


def decode_request(message: Message) -> GenerationRequest:
    """The GenerationRequest of a generate message, built through its constructor (ConfigError / InputError
    as the local engine raises them), its arrays checked against the video's size first."""
    data = message.header.get("request")
    if not isinstance(data, dict):
        raise ProtocolError('A generate message needs a "request" object.')
    _only_keys(data, _REQUEST_KEYS, "The request")
    _only_keys(message.parts, {"context_latents", "reference_image", "prefix_video"}, "The request's data")
    chunks = data.get("chunks")
    if not isinstance(chunks, list) or not 1 <= len(chunks) <= MAX_REQUEST_CHUNKS:
        raise ProtocolError(f'"chunks" must be a list of 1 to {MAX_REQUEST_CHUNKS} chunks.')
    specs = []
    for chunk in chunks:
        if not isinstance(chunk, dict) or not {"prompt", "seed"} <= set(chunk) <= _CHUNK_KEYS:
            raise ProtocolError('Each chunk must be an object with "prompt" and "seed" (and optionally '
                                '"negative_prompt"), nothing else.')
        # The engine's own checks:
        specs.append(ChunkSpec(chunk["prompt"], chunk["seed"], chunk.get("negative_prompt", "")))
    start = field_int(data, "start_chunk", 0, MAX_SEED)
    shot_length = None if data.get("shot_length") is None else field_int(data, "shot_length", 1, 10**6)
    sampling = None if data.get("sampling") is None else sampling_from_data(data["sampling"])
    context_count = field_int(data, "context_chunks", 0, 64)
    prefix_count = field_int(data, "prefix_frames", 0, MAX_PREFIX_FRAMES)
    # The request without its arrays first: the size, start and shot length are checked before any decoding.
    request = GenerationRequest(chunks=tuple(specs), width=data.get("width"), height=data.get("height"),
                                sampling=sampling, start_chunk=start, shot_length=shot_length,
                                previews=field_bool(data, "previews"), decode=field_bool(data, "decode"))
    width, height = request.width, request.height
    _parts_match(message.parts, "context_latents", context_count > 0)
    _parts_match(message.parts, "prefix_video", prefix_count > 0)
    context = ()
    if context_count:
        shape = (16, CHUNK_LATENT_FRAMES, height // 8, width // 8)
        context = tuple(_torch(a) for a in decode_latents(message.parts["context_latents"], context_count, shape,
                                                          "context latents"))
    image = None
    if "reference_image" in message.parts:
        image = decode_png_strip(message.parts["reference_image"], 1, width, height, "reference image")[0]
    video = None
    if prefix_count * width * height * 3 > MAX_DECODED_BYTES:
        raise ProtocolError(f"{prefix_count} prefix frames of {width}x{height} are over the "
                            f"{MAX_DECODED_BYTES // 2**30} GiB a request may decode to; send fewer.")
    if prefix_count:
        video = decode_png_strip(message.parts["prefix_video"], prefix_count, width, height, "prefix video")
    return dataclasses.replace(request, context_latents=context, reference_image=image, prefix_video=video)


def _parts_match(parts: Mapping[str, bytes], name: str, announced: bool) -> None:
    if (name in parts) != announced:
        raise ProtocolError(f"The request's {name} and its count do not agree.")


# Events ------------------------------------------------------------------------------------------------
def encode_event(event: Event, run: str, seq: int) -> str | bytes:
    """One of the engine's events as a message of run `run`, number `seq`."""
    base = {"run": run, "seq": seq}
    if isinstance(event, GenerationStarted):
        return encode({"type": "started", **base, "chunks": list(event.chunks), "total_steps": event.total_steps})
    if isinstance(event, ChunkStarted):
        return encode({"type": "chunk_started", **base, "chunk": event.chunk})
    if isinstance(event, StepProgress):
        parts = {f"preview/{chunk}": encode_png_strip(frames) for chunk, frames in (event.previews or {}).items()}
        previews = {str(chunk): list(np.asarray(frames).shape[:3]) for chunk, frames in (event.previews or {}).items()}
        return encode({"type": "progress", **base, "step": event.step, "total_steps": event.total_steps,
                       "chunk_steps": [[c, k] for c, k in event.chunk_steps.items()],
                       "steps_per_chunk": event.steps_per_chunk, "elapsed_s": event.elapsed_s,
                       "previews": previews if event.previews is not None else None}, parts)
    if isinstance(event, ChunkFinished):
        latent = event.latent.detach().cpu().float().numpy() if hasattr(event.latent, "detach") else event.latent
        parts = {"latent": encode_latents([latent])}
        if event.frames is not None:
            parts["frames"] = encode_png_strip(event.frames)
        return encode({"type": "chunk_finished", **base, "chunk": event.chunk, "prefix_frames": event.prefix_frames,
                       "elapsed_s": event.elapsed_s, "latent_shape": list(latent.shape),
                       "frames": None if event.frames is None else list(event.frames.shape[:3])}, parts)
    if isinstance(event, Finished):
        return encode({"type": "finished", **base, "chunks": list(event.chunks), "elapsed_s": event.elapsed_s})
    if isinstance(event, Cancelled):
        return encode({"type": "cancelled", **base, "finished_chunks": list(event.finished_chunks),
                       "elapsed_s": event.elapsed_s})
    if isinstance(event, Failed):
        return encode({"type": "failed", **base, "error": _error_name(event.error), "message": str(event.error),
                       "finished_chunks": list(event.finished_chunks)})
    raise TypeError(f"not an engine event: {type(event).__name__}")


def _error_name(error: EngineError) -> str:
    for cls in type(error).__mro__:
        if cls.__name__ in ERROR_CLASSES and ERROR_CLASSES[cls.__name__] is cls:
            return cls.__name__
    return "EngineError"


def error_from(name: Any, message: Any) -> EngineError:
    """The typed error a message names (EngineError for a name outside the engine's classes)."""
    cls = ERROR_CLASSES.get(name, EngineError) if isinstance(name, str) else EngineError
    return cls(message if isinstance(message, str) else "The remote engine failed without saying why.")


def decode_event(message: Message) -> Event:
    """The engine event of an event message (torch tensors for latents, numpy for frames and previews)."""
    h, kind = message.header, message.type
    if kind == "started":
        return GenerationStarted(field_ints(h, "chunks"), field_int(h, "total_steps"))
    if kind == "chunk_started":
        return ChunkStarted(field_int(h, "chunk"))
    if kind == "progress":
        pairs = h.get("chunk_steps")
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 and all(_is_int(v) for v in p)
                                                  for p in pairs):
            raise ProtocolError('"chunk_steps" must be a list of [chunk, steps] pairs.')
        previews = None
        if h.get("previews") is not None:
            shapes = h["previews"]
            if not isinstance(shapes, dict) or set(f"preview/{c}" for c in shapes) != set(message.parts):
                raise ProtocolError("A progress message's previews do not match its parts.")
            previews = {}
            for chunk, shape in shapes.items():
                if not (chunk.isdigit() and isinstance(shape, list) and len(shape) == 3
                        and all(_is_int(v) and 0 < v <= MAX_LATENT_SIDE for v in shape) and shape[0] <= CHUNK_FRAMES):
                    raise ProtocolError("A preview's chunk or size is not valid.")
                count, height, width = shape
                previews[int(chunk)] = decode_png_strip(message.parts[f"preview/{chunk}"], count, width, height, "preview")
        return StepProgress(field_int(h, "step"), field_int(h, "total_steps"), {c: k for c, k in pairs},
                            field_int(h, "steps_per_chunk"), field_float(h, "elapsed_s"), previews)
    if kind == "chunk_finished":
        shape = h.get("latent_shape")
        if (not isinstance(shape, list) or len(shape) != 4 or shape[:2] != [16, CHUNK_LATENT_FRAMES]
                or not all(_is_int(v) and 0 < v <= MAX_LATENT_SIDE for v in shape[2:])):
            raise ProtocolError(f'"latent_shape" must be [16, {CHUNK_LATENT_FRAMES}, h, w] with sides up to '
                                f"{MAX_LATENT_SIDE}.")
        latent = _torch(decode_latents(message.parts.get("latent", b""), 1, tuple(shape), "chunk latents")[0])
        frames = None
        if h.get("frames") is not None:
            size = h["frames"]
            if size != [CHUNK_FRAMES, shape[2] * 8, shape[3] * 8]:
                raise ProtocolError(f'"frames" must be [{CHUNK_FRAMES}, height, width] of the latents\' size.')
            frames = decode_png_strip(message.parts.get("frames", b""), size[0], size[2], size[1], "chunk frames")
        return ChunkFinished(field_int(h, "chunk"), frames, latent, field_int(h, "prefix_frames"),
                             field_float(h, "elapsed_s"))
    if kind == "finished":
        return Finished(field_ints(h, "chunks"), field_float(h, "elapsed_s"))
    if kind == "cancelled":
        return Cancelled(field_ints(h, "finished_chunks"), field_float(h, "elapsed_s"))
    if kind == "failed":
        return Failed(error_from(h.get("error"), h.get("message")), field_ints(h, "finished_chunks"))
    raise ProtocolError(f"Unknown event type {kind!r}.")


def is_final(kind: str) -> bool:
    return kind in ("finished", "cancelled", "failed")
