"""The storyboard timeline, driven through its real widgets offscreen: cards render the document; adding,
inserting, duplicating, deleting and reordering chunks by mouse and keyboard are document commands that
undo and redo restore exactly; editing a prompt makes it and later chunks stale without losing frames;
image files dropped on a shot become its reference, other files get a clear message and change nothing."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRect, QRectF, Qt

from magi_engine.errors import InputError
from magi_studio.document.commands import AddChunk, SetPrompt, SetSeed, new_chunk
from magi_studio.timeline import menus
from magi_studio.timeline.card import ChunkCard
from magi_studio.timeline.strip import chunk_mime
from magi_studio.timeline.thumbnail import reference_inset
from magi_studio.timeline.view import DEFAULT_ZOOM, ZOOM_LEVELS
from tests.magi_studio.document.fakes import fake_generate, write_image
from tests.magi_studio.timeline.conftest import PROMPTS
from tests.magi_studio.timeline.helpers import answer_image_dialogs, drop, file_mime, menu_action, wait_for_frames


def centre_in_strip(editor, widget, rect: QRect | None = None) -> QPoint:
    """The centre of `widget` (or of `rect` in it) in the storyboard strip's coordinates."""
    return widget.mapTo(editor.timeline.strip, (rect or widget.rect()).center())


def picture_image(card):
    """What the card shows in its picture's rectangle."""
    return card.grab(card.picture.rect).toImage()


def undo_all_and_redo_all(editor, count: int, before, after) -> None:
    stack = editor.session.undo_stack
    for _ in range(count):
        stack.undo()
    assert editor.project == before
    for _ in range(count):
        stack.redo()
    assert editor.project == after


def test_cards_render_the_document(editor):
    cards = editor.timeline.cards()
    assert [c.chunk_id for c in cards] == editor.chunk_ids()
    assert [c.prompt.toPlainText() for c in cards] == list(PROMPTS)
    assert [c.seed.text() for c in cards] == [str(c.seed) for c in editor.shot.chunks]
    assert [c.index_label.text() for c in cards] == ["1", "2", "3"]
    assert [c.time_label.text() for c in cards] == ["0:00–0:01", "0:01–0:02", "0:02–0:03"]
    assert [c.badge.text() for c in cards] == ["Done"] * 3
    assert all(c.model.thumbnail is not None and not c.model.thumbnail.isNull() for c in cards)
    # The thumbnail is painted from the result: its middle frame (synthetic: green = 12 * 10, blue 0 below).
    picture = picture_image(cards[0])
    colour = picture.pixelColor(picture.width() // 2, picture.height() * 3 // 4)
    assert abs(colour.green() - 120) <= 6 and colour.blue() <= 6
    group = editor.timeline.group(editor.shot.id)
    assert group.name_edit.text() == "Shot 1" and group.start_box.currentData() == "text"
    assert group.take_chip.text() == "Take 1"
    assert editor.timeline.summary.text() == "1 shot · 3 chunks · 0:03   —   3 done"
    assert cards[0].is_selected() and not cards[1].is_selected()


def test_add_insert_duplicate_delete_by_mouse_and_undo_redo_restore_exactly(qtbot, editor):
    before = copy.deepcopy(editor.project)
    timeline, group = editor.timeline, editor.timeline.group(editor.shot.id)
    qtbot.mouseClick(group.add_button, Qt.MouseButton.LeftButton)  # the shot's "+"
    assert len(editor.shot.chunks) == 4 and editor.session.selected_chunk_id == editor.chunk_ids()[3]
    assert editor.shot.chunks[3].seed == editor.shot.chunks[2].seed + 1  # the project's seed policy

    first = timeline.card(editor.chunk_ids()[0])
    menu_action(menus.card_menu(timeline, first), "Insert Chunk Before").trigger()
    assert len(editor.shot.chunks) == 5 and editor.shot.chunks[1].id == first.chunk_id
    inserted = editor.shot.chunks[0].id
    assert editor.session.selected_chunk_id == inserted

    original = timeline.card(first.chunk_id)
    menu_action(menus.card_menu(timeline, original), "Duplicate").trigger()
    copy_chunk = editor.shot.chunks[2]
    assert copy_chunk.id != first.chunk_id and (copy_chunk.prompt, copy_chunk.seed) == (PROMPTS[0],
                                                                                         editor.shot.chunks[1].seed)
    assert timeline.card(copy_chunk.id).prompt.toPlainText() == PROMPTS[0]

    menu_action(menus.card_menu(timeline, timeline.card(inserted)), "Delete").trigger()
    assert inserted not in editor.chunk_ids() and len(timeline.cards()) == 5
    after = copy.deepcopy(editor.project)
    undo_all_and_redo_all(editor, 4, before, after)
    assert [c.chunk_id for c in timeline.cards()] == editor.chunk_ids()


def test_keyboard_selects_reorders_deletes_and_edits(qtbot, editor):
    before = copy.deepcopy(editor.project)
    strip, ids = editor.timeline.strip, editor.chunk_ids()
    qtbot.mouseClick(editor.timeline.card(ids[0]).index_label, Qt.MouseButton.LeftButton)  # click a card
    assert strip.hasFocus() and editor.session.selected_chunk_id == ids[0]
    qtbot.keyClick(strip, Qt.Key.Key_Right)
    assert editor.session.selected_chunk_id == ids[1]
    qtbot.keyClick(strip, Qt.Key.Key_End)
    assert editor.session.selected_chunk_id == ids[2]
    qtbot.keyClick(strip, Qt.Key.Key_Home)
    assert editor.session.selected_chunk_id == ids[0]
    qtbot.keyClick(strip, Qt.Key.Key_Right, Qt.KeyboardModifier.ControlModifier)  # move right
    assert editor.chunk_ids() == [ids[1], ids[0], ids[2]] and editor.session.selected_chunk_id == ids[0]
    qtbot.keyClick(strip, Qt.Key.Key_Right, Qt.KeyboardModifier.ControlModifier)
    assert editor.chunk_ids() == [ids[1], ids[2], ids[0]]
    assert [c.chunk_id for c in editor.timeline.cards()] == editor.chunk_ids()
    qtbot.keyClick(strip, Qt.Key.Key_Left, Qt.KeyboardModifier.ControlModifier)
    assert editor.chunk_ids() == [ids[1], ids[0], ids[2]]
    qtbot.keyClick(strip, Qt.Key.Key_Delete)
    assert editor.chunk_ids() == [ids[1], ids[2]] and editor.session.selected_chunk_id == ids[2]
    after = copy.deepcopy(editor.project)
    undo_all_and_redo_all(editor, 4, before, after)
    qtbot.keyClick(strip, Qt.Key.Key_Return)  # Enter edits the selected chunk's prompt
    assert editor.timeline.card(ids[2]).prompt.hasFocus()


def test_moving_past_a_shot_edge_joins_the_next_shot(editor):
    ids = editor.chunk_ids()
    editor.session.select(editor.shot.id, ids[1])
    assert editor.timeline.split_shot()
    second = editor.project.shots[1]
    assert [c.id for c in second.chunks] == ids[1:] and second.start == "continue"
    editor.session.select(editor.shot.id, ids[0])
    assert editor.timeline.move_chunk_right()  # the last chunk of shot 1 moves to the start of shot 2
    assert [s.id for s in editor.project.shots] == [second.id]  # shot 1, now empty, went in the same step
    assert editor.chunk_ids() == [ids[0], ids[1], ids[2]]
    editor.session.undo_stack.undo()
    assert len(editor.project.shots) == 2 and editor.chunk_ids() == [ids[0]]


def test_drag_and_drop_reorders_chunks(editor):
    before = copy.deepcopy(editor.project)
    timeline, strip, ids = editor.timeline, editor.timeline.strip, editor.chunk_ids()
    last = timeline.card(ids[2])
    target = strip.card_rect(last).center() + QPoint(last.width() // 3, 0)  # right half: after it
    entered, dropped = drop(strip, target, chunk_mime(editor.shot.id, ids[0]))
    assert entered and dropped
    assert editor.chunk_ids() == [ids[1], ids[2], ids[0]] and strip.drop_marker is None
    first = timeline.card(ids[1])
    drop(strip, strip.card_rect(first).center() - QPoint(first.width() // 3, 0), chunk_mime(editor.shot.id, ids[0]))
    assert editor.chunk_ids() == ids
    assert editor.session.undo_stack.count() == 2
    editor.session.undo_stack.undo()
    editor.session.undo_stack.undo()
    assert editor.project == before


def test_dragging_a_card_with_the_mouse_starts_a_chunk_drag(qtbot, editor):
    card = editor.timeline.card(editor.chunk_ids()[1])
    card.dragRequested.disconnect(editor.timeline._start_drag)  # QDrag.exec would wait for a real mouse
    with qtbot.waitSignal(card.dragRequested) as blocker:
        qtbot.mousePress(card.index_label, Qt.MouseButton.LeftButton)
        qtbot.mouseMove(card.index_label, QPoint(60, 10))
    assert blocker.args == [card]


def test_a_click_on_a_cards_picture_selects_it_and_a_drag_from_it_starts_a_chunk_drag(qtbot, editor):
    """The picture is painted by the card, not a child widget: the card itself takes its clicks and drags."""
    card = editor.timeline.card(editor.chunk_ids()[2])
    assert not card.is_selected() and card.childAt(card.picture.rect.center()) is None
    qtbot.mouseClick(card, Qt.MouseButton.LeftButton, pos=card.picture.rect.center())
    assert editor.session.selected_chunk_id == card.chunk_id and card.is_selected()
    assert editor.timeline.strip.hasFocus()  # the keyboard goes to the storyboard, as on the card's frame
    card.dragRequested.disconnect(editor.timeline._start_drag)  # QDrag.exec would wait for a real mouse
    with qtbot.waitSignal(card.dragRequested) as blocker:
        qtbot.mousePress(card, Qt.MouseButton.LeftButton, pos=card.picture.rect.center())
        qtbot.mouseMove(card, card.picture.rect.center() + QPoint(40, 0))
    assert blocker.args == [card]


def test_a_cards_frame_shows_selection_and_hover(qtbot, editor):
    """The frame is painted by hand in the colours the style sheet gave it: a 1-px border, lighter under the mouse,
    2 px of violet on a violet-grey background when selected."""
    first, second = editor.timeline.cards()[:2]

    def edge(card, x: int) -> tuple[int, int, int]:
        return card.grab().toImage().pixelColor(x, card.height() // 2).getRgb()[:3]

    assert first.is_selected() and not second.is_selected()
    assert edge(first, 0) == edge(first, 1) == (0x74, 0x67, 0xf0)  # selected: 2 px
    assert edge(second, 0) == (0x2f, 0x34, 0x40) and edge(second, 1) == (0x20, 0x23, 0x2a)
    assert edge(first, 3) == (0x24, 0x25, 0x39)  # the selected background
    second.setAttribute(Qt.WidgetAttribute.WA_UnderMouse)  # what the pointer's enter sets
    assert edge(second, 0) == (0x44, 0x4b, 0x59)
    second.setAttribute(Qt.WidgetAttribute.WA_UnderMouse, False)
    editor.session.select(editor.shot.id, second.chunk_id)
    assert not first.is_selected() and edge(first, 0) == (0x2f, 0x34, 0x40)
    assert edge(second, 0) == (0x74, 0x67, 0xf0)


def test_editing_a_prompt_makes_it_and_later_chunks_stale_and_keeps_their_frames(qtbot, editor):
    store, ids = editor.session.store, editor.chunk_ids()
    frames_before = [editor.player.store.frames(i).copy() for i in range(3)]
    prompt = editor.timeline.card(ids[1]).prompt
    prompt.setFocus()
    prompt.moveCursor(prompt.textCursor().MoveOperation.End)
    qtbot.keyClicks(prompt, " high")
    assert editor.shot.chunks[1].prompt == "it bounces high"
    assert editor.session.selected_chunk_id == ids[1]  # typing in a card selects it
    assert editor.session.undo_stack.count() == 1  # one burst of typing, one undo step
    assert editor.states() == ["done", "stale", "stale"]
    cards = editor.timeline.cards()
    assert [c.badge.text() for c in cards] == ["Done", "Stale", "Stale"]
    assert all(c.model.thumbnail is not None for c in cards)  # stale chunks keep (and show) their frames
    for i in range(3):
        assert np.array_equal(editor.player.store.frames(i), frames_before[i])
    results = [editor.project.results[r] for r in editor.sync.shown_results()]
    assert np.array_equal(editor.player.store.frames(2), store.read_frames(results[2]))
    editor.session.undo_stack.undo()
    assert prompt.toPlainText() == PROMPTS[1] and editor.states() == ["done"] * 3


def test_seed_edit_lock_and_new_seed(qtbot, editor):
    card = editor.timeline.card(editor.chunk_ids()[0])
    card.seed.setFocus()
    card.seed.selectAll()
    qtbot.keyClicks(card.seed, "41")
    qtbot.keyClick(card.seed, Qt.Key.Key_Return)
    assert editor.shot.chunks[0].seed == 41 and editor.states() == ["stale"] * 3
    qtbot.keyClick(card.seed, Qt.Key.Key_Up)
    assert editor.shot.chunks[0].seed == 42 and editor.session.undo_stack.count() == 1  # seed edits merge
    qtbot.mouseClick(card.lock, Qt.MouseButton.LeftButton)
    assert editor.shot.chunks[0].seed_locked and card.lock.isChecked()
    menu_action(menus.card_menu(editor.timeline, card), "New Seed").trigger()
    assert editor.shot.chunks[0].seed != 42 and editor.session.undo_stack.undoText() == "New seed"
    assert menu_action(menus.card_menu(editor.timeline, card), "Lock Seed").isChecked()


def test_dropping_an_image_file_on_a_shot_sets_its_reference(qtbot, editor, tmp_path):
    before = copy.deepcopy(editor.project)
    image = write_image(tmp_path / "reference photo.png", size=(300, 500))  # any size: fitted when generating
    strip, card = editor.timeline.strip, editor.timeline.card(editor.chunk_ids()[0])
    entered, dropped = drop(strip, centre_in_strip(editor, card, card.picture.rect), file_mime(image))
    assert entered and dropped
    shot = editor.shot
    asset = editor.project.assets[shot.reference_asset_id]
    assert shot.start == "image" and editor.session.store.asset_path(asset).is_file()
    assert asset.original_name == "reference photo.png"
    assert card.model.reference is not None and editor.timeline.group(shot.id).start_box.currentData() == "image"
    assert editor.states() == ["stale"] * 3  # generated from text: no longer what the shot asks for
    # The reference shows as an inset on the stale picture, clear of its Regenerate button (it once sat under it).
    button = card.regenerate
    qtbot.waitUntil(lambda: button.isVisibleTo(card))
    inset = reference_inset(QRectF(card.picture.rect))
    assert not inset.intersects(QRectF(QRect(button.mapTo(card, QPoint(0, 0)), button.size())))
    editor.session.undo_stack.undo()
    assert editor.project == before and card.model.reference is None


def test_the_reference_image_dialog_opens_at_home_then_where_the_last_image_was(qtbot, editor, tmp_path,
                                                                                 monkeypatch):
    # It opened in the process's working folder (under Xvfb: the source checkout).
    from pathlib import Path

    asked = answer_image_dialogs(monkeypatch, tmp_path / "stills")
    assert editor.timeline.choose_reference_image(editor.shot.id) and editor.shot.start == "image"
    editor.timeline.choose_reference_image(editor.shot.id)
    assert asked == [str(Path.home()), str(tmp_path / "stills")]


def test_a_file_that_is_not_an_image_gets_a_clear_message_and_changes_nothing(qtbot, editor, tmp_path):
    before, count = copy.deepcopy(editor.project), editor.session.undo_stack.count()
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    group = editor.timeline.group(editor.shot.id)
    with qtbot.waitSignal(editor.session.errorOccurred) as blocker:
        drop(editor.timeline.strip, centre_in_strip(editor, group.name_edit), file_mime(notes))
    error = blocker.args[0]
    assert isinstance(error, InputError) and "is not an image that can be read" in str(error)
    assert editor.project == before and editor.session.undo_stack.count() == count
    assert not any(editor.session.store.path.joinpath("assets").iterdir())


def test_split_new_rename_and_start_mode_are_undoable(qtbot, editor):
    before = copy.deepcopy(editor.project)
    timeline, ids = editor.timeline, editor.chunk_ids()
    editor.session.select(editor.shot.id, ids[2])
    menu_action(menus.card_menu(timeline, timeline.card(ids[2])), "Split Shot Here").trigger()
    assert [len(s.chunks) for s in editor.project.shots] == [2, 1]
    assert editor.states() == ["done"] * 3  # a split keeps what the chunks were conditioned on
    qtbot.mouseClick(timeline.strip.new_shot_button, Qt.MouseButton.LeftButton)
    assert [s.name for s in editor.project.shots] == ["Shot 1", "Shot 2", "Shot 3"]
    assert editor.session.selected_shot_id == editor.project.shots[2].id
    group = timeline.group(editor.project.shots[0].id)
    group.name_edit.setFocus()
    group.name_edit.selectAll()
    qtbot.keyClicks(group.name_edit, "Opening")
    qtbot.keyClick(group.name_edit, Qt.Key.Key_Return)
    assert editor.project.shots[0].name == "Opening"
    group.start_box.activated.emit(2)  # the user picks "Continues"
    assert editor.project.shots[0].start == "continue"
    after = copy.deepcopy(editor.project)
    undo_all_and_redo_all(editor, 4, before, after)


def test_job_states_and_live_previews_show_on_cards(qtbot, editor):
    timeline, ids = editor.timeline, editor.chunk_ids()
    timeline.set_job_state(ids[1], "queued")
    timeline.set_job_state(ids[2], "denoising", 0.42)
    assert [c.badge.text() for c in timeline.cards()] == ["Done", "Queued", "42%"]
    with pytest.raises(ValueError):
        timeline.set_job_state(ids[0], "exploded")
    timeline.set_job_state(ids[1], "failed")
    assert timeline.card(ids[1]).badge.text() == "Failed"
    timeline.set_job_state(ids[1], None)
    assert timeline.card(ids[1]).badge.text() == "Done"
    editor.player.store.set_preview(0, np.full((6, 8, 8, 3), 200, np.uint8), 0.5)  # the engine's live preview
    assert timeline.card(ids[0]).model.preview is not None and timeline.card(ids[0]).badge.text() == "50%"
    editor.player.store.clear_preview(0)
    assert timeline.card(ids[0]).model.preview is None and timeline.card(ids[0]).badge.text() == "Done"
    # A new result for chunk 3 (a regeneration from it) ends its transient state by itself.
    fake_generate(editor.project, editor.session.store, editor.shot.id, 2, history=editor.session)
    assert timeline.card(ids[2]).badge.text() == "Done" and timeline.job_state(ids[2]) is None


def test_a_chunk_says_it_is_starting_until_the_engines_first_step(qtbot, editor):
    """Before the first step of a chunk (loading, encoding the prompt: seconds on a GPU) its card said "0%" over an
    empty box; it says "Starting" on its badge and "Starting…" over its picture, as "Queued" is said, until then."""
    timeline, shot_id = editor.timeline, editor.shot.id
    editor.session.push(AddChunk(shot_id, new_chunk(editor.project, shot_id, 3)))
    done, empty = editor.chunk_ids()[0], editor.chunk_ids()[3]

    def words(chunk_id) -> int:
        """Bright pixels across the middle of the card's picture: the words painted over it."""
        picture = picture_image(timeline.card(chunk_id))
        middle = picture.height() // 2
        return sum(picture.pixelColor(x, y).lightness() > 180
                   for x in range(picture.width()) for y in range(middle - 8, middle + 8))

    assert words(done) == 0 and words(empty) == 0  # its frames; the empty chunk's "not generated" is lower down
    for chunk_id in (done, empty):
        timeline.set_job_state(chunk_id, "denoising", 0.0)
        assert timeline.card(chunk_id).badge.text() == "Starting" and words(chunk_id) > 20
    timeline.set_job_state(empty, "denoising", 0.25)  # its first step: the share done, as later on
    assert timeline.card(empty).badge.text() == "25%" and words(empty) == 0


def test_a_finished_chunk_shows_its_frames_until_its_result_is_committed(qtbot, editor):
    """Between the engine's finishing a chunk (the controller's denoising 100 %) and its result's commit, the card shows
    the frames the player has, whichever of the two arrives first, with a live preview before or none (previews off)."""
    timeline, shot_id = editor.timeline, editor.shot.id
    for index in (3, 4):
        editor.session.push(AddChunk(shot_id, new_chunk(editor.project, shot_id, index)))
    with_preview, without = editor.chunk_ids()[3:]
    frames = np.zeros((24, 64, 64, 3), np.uint8)
    frames[..., 1] = 180  # green

    def centre(chunk_id):
        picture = picture_image(timeline.card(chunk_id))
        return picture.pixelColor(picture.width() // 2, picture.height() // 2)

    timeline.set_job_state(with_preview, "denoising", 0.75)
    editor.sync.set_preview(with_preview, np.full((6, 8, 8, 3), 90, np.uint8), 0.75)
    assert timeline.card(with_preview).badge.text() == "75%" and centre(with_preview).red() > 60
    editor.sync.set_frames(with_preview, frames)  # the engine's ChunkFinished: the feed, then the controller
    timeline.set_job_state(with_preview, "denoising", 1.0)
    timeline.set_job_state(without, "denoising", 1.0)  # the controller first, then the feed
    editor.sync.set_frames(without, frames)
    for chunk_id in (with_preview, without):
        card = timeline.card(chunk_id)
        assert card.model.preview is not None and card.badge.text() == "100%"
        colour = centre(chunk_id)
        assert abs(colour.green() - 180) <= 8 and colour.red() <= 8, colour.name()


def test_regenerate_and_generate_requests_are_signals_for_the_controller(qtbot, editor):
    timeline, ids = editor.timeline, editor.chunk_ids()
    menu = menus.card_menu(timeline, timeline.card(ids[1]))
    assert not menu_action(menu, "Regenerate From Here (New Seed)").isEnabled()  # nobody would act on it yet
    asked = []
    timeline.regenerateRequested.connect(lambda shot_id, chunk_id: asked.append((shot_id, chunk_id)))
    timeline.generateShotRequested.connect(lambda shot_id: asked.append((shot_id,)))
    menu = menus.card_menu(timeline, timeline.card(ids[1]))
    menu_action(menu, "Regenerate From Here (New Seed)").trigger()
    menu_action(menu, "Generate Shot 1").trigger()
    assert asked == [(editor.shot.id, ids[1]), (editor.shot.id,)]
    assert timeline.availability()["regenerate"]


def test_a_regenerate_request_redraws_each_card_once_and_never_shows_it_stale(qtbot, editor, monkeypatch):
    timeline, ids, shot_id = editor.timeline, editor.chunk_ids(), editor.shot.id

    def regenerate_from(shot_id, chunk_id):  # what the generation controller does: a new seed, then its chunks queued
        editor.session.push(SetSeed(shot_id, chunk_id, editor.shot.chunk(chunk_id).seed + 1))
        for queued in ids[ids.index(chunk_id):]:
            timeline.set_job_state(queued, "queued")

    timeline.regenerateRequested.connect(regenerate_from)
    drawn, show_model = [], ChunkCard.show_model
    monkeypatch.setattr(ChunkCard, "show_model", lambda card, model: (drawn.append((card.chunk_id, model.state)),
                                                                       show_model(card, model)))
    shown = []  # every Regenerate button shown meanwhile, even for a moment
    for card in timeline.cards():
        monkeypatch.setattr(card.regenerate, "setVisible",
                            lambda visible, card=card, set_visible=card.regenerate.setVisible:
                            (visible and shown.append(card.chunk_id), set_visible(visible)))
    seed = editor.shot.chunks[1].seed
    editor.session.select(shot_id, ids[1])
    assert timeline.request_regenerate() and editor.shot.chunks[1].seed == seed + 1
    assert sorted(drawn) == sorted([(ids[1], "queued"), (ids[2], "queued")])  # once each, straight from done to queued
    assert not shown and [c.badge.text() for c in timeline.cards()] == ["Done", "Queued", "Queued"]
    timeline.set_job_state(ids[2], None)  # outside a request: at once, and now stale (its seed is new)
    assert timeline.card(ids[2]).badge.text() == "Stale" and shown == [ids[2]]


def test_player_and_selection_follow_each_other(qtbot, editor):
    ids, player = editor.chunk_ids(), editor.player
    qtbot.mouseClick(editor.timeline.card(ids[2]).index_label, Qt.MouseButton.LeftButton)
    assert player.current_chunk == 2 and player.current_frame == 48
    assert editor.timeline.strip.playhead_frame == 48
    player.seek(30)  # the playhead enters chunk 2
    assert editor.session.selected_chunk_id == ids[1]
    assert editor.timeline.card(ids[1]).is_selected() and not editor.timeline.card(ids[2]).is_selected()
    wait_for_frames(qtbot, editor.sync)
    for position, result_id in enumerate(editor.sync.shown_results()):
        result = editor.project.results[result_id]
        assert np.array_equal(player.store.frames(position), editor.session.store.read_frames(result))


def test_a_chunk_selected_before_it_had_frames_gets_the_playhead_when_they_arrive(qtbot, editor):
    assert editor.timeline.add_chunk_to(editor.shot.id)  # a 4th chunk at the end, selected: no frames to seek to
    assert editor.player.store.chunk_count == 3 and editor.player.current_chunk == 0
    assert editor.timeline.card(editor.chunk_ids()[3]).badge.text() == "Empty"
    fake_generate(editor.project, editor.session.store, editor.shot.id, history=editor.session)
    assert editor.player.store.chunk_count == 4 and editor.player.current_chunk == 3
    assert editor.timeline.strip.playhead_frame == 72


def test_a_card_paints_its_picture_again_when_its_state_or_its_size_changes(editor):
    """The picture is painted once and then copied (scrolling a long storyboard); a new state or a zoom
    must still show on the next paint."""
    timeline, card = editor.timeline, editor.timeline.cards()[0]

    def middle_green() -> tuple[int, int]:
        picture = picture_image(card)
        return picture.width(), picture.pixelColor(picture.width() // 2, picture.height() * 3 // 4).green()

    width, green = middle_green()
    assert abs(green - 120) <= 6
    timeline.set_job_state(card.chunk_id, "queued")  # dimmed under "Queued"
    assert middle_green()[1] < 80
    timeline.set_job_state(card.chunk_id, None)
    assert abs(middle_green()[1] - 120) <= 6
    timeline.set_zoom(len(ZOOM_LEVELS) - 2)
    narrower, green = middle_green()
    assert narrower < width and abs(green - 120) <= 6
    timeline.set_zoom(DEFAULT_ZOOM)
    assert middle_green() == (width, green)


def test_a_job_state_change_shows_the_documents_state_as_it_is_now(qtbot, editor):
    """The chunk states the cards derive are reused between redraws, and dropped as soon as the document
    changes, even before its `changed` comes (a command applied to the Document directly defers that)."""
    timeline, chunk_id = editor.timeline, editor.chunk_ids()[1]
    timeline.set_job_state(chunk_id, "queued")
    assert timeline.card(chunk_id).badge.text() == "Queued"
    editor.session.document.apply(SetPrompt(editor.shot.id, chunk_id, "a new prompt: its frames are stale now"))
    timeline.set_job_state(chunk_id, None)  # before the session's deferred `changed`
    assert timeline.card(chunk_id).badge.text() == "Stale"
    qtbot.waitUntil(lambda: timeline.card(editor.chunk_ids()[2]).badge.text() == "Stale")  # the redraw: the rest


def test_a_committed_chunk_makes_the_models_of_the_cards_it_changed_alone(editor, monkeypatch):
    timeline, ids = editor.timeline, editor.chunk_ids()
    editor.timeline.add_chunk_to(editor.shot.id)  # a 4th chunk, empty: generating it changes it alone
    made, card = [], timeline.models.card

    def counting(session, frame_store, shot, index, *args, **kwargs):
        model = card(session, frame_store, shot, index, *args, **kwargs)
        made.append((shot.chunks[index].id, model == timeline.card(shot.chunks[index].id).model))
        return model

    monkeypatch.setattr(timeline.models, "card", counting)
    fake_generate(editor.project, editor.session.store, editor.shot.id, history=editor.session)
    new = editor.chunk_ids()[3]
    assert [chunk_id for chunk_id, _ in made] == [new] and not made[0][1]  # ids[:3] unchanged: no model made
    assert timeline.card(new).badge.text() == "Done" and [c.chunk_id for c in timeline.cards()[:3]] == ids
