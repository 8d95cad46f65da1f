"""Fixtures for the storyboard editor: a generated storyboard (synthetic results, no engine) and the editor
widgets on it — the timeline, a preview player linked by PlayerSync — in one shown window."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QVBoxLayout, QWidget

from magi_studio.document.commands import AddChunk, SetPrompt, new_chunk
from magi_studio.document.model import ProjectSettings, new_project
from magi_studio.document.observer import Document, UndoHistory
from magi_studio.document.store import ProjectStore
from magi_studio.player import PreviewPlayer
from magi_studio.timeline import PlayerSync, TimelineView
from magi_studio.document_session import DocumentSession
from tests.magi_studio.document.fakes import fake_generate
from tests.magi_studio.timeline.helpers import Editor, wait_for_frames

PROMPTS = ("a red ball falls", "it bounces", "it rolls left")


@pytest.fixture
def storyboard(tmp_path):
    """One shot of three chunks, all generated (synthetic 64x64 results written to a real store)."""
    store = ProjectStore.create(tmp_path / "Board")
    project = new_project(ProjectSettings(model="tiny", width=64, height=64, steps=4))
    history = UndoHistory(Document(project))
    shot = project.shots[0]
    for index, prompt in enumerate(PROMPTS):
        if index:
            history.push(AddChunk(shot.id, new_chunk(project, shot.id, index)))
        history.push(SetPrompt(shot.id, shot.chunks[index].id, prompt))
    fake_generate(project, store, shot.id, history=history)
    return project, store


@pytest.fixture
def editor(qtbot, storyboard, no_leaked_windows):
    project, store = storyboard
    session = DocumentSession(project, store)
    window = QWidget()
    player = PreviewPlayer()
    timeline = TimelineView()
    layout = QVBoxLayout(window)
    layout.addWidget(player, 1)
    layout.addWidget(timeline)
    timeline.set_frame_store(player.store)
    sync = PlayerSync(player, timeline, window)
    timeline.set_session(session)
    sync.set_session(session)
    window.resize(1400, 700)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    wait_for_frames(qtbot, sync)
    yield Editor(session, timeline, player, sync, window)
    timeline.set_session(None)
