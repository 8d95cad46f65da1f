"""The context menus of a chunk card and of a shot.

Each entry calls the same TimelineView method as the window's action of the same name, and shows
that action's shortcut (from the declarations in magi_studio.actions), so the menu teaches the keys.
The menus are built on demand and returned unshown: `card_menu(view, card).exec(pos)`; tests
trigger their actions directly.
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from magi_studio.actions import ACTIONS
from magi_studio.theme import icon
from magi_studio.timeline.glyphs import glyph

_SHORTCUTS = {spec.id: spec.shortcut for spec in ACTIONS if spec.shortcut}


def _add(menu: QMenu, text: str, call, *, action_id: str | None = None, icon_=None, enabled: bool = True,
         checked: bool | None = None, tip: str = "") -> QAction:
    shortcut = _SHORTCUTS.get(action_id or "")
    if shortcut:  # shown in the menu's shortcut column; the window's action owns the key itself
        text += "\t" + QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)
    action = menu.addAction(text)
    if icon_ is not None:
        action.setIcon(icon_)
    action.setEnabled(enabled)
    if checked is not None:
        action.setCheckable(True)
        action.setChecked(checked)
    if tip:
        action.setToolTip(tip)
        action.setStatusTip(tip)
    action.triggered.connect(lambda _checked=False: call())
    return action


def card_menu(view, card) -> QMenu:
    """Regenerate/generate, chunk edits, moves, split, seed and reference, for the card's chunk."""
    view.session.select(card.shot_id, card.chunk_id)  # every entry acts on the selection
    project = view.session.project
    shot = project.shot(card.shot_id)
    index = shot.chunk_index(card.chunk_id)
    chunk = shot.chunks[index]
    last_chunk = sum(len(s.chunks) for s in project.shots) <= 1
    shot_position = project.shot_index(shot.id)
    waiting = view.missing_context()  # its earlier chunks are not generated: a run would be refused
    menu = QMenu(view)
    menu.setObjectName("ChunkMenu")
    menu.setToolTipsVisible(True)
    # The two differ only in the seed; the entries say so, since a director picks between them by it.
    _add(menu, "Regenerate From Here (New Seed)", view.request_regenerate, action_id="generate.regenerate",
         icon_=icon("regenerate"), enabled=not waiting and view.has_listeners(view.regenerateRequested),
         tip=waiting or "Keep the chunks before this one; make this one again with a new seed (unless its seed is "
                        "locked or was edited), and the rest after it, as a new take")
    _add(menu, "Generate From Here (Same Seed)", view.request_generate_from, action_id="generate.from",
         enabled=not waiting and view.has_listeners(view.generateFromRequested),
         tip=waiting or "Keep the chunks before this one; generate this one and the rest of the shot with the seeds "
                        "on their cards (the same result again, unless a prompt or setting changed)")
    _add(menu, f"Generate {shot.name}", lambda: view.request_generate_shot(shot.id), action_id="generate.shot",
         icon_=icon("generate"), enabled=view.has_listeners(view.generateShotRequested))
    menu.addSeparator()
    _add(menu, "Add Chunk After", view.add_chunk, action_id="edit.add_chunk", icon_=icon("add-chunk"))
    _add(menu, "Insert Chunk Before", view.insert_chunk, action_id="edit.insert_chunk", icon_=glyph("insert-chunk"))
    _add(menu, "Duplicate", view.duplicate_chunk, action_id="edit.duplicate_chunk", icon_=icon("duplicate"))
    _add(menu, "Delete", view.delete_chunk, action_id="edit.delete_chunk", icon_=icon("delete"),
         enabled=not last_chunk)
    menu.addSeparator()
    _add(menu, "Move Left", view.move_chunk_left, action_id="edit.move_left", icon_=glyph("move-left"),
         enabled=index > 0 or shot_position > 0)
    _add(menu, "Move Right", view.move_chunk_right, action_id="edit.move_right", icon_=glyph("move-right"),
         enabled=index < len(shot.chunks) - 1 or shot_position < len(project.shots) - 1)
    _add(menu, "Split Shot Here", view.split_shot, action_id="edit.split_shot", icon_=glyph("split"),
         enabled=index > 0, tip="This chunk and the ones after it become a new shot that continues this one")
    menu.addSeparator()
    _add(menu, "Lock Seed", view.toggle_seed_lock, action_id="edit.lock_seed", icon_=glyph("lock"),
         checked=chunk.seed_locked)
    _add(menu, "New Seed", view.new_seed, action_id="edit.new_seed", icon_=glyph("dice"))
    if index == 0:
        menu.addSeparator()
        _add(menu, "Set Reference Image…", lambda: view.choose_reference_image(shot.id),
             action_id="edit.reference_image", icon_=icon("image"))
    return menu


def shot_menu(view, group) -> QMenu:
    """Generate, reference image, rename, new shot after, delete — for the group's shot."""
    project = view.session.project
    shot = project.shot(group.shot_id)
    if view.session.selected_shot_id != shot.id:
        view.session.select(shot.id, shot.chunks[0].id if shot.chunks else "")
    menu = QMenu(view)
    menu.setObjectName("ShotMenu")
    _add(menu, f"Generate {shot.name}", lambda: view.request_generate_shot(shot.id), action_id="generate.shot",
         icon_=icon("generate"), enabled=view.has_listeners(view.generateShotRequested))
    _add(menu, "Takes…", lambda: view.takesRequested.emit(shot.id), action_id="generate.takes", icon_=icon("takes"),
         enabled=bool(shot.takes))
    menu.addSeparator()
    _add(menu, "Set Reference Image…", lambda: view.choose_reference_image(shot.id),
         action_id="edit.reference_image", icon_=icon("image"))
    _add(menu, "Clear Reference Image", lambda: view.clear_reference_image(shot.id),
         enabled=shot.reference_asset_id is not None)
    menu.addSeparator()
    _add(menu, "Add Chunk", lambda: view.add_chunk_to(shot.id), icon_=icon("add-chunk"))
    _add(menu, "Rename Shot…", group.start_rename, action_id="edit.rename_shot", icon_=glyph("rename"))
    _add(menu, "New Shot After", view.new_shot, action_id="edit.new_shot", icon_=glyph("new-shot"))
    _add(menu, "Delete Shot", lambda: view.delete_shot(shot.id), icon_=icon("delete"),
         enabled=len(project.shots) > 1)
    return menu
