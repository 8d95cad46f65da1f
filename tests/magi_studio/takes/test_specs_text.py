"""What a take was made from, in words: its prompts and its differences from its parent (prompt, seed,
shot prompt, settings), as the takes view shows them."""

from __future__ import annotations

from magi_studio.document.commands import SetProjectSettings, SetSeed, SetShotNegativePrompt, SetShotPrompt
from magi_studio.document.observer import Document, UndoHistory
from magi_studio.takes.specs_text import quote, take_differences, take_prompts
from tests.magi_studio.document.fakes import fake_generate, rich_project


def test_a_regeneration_lists_its_new_seed_shot_prompt_and_settings(tmp_path):
    project, store = rich_project(tmp_path)
    history = UndoHistory(Document(project))
    shot = project.shots[0]
    parent = shot.take(shot.active_take_id)
    old_seed = shot.chunks[3].seed
    history.push(SetShotPrompt(shot.id, "A red ball, studio light"))
    history.push(SetSeed(shot.id, shot.chunks[3].id, old_seed + 5))
    fake_generate(project, store, shot.id, 3, history=history)
    take = shot.take(shot.active_take_id)
    assert take.parent_id == parent.id
    assert take_differences(project, shot, take) == [
        "shot prompt: '' → 'A red ball, studio light'", f"chunk 4 seed {old_seed} → {old_seed + 5}"]
    assert take_prompts(shot, take) == ["Shot: A red ball, studio light", "1 · a red ball falls", "2 · it bounces",
                                        "3 · it rolls right", "4 · it stops"]
    assert take_differences(project, shot, shot.takes[0]) == []  # a first take has no parent


def test_settings_differences_come_from_the_results(tmp_path):
    project, store = rich_project(tmp_path)
    history = UndoHistory(Document(project))
    shot = project.shots[0]
    parent = shot.take(shot.active_take_id)
    history.push(SetProjectSettings(width=128, height=128))
    fake_generate(project, store, shot.id, 0, history=history)
    take = shot.take(shot.active_take_id)
    assert take.parent_id == parent.id and take_differences(project, shot, take) == ["size 64×64 → 128×128"]


def test_long_prompts_are_shortened_in_quotes():
    assert quote("a  b\nc") == "'a b c'"
    assert len(quote("x" * 200)) == 62 and quote("x" * 200).endswith("…'")


def test_a_negative_prompt_is_listed_with_the_prompts_and_its_change_as_a_difference(tmp_path):
    project, store = rich_project(tmp_path)
    history = UndoHistory(Document(project))
    shot = project.shots[0]
    history.push(SetShotNegativePrompt(shot.id, "blurry, text"))
    fake_generate(project, store, shot.id, 2, history=history)
    take = shot.take(shot.active_take_id)
    assert take_prompts(shot, take)[:2] == ["Not: blurry, text", "1 · a red ball falls"]
    assert take_differences(project, shot, take) == ["negative prompt: '' → 'blurry, text'"]
