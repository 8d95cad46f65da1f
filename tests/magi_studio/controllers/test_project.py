"""ProjectController: new / save / open give back the same project, the close prompt, recent files, autosave
off the GUI thread and recovery after a simulated crash, the last project reopened at start (with its
recovery offer after a crash), damaged or newer files reported and left untouched; the open dialog that
opens a .magi folder as one item, and the recovery question's human date."""

from __future__ import annotations

import shutil
import threading
from datetime import datetime, timedelta, timezone

import pytest
from PySide6.QtCore import QFileInfo, QLocale, QTimer
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QListView, QMessageBox

from magi_engine.events import ChunkFinished
from magi_studio.controllers import common
from magi_studio.controllers.project import ProjectController
from magi_studio.dialogs.project_prompts import (CANCEL, DISCARD, RECOVER, SAVE, ProjectOpenDialog, ProjectPrompts,
                                                 human_time, recovery_box, resume_box,
                                                 unsaved_changes_box)
from magi_studio.document.commands import SetPrompt
from magi_studio.document.manifest import SCHEMA_VERSION
from magi_studio.document.model import active_path, storyboard_states
from magi_studio.document.run_marker import read_run_marker, write_run_marker
from magi_studio.document.store import AUTOSAVE, MANIFEST, open_project
from tests.magi_studio.document.fakes import fake_generate, rich_project
from tests.magi_studio.prompts import FakePrompts


@pytest.fixture
def make(qtbot, tmp_path, isolated_settings):
    made = []

    def controller(**kwargs) -> ProjectController:
        prompts = kwargs.pop("prompts", FakePrompts())
        projects = ProjectController(isolated_settings, scratch_root=tmp_path / "scratch", prompts=prompts, **kwargs)
        projects.errors = []
        projects.errorReported.connect(projects.errors.append)
        made.append(projects)
        return projects

    yield controller
    for projects in made:
        projects.shutdown()


def dies(projects: ProjectController) -> None:
    """The app's process ends here, unannounced: its autosave stays on disk, its hold on the project goes with
    the process (a lock whose process is gone is stale)."""
    projects._release_lock()


def edit(projects: ProjectController, text: str) -> None:
    shot = projects.session.document.project.shots[0]
    projects.session.push(SetPrompt(shot.id, shot.chunks[0].id, text))


def first_prompt(project) -> str:
    return project.shots[0].chunks[0].prompt


def test_new_save_and_open_give_back_the_same_project(make, tmp_path, isolated_settings):
    projects = make()
    assert projects.start() and projects.is_untitled and projects.window_title() == "Untitled — MAGI Studio"
    scratch = projects.session.store.path
    edit(projects, "a red ball falls")
    assert projects.is_dirty() and projects.window_title() == "Untitled* — MAGI Studio"
    fake_generate(projects.session.document.project, projects.session.store,
                  projects.session.document.project.shots[0].id, history=projects.session)
    assert projects.save_as(tmp_path / "Film")
    assert projects.path == tmp_path / "Film.magi" and not projects.is_dirty() and not scratch.exists()
    assert isolated_settings.recent_files[0] == str(tmp_path / "Film.magi")
    saved = projects.session.document.project
    assert projects.close_project()  # one project, one window

    other = make()
    assert other.open_project(tmp_path / "Film.magi" / MANIFEST)
    reopened = other.session.document.project
    assert reopened == saved and reopened is not saved
    assert [active_path(s) for s in reopened.shots] == [active_path(s) for s in saved.shots]
    assert storyboard_states(reopened) == storyboard_states(saved)
    assert other.display_name == "Film" and not other.is_dirty()


def test_a_rich_project_reopens_exactly_with_every_take(make, tmp_path):
    project, store = rich_project(tmp_path)
    store.save(project)
    projects = make()
    assert projects.start(store.path)  # `magi-studio PROJECT`
    assert projects.session.document.project == project
    assert len(projects.session.document.project.shots[0].takes) == 2


def test_close_asks_save_discard_or_cancel(make, tmp_path):
    projects = make()
    projects.start()
    projects.save_as(tmp_path / "Film")
    edit(projects, "first version")
    projects.save()
    edit(projects, "unsaved edit")
    session = projects.session

    projects.prompts.unsaved = CANCEL
    assert not projects.close_project() and projects.session is session and projects.is_dirty()
    projects.prompts.unsaved = DISCARD
    assert projects.close_project() and projects.session is None
    assert projects.prompts.asked == [("unsaved", "Film"), ("unsaved", "Film")]
    assert first_prompt(open_project(tmp_path / "Film.magi")[0]) == "first version"
    assert not (tmp_path / "Film.magi" / AUTOSAVE).exists()

    assert projects.open_project(tmp_path / "Film.magi")
    edit(projects, "saved on close")
    projects.prompts.unsaved = SAVE
    assert projects.close_project()
    assert first_prompt(open_project(tmp_path / "Film.magi")[0]) == "saved on close"


def test_closing_untitled_work_with_save_asks_where(make, tmp_path):
    projects = make()
    projects.start()
    edit(projects, "keep me")
    projects.prompts.unsaved, projects.prompts.save_answer = SAVE, str(tmp_path / "Kept")
    assert projects.close_project()
    assert [kind for kind, _ in projects.prompts.asked] == ["unsaved", "save_path"]
    assert first_prompt(open_project(tmp_path / "Kept.magi")[0]) == "keep me"
    assert not list((tmp_path / "scratch").glob("*.magi"))  # nothing left behind


def test_the_real_prompt_maps_its_buttons(make, qtbot):
    projects = make(prompts=ProjectPrompts())
    projects.start()
    edit(projects, "edited")

    def click_discard():
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox) and "Untitled" in box.text()
        box.button(QMessageBox.StandardButton.Discard).click()

    QTimer.singleShot(0, click_discard)
    assert projects.close_project() and projects.session is None


def test_the_save_question_says_what_discard_throws_away(make, tmp_path, qtbot):
    projects = make()
    projects.start()
    fake_generate(projects.session.document.project, projects.session.store,
                  projects.session.document.project.shots[0].id)
    edit(projects, "untitled work")
    scratch = projects.session.store.path
    assert any((scratch / "results").iterdir())
    projects.prompts.unsaved = DISCARD
    assert projects.close_project() and not scratch.exists()  # the chunks went with the scratch folder
    assert projects.prompts.asked_untitled == [True]
    assert "deletes it, with every chunk" in unsaved_changes_box("Untitled", True).informativeText()

    projects.start()
    projects.save_as(tmp_path / "Film")
    edit(projects, "saved project's edit")
    assert projects.close_project() and projects.prompts.asked_untitled == [True, False]
    saved_text = unsaved_changes_box("Film", False).informativeText()
    assert "last saved version" in saved_text and "kept either way" not in saved_text


def test_opening_a_project_with_damaged_chunks_says_so_once(make, tmp_path):
    project, store = rich_project(tmp_path)
    store.save(project)
    second = project.shots[1]
    for result_id in active_path(second):  # both of shot 2's chunks on the storyboard, and a result of an unused take
        (store.path / project.results[result_id].files["frames"]).write_bytes(b"")
    unused = project.shots[0].takes[0].results[project.shots[0].chunks[2].id]
    (store.path / project.results[unused].files["latent"]).unlink()
    projects = make()
    assert projects.open_project(store.path)
    assert [str(e) for e in projects.errors] == [
        "2 chunks of “Rich” are damaged (the generated files are missing or unreadable); "
        "regenerating them recovers them."]
    assert len(projects.session.document.project.damaged) == 3

    projects.session.push(SetPrompt(second.id, second.chunks[0].id, "an edit"))
    assert projects.save() and len(projects.errors) == 1  # said once, at open


def test_recent_files_and_a_vanished_one(make, tmp_path, isolated_settings):
    projects = make()
    projects.start()
    recent = []
    projects.recentFilesChanged.connect(recent.append)
    for name in ("A", "B"):
        projects.new_project()
        assert projects.save_as(tmp_path / name)
    assert projects.recent_files()[:2] == [str(tmp_path / "B.magi"), str(tmp_path / "A.magi")]
    assert projects.open_recent(tmp_path / "A.magi") and projects.recent_files()[0] == str(tmp_path / "A.magi")
    shutil.rmtree(tmp_path / "B.magi")
    assert not projects.open_recent(tmp_path / "B.magi")
    assert projects.errors[-1].title == "Project problem" and "does not exist" in str(projects.errors[-1])
    assert str(tmp_path / "B.magi") not in projects.recent_files() and recent


def test_autosave_runs_off_the_gui_thread_and_a_crashed_session_is_recovered(make, tmp_path, qtbot, monkeypatch):
    threads = []
    real = common.write_autosave
    monkeypatch.setattr(common, "write_autosave", lambda p, path: (threads.append(threading.get_ident()),
                                                                   real(p, path))[1])
    projects = make(autosave_interval_ms=20)
    projects.start()
    projects.save_as(tmp_path / "Film")
    edit(projects, "unsaved work")
    qtbot.waitUntil(lambda: (tmp_path / "Film.magi" / AUTOSAVE).is_file(), timeout=5000)
    assert threads and threading.get_ident() not in threads
    qtbot.waitUntil(lambda: projects.autosaver.pending == 0, timeout=5000)
    autosave = (tmp_path / "Film.magi" / AUTOSAVE).read_bytes()
    dies(projects)  # no close, no save. The next start offers the autosave; each answer is tried.
    for answer, expected in ((DISCARD, ""), (RECOVER, "unsaved work")):
        (tmp_path / "Film.magi" / AUTOSAVE).write_bytes(autosave)
        again = make()
        again.prompts.recover = answer
        assert again.start(tmp_path / "Film.magi")
        assert again.prompts.asked == [("recover", "Film")]
        assert first_prompt(again.session.document.project) == expected
        assert again.is_dirty() == (answer == RECOVER)
        assert (tmp_path / "Film.magi" / AUTOSAVE).exists() == (answer == RECOVER)
        again.prompts.unsaved = DISCARD
        assert again.close_project()


def test_untitled_work_of_a_crashed_session_is_offered_but_never_a_live_one(make, qtbot):
    crashed = make(autosave_interval_ms=20)
    crashed.start()
    edit(crashed, "untitled work")
    folder = crashed.session.store.path
    qtbot.waitUntil(lambda: (folder / AUTOSAVE).is_file(), timeout=5000)

    live = make()
    assert live.start() and live.session.store.path != folder  # still in use: not offered, not deleted
    assert live.prompts.asked == [] and folder.is_dir()

    crashed._lock.unlock()  # a dead process's lock is stale; this one is alive, so let go of it by hand
    after = make()
    assert after.start()
    assert after.prompts.asked == [("recover", "Untitled")]
    assert after.session.store.path == folder and after.is_untitled and after.is_dirty()
    assert first_prompt(after.session.document.project) == "untitled work"


@pytest.mark.parametrize("damage, message", [
    (lambda data: b"{ not json", "damaged"),
    (lambda data: data.replace(b'"schema_version": %d' % SCHEMA_VERSION, b'"schema_version": 99'), "newer MAGI Studio"),
])
def test_damaged_or_newer_files_get_the_clear_message_and_stay_byte_identical(make, tmp_path, damage, message):
    project, store = rich_project(tmp_path)
    store.save(project)
    manifest = store.path / MANIFEST
    manifest.write_bytes(damage(manifest.read_bytes()))
    before = {p: p.read_bytes() for p in store.path.rglob("*") if p.is_file()}

    projects = make()
    projects.start()
    current = projects.session
    assert not projects.open_project(store.path)
    assert projects.session is current  # the open project stays; the bad one never became it
    error = projects.errors[-1]
    assert error.title == "Project problem" and message in str(error) and str(manifest) in str(error)
    projects.save()  # nothing can be saved over the bad file
    assert {p: p.read_bytes() for p in store.path.rglob("*") if p.is_file()} == before
    with_start = make()
    assert with_start.start(store.path) and with_start.is_untitled  # the command line falls back to New
    assert message in str(with_start.errors[0])


def test_new_projects_take_the_settings_model_and_generation_values(make, isolated_settings):
    isolated_settings.steps, isolated_settings.window, isolated_settings.guidance = 16, 2, 6.5
    projects = make()
    projects.start()
    settings = projects.session.document.project.settings
    assert (settings.model, settings.width, settings.height) == ("studio-mini", 128, 128)
    assert (settings.steps, settings.window, settings.guidance_scale) == (16, 2, 6.5)


@pytest.fixture
def generating(make, qtbot, isolated_settings, engine_worker, pausing_session_factory):
    """A ProjectController wired to a GenerationController on the tiny model (64x64), as the window wires them."""
    from magi_engine.events import ChunkFinished
    from magi_studio.controllers.generation import GenerationController
    from magi_studio.document.commands import AddChunk, new_chunk

    engine = pausing_session_factory(lambda e: isinstance(e, ChunkFinished) and e.chunk == 0)
    job = engine_worker.use_session(engine)
    qtbot.waitUntil(lambda: job not in engine_worker.live_jobs, timeout=5000)
    isolated_settings.model, isolated_settings.width, isolated_settings.height = "tiny", 64, 64
    generation = GenerationController(None, engine_worker)
    projects = make(generation=generation)
    projects.start()
    project = projects.session.document.project
    shot = project.shots[0]
    edit(projects, "a red ball falls to the floor")
    for i in (1, 2):
        projects.session.push(AddChunk(shot.id, new_chunk(project, shot.id, i, "the blue square moves left")))
    yield projects, generation, engine, shot
    engine.resume()
    generation.stop(timeout_ms=5000)


def test_save_as_while_generating_keeps_every_chunk_in_the_new_bundle(generating, qtbot, tmp_path):
    projects, generation, engine, shot = generating
    ended = []
    generation.runEnded.connect(ended.append)
    scratch = projects.session.store.path
    generation.generate_shot(shot.id)
    # The engine holds after chunk 0, whose delivery to the GUI thread may still be queued then.
    qtbot.waitUntil(lambda: engine.paused.is_set() and active_path(shot)[0] is not None, timeout=10_000)
    assert projects.save_as(tmp_path / "Saved")  # chunk 0 is delivered: it is committed and copied
    assert not scratch.exists() and active_path(shot)[0] is not None
    engine.resume()
    qtbot.waitUntil(lambda: bool(ended), timeout=20_000)
    assert ended == ["finished"] and None not in active_path(shot)
    assert projects.save()
    reopened, store = open_project(tmp_path / "Saved.magi")  # every result's files are in the new bundle
    assert reopened == projects.session.document.project and len(reopened.results) == 3


def test_a_run_the_app_did_not_live_to_finish_is_offered_at_the_next_start_and_resumed(
        generating, make, qtbot, tmp_path, engine_worker, isolated_settings):
    from magi_studio.controllers.generation import GenerationController

    projects, generation, engine, shot = generating
    assert projects.save_as(tmp_path / "Film")
    film = tmp_path / "Film.magi"
    ended = []
    generation.runEnded.connect(ended.append)
    generation.generate_shot(shot.id)
    assert read_run_marker(film).chunks == tuple((shot.id, c.id) for c in shot.chunks)
    # The engine holds after chunk 0; once it is committed and autosaved, the disk is what a kill would leave.
    qtbot.waitUntil(lambda: engine.paused.is_set() and active_path(shot)[0] is not None, timeout=10_000)
    qtbot.waitUntil(lambda: projects.autosaver.pending == 0 and (film / AUTOSAVE).is_file(), timeout=5000)
    shutil.copytree(film, tmp_path / "Killed.magi")
    engine.resume()
    qtbot.waitUntil(lambda: bool(ended), timeout=20_000)
    assert ended == ["finished"] and read_run_marker(film) is None  # a normal end leaves no marker

    isolated_settings.add_recent_file(tmp_path / "Killed.magi")  # the next start reopens it
    again = GenerationController(None, engine_worker)
    after = make(generation=again)
    after.prompts.resume = True
    resumed = []
    again.runEnded.connect(resumed.append)
    assert after.start() and after.path == tmp_path / "Killed.magi"
    assert after.prompts.asked == [("recover", "Killed"), ("resume", "1 of 3")]
    project = after.session.document.project
    kept = active_path(project.shots[0])[0]
    committed = []
    again.chunkCommitted.connect(lambda shot_id, chunk_id, result_id: committed.append(chunk_id))
    qtbot.waitUntil(lambda: bool(resumed), timeout=20_000)
    assert resumed == ["finished"] and committed == [c.id for c in project.shots[0].chunks[1:]]  # only the missing
    assert active_path(project.shots[0])[0] == kept and None not in active_path(project.shots[0])
    assert read_run_marker(tmp_path / "Killed.magi") is None
    again.stop(timeout_ms=5000)


def test_an_interrupted_run_declined_is_not_offered_again(make, tmp_path, engine_worker):
    from magi_studio.controllers.generation import GenerationController

    project, store = rich_project(tmp_path)  # shot 3 is not generated
    store.save(project)
    third = project.shots[2]
    write_run_marker(store.path, [(third.id, chunk.id) for chunk in third.chunks])
    projects = make(generation=GenerationController(None, engine_worker))
    assert projects.open_project(store.path)
    assert projects.prompts.asked == [("resume", "0 of 2")] and read_run_marker(store.path) is None
    assert projects.close_project() and projects.open_project(store.path) and projects.prompts.asked[1:] == []
    assert "0 of 2 chunks were finished. Resume generating?" in resume_box(0, 2).text()


def test_closing_while_generating_asks_first_and_keep_working_leaves_the_run_alone(generating, qtbot):
    projects, generation, engine, shot = generating
    ended = []
    generation.runEnded.connect(ended.append)
    generation.generate_shot(shot.id)
    qtbot.waitUntil(engine.paused.is_set, timeout=10_000)
    projects.prompts.stop = False  # Keep Working
    assert not projects.close_project() and generation.is_generating() and projects.session is not None
    assert projects.prompts.asked == [("stop_run", "Stop and Close")]  # asked before anything was stopped
    engine.resume()
    qtbot.waitUntil(lambda: bool(ended), timeout=20_000)
    assert ended == ["finished"] and None not in active_path(shot) and engine.after_cancel == []


def test_stop_and_close_commits_the_finished_chunks_then_asks_about_saving(generating, qtbot, tmp_path):
    projects, generation, engine, shot = generating
    projects.save_as(tmp_path / "Film")
    delivered = []
    generation.worker.event.connect(lambda job, event: isinstance(event, ChunkFinished) and delivered.append(event.chunk))
    generation.generate_shot(shot.id)
    qtbot.waitUntil(engine.paused.is_set, timeout=10_000)
    engine.resume()  # the close below cancels it within one step
    projects.prompts.unsaved = SAVE
    assert projects.close_project() and not generation.is_generating()
    assert [kind for kind, _ in projects.prompts.asked[-2:]] == ["stop_run", "unsaved"]
    saved = open_project(tmp_path / "Film.magi")[0]
    assert delivered and len(saved.results) == len(delivered)  # nothing the engine finished was lost


def test_cancel_at_the_save_question_lets_the_stopped_run_go_on(generating, qtbot):
    projects, generation, engine, shot = generating
    ended = []
    generation.runEnded.connect(ended.append)
    generation.generate_shot(shot.id)
    qtbot.waitUntil(engine.paused.is_set, timeout=10_000)
    engine.resume()
    projects.prompts.unsaved = CANCEL
    assert not projects.close_project() and ended == ["cancelled"]
    assert generation.is_generating()  # from the first chunk the stop left undone
    qtbot.waitUntil(lambda: len(ended) == 2, timeout=20_000)
    assert ended[-1] == "finished" and None not in active_path(shot) and len(shot.takes) == 1


def test_the_last_project_reopens_at_start_and_after_a_crash_with_its_recovery_offer(make, tmp_path, qtbot,
                                                                                      isolated_settings):
    first = make()
    first.start()
    edit(first, "saved")
    assert first.save_as(tmp_path / "Film")
    assert first.close_project()
    again = make()
    assert again.start() and again.path == tmp_path / "Film.magi" and again.prompts.asked == []
    assert first_prompt(again.session.document.project) == "saved" and not again.is_dirty()
    assert again.close_project()

    crashing = make(autosave_interval_ms=20)
    crashing.start()
    edit(crashing, "unsaved work")
    qtbot.waitUntil(lambda: (tmp_path / "Film.magi" / AUTOSAVE).is_file(), timeout=5000)
    qtbot.waitUntil(lambda: crashing.autosaver.pending == 0, timeout=5000)
    dies(crashing)  # the next start is the crashed project with its autosave offered, not Untitled
    after = make()
    assert after.start() and after.path == tmp_path / "Film.magi"
    assert after.prompts.asked == [("recover", "Film")]
    assert first_prompt(after.session.document.project) == "unsaved work" and after.is_dirty()

    dies(after)
    isolated_settings.reopen_last_project = False
    fresh = make()
    assert fresh.start() and fresh.is_untitled and fresh.prompts.asked == []
    isolated_settings.reopen_last_project = True
    shutil.rmtree(tmp_path / "Film.magi")  # a vanished last project: a new one, without an error at start
    gone = make()
    assert gone.start() and gone.is_untitled and gone.errors == []


def test_the_open_dialog_opens_a_magi_folder_as_one_item(qtbot, tmp_path):
    project, store = rich_project(tmp_path)
    store.save(project)
    (tmp_path / "Other folder").mkdir()
    for how in ("open button", "double-click"):
        dialog = ProjectOpenDialog(None, str(tmp_path))
        qtbot.addWidget(dialog)
        dialog.show()
        view = dialog.findChild(QListView, "listView")
        model = view.model()
        qtbot.waitUntil(lambda: model.rowCount(view.rootIndex()) == 2, timeout=5000)
        rows = {model.index(r, 0, view.rootIndex()).data(): model.index(r, 0, view.rootIndex()) for r in range(2)}
        item = rows[store.path.name]
        icon = dialog.iconProvider().icon(QFileInfo(str(store.path)))
        assert icon.cacheKey() != dialog.iconProvider().icon(QFileInfo(str(tmp_path / "Other folder"))).cacheKey()
        if how == "open button":
            view.setCurrentIndex(item)
            dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Open).click()
        else:
            view.activated.emit(item)
        assert dialog.result() == QDialog.DialogCode.Accepted and dialog.chosen == store.path, how
    other = ProjectOpenDialog(None, str(tmp_path))  # an ordinary folder is stepped into, as in any dialog
    qtbot.addWidget(other)
    other.show()
    view = other.findChild(QListView, "listView")
    qtbot.waitUntil(lambda: view.model().rowCount(view.rootIndex()) == 2, timeout=5000)
    rows = [view.model().index(r, 0, view.rootIndex()) for r in range(2)]
    view.activated.emit(next(index for index in rows if index.data() == "Other folder"))
    assert other.isVisible() and other.chosen is None and other.directory().dirName() == "Other folder"


def test_the_recovery_question_gives_a_human_date(qtbot):
    locale = QLocale(QLocale.Language.English, QLocale.Country.UnitedKingdom)
    now = datetime(2026, 12, 6, 18, 0)
    local_afternoon = datetime(2026, 12, 6, 14, 32).astimezone()  # the store writes UTC: it is shown local
    assert human_time(local_afternoon.astimezone(timezone.utc).isoformat(), now, locale) == "today at 14:32"
    assert human_time("2026-12-05T09:05:00", now, locale) == "yesterday at 09:05"
    older = human_time((now - timedelta(days=30)).isoformat(), now, locale)
    assert older.startswith("on ") and "6 November 2026" in older and older.endswith("at 18:00")
    assert human_time("not a time", now, locale) == "not a time"
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    box = recovery_box("Film", stamp)
    qtbot.addWidget(box)
    assert "“Film” has unsaved work from today at " in box.text() and stamp not in box.text()
    assert "keep the last saved version" in box.informativeText()
    untitled = recovery_box("Untitled", stamp, saved=False)  # nothing saved to go back to
    qtbot.addWidget(untitled)
    assert "start a new project" in untitled.informativeText() and "saved version" not in untitled.informativeText()


def test_a_project_open_in_another_window_is_not_opened_again_but_a_copy_of_its_folder_is(make, tmp_path):
    first = make()
    first.start()
    edit(first, "mine")
    assert first.save_as(tmp_path / "Film")
    shutil.copytree(tmp_path / "Film.magi", tmp_path / "Copy.magi")  # a copy made while it is open
    busy = ("“Film” is open in another MAGI Studio window. Close it there first: two windows saving one project "
            "would each overwrite the other's work.")
    second = make()
    assert second.start() and second.is_untitled  # the last project is open elsewhere: said, and a new one
    assert [str(e) for e in second.errors] == [busy]
    assert not second.open_project(tmp_path / "Film.magi")
    assert second.is_untitled and second.prompts.asked == []  # nothing asked, nothing closed
    assert [str(e) for e in second.errors] == [busy, busy]
    assert second.open_project(tmp_path / "Copy.magi")  # the copy carries no lock
    assert first.close_project()
    assert second.open_project(tmp_path / "Film.magi")  # closed there: it opens here, and is held here now
    assert not first.open_project(tmp_path / "Film.magi") and [str(e) for e in first.errors] == [busy]
