"""project.json: the Project as versioned JSON, its migrations, and a strict reader with clear errors.

The manifest carries an integer `schema_version`. Reading a file goes: parse JSON within size and
depth limits -> check the format name -> refuse a newer version -> apply the ordered migrations
vN -> vN+1 up to SCHEMA_VERSION -> check the schema (validation.py: every field's type, range and
length) -> build the dataclasses, checking every reference (take parents, result ids, reference
images). Any problem raises ProjectError naming the file and the place; nothing is ever written
while reading. docs/project-format.md documents the fields.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any, Callable

from magi_engine.errors import ConfigError
from magi_engine.requests import MAX_PROMPT_CHARS
from magi_studio.document.errors import ProjectError
from magi_studio.document.model import (START_MODES, Asset, Chunk, ChunkResult, Project, ProjectSettings, Shot, Take,
                                        TakeSpec, validate_settings)
from magi_studio.document.validation import check_manifest, damaged, parse_json

FORMAT = "magi-studio-project"
SCHEMA_VERSION = 4
FRAME_FORMATS = ("png-strip",)


def _v1_to_v2(data: dict) -> dict:
    """Version 2 gave shots a prompt and takes the specs they were made from. A version-1 shot gets an
    empty prompt (its chunks' prompts were the whole text, so nothing goes stale); each take's specs
    are read from its results (the prompt and seed they recorded), with the shot's current start and
    reference image. A take whose result is not listed gets no spec for that chunk (not known)."""
    results = {r.get("id"): r for r in data.get("results", []) if isinstance(r, dict)}
    shots = []
    for shot in data.get("shots", []):
        if not isinstance(shot, dict):
            shots.append(shot)
            continue
        shot = {**shot, "prompt": ""}
        takes = []
        for take in shot.get("takes", []):
            if isinstance(take, dict) and isinstance(take.get("results"), dict):
                specs = {}
                for chunk_id, result_id in take["results"].items():
                    result = results.get(result_id) if isinstance(result_id, str) else None
                    if result is not None and isinstance(result.get("prompt"), str) \
                            and isinstance(result.get("seed"), int):
                        specs[chunk_id] = {"prompt": result["prompt"], "seed": result["seed"], "shot_prompt": "",
                                           "start": shot.get("start"), "reference_asset": shot.get("reference_asset")}
                take = {**take, "specs": specs}
            takes.append(take)
        shots.append({**shot, "takes": takes} if "takes" in shot else shot)
    return {**data, "shots": shots}


def _v2_to_v3(data: dict) -> dict:
    """Version 3 added negative prompts: to shots, to the specs takes remember and to the results (what the
    engine was given). Everything made before had none, so each gets an empty one and nothing goes stale."""

    def with_empty(item):
        return {**item, "negative_prompt": ""} if isinstance(item, dict) else item

    shots = []
    for shot in data.get("shots", []):
        if isinstance(shot, dict) and isinstance(shot.get("takes"), list):
            takes = [{**t, "specs": {c: with_empty(s) for c, s in t["specs"].items()}}
                     if isinstance(t, dict) and isinstance(t.get("specs"), dict) else t for t in shot["takes"]]
            shot = {**shot, "takes": takes}
        shots.append(with_empty(shot))
    results = data.get("results")
    return {**data, "shots": shots,
            **({"results": [with_empty(r) for r in results]} if isinstance(results, list) else {})}


def _v3_to_v4(data: dict) -> dict:
    """Version 4 added draft mode: the project's setting, and on each take spec whether it was made as a draft.
    Everything made before was made at the project's settings: draft mode off, no spec a draft."""
    shots = []
    for shot in data.get("shots", []):
        if isinstance(shot, dict) and isinstance(shot.get("takes"), list):
            takes = [{**t, "specs": {c: {**s, "draft": False} if isinstance(s, dict) else s
                                     for c, s in t["specs"].items()}}
                     if isinstance(t, dict) and isinstance(t.get("specs"), dict) else t for t in shot["takes"]]
            shot = {**shot, "takes": takes}
        shots.append(shot)
    settings = data.get("settings")
    return {**data, "shots": shots, **({"settings": {**settings, "draft": False}} if isinstance(settings, dict) else {})}


#: MIGRATIONS[n] turns a version-n manifest (a dict) into version n+1. Add one per format change,
#: never edit an old one: a file of any earlier version is brought forward step by step.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}


# --------------------------------------------------------------------------------------------- writing


def project_to_manifest(project: Project, **extra: Any) -> dict:
    s = project.settings
    return {
        "format": FORMAT, "schema_version": SCHEMA_VERSION, **extra,
        "settings": {"model": s.model, "width": s.width, "height": s.height, "fps": s.fps, "steps": s.steps,
                     "window": s.window, "guidance_scale": s.guidance_scale, "seed_policy": s.seed_policy, "draft": s.draft},
        "assets": [{"id": a.id, "path": a.path, "fingerprint": a.fingerprint, "original_name": a.original_name}
                   for a in project.assets.values()],
        "shots": [{
            "id": shot.id, "name": shot.name, "prompt": shot.prompt, "negative_prompt": shot.negative_prompt,
            "start": shot.start,
            "reference_asset": shot.reference_asset_id,
            "chunks": [{"id": c.id, "prompt": c.prompt, "seed": c.seed, "seed_locked": c.seed_locked}
                       for c in shot.chunks],
            "takes": [{"id": t.id, "name": t.name, "parent": t.parent_id, "first_chunk": t.first_chunk_id,
                       "results": dict(t.results),
                       "specs": {c: {"prompt": s.prompt, "seed": s.seed, "shot_prompt": s.shot_prompt,
                                     "start": s.start, "reference_asset": s.reference_asset_id,
                                     "negative_prompt": s.negative_prompt, "draft": s.draft}
                                 for c, s in t.specs.items()}} for t in shot.takes],
            "active_take": shot.active_take_id,
        } for shot in project.shots],
        "results": [{
            "id": r.id, "chunk": r.chunk_id, "prompt": r.prompt, "seed": r.seed, "model": r.model,
            "sampling": r.sampling, "width": r.width, "height": r.height, "context": list(r.context_ids),
            "reference_fingerprint": r.reference_fingerprint, "files": dict(r.files),
            "frames_format": r.frames_format, "created": r.created, "negative_prompt": r.negative_prompt,
        } for r in project.results.values()],
        **({"render_queue": project.render_queue} if project.render_queue else {}),
    }


def manifest_bytes(project: Project, **extra: Any) -> bytes:
    return (json.dumps(project_to_manifest(project, **extra), indent=1, ensure_ascii=False) + "\n").encode("utf-8")


# --------------------------------------------------------------------------------------------- reading


def parse_manifest(raw: bytes, source: str) -> Project:
    """Project from the bytes of a project.json (`source` names the file in messages)."""
    data = parse_json(raw, source)  # size, depth and strict JSON (validation.py)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ProjectError(f"{source} is not a MAGI Studio project file.")
    version = data.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _damaged(source, f"schema_version is {version!r:.40}, not a positive integer")
    if version > SCHEMA_VERSION:
        raise ProjectError(f"{source} was saved by a newer MAGI Studio (project format {str(version)[:20]}; this version "
                           f"reads up to {SCHEMA_VERSION}). Update MAGI Studio to open it; the file was left "
                           "unchanged.")
    data = migrate(data, source)
    check_manifest(data, source)  # every field's type, range and length, before any value is used
    return _build(data, _Reader(source))


def migrate(data: dict, source: str) -> dict:
    """Bring a manifest of any older version up to SCHEMA_VERSION, one step at a time."""
    version = data["schema_version"]
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ProjectError(f"{source} uses project format {version}, which this MAGI Studio cannot convert.")
        try:
            data = step(dict(data))
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:  # a damaged old file
            raise _damaged(source, f"it could not be converted from project format {version} "
                                   f"({type(error).__name__}: {str(error)[:80]})") from None
        if not isinstance(data, dict):
            raise _damaged(source, f"it could not be converted from project format {version}")
        version += 1
        data["schema_version"] = version
    return data


_damaged = damaged


class _Reader:
    """Typed field access that names the place of any problem ("shots[1].chunks[0].seed")."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> ProjectError:
        return _damaged(self.source, f"{where} {problem}")

    def obj(self, value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, "is not an object")
        return value

    def items(self, value: Any, where: str) -> list:
        if not isinstance(value, list):
            raise self.fail(where, "is not a list")
        return value

    def get(self, obj: dict, key: str, kind: type | tuple, where: str, *, optional: bool = False) -> Any:
        if key not in obj:
            if optional:
                return None
            raise self.fail(f"{where}.{key}", "is missing")
        value = obj[key]
        if value is None and optional:
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.fail(f"{where}.{key}", f"should be {names}, not {type(value).__name__}")
        return value

    def relative_path(self, value: Any, where: str) -> str:
        """A path inside the project folder (no absolute paths, no '..')."""
        if not isinstance(value, str) or not value:
            raise self.fail(where, "is not a path")
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts or "\\" in value or ":" in value:
            raise self.fail(where, f"points outside the project folder ({value!r})")
        return value


def _build(data: dict, read: _Reader) -> Project:
    settings_data = read.obj(data.get("settings"), "settings")
    settings = ProjectSettings(
        model=read.get(settings_data, "model", str, "settings"),
        width=read.get(settings_data, "width", int, "settings"),
        height=read.get(settings_data, "height", int, "settings"),
        fps=read.get(settings_data, "fps", int, "settings"),
        steps=read.get(settings_data, "steps", int, "settings", optional=True),
        window=read.get(settings_data, "window", int, "settings", optional=True),
        guidance_scale=read.get(settings_data, "guidance_scale", (float, int), "settings", optional=True),
        seed_policy=read.get(settings_data, "seed_policy", str, "settings"),
        draft=read.get(settings_data, "draft", bool, "settings"))
    try:
        validate_settings(settings)
    except ConfigError as error:
        raise read.fail("settings", f"are invalid: {error}") from None

    assets = {}
    for i, item in enumerate(read.items(data.get("assets", []), "assets")):
        where = f"assets[{i}]"
        item = read.obj(item, where)
        asset = Asset(read.get(item, "id", str, where), read.relative_path(item.get("path"), f"{where}.path"),
                      read.get(item, "fingerprint", str, where), read.get(item, "original_name", str, where))
        _unique(read, assets, asset.id, where)
        assets[asset.id] = asset

    results = {}
    for i, item in enumerate(read.items(data.get("results", []), "results")):
        result = _build_result(read, read.obj(item, f"results[{i}]"), f"results[{i}]")
        _unique(read, results, result.id, f"results[{i}]")
        results[result.id] = result

    shots, chunk_ids = [], set()
    for i, item in enumerate(read.items(data.get("shots"), "shots")):
        shot = _build_shot(read, read.obj(item, f"shots[{i}]"), f"shots[{i}]", assets, results)
        if any(s.id == shot.id for s in shots):
            raise read.fail(f"shots[{i}].id", f"repeats {shot.id!r}")
        for chunk in shot.chunks:
            if chunk.id in chunk_ids:
                raise read.fail(f"shots[{i}].chunks", f"repeat the chunk id {chunk.id!r}")
            chunk_ids.add(chunk.id)
        shots.append(shot)
    return Project(settings=settings, shots=shots, results=results, assets=assets,
                   render_queue=data.get("render_queue", {}))


def _unique(read: _Reader, seen: dict, key: str, where: str) -> None:
    if key in seen:
        raise read.fail(f"{where}.id", f"repeats {key!r}")


def _build_result(read: _Reader, item: dict, where: str) -> ChunkResult:
    files = read.obj(item.get("files"), f"{where}.files")
    for name in ("latent", "frames", "thumbnail"):
        read.relative_path(files.get(name), f"{where}.files.{name}")
    frames_format = read.get(item, "frames_format", str, where)
    if frames_format not in FRAME_FORMATS:
        raise read.fail(f"{where}.frames_format", f"is {frames_format!r}; known formats are {FRAME_FORMATS}")
    context = read.items(item.get("context", []), f"{where}.context")
    if not all(isinstance(c, str) for c in context):
        raise read.fail(f"{where}.context", "should hold result ids")
    return ChunkResult(
        id=read.get(item, "id", str, where), chunk_id=read.get(item, "chunk", str, where),
        prompt=read.get(item, "prompt", str, where), seed=read.get(item, "seed", int, where),
        model=read.get(item, "model", str, where), sampling=read.get(item, "sampling", dict, where),
        width=read.get(item, "width", int, where), height=read.get(item, "height", int, where),
        context_ids=tuple(context),
        reference_fingerprint=read.get(item, "reference_fingerprint", str, where, optional=True),
        files={k: str(v) for k, v in files.items()}, frames_format=frames_format,
        created=read.get(item, "created", str, where), negative_prompt=_prompt(read, item, "negative_prompt", where))


def _build_shot(read: _Reader, item: dict, where: str, assets: dict, results: dict) -> Shot:
    start = read.get(item, "start", str, where)
    if start not in START_MODES:
        raise read.fail(f"{where}.start", f"is {start!r}; it should be one of {START_MODES}")
    reference = read.get(item, "reference_asset", str, where, optional=True)
    if reference is not None and reference not in assets:
        raise read.fail(f"{where}.reference_asset", f"names an image ({reference!r}) the project does not list")
    chunks = []
    for j, chunk_item in enumerate(read.items(item.get("chunks"), f"{where}.chunks")):
        at = f"{where}.chunks[{j}]"
        chunk_item = read.obj(chunk_item, at)
        chunks.append(Chunk(read.get(chunk_item, "id", str, at), read.get(chunk_item, "prompt", str, at),
                            read.get(chunk_item, "seed", int, at), read.get(chunk_item, "seed_locked", bool, at)))
    takes = []
    for j, take_item in enumerate(read.items(item.get("takes", []), f"{where}.takes")):
        at = f"{where}.takes[{j}]"
        take_item = read.obj(take_item, at)
        mapping = read.obj(take_item.get("results", {}), f"{at}.results")
        for chunk_id, result_id in mapping.items():
            if result_id not in results:
                raise read.fail(f"{at}.results", f"names a result ({result_id!r}) the project does not list")
        specs = read.obj(take_item.get("specs", {}), f"{at}.specs")
        take = Take(read.get(take_item, "id", str, at), read.get(take_item, "name", str, at),
                    read.get(take_item, "parent", str, at, optional=True),
                    read.get(take_item, "first_chunk", str, at, optional=True), dict(mapping),
                    {chunk_id: _build_spec(read, read.obj(spec, f"{at}.specs.{chunk_id}"), f"{at}.specs.{chunk_id}",
                                           assets) for chunk_id, spec in specs.items()})
        if any(t.id == take.id for t in takes):
            raise read.fail(f"{at}.id", f"repeats {take.id!r}")
        takes.append(take)
    prompt = _prompt(read, item, "prompt", where)
    shot = Shot(read.get(item, "id", str, where), read.get(item, "name", str, where), chunks, start, reference, takes,
                read.get(item, "active_take", str, where, optional=True), prompt,
                _prompt(read, item, "negative_prompt", where))
    parents = {take.id: take.parent_id for take in takes}
    for j, take in enumerate(takes):
        if take.parent_id is not None and take.parent_id not in parents:
            raise read.fail(f"{where}.takes[{j}].parent", f"names a take ({take.parent_id!r}) the shot does not have")
    if _has_loop(parents):
        raise read.fail(f"{where}.takes", "make the take tree a loop (a take is its own ancestor)")
    if shot.active_take_id is not None and shot.find_take(shot.active_take_id) is None:
        raise read.fail(f"{where}.active_take", f"names a take ({shot.active_take_id!r}) the shot does not have")
    return shot


def _build_spec(read: _Reader, item: dict, where: str, assets: dict) -> TakeSpec:
    start = read.get(item, "start", str, where)
    if start not in START_MODES:
        raise read.fail(f"{where}.start", f"is {start!r}; it should be one of {START_MODES}")
    reference = read.get(item, "reference_asset", str, where, optional=True)
    if reference is not None and reference not in assets:
        raise read.fail(f"{where}.reference_asset", f"names an image ({reference!r}) the project does not list")
    return TakeSpec(read.get(item, "prompt", str, where), read.get(item, "seed", int, where),
                    read.get(item, "shot_prompt", str, where), start, reference,
                    read.get(item, "negative_prompt", str, where), read.get(item, "draft", bool, where))


def _prompt(read: _Reader, item: dict, name: str, where: str) -> str:
    """A prompt the engine will be given, no longer than it takes."""
    text = read.get(item, name, str, where)
    if len(text) > MAX_PROMPT_CHARS:
        raise read.fail(f"{where}.{name}", f"is longer than {MAX_PROMPT_CHARS} characters")
    return text


def _has_loop(parents: dict[str, str | None]) -> bool:
    """Does following parents from some take come back to a take already on the walk? O(takes) in all."""
    settled: set[str] = set()
    for start in parents:
        walk: set[str] = set()
        current = start
        while current is not None and current not in settled:
            if current in walk:
                return True
            walk.add(current)
            current = parents.get(current)
        settled |= walk
    return False
