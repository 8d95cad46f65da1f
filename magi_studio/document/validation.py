"""The checks a manifest passes before any of its values is used: bounded JSON parsing and a schema.

A project may come from someone else, so project.json is hostile until proven otherwise:

* `parse_json` refuses a file over MAX_MANIFEST_BYTES, nesting deeper than MAX_DEPTH (measured on the
  bytes before the parser runs, so no RecursionError), NaN/Infinity, numbers that do not fit, and
  duplicate keys.
* `check_manifest` walks the parsed data against MANIFEST, a table of field specs (type, range,
  length, pattern), and raises ProjectError naming the place ("shots[1].chunks[0].seed should be ...").
  A new field is one line in the table.

References between fields (take parents, result ids, asset ids) are checked by manifest.py when it
builds the dataclasses; the files a manifest names are checked by project_files.py.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from magi_engine.requests import MAX_SEED, MAX_SIZE, MIN_SIZE
from magi_studio.document.errors import ProjectError
from magi_studio.document.model import SEED_POLICIES, START_MODES

#: project.json and autosave.json: a storyboard of thousands of chunks is a few MB.
MAX_MANIFEST_BYTES = 32 * 2**20
#: Objects and lists inside one another (the manifest itself needs 5; sampler settings add a few).
MAX_DEPTH = 32
#: Objects and lists in one file, all levels together.
MAX_CONTAINERS = 2_000_000
#: Longest file or folder name most file systems take, in bytes of UTF-8.
MAX_NAME_BYTES = 255
MAX_PATH_CHARS = 1024

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")


def damaged(source: str, detail: str) -> ProjectError:
    return ProjectError(f"{source} is damaged ({detail}); it was left unchanged.")


# --------------------------------------------------------------------------------------------- JSON


def parse_json(raw: bytes, source: str, *, limit: int = MAX_MANIFEST_BYTES) -> Any:
    """Strict, bounded JSON: ProjectError (never RecursionError, MemoryError or ValueError) for anything odd."""
    if len(raw) > limit:
        raise damaged(source, f"it is {len(raw):,} bytes; a project file may hold at most {limit:,}")
    depth, containers = _nesting(raw)
    if depth > MAX_DEPTH:
        raise damaged(source, f"it nests {depth} levels deep; at most {MAX_DEPTH} are allowed")
    if containers > MAX_CONTAINERS:
        raise damaged(source, f"it holds {containers:,} lists and objects; at most {MAX_CONTAINERS:,} are allowed")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise damaged(source, "it is not text") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                          object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise damaged(source, f"invalid JSON at line {error.lineno}, column {error.colno}") from None
    except (ValueError, RecursionError, MemoryError) as error:  # int digits, NaN, duplicate keys, ...
        raise damaged(source, f"invalid JSON: {str(error)[:200]}") from None


def _nesting(raw: bytes) -> tuple[int, int]:
    """Deepest nesting of [ and { outside strings, and how many there are, without parsing (in blocks of
    4 MiB, so a 32 MiB file needs tens of MB, not hundreds)."""
    skeleton = np.frombuffer(_STRING.sub(b'""', raw), np.uint8)
    deepest, level, containers = 0, 0, 0
    for start in range(0, len(skeleton), 2**22):
        block = skeleton[start:start + 2**22]
        opens = (block == ord("[")) | (block == ord("{"))
        steps = opens.astype(np.int32) - ((block == ord("]")) | (block == ord("}")))
        levels = np.cumsum(steps, dtype=np.int64) + level
        if len(levels):
            deepest, level = max(deepest, int(levels.max())), int(levels[-1])
        containers += int(opens.sum())
    return deepest, containers


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"the key {repeated[:60]!r} appears twice in one object")
    return result


# --------------------------------------------------------------------------------------------- specs


class _Invalid(Exception):
    """Raised by a spec: (place, problem); turned into one ProjectError by check_manifest."""


def _fail(where: str, problem: str) -> _Invalid:
    return _Invalid(f"{where} {problem}")


def _shown(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"a {'list' if isinstance(value, list) else 'object'}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Int:
    lo: int
    hi: int
    multiple: int = 1

    def check(self, value: Any, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not self.lo <= value <= self.hi \
                or value % self.multiple:
            step = f" and a multiple of {self.multiple}" if self.multiple > 1 else ""
            raise _fail(where, f"should be an integer from {self.lo} to {self.hi}{step}, not {_shown(value)}")


@dataclass(frozen=True)
class Number:
    lo: float
    hi: float

    def check(self, value: Any, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.lo <= value <= self.hi:
            raise _fail(where, f"should be a number from {self.lo:g} to {self.hi:g}, not {_shown(value)}")


class Bool:
    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, bool):
            raise _fail(where, f"should be true or false, not {_shown(value)}")


@dataclass(frozen=True)
class Text:
    max_chars: int
    pattern: str | None = None

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, str):
            raise _fail(where, f"should be text, not {_shown(value)}")
        if len(value) > self.max_chars:
            raise _fail(where, f"is {len(value):,} characters long; at most {self.max_chars:,} are allowed")
        if "\0" in value or _SURROGATE.search(value):
            raise _fail(where, "holds characters that are not text (NUL or a lone surrogate)")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise _fail(where, f"is {_shown(value)}, which is not a valid id (letters, digits, - and _)")


@dataclass(frozen=True)
class OneOf:
    values: tuple

    def check(self, value: Any, where: str) -> None:
        if isinstance(value, bool) or value not in self.values:
            raise _fail(where, f"is {_shown(value)}; it should be one of {self.values}")


class RelativePath:
    """A path inside the project folder: relative, no '..', no drive or backslash, names of at most 255 bytes."""

    def check(self, value: Any, where: str) -> None:
        Text(MAX_PATH_CHARS).check(value, where)
        path = PurePosixPath(value)
        if not value or path.is_absolute() or ".." in path.parts or "\\" in value or ":" in value:
            raise _fail(where, f"points outside the project folder ({_shown(value)})")
        for part in path.parts:
            if len(part.encode("utf-8")) > MAX_NAME_BYTES:
                raise _fail(where, f"has a name longer than {MAX_NAME_BYTES} bytes ({_shown(part)})")


@dataclass(frozen=True)
class Items:
    of: Any
    max_items: int

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, list):
            raise _fail(where, f"should be a list, not {_shown(value)}")
        if len(value) > self.max_items:
            raise _fail(where, f"holds {len(value):,} entries; at most {self.max_items:,} are allowed")
        for i, item in enumerate(value):
            self.of.check(item, f"{where}[{i}]")


@dataclass(frozen=True)
class Mapping:
    key: Any
    value: Any
    max_items: int

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _fail(where, f"should be an object, not {_shown(value)}")
        if len(value) > self.max_items:
            raise _fail(where, f"holds {len(value):,} entries; at most {self.max_items:,} are allowed")
        for key, item in value.items():
            self.key.check(key, f"{where} key")
            self.value.check(item, f"{where}.{key}")


class AnyObject:
    """An object whose contents are free (sampler settings); the parser already bounded its size and depth."""

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _fail(where, f"should be an object, not {_shown(value)}")


@dataclass(frozen=True)
class Nullable:
    """May be absent or null."""

    of: Any


@dataclass(frozen=True)
class OrAbsent:
    """May be absent (not null)."""

    of: Any


@dataclass(frozen=True)
class Obj:
    fields: dict = field(default_factory=dict)

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _fail(where, f"should be an object, not {_shown(value)}")
        for name, spec in self.fields.items():
            at = f"{where}.{name}" if where else name
            if isinstance(spec, (Nullable, OrAbsent)):
                if name not in value or (value[name] is None and isinstance(spec, Nullable)):
                    continue
                spec = spec.of
            elif name not in value:
                raise _fail(at, "is missing")
            spec.check(value[name], at)


# --------------------------------------------------------------------------------------------- the table

ID = Text(64, pattern=r"[A-Za-z0-9_-]+")  # ids name folders (results/<id>/), so they stay plain
NAME = Text(1_000)
PROMPT = Text(100_000)
SEED = Int(0, MAX_SEED)
SIZE = Int(MIN_SIZE, MAX_SIZE, multiple=16)
MAX_SHOTS, MAX_CHUNKS, MAX_TAKES, MAX_RESULTS, MAX_ASSETS = 2_000, 2_000, 1_000, 200_000, 10_000

SETTINGS = Obj({
    "model": Text(4_096), "width": SIZE, "height": SIZE, "fps": Int(1, 240),
    "steps": Nullable(Int(1, 1_000)), "window": Nullable(Int(1, 8)),
    "guidance_scale": Nullable(Number(0.0, 50.0)), "seed_policy": OneOf(SEED_POLICIES), "draft": Bool(),
})
ASSET = Obj({"id": ID, "path": RelativePath(), "fingerprint": Text(128), "original_name": Text(4_096)})
CHUNK = Obj({"id": ID, "prompt": PROMPT, "seed": SEED, "seed_locked": Bool()})
TAKE_SPEC = Obj({"prompt": PROMPT, "seed": SEED, "shot_prompt": PROMPT, "start": OneOf(START_MODES),
                 "reference_asset": Nullable(ID), "negative_prompt": PROMPT, "draft": Bool()})
TAKE = Obj({
    "id": ID, "name": NAME, "parent": Nullable(ID), "first_chunk": Nullable(ID),
    "results": OrAbsent(Mapping(ID, ID, MAX_CHUNKS)), "specs": OrAbsent(Mapping(ID, TAKE_SPEC, MAX_CHUNKS)),
})
SHOT = Obj({
    "id": ID, "name": NAME, "prompt": PROMPT, "negative_prompt": PROMPT, "start": OneOf(START_MODES),
    "reference_asset": Nullable(ID),
    "chunks": Items(CHUNK, MAX_CHUNKS), "takes": OrAbsent(Items(TAKE, MAX_TAKES)), "active_take": Nullable(ID),
})
RESULT = Obj({
    "id": ID, "chunk": ID, "prompt": PROMPT, "seed": SEED, "model": Text(4_096), "sampling": AnyObject(),
    "width": SIZE, "height": SIZE, "context": OrAbsent(Items(ID, 64)), "reference_fingerprint": Nullable(Text(128)),
    "files": Obj({"latent": RelativePath(), "frames": RelativePath(), "thumbnail": RelativePath()}),
    "frames_format": Text(32), "created": Text(64), "negative_prompt": PROMPT,
})
MAX_QUEUED = 1_000
UNFINISHED_REQUEST = Obj({
    "shot_id": ID, "from_index": Nullable(Int(0, MAX_CHUNKS)), "stop_index": Nullable(Int(0, MAX_CHUNKS)),
    "seeds": Nullable(Items(SEED, MAX_CHUNKS)), "new_take": Bool(), "activate": Bool(), "label": NAME,
    "draft": Bool(), "final_of": Nullable(ID), "failed": Text(4_096), "take": Nullable(ID),
})
COMPLETED_REQUEST = Obj({
    "shot_id": ID, "shot_name": NAME, "take_id": ID, "take_name": NAME, "first_chunk": Int(1, MAX_CHUNKS),
    "last_chunk": Int(1, MAX_CHUNKS), "chunks": Int(1, MAX_CHUNKS), "seconds": Number(0.0, 1e9), "label": NAME,
})
RENDER_QUEUE = Obj({"unfinished": Items(UNFINISHED_REQUEST, MAX_QUEUED),
                    "completed": Items(COMPLETED_REQUEST, MAX_QUEUED)})
#: The manifest of the current schema version (migrations run before this check). An older MAGI Studio skips
#: "render_queue" (it checks only the fields it knows), so adding it needed no new version.
MANIFEST = Obj({
    "settings": SETTINGS, "assets": OrAbsent(Items(ASSET, MAX_ASSETS)), "shots": Items(SHOT, MAX_SHOTS),
    "results": OrAbsent(Items(RESULT, MAX_RESULTS)), "autosaved_at": OrAbsent(Text(64)),
    "render_queue": OrAbsent(RENDER_QUEUE),
})


def check_manifest(data: Any, source: str, spec: Obj = MANIFEST) -> None:
    """Raise ProjectError naming the first field of `data` that does not fit `spec`."""
    try:
        spec.check(data, "")
    except _Invalid as problem:
        raise damaged(source, str(problem)) from None
