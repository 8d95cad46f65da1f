"""Document test helpers: the real planning, committing and store, fed by synthetic chunks (no engine).

`fake_generate` plans a shot exactly as the studio does, then plays the part of the engine: for each
planned chunk it sends a ChunkFinished with frames and latents derived from the chunk's seed, so
tests of the document, the store and the export run in milliseconds and know what each chunk holds.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from magi_engine.events import ChunkFinished
from magi_studio.document.commands import (AddChunk, AddShot, SetPrompt, SetReferenceImage, SetSeedLocked,
                                           SetShotStart, new_chunk)
from magi_studio.document.model import Project, ProjectSettings, new_project, new_shot
from magi_studio.document.observer import Document, UndoHistory
from magi_studio.document.planning import ResultCommitter, plan_generation, plan_resume
from magi_studio.document.store import ProjectStore

SIZE = 64


def synthetic_chunk(seed: int, prompt: str, height: int = SIZE, width: int = SIZE) -> tuple[torch.Tensor, np.ndarray]:
    """Latents [16, 6, h, w] and frames [24, H, W, 3] that depend on the seed and the prompt."""
    key = (seed * 1_000_003 + sum(map(ord, prompt))) % 2**31
    latent = torch.randn(16, 6, height // 8, width // 8, generator=torch.Generator().manual_seed(key))
    frames = np.zeros((24, height, width, 3), np.uint8)
    frames[..., 0] = key % 251
    frames[..., 1] = np.arange(24, dtype=np.uint8)[:, None, None] * 10  # each frame differs
    frames[:, : height // 2, :, 2] = (key // 7) % 256
    return latent, frames


def fake_generate(project: Project, store, shot_id: str, from_index: int | None = None, *,
                  history: UndoHistory | None = None, stop_after: int | None = None) -> list[ChunkFinished]:
    """Generate a shot (from `from_index`, or from its first pending chunk) with synthetic chunks.

    Commands go through `history` when given; `stop_after` finishes only that many chunks (a cancel).
    Returns the events sent, so tests can compare latents.
    """
    plan = (plan_resume(project, store, shot_id) if from_index is None
            else plan_generation(project, store, shot_id, from_index))
    return fake_run(project, store, plan, history=history, stop_after=stop_after)


def fake_run(project: Project, store, plan, *, history: UndoHistory | None = None,
             stop_after: int | None = None) -> list[ChunkFinished]:
    """Run `plan` (None: nothing) with synthetic chunks at its request's size, as fake_generate does."""
    if plan is None:
        return []
    committer = ResultCommitter(plan, store, plan.request.sampling)
    events = []
    for j, spec in enumerate(plan.request.chunks):
        if stop_after is not None and j >= stop_after:
            break
        latent, frames = synthetic_chunk(spec.seed, spec.prompt, plan.request.height, plan.request.width)
        event = ChunkFinished(plan.request.start_chunk + j, frames, latent)
        command = committer.commit(project, event)
        if history is not None:
            history.push(command)
        else:
            command.apply(project)
        events.append(event)
    return events


def write_image(path, colour=(20, 40, 200), size=(100, 150)) -> str:
    image = np.zeros((*size, 3), np.uint8)
    image[:] = colour[::-1]  # cv2 writes BGR
    cv2.imwrite(str(path), image)
    return str(path)


def rich_project(tmp_path) -> tuple[Project, ProjectStore]:
    """Three shots covering every feature: takes with a regeneration, an image shot, a continued shot.

    Shot 1: text, 4 chunks, generated, then chunk 3 edited and regenerated (Take 1 -> Take 2, active).
    Shot 2: image (an imported asset), 2 chunks, generated.
    Shot 3: continues shot 2, 2 chunks, not generated.
    """
    store = ProjectStore.create(tmp_path / "Rich")
    project = new_project(ProjectSettings(model="tiny", width=SIZE, height=SIZE, steps=4, guidance_scale=5.0))
    history = UndoHistory(Document(project))
    first = project.shots[0]
    for prompt in ("a red ball falls", "it bounces", "it rolls left", "it stops"):
        if first.chunks[-1].prompt:
            history.push(AddChunk(first.id, new_chunk(project, first.id, len(first.chunks))))
        history.push(SetPrompt(first.id, first.chunks[-1].id, prompt))
    fake_generate(project, store, first.id, history=history)
    history.push(SetPrompt(first.id, first.chunks[2].id, "it rolls right"))
    history.push(SetSeedLocked(first.id, first.chunks[2].id, True))
    fake_generate(project, store, first.id, history=history)

    for name, prompts in (("Shot 2", ("a blue square", "it grows")), ("Shot 3", ("it moves up", "it shrinks"))):
        shot = new_shot(project, name=name, prompt=prompts[0], seed=len(project.shots) * 10)
        history.push(AddShot(shot))
        history.push(AddChunk(shot.id, new_chunk(project, shot.id, 1, prompts[1])))
    second, third = project.shots[1], project.shots[2]
    history.push(SetReferenceImage(second.id, store.import_image(write_image(tmp_path / "ref.png"))))
    history.push(SetShotStart(third.id, "continue"))
    fake_generate(project, store, second.id, history=history)
    return project, store
