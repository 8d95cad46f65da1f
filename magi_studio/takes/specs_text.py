"""What a take was made from, in words: its prompts, and what differs from the take it was made under.

Plain functions over the document (no Qt), so the takes view and the tests read the same sentences:

    take_prompts(shot, take)                 ["Shot: A red ball", "Not: blur", "1 · it falls", "2 · it bounces", ...]
    take_differences(project, shot, take)    ["chunk 3: 'ball rolls left' → 'ball bounces'", "chunk 3 seed 4 → 9"]

Specs come from the takes (model.TakeSpec); settings (model, size, steps, window, guidance) from the
results, which recorded them when the chunks were made.
"""

from __future__ import annotations

from magi_studio.document.model import (ChunkResult, Project, Shot, Take, own_spec, resolve_specs, resolve_take,
                                        take_boundary)

#: Longest prompt quoted in a difference before it is shortened with "…".
QUOTE_CHARS = 60


def quote(text: str) -> str:
    text = " ".join(text.split())
    return f"'{text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS - 1] + '…'}'"


def take_prompts(shot: Shot, take: Take) -> list[str]:
    """The shot prompt and negative prompt (when it had them) and each chunk's prompt as the take shows them
    ("?" : not known)."""
    spec = own_spec(shot, take)
    lines = [f"Shot: {spec.shot_prompt}"] if spec is not None and spec.shot_prompt.strip() else []
    if spec is not None and spec.negative_prompt.strip():
        lines.append(f"Not: {spec.negative_prompt}")
    results = resolve_take(shot, take.id)
    for index, chunk_spec in enumerate(resolve_specs(shot, take.id)):
        if chunk_spec is None:
            lines.append(f"{index + 1} · ?" if results[index] else f"{index + 1} · (not generated)")
        else:
            lines.append(f"{index + 1} · {chunk_spec.prompt or '(no prompt)'}")
    return lines


def take_differences(project: Project, shot: Shot, take: Take) -> list[str]:
    """What `take` changed from its parent over the chunks it made: shot prompt, start image, each chunk's
    prompt and seed, and the settings its results were made with. A root take has no parent: []."""
    parent = shot.find_take(take.parent_id)
    if parent is None:
        return []
    lines: list[str] = []
    mine, theirs = own_spec(shot, take), own_spec(shot, parent)
    if mine is not None and theirs is not None:
        if mine.shot_prompt != theirs.shot_prompt:
            lines.append(f"shot prompt: {quote(theirs.shot_prompt)} → {quote(mine.shot_prompt)}")
        if mine.negative_prompt != theirs.negative_prompt:
            lines.append(f"negative prompt: {quote(theirs.negative_prompt)} → {quote(mine.negative_prompt)}")
        if (mine.start, mine.reference_asset_id) != (theirs.start, theirs.reference_asset_id):
            lines.append(f"start: {_start_text(theirs)} → {_start_text(mine)}")
    start = take_boundary(shot, take)
    own_specs, parent_specs = resolve_specs(shot, take.id), resolve_specs(shot, parent.id)
    own_results, parent_results = resolve_take(shot, take.id), resolve_take(shot, parent.id)
    settings: dict[str, tuple[str, str]] = {}
    for index in range(start, len(shot.chunks)):
        new, old = own_specs[index], parent_specs[index]
        if new is not None and old is not None:
            if new.prompt != old.prompt:
                lines.append(f"chunk {index + 1}: {quote(old.prompt)} → {quote(new.prompt)}")
            if new.seed != old.seed:
                lines.append(f"chunk {index + 1} seed {old.seed} → {new.seed}")
        new_result = project.results.get(own_results[index] or "")
        old_result = project.results.get(parent_results[index] or "")
        if new_result is not None and old_result is not None:
            for name, (before, after) in _setting_changes(old_result, new_result).items():
                settings.setdefault(name, (before, after))
    lines += [f"{name} {before} → {after}" for name, (before, after) in settings.items()]
    return lines


def _start_text(spec) -> str:
    return "image" if spec.start == "image" and spec.reference_asset_id else spec.start


def _setting_changes(old: ChunkResult, new: ChunkResult) -> dict[str, tuple[str, str]]:
    def described(result: ChunkResult) -> dict[str, str]:
        sampling = result.sampling or {}
        text_scales = (sampling.get("guidance") or {}).get("text_scales") or []
        return {"model": result.model, "size": f"{result.width}×{result.height}",
                "steps": str(sampling.get("num_steps", "?")), "window": str(sampling.get("window", "?")),
                "guidance": f"{max(text_scales):g}" if text_scales else "?"}

    before, after = described(old), described(new)
    return {name: (before[name], after[name]) for name in before if before[name] != after[name]}
