"""The timeline's edit operations: what the window's actions, the menus, the keys and the mouse do.

A mixin of TimelineView (which provides `session`, `_cards`, `_groups`, the signals): every operation
acts on the session's selection (or the ids given), builds its command with edits.py and pushes it
through the session, so it is one undo step; refused edits are reported through the session's
errorOccurred, never raised into Qt. Each returns whether it changed the document.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMetaMethod, Qt
from PySide6.QtWidgets import QFileDialog

from magi_studio.document.commands import DeleteShot, SetReferenceImage, SetShotStart
from magi_studio.document.planning import missing_context
from magi_studio.timeline import edits

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif);;All files (*)"


class TimelineEditing:
    #: Where the reference-image dialog opens: the folder of the last image chosen (None: the home folder).
    _image_folder: str | None = None

    def set_image_folder(self, folder: str) -> None:
        """Open the reference-image dialog in `folder` (the one remembered from an earlier session); one that is
        gone or empty opens the home folder instead."""
        self._image_folder = folder if folder and Path(folder).is_dir() else None

    def has_listeners(self, signal) -> bool:
        """Whether anything (the generation controller) listens to `signal`: otherwise its entries are disabled."""
        return self.isSignalConnected(QMetaMethod.fromSignal(signal))

    def selected_chunk(self):
        """The selected Chunk (None when no chunk is selected)."""
        selected = self._selected()
        return self.session.project.shot(selected[0]).chunk(selected[1]) if selected else None

    def availability(self) -> dict[str, bool]:
        """Which operations the selection allows, for enabling the window's actions."""
        session = self.session
        selected = self._selected()
        shot = session.selected_shot() if session else None
        project = session.project if session else None
        index = shot.chunk_index(selected[1]) if selected else 0
        position = project.shot_index(shot.id) if shot else 0
        ready = selected is not None and not self.missing_context()  # its earlier chunks are generated
        return {
            "document": session is not None,
            "add": bool(project and project.shots),
            "shot": shot is not None,
            "chunk": selected is not None,
            "delete": selected is not None and sum(len(s.chunks) for s in project.shots) > 1,
            "move_left": selected is not None and (index > 0 or position > 0),
            "move_right": selected is not None and (index < len(shot.chunks) - 1 or position < len(project.shots) - 1),
            "split": selected is not None and index > 0,
            "regenerate": ready and self.has_listeners(self.regenerateRequested),
            "generate_from": ready and self.has_listeners(self.generateFromRequested),
            "generate_shot": shot is not None and self.has_listeners(self.generateShotRequested),
        }

    def missing_context(self) -> str:
        """Why the selected chunk cannot be generated from yet (its earlier chunks, or the end of the shot
        it continues, are not generated), in one sentence; '' when it can or nothing is selected. A shot the
        run is making or will make (shots_in_run) counts as on its way: a request queues behind it."""
        selected = self._selected()
        if selected is None:
            return ""
        project = self.session.project
        shot = project.shot(selected[0])
        position = project.shot_index(shot.id)
        if shot.id in self.shots_in_run or (position > 0 and project.shots[position - 1].id in self.shots_in_run):
            return ""
        return missing_context(project, shot, shot.chunk_index(selected[1])) or ""

    def _selected(self) -> tuple[str, str] | None:
        session = self.session
        if session is None or not session.selected_chunk_id:
            return None
        return session.selected_shot_id, session.selected_chunk_id

    def _push(self, command) -> bool:
        return self.session is not None and self.session.try_push(command)

    def _apply(self, edit: edits.Edit | None) -> bool:
        if edit is None or not self._push(edit.command):
            return False
        if edit.select is not None:
            self.session.select(*edit.select)
        return True

    def _on_selected(self, make) -> bool:
        selected = self._selected()
        return selected is not None and self._apply(make(self.session.project, *selected))

    def add_chunk(self) -> bool:
        """A chunk after the selected one (at the end of the last shot when nothing is selected); its
        prompt takes the keyboard, so the next keys type it."""
        if self.session is None:
            return False
        selected = self._selected()
        if selected is None:
            shots = self.session.project.shots
            return bool(shots) and self._type_into_new(
                self._apply(edits.add_chunk_after(self.session.project, shots[-1].id, None)))
        return self._type_into_new(self._apply(edits.add_chunk_after(self.session.project, *selected)))

    def add_chunk_to(self, shot_id: str) -> bool:
        """A chunk at the end of a shot (its "+" button), ready to type its prompt."""
        return self.session is not None and self._type_into_new(
            self._apply(edits.add_chunk_after(self.session.project, shot_id, None)))

    def insert_chunk(self) -> bool:
        return self._type_into_new(self._on_selected(edits.insert_chunk_before))

    def _type_into_new(self, added: bool) -> bool:
        # A new chunk is selected by its edit: its empty prompt is what the user types next.
        if added:
            self.edit_prompt()
        return added

    def duplicate_chunk(self) -> bool:
        return self._on_selected(edits.duplicate_chunk)

    def delete_chunk(self) -> bool:
        return self._on_selected(edits.delete_chunk)

    def move_chunk_left(self) -> bool:
        return self._on_selected(lambda project, shot, chunk: edits.move_chunk(project, shot, chunk, -1))

    def move_chunk_right(self) -> bool:
        return self._on_selected(lambda project, shot, chunk: edits.move_chunk(project, shot, chunk, 1))

    def move_chunk_to(self, shot_id: str, chunk_id: str, to_shot_id: str, slot: int) -> bool:
        return self.session is not None and self._apply(
            edits.move_chunk_to(self.session.project, shot_id, chunk_id, to_shot_id, slot))

    def split_shot(self) -> bool:
        return self._on_selected(edits.split_shot)

    def new_shot(self) -> bool:
        """A shot after the selected one; its shot prompt (the subject and style) takes the keyboard."""
        added = self.session is not None and self._apply(
            edits.new_shot_after(self.session.project, self.session.selected_shot_id or None))
        if added and self.session.selected_shot_id in self._groups:
            self._groups[self.session.selected_shot_id].prompt_edit.setFocus(Qt.FocusReason.OtherFocusReason)
        return added

    def delete_shot(self, shot_id: str) -> bool:
        """Delete a whole shot (never the last one); its results stay in the project for undo."""
        project = self.session.project if self.session else None
        if project is None or len(project.shots) <= 1:
            return False
        position = project.shot_index(shot_id)
        neighbour = project.shots[position + 1 if position + 1 < len(project.shots) else position - 1]
        chunk = neighbour.chunks[0].id if neighbour.chunks else ""
        return self._apply(edits.Edit(DeleteShot(shot_id), (neighbour.id, chunk)))

    def toggle_seed_lock(self) -> bool:
        selected = self._selected()
        if selected is None:
            return False
        chunk = self.session.project.shot(selected[0]).chunk(selected[1])
        return self._apply(edits.set_seed_locked(self.session.project, *selected, not chunk.seed_locked))

    def new_seed(self) -> bool:
        return self._on_selected(edits.new_seed)

    def rename_shot(self) -> None:
        if self.session is not None and self.session.selected_shot_id in self._groups:
            self._groups[self.session.selected_shot_id].start_rename()

    def edit_prompt(self) -> None:
        selected = self._selected()
        if selected is not None:
            prompt = self._cards[selected[1]].prompt
            prompt.setFocus(Qt.FocusReason.ShortcutFocusReason)
            prompt.moveCursor(prompt.textCursor().MoveOperation.End)

    def set_shot_start(self, shot_id: str, start: str) -> bool:
        if self.session is None or self.session.project.shot(shot_id).start == start:
            return False
        return self._push(SetShotStart(shot_id, start))

    def choose_reference_image(self, shot_id: str | None = None) -> bool:
        """Set reference image…: a file dialog, then set_reference_image."""
        shot_id = shot_id or (self.session.selected_shot_id if self.session else "")
        if not shot_id:
            return False
        name = self.session.project.shot(shot_id).name
        folder = self._image_folder or str(Path.home())  # not the process's working folder
        path, _ = QFileDialog.getOpenFileName(self, f"Reference image for {name}", folder, IMAGE_FILTER)
        if path:
            self._image_folder = str(Path(path).parent)
            self.imageFolderChosen.emit(self._image_folder)
        return bool(path) and self.set_reference_image(shot_id, path)

    def set_reference_image(self, shot_id: str, path: str) -> bool:
        """Import an image file as the shot's first frame. A file that is not an image is reported (the
        engine's InputError, through the session's errorOccurred) and changes nothing."""
        if self.session is None:
            return False
        try:
            asset = self.session.store.import_image(path)
        except Exception as error:  # InputError/ProjectError: one clear sentence for the user
            self.session.report_error(error)
            return False
        return self._push(SetReferenceImage(shot_id, asset))

    def clear_reference_image(self, shot_id: str | None = None) -> bool:
        shot_id = shot_id or (self.session.selected_shot_id if self.session else "")
        return bool(shot_id) and self._push(SetReferenceImage(shot_id, None))

    # Generation requests (the controller listens) ---------------------------------------------
    def request_regenerate(self) -> bool:
        """Regenerate from the selected chunk: emits regenerateRequested for the generation controller."""
        selected = self._selected()
        if selected is None or not self.has_listeners(self.regenerateRequested):
            return False
        with self.held_redraws():  # the controller's changes to the document and the cards' states
            self.regenerateRequested.emit(*selected)
        return True

    def request_generate_from(self) -> bool:
        """Generate from the selected chunk on (its earlier chunks kept): emits generateFromRequested."""
        selected = self._selected()
        if selected is None or not self.has_listeners(self.generateFromRequested):
            return False
        with self.held_redraws():
            self.generateFromRequested.emit(*selected)
        return True

    def request_generate_shot(self, shot_id: str | None = None) -> bool:
        shot_id = shot_id or (self.session.selected_shot_id if self.session else "")
        if not shot_id or not self.has_listeners(self.generateShotRequested):
            return False
        with self.held_redraws():
            self.generateShotRequested.emit(shot_id)
        return True
