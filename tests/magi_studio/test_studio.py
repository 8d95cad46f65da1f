"""The wired app (magi_studio.studio.Studio): a new project on start, every action bound, the project
actions and Open Recent, the close prompt, crash recovery on start, one error path, the dialogs, and
Generate Shot / Generate From Chunk / a run over two shots on the tiny model. The whole workflow with
studio-mini is test_workflow.py."""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMenu, QMessageBox

from magi_engine.events import ChunkFinished

from magi_studio.actions import ACTIONS, STUDIO
from magi_studio.controllers.run_state import RunPhase
from magi_studio.dialogs.project_prompts import CANCEL, DISCARD, SAVE, ProjectPrompts
from magi_studio.document.commands import SetPrompt
from magi_studio.document.model import ChunkState, active_path, chunk_states, new_project
from magi_studio.document.store import ProjectStore, open_project, write_autosave
from magi_studio.engine_worker import EngineState
from magi_studio.timeline import menus
from tests.magi_studio.timeline.helpers import menu_action


def cards(studio):
    return studio.window.timeline.cards()


def type_prompt(qtbot, card, text: str) -> None:
    card.prompt.setFocus()
    qtbot.keyClicks(card.prompt, text)


def add_chunk(qtbot, studio) -> None:
    qtbot.keyClick(studio.window.timeline.strip, Qt.Key.Key_N,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)


def test_a_new_studio_opens_an_untitled_project_of_one_chunk_on_studio_mini(qtbot, make_studio, tmp_path):
    studio = make_studio()
    window, project = studio.window, studio.session.project
    assert window.session is studio.session  # one source of truth: the project controller's session
    assert [len(s.chunks) for s in project.shots] == [1] and project.settings.model == "studio-mini"
    assert window.windowTitle() == "Untitled[*] — MAGI Studio" and not window.isWindowModified()
    assert len(cards(studio)) == 1 and cards(studio)[0].badge.text() == "Empty"
    assert not window.action_set["edit.delete_chunk"].isEnabled() and not window.action_set["edit.undo"].isEnabled()
    for spec in ACTIONS:
        if spec.target == STUDIO:
            assert window.action_set[spec.id].isEnabled(), spec.id
    file_menu = window.menuBar().findChild(QMenu, "menu.file")
    assert studio.recent_menu.menuAction() in file_menu.actions()
    assert [a.text() for a in studio.recent_menu.actions()] == ["No recent projects"]
    qtbot.waitUntil(lambda: studio.worker.state == EngineState.READY, timeout=60_000)  # Settings' model, loaded at start
    assert studio.worker.model_info.spec == "studio-mini" and "ready" in window.engine_status.text()
    scratch = studio.session.store.path
    assert scratch.parent == tmp_path / "scratch"
    window.action_set["file.quit"].trigger()
    assert not window.isVisible() and not scratch.exists()  # nothing was made: no folder left behind
    assert not studio.worker.is_running()  # the studio's own engine thread stopped with the window


def test_save_new_open_and_open_recent(qtbot, make_studio, engine_worker, tmp_path):
    studio = make_studio(worker=engine_worker)
    window, prompts = studio.window, studio.projects.prompts
    type_prompt(qtbot, cards(studio)[0], "a red ball falls")
    assert window.isWindowModified()
    prompts.save_answer = str(tmp_path / "Film")
    qtbot.keyClick(window.timeline.strip, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert [kind for kind, _ in prompts.asked] == ["save_path"]  # untitled: Save asks where
    assert window.windowTitle() == "Film[*] — MAGI Studio" and not window.isWindowModified()
    assert studio.recent_menu.paths == [str(tmp_path / "Film.magi")]

    window.action_set["file.new"].trigger()  # saved: no question
    assert studio.session.project.shots[0].chunks[0].prompt == "" and window.windowTitle().startswith("Untitled")
    studio.recent_menu.entries()[0].trigger()
    assert studio.session.project.shots[0].chunks[0].prompt == "a red ball falls"
    assert studio.projects.path == tmp_path / "Film.magi" and window.timeline.cards()[0].prompt.text() == "a red ball falls"

    prompts.open_answer = str(tmp_path / "Film.magi" / "project.json")  # File > Open's chooser picks the manifest
    window.action_set["file.new"].trigger()
    window.action_set["file.open"].trigger()
    assert studio.projects.path == tmp_path / "Film.magi"
    prompts.save_answer = str(tmp_path / "Copy")
    window.action_set["file.save_as"].trigger()
    assert studio.projects.path == tmp_path / "Copy.magi" and window.windowTitle() == "Copy[*] — MAGI Studio"
    assert studio.recent_menu.paths == [str(tmp_path / "Copy.magi"), str(tmp_path / "Film.magi")]
    studio.recent_menu.actions()[-1].trigger()  # Clear Recent Projects
    assert studio.recent_menu.paths == [] and studio.settings.recent_files == []


def test_closing_with_unsaved_changes_asks_and_cancel_keeps_working(qtbot, make_studio, engine_worker):
    studio = make_studio(worker=engine_worker)
    window, prompts = studio.window, studio.projects.prompts
    type_prompt(qtbot, cards(studio)[0], "unsaved work")
    session, scratch = studio.session, studio.session.store.path
    prompts.unsaved = CANCEL
    window.close()
    assert window.isVisible() and studio.session is session and prompts.asked == [("unsaved", "Untitled")]
    prompts.unsaved = DISCARD
    window.action_set["file.quit"].trigger()
    assert not window.isVisible() and studio.session is None and not scratch.exists()


def test_a_studio_never_shown_still_closes_its_project_on_dispose(qtbot, no_leaked_windows, isolated_settings,
                                                                 engine_worker, tmp_path):
    from magi_studio.studio import Studio
    from tests.magi_studio.prompts import FakePrompts

    prompts = FakePrompts()
    studio = Studio(isolated_settings, worker=engine_worker, prompts=prompts, scratch_root=tmp_path / "scratch")
    studio.start()  # a script's Studio: never shown
    shot = studio.session.project.shots[0]
    studio.window.timeline.session.push(SetPrompt(shot.id, shot.chunks[0].id, "unsaved work"))
    scratch = studio.session.store.path
    prompts.unsaved = CANCEL
    assert not studio.dispose() and studio.session is not None  # Cancel keeps working, shown or not
    prompts.unsaved = DISCARD
    assert studio.dispose() and studio.session is None and not scratch.exists()
    assert prompts.asked == [("unsaved", "Untitled"), ("unsaved", "Untitled")]



def test_sigterm_ends_without_a_question_keeps_the_edits_for_recovery_and_the_stack_can_go(
        qtbot, make_studio, engine_worker):
    import shiboken6

    from magi_studio.document.store import find_recovery

    studio = make_studio(worker=engine_worker)
    type_prompt(qtbot, cards(studio)[0], "unsaved work")
    session, prompts = studio.session, studio.projects.prompts
    studio.terminate()  # what SIGTERM runs (app.handle_quit_signals)
    assert not studio.window.isVisible() and prompts.asked == []
    recovered = find_recovery(session.store.path)
    assert recovered is not None  # the next start offers the edits back
    # The session goes last, at the process's end: its stack, deleted, tells of the change of its clean state.
    shiboken6.delete(session.undo_stack)
    QApplication.processEvents()


def test_sigterm_while_the_unsaved_changes_question_is_open_still_ends(qtbot, make_studio, engine_worker):
    from magi_studio.document.store import find_recovery

    studio = make_studio(worker=engine_worker)
    studio.projects.prompts.unsaved_changes = ProjectPrompts(studio.window).unsaved_changes  # the real question
    type_prompt(qtbot, cards(studio)[0], "unsaved work")
    session = studio.session
    questions = []

    def terminate_when_asked() -> None:  # a logout: the window is closed, then SIGTERM comes
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            return QTimer.singleShot(20, terminate_when_asked)
        questions.append(box.text())
        studio.terminate()

    QTimer.singleShot(0, terminate_when_asked)
    assert not studio.window.close()  # the question, cancelled by the end; then the end itself
    qtbot.waitUntil(lambda: not studio.window.isVisible() and QApplication.activeModalWidget() is None, timeout=5000)
    assert len(questions) == 1 and find_recovery(session.store.path) is not None

def test_crashed_untitled_work_is_offered_on_start(qtbot, make_studio, engine_worker, tmp_path):
    project = new_project()
    project.shots[0].chunks[0].prompt = "work from before the crash"
    store = ProjectStore.create_scratch(tmp_path / "scratch")
    write_autosave(project, store.path)  # what autosave left; no process holds the bundle any more
    studio = make_studio(worker=engine_worker)
    assert studio.projects.prompts.asked == [("recover", "Untitled")]
    assert studio.session.store.path == store.path and studio.window.isWindowModified()
    assert cards(studio)[0].prompt.text() == "work from before the crash"


def test_every_error_reaches_the_one_banner(qtbot, make_studio, isolated_settings, tmp_path):
    isolated_settings.model = "/no/such/model"  # loaded at start: fails fast, said in the banner
    studio = make_studio()
    banner = studio.window.error_banner
    qtbot.waitUntil(banner.isVisible, timeout=10_000)
    assert banner.title.text() == "Checkpoint problem" and "No model loaded" in studio.window.engine_status.text()
    banner.dismiss()
    studio.projects.prompts.open_answer = str(tmp_path / "Gone.magi")
    studio.window.action_set["file.open"].trigger()  # the project controller's error
    assert banner.isVisible() and banner.title.text() == "Project problem" and "does not exist" in banner.body.text()


def test_export_and_settings_dialogs_open_from_their_actions(qtbot, make_studio, engine_worker):
    studio = make_studio(worker=engine_worker)
    studio.window.player.mark_in(6)
    studio.window.player.mark_out(17)  # I and O in the player: the export's range
    studio.window.action_set["file.export"].trigger()
    dialog = studio.export_dialog
    qtbot.waitExposed(dialog)
    assert dialog.isModal() and dialog.shot.isEnabled() and "Shot 1" in dialog.shot.text()
    assert dialog.in_out_button.isChecked() and dialog.frame_range() == (6, 18)
    dialog.reject()
    qtbot.waitUntil(lambda: studio.export_dialog is None, timeout=5000)
    studio.window.action_set["edit.settings"].trigger()
    settings = studio.settings_dialog
    qtbot.waitExposed(settings)
    assert settings.mini_radio.isChecked() and settings.session is studio.session
    settings.reject()
    qtbot.waitUntil(lambda: studio.settings_dialog is None, timeout=5000)


def test_generate_shot_generate_from_chunk_and_a_run_over_two_shots(qtbot, make_studio, engine_worker,
                                                                   tiny_session, isolated_settings, monkeypatch):
    isolated_settings.model, isolated_settings.width, isolated_settings.height = "tiny", 64, 64
    job = engine_worker.use_session(tiny_session)
    qtbot.waitUntil(lambda: job not in engine_worker.live_jobs, timeout=5000)
    studio = make_studio(worker=engine_worker)
    window, timeline = studio.window, studio.window.timeline
    type_prompt(qtbot, cards(studio)[0], "a red ball falls")
    add_chunk(qtbot, studio)
    add_chunk(qtbot, studio)
    shot = studio.session.project.shots[0]
    ended = []
    studio.generation.runEnded.connect(ended.append)

    qtbot.keyClick(timeline.strip, Qt.Key.Key_Return,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)  # Generate Shot
    qtbot.waitUntil(lambda: ended == ["finished"], timeout=30_000)
    assert chunk_states(studio.session.project, shot.id) == [ChunkState.DONE] * 3
    first = active_path(shot)

    qtbot.mouseClick(timeline.card(shot.chunks[1].id).index_label, Qt.MouseButton.LeftButton)
    qtbot.keyClick(timeline.strip, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)  # Generate From Chunk
    qtbot.waitUntil(lambda: len(ended) == 2, timeout=30_000)
    second = active_path(shot)
    assert second[0] == first[0] and set(second[1:]).isdisjoint(first)  # chunk 1 kept, 2 and 3 made again

    menu = menus.card_menu(timeline, timeline.card(shot.chunks[2].id))
    menu_action(menu, "Generate From Here (Same Seed)").trigger()  # the context menu does the same for chunk 3
    qtbot.waitUntil(lambda: len(ended) == 3, timeout=30_000)
    assert active_path(shot)[:2] == second[:2] and active_path(shot)[2] != second[2]
    menu.deleteLater()

    window.action_set["edit.new_shot"].trigger()
    type_prompt(qtbot, cards(studio)[-1], "the blue square moves left")
    decoded_on_gui_thread = []
    read_frames = ProjectStore.read_frames

    def counting_read_frames(store, result):
        if threading.current_thread() is threading.main_thread():
            decoded_on_gui_thread.append(result.id)
        return read_frames(store, result)

    monkeypatch.setattr(ProjectStore, "read_frames", counting_read_frames)
    window.action_set["generate.run"].trigger()  # the storyboard: only shot 2 is missing
    qtbot.waitUntil(lambda: len(ended) == 4, timeout=30_000)
    assert ended[-1] == "finished" and window.status_message.text().startswith("Generated 1 chunk in ")
    assert window.player.store.chunk_count == 4
    new_result = active_path(studio.session.project.shots[1])[0]
    assert window.player_sync.shown_results()[3] == new_result
    assert np.array_equal(window.player.store.frames(3), read_frames(studio.session.store,
                                                                     studio.session.project.results[new_result]))
    assert decoded_on_gui_thread == []  # the engine's frames were handed over, not read back from the file


def pausing_studio(qtbot, make_studio, engine_worker, pausing_session_factory, settings):
    """A studio on the tiny model whose engine holds a run once its first chunk is finished, and a shot of two
    chunks with a prompt."""
    settings.model, settings.width, settings.height = "tiny", 64, 64
    engine = pausing_session_factory(lambda e: isinstance(e, ChunkFinished) and e.chunk == 0)
    job = engine_worker.use_session(engine)
    qtbot.waitUntil(lambda: job not in engine_worker.live_jobs, timeout=5000)
    studio = make_studio(worker=engine_worker)
    type_prompt(qtbot, cards(studio)[0], "a red ball falls")
    add_chunk(qtbot, studio)
    return studio, engine


def paused_run(qtbot, make_studio, engine_worker, pausing_session_factory, settings):
    """A studio on the tiny model whose Generate run is held once chunk 1 of 3 is finished (chunk 2 is under way)."""
    studio, engine = pausing_studio(qtbot, make_studio, engine_worker, pausing_session_factory, settings)
    add_chunk(qtbot, studio)
    ended, delivered = [], []
    studio.generation.runEnded.connect(ended.append)
    engine_worker.event.connect(lambda job, event: isinstance(event, ChunkFinished) and delivered.append(event))
    studio.window.action_set["generate.run"].trigger()
    qtbot.waitUntil(engine.paused.is_set, timeout=10_000)
    return studio, engine, ended, delivered



def test_the_panels_below_the_player_keep_their_place_while_a_run_goes_and_ends(
        qtbot, make_studio, engine_worker, pausing_session_factory, isolated_settings, app_theme):
    studio, engine, ended, _ = paused_run(qtbot, make_studio, engine_worker, pausing_session_factory,
                                          isolated_settings)
    window = studio.window
    window.resize(1366, 768)  # a 1366x768 laptop's (the offscreen screen is smaller)

    def places() -> dict:
        QApplication.processEvents()  # the layouts settle
        return {name: widget.geometry() for name, widget in (
            ("storyboard", window.timeline_dock), ("status bar", window.statusBar()), ("window", window))}

    qtbot.waitUntil(window.job_progress.isVisible, timeout=5000)
    generating = places()
    # The status bar already has the height that its progress asks for (it grew by 2 px at the next layout).
    assert window.statusBar().sizeHint().height() <= window.statusBar().height()
    engine.resume()
    qtbot.waitUntil(lambda: bool(ended) and not window.job_progress.isVisible(), timeout=30_000)
    assert places() == generating


def test_the_storyboard_already_has_the_height_its_shown_cards_need(qtbot, make_studio, engine_worker, app_theme):
    # A shot's header settles its height once shown (a strut): the storyboard's height follows at once, not
    # at the next rebuild (a run's first progress), where it grew 2 px and moved everything below the player.
    studio = make_studio(worker=engine_worker)
    QApplication.processEvents()
    view = studio.window.timeline
    needed = view.strip.sizeHint().height() + view.scroll.horizontalScrollBar().sizeHint().height()
    assert view.scroll.minimumHeight() == needed

def press_quit(qtbot, studio) -> None:
    qtbot.keyClick(studio.window.timeline.strip, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)


def test_quit_during_a_run_asks_first_and_keep_working_lets_the_run_go_on(
        qtbot, make_studio, engine_worker, pausing_session_factory, isolated_settings):
    studio, engine, ended, _ = paused_run(qtbot, make_studio, engine_worker, pausing_session_factory,
                                          isolated_settings)
    studio.projects.prompts.stop_run = ProjectPrompts(studio.window).stop_run  # the real question
    seen = []

    def answer_when_asked() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            return QTimer.singleShot(20, answer_when_asked)
        seen.append((box.text(), sorted(b.text() for b in box.buttons()), studio.generation.phase,
                     list(engine.after_cancel)))
        next(b for b in box.buttons() if b.text() == "Keep Working").click()

    QTimer.singleShot(0, answer_when_asked)
    press_quit(qtbot, studio)
    assert seen == [("A run is in progress.", ["Keep Working", "Stop and Quit"], RunPhase.RUNNING, [])]
    assert studio.window.isVisible() and studio.generation.phase is RunPhase.RUNNING and engine.after_cancel == []
    engine.resume()
    qtbot.waitUntil(lambda: bool(ended), timeout=20_000)
    shot = studio.session.project.shots[0]
    assert ended == ["finished"] and chunk_states(studio.session.project, shot.id) == [ChunkState.DONE] * 3


def test_stop_and_quit_keeps_every_finished_chunk_then_asks_about_saving(
        qtbot, make_studio, engine_worker, pausing_session_factory, isolated_settings, tmp_path):
    studio, engine, ended, delivered = paused_run(qtbot, make_studio, engine_worker, pausing_session_factory,
                                                  isolated_settings)
    prompts = studio.projects.prompts
    asked_stop = prompts.stop_run
    at_question = []

    def stop_run(stop_text: str, run_ended=None) -> bool:  # Stop and Quit; the engine goes on so that it can stop
        at_question.append((studio.generation.phase, list(engine.after_cancel)))
        engine.resume()
        return asked_stop(stop_text, run_ended)

    prompts.stop_run, prompts.unsaved, prompts.save_answer = stop_run, SAVE, str(tmp_path / "Film")
    press_quit(qtbot, studio)
    assert not studio.window.isVisible() and ended == ["cancelled"]
    assert at_question == [(RunPhase.RUNNING, [])]
    assert [kind for kind, _ in prompts.asked] == ["stop_run", "unsaved", "save_path"]
    assert prompts.asked[0] == ("stop_run", "Stop and Quit")
    saved = open_project(tmp_path / "Film.magi")[0]
    assert delivered and len(saved.results) == len(delivered)  # every chunk the engine finished is saved
    assert [r is not None for r in active_path(saved.shots[0])][:len(delivered)] == [True] * len(delivered)


def test_a_run_that_ends_while_the_question_is_open_lets_the_quit_go_on(
        qtbot, make_studio, engine_worker, pausing_session_factory, isolated_settings):
    studio, engine, ended, _ = paused_run(qtbot, make_studio, engine_worker, pausing_session_factory,
                                          isolated_settings)
    studio.projects.prompts.stop_run = ProjectPrompts(studio.window).stop_run
    studio.projects.prompts.unsaved = DISCARD

    def finish_when_asked() -> None:  # the user reads the question while the last chunks finish
        if not isinstance(QApplication.activeModalWidget(), QMessageBox):
            return QTimer.singleShot(20, finish_when_asked)
        engine.resume()

    QTimer.singleShot(0, finish_when_asked)
    press_quit(qtbot, studio)
    assert ended == ["finished"] and not studio.window.isVisible()
    assert [kind for kind, _ in studio.projects.prompts.asked] == ["unsaved"]


def test_the_queue_panel_lists_the_run_and_pauses_resumes_reorders_and_removes(
        qtbot, make_studio, engine_worker, pausing_session_factory, isolated_settings):
    studio, engine = pausing_studio(qtbot, make_studio, engine_worker, pausing_session_factory, isolated_settings)
    window, view = studio.window, studio.window.queue_view
    for name in ("B", "C"):
        window.action_set["edit.new_shot"].trigger()
        type_prompt(qtbot, cards(studio)[-1], f"shot {name}")
    assert view.items() == [] and window.action_set["view.queue"].isChecked()  # a dock of its own, in View
    window.queue_dock.raise_()
    ended = []
    studio.generation.runEnded.connect(ended.append)
    window.action_set["generate.run"].trigger()
    qtbot.waitUntil(engine.paused.is_set, timeout=10_000)
    assert view.items() == ["Shot 1 · generating", "Shot 2 · the chunks not done", "Shot 3 · the chunks not done"]
    view.list.setCurrentRow(2)
    qtbot.mouseClick(view.up_button, Qt.MouseButton.LeftButton)
    assert view.items()[1:] == ["Shot 3 · the chunks not done", "Shot 2 · the chunks not done"]
    assert not view.up_button.isEnabled()  # nothing moves before the shot under way
    view.list.setCurrentRow(2)
    qtbot.mouseClick(view.remove_button, Qt.MouseButton.LeftButton)
    assert view.items() == ["Shot 1 · generating", "Shot 3 · the chunks not done"]
    qtbot.mouseClick(view.pause_button, Qt.MouseButton.LeftButton)
    engine.resume()
    qtbot.waitUntil(studio.generation.is_paused, timeout=10_000)
    assert view.pause_button.text() == "Resume" and window.job_progress.text().startswith("Paused · ")
    assert view.items() == ["Shot 1 · the chunks not done", "Shot 3 · the chunks not done"]
    qtbot.mouseClick(view.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(ended), timeout=20_000)
    project = studio.session.project
    states = [chunk_states(project, shot.id) for shot in project.shots]
    assert ended == ["finished"] and states == [[ChunkState.DONE] * 2, [ChunkState.EMPTY], [ChunkState.DONE]]
    assert view.items() == [] and view.empty.isVisible()


def test_the_queue_panel_out_of_sight_draws_nothing_and_shows_the_run_when_it_comes_into_sight(
        qtbot, make_studio, engine_worker, pausing_session_factory, isolated_settings):
    studio, engine = pausing_studio(qtbot, make_studio, engine_worker, pausing_session_factory, isolated_settings)
    window, view = studio.window, studio.window.queue_view
    assert window.queue_dock in window.tabifiedDockWidgets(window.history_dock)
    window.history_dock.raise_()  # the Queue tab behind History
    qtbot.waitUntil(lambda: view.visibleRegion().isEmpty(), timeout=2000)
    window.action_set["generate.run"].trigger()
    qtbot.waitUntil(engine.paused.is_set, timeout=10_000)
    assert view.list.count() == 0  # a run's start made its row (twice) on the GUI thread, unseen
    window.queue_dock.raise_()
    qtbot.waitUntil(lambda: view.list.count() == 1, timeout=2000)
    assert view.list.item(0).data(Qt.ItemDataRole.UserRole) == studio.generation.queue()[0].id
    assert view.states() == ["running"] and not view.empty.isVisible()
    ended = []
    studio.generation.runEnded.connect(ended.append)
    window.action_set["view.queue"].trigger()  # View › Queue: the panel closed
    engine.resume()
    qtbot.waitUntil(lambda: bool(ended), timeout=20_000)
    assert view.list.count() == 1  # still the run's row: nothing drawn while closed
    assert view.items() == [] and len(view.completed_items()) == 1  # what reads the rows reads them drawn
    window.action_set["view.queue"].trigger()
    qtbot.waitUntil(view.isVisible, timeout=2000)
    assert view.list.count() == 0 and view.empty.isVisible()


def test_a_close_question_that_raises_keeps_the_window_open_and_says_why(qtbot, make_studio, engine_worker):
    """The GUI soak's segfault in dispose: its stand-in for the unsaved-changes question took no `untitled`
    argument, so closeEvent raised a TypeError into Qt, and PySide crashed reporting it. The window now
    keeps the work open, shows the error in its banner, and closes once the question is answered."""
    studio = make_studio(worker=engine_worker)
    studio.session.push(SetPrompt(studio.session.project.shots[0].id,
                                  studio.session.project.shots[0].chunks[0].id, "a red ball falls"))
    studio.projects.prompts.unsaved_changes = lambda name: DISCARD  # the soak's old stand-in
    assert not studio.dispose()
    assert studio.window.isVisible() and studio.session is not None and studio.window.error_banner.isVisible()
    assert "TypeError" in studio.window.error_banner.body.text()
    studio.projects.prompts.unsaved_changes = lambda name, untitled=False: DISCARD
    assert studio.dispose() and studio.session is None


def test_the_queue_panel_cancels_one_request_retries_it_and_shows_what_the_completed_ones_made(
        qtbot, make_studio, engine_worker, pausing_session_factory, isolated_settings):
    studio, engine = pausing_studio(qtbot, make_studio, engine_worker, pausing_session_factory, isolated_settings)
    window, view = studio.window, studio.window.queue_view
    window.action_set["edit.new_shot"].trigger()
    type_prompt(qtbot, cards(studio)[-1], "a blue square")
    window.queue_dock.raise_()
    ended = []
    studio.generation.runEnded.connect(ended.append)
    window.action_set["generate.run"].trigger()
    qtbot.waitUntil(engine.paused.is_set, timeout=10_000)  # Shot 1's first chunk is done
    assert view.states() == ["running", "queued"]
    row = view.row_widget(0)
    qtbot.waitUntil(lambda: row.detail.text().startswith("chunk 2 of 2"), timeout=5000)
    assert row.bar.isVisible() and row.bar.value() >= 500 and row.state.text() == "Running"
    view.list.setCurrentRow(0)
    assert view.cancel_button.isEnabled() and not view.retry_button.isEnabled()
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)  # Shot 1 alone; Shot 2 goes on
    assert view.row_widget(0).state.text() == "Cancelling" and view.states() == ["running", "queued"]
    assert not view.cancel_button.isEnabled()  # it stops within one step: listed as cancelled then
    engine.resume()
    qtbot.waitUntil(lambda: bool(ended), timeout=20_000)
    project = studio.session.project
    first, second = project.shots
    assert ended == ["finished"] and active_path(first)[1] is None and None not in active_path(second)
    assert view.states() == ["cancelled"] and view.items() == ["Shot 1 · cancelled"]
    assert view.completed_items()[0].startswith("Shot 2 · Take 1 · chunk 1 · ")
    view.list.setCurrentRow(0)
    assert view.retry_button.isEnabled() and view.remove_button.isEnabled() and not view.cancel_button.isEnabled()
    qtbot.mouseClick(view.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(ended) == 2, timeout=20_000)
    assert ended[-1] == "finished" and None not in active_path(first) and view.items() == []
    assert [text.split(" · ")[:3] for text in view.completed_items()] == [  # the latest first
        ["Shot 1", "Take 1", "chunks 1–2"], ["Shot 2", "Take 1", "chunk 1"]]
    assert view.completed_toggle.text() == "Completed (2)" and view.completed_list.isVisible()

    # Show (a double-click): that take selected in the takes view, the player on its first chunk.
    window.player.seek_chunk(0)
    view.completed_list.setCurrentRow(1)
    item = view.completed_list.item(1)
    rect = view.completed_list.visualItemRect(item)
    qtbot.mouseClick(view.completed_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(view.completed_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert studio.session.selected_shot_id == second.id and window.player.current_chunk == 2
    assert window.takes_view.current_take_id() == second.active_take_id and window.takes_dock.isVisible()
    studio.generation.regenerate_from(first.id, 1)  # a second take of Shot 1 is made active
    qtbot.waitUntil(lambda: len(ended) == 3, timeout=20_000)
    take_one = first.takes[0].id
    assert first.active_take_id != take_one
    assert [text.split(" · ")[:2] for text in view.completed_items()] == [
        ["Shot 1", "Take 2"], ["Shot 1", "Take 1"], ["Shot 2", "Take 1"]]
    view.completed_list.setCurrentRow(1)  # Shot 1's first request: Take 1, no longer active
    qtbot.mouseClick(view.show_button, Qt.MouseButton.LeftButton)
    assert studio.session.preview_take == (first.id, take_one) and window.takes_view.current_take_id() == take_one
    assert window.player.current_chunk == 0
    qtbot.mouseClick(view.completed_toggle, Qt.MouseButton.LeftButton)  # collapsed
    assert not view.completed_list.isVisible() and view.completed_toggle.isVisible()
    qtbot.mouseClick(view.clear_button, Qt.MouseButton.LeftButton)
    assert view.completed_items() == [] and not view.completed_toggle.isVisible()
