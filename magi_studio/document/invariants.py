"""What must hold of every document, whatever edits, undos and generations led to it.

    violations = check(project)      # [] for a sound document; otherwise one sentence per violation

Tests call it after every command (and the GUI soak after every action); nothing in the app depends
on it. Each rule is one that an edit, an undo or a finished chunk could break without raising at once
(a dangling id is only noticed when something later resolves it), so a check here names the bad id.
"""

from __future__ import annotations

from magi_studio.document.model import START_MODES, Project, Shot, validate_settings


def check(project: Project) -> list[str]:
    """Every broken rule of `project`, as sentences naming the shot, take, chunk or result ([]: none)."""
    violations: list[str] = []
    try:
        validate_settings(project.settings)
    except Exception as error:  # ConfigError: the sentence says which field
        violations.append(f"project settings: {error}")
    shot_ids: set[str] = set()
    chunk_owner: dict[str, str] = {}
    for shot in project.shots:
        if shot.id in shot_ids:
            violations.append(f"shot id {shot.id!r} is used twice")
        shot_ids.add(shot.id)
        for chunk in shot.chunks:
            if chunk.id in chunk_owner:
                violations.append(f"chunk {chunk.id!r} is in {chunk_owner[chunk.id]!r} and {shot.name!r}")
            chunk_owner[chunk.id] = shot.name
        violations.extend(_check_shot(project, shot))
    return violations


def _check_shot(project: Project, shot: Shot) -> list[str]:
    where = f"shot {shot.name!r} ({shot.id})"
    violations: list[str] = []
    if shot.start not in START_MODES:
        violations.append(f"{where} starts from {shot.start!r}, not one of {START_MODES}")
    if shot.reference_asset_id is not None and shot.reference_asset_id not in project.assets:
        violations.append(f"{where}: reference image asset {shot.reference_asset_id!r} is not in the project")
    take_ids = [take.id for take in shot.takes]
    if len(set(take_ids)) != len(take_ids):
        violations.append(f"{where} has two takes with the same id")
    if shot.active_take_id is not None and shot.active_take_id not in take_ids:
        violations.append(f"{where}: the active take {shot.active_take_id!r} does not exist")
    if shot.takes and shot.active_take_id is None:
        violations.append(f"{where} has takes but no active take")
    by_id = {take.id: take for take in shot.takes}
    for take in shot.takes:
        name = f"{where}, take {take.name!r} ({take.id})"
        if take.parent_id is not None and take.parent_id not in by_id:
            violations.append(f"{name}: its parent {take.parent_id!r} does not exist")
        seen, ancestor = {take.id}, by_id.get(take.parent_id) if take.parent_id else None
        while ancestor is not None:
            if ancestor.id in seen:
                violations.append(f"{name}: its parents form a cycle")
                break
            seen.add(ancestor.id)
            ancestor = by_id.get(ancestor.parent_id) if ancestor.parent_id else None
        for chunk_id, result_id in take.results.items():
            result = project.results.get(result_id)
            if result is None:
                violations.append(f"{name}: chunk {chunk_id!r} maps to result {result_id!r}, which is not in the "
                                  "project")
            elif result.chunk_id != chunk_id:
                violations.append(f"{name}: result {result_id!r} was made for chunk {result.chunk_id!r}, "
                                  f"not {chunk_id!r}")
    return violations
