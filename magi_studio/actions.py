"""Every user command of the main window, declared once: id, text, icon, shortcut, handler.

The table below is the single source for the menus, the toolbar, the shortcuts and the Help >
Keyboard Shortcuts dialog. A handler is an attribute path on its target, resolved when the target is
bound, so a renamed method fails at start-up (and in the tests) instead of leaving a dead menu entry:

* target "window" (the host the ActionSet is built for): "player.toggle_play", "close", "timeline.add_chunk";
* target "studio" (magi_studio.studio.Studio, which owns the project and generation controllers):
  "projects.save", "export_video" — bound by `ActionSet.bind("studio", studio)`. Until then these
  actions have nothing to act on and stay disabled, never faked (a bare MainWindow in tests).

The main window enables the editing and generation actions as the selection allows. CONTEXT_KEYS
lists the keys that belong to one widget (the storyboard strip, a seed field, the scrub bar) rather
than to an action, so that Help > Keyboard Shortcuts shows every key the app answers to.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Iterator

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenuBar, QToolBar, QWidget

from magi_studio.theme import icon

WINDOW, STUDIO = "window", "studio"

#: Menu titles, in menu bar order.
MENUS = ("&File", "&Edit", "&Generate", "&Playback", "&View", "&Help")


@dataclass(frozen=True)
class ActionSpec:
    id: str
    text: str
    menu: str
    #: Attribute path on the target, called with no arguments (checkable: with the new state).
    handler: str | None
    icon: str | None = None
    #: Portable text ("Ctrl+S"; Qt shows Ctrl as Cmd on macOS). Not StandardKey: some platforms bind none.
    shortcut: str | None = None
    tip: str = ""
    checkable: bool = False
    toolbar: bool = False
    #: A separator precedes this action in its menu (and in the toolbar, if it is shown there).
    group_start: bool = False
    #: Drawn as the toolbar's one accent (primary) button.
    primary: bool = False
    role: QAction.MenuRole = QAction.MenuRole.NoRole
    #: Which object `handler` is looked up on: the host window, or the Studio once it binds itself.
    target: str = WINDOW
    #: More keys for the same command (Redo: Ctrl+Y beside Ctrl+Shift+Z), listed after `shortcut`.
    alternates: tuple[str, ...] = ()

    def key_sequence(self) -> QKeySequence:
        return QKeySequence() if self.shortcut is None else QKeySequence(self.shortcut)

    def key_sequences(self) -> list[QKeySequence]:
        """Every key of the command, the main one first."""
        return [] if self.shortcut is None else [QKeySequence(k) for k in (self.shortcut, *self.alternates)]

    def plain_text(self) -> str:
        """The text without mnemonic ampersands or a trailing ellipsis."""
        return self.text.replace("&&", "\0").replace("&", "").replace("\0", "&").removesuffix("…")


ACTIONS: tuple[ActionSpec, ...] = (
    # File — the project controller (magi_studio.controllers.project) through the Studio.
    ActionSpec("file.new", "&New Project", "&File", "projects.new_project", "new", "Ctrl+N", "Start a new storyboard",
               toolbar=True, target=STUDIO),
    ActionSpec("file.open", "&Open Project…", "&File", "projects.open_project", "open", "Ctrl+O",
               "Open a saved project", toolbar=True, target=STUDIO),
    ActionSpec("file.save", "&Save", "&File", "projects.save", "save", "Ctrl+S", "Save the project", toolbar=True,
               target=STUDIO),
    ActionSpec("file.save_as", "Save &As…", "&File", "projects.save_as", None, "Ctrl+Shift+S",
               "Save the project under a new name", target=STUDIO),
    ActionSpec("file.export", "&Export Video…", "&File", "export_video", "export", "Ctrl+E",
               "Write the storyboard's active takes to an mp4", group_start=True, toolbar=True, target=STUDIO),
    ActionSpec("file.quit", "&Quit", "&File", "close", None, "Ctrl+Q", "Close MAGI Studio", group_start=True,
               role=QAction.MenuRole.QuitRole),
    # Edit — every edit is a document command on the undo stack (document_session); the timeline does them.
    ActionSpec("edit.undo", "&Undo", "&Edit", "undo", "undo", "Ctrl+Z", "Undo the last edit", toolbar=True,
               group_start=True),
    ActionSpec("edit.redo", "&Redo", "&Edit", "redo", "redo", "Ctrl+Shift+Z", "Redo the last undone edit",
               toolbar=True, alternates=("Ctrl+Y",)),
    ActionSpec("edit.add_chunk", "&Add Chunk", "&Edit", "timeline.add_chunk", "add-chunk", "Ctrl+Shift+N",
               "Add a 24-frame chunk after the selected one", group_start=True),
    ActionSpec("edit.insert_chunk", "&Insert Chunk Before", "&Edit", "timeline.insert_chunk", None, "Ins",
               "Insert a chunk before the selected one"),
    ActionSpec("edit.duplicate_chunk", "D&uplicate Chunk", "&Edit", "timeline.duplicate_chunk", "duplicate",
               "Ctrl+D", "Duplicate the selected chunk's prompt and seed"),
    ActionSpec("edit.delete_chunk", "&Delete Chunk", "&Edit", "timeline.delete_chunk", "delete", "Del",
               "Delete the selected chunk (its generated frames stay in the project until it is saved)"),
    ActionSpec("edit.move_left", "Move Chunk &Left", "&Edit", "timeline.move_chunk_left", None, "Ctrl+Left",
               "Move the selected chunk one place earlier (into the previous shot at a shot's start)",
               group_start=True),
    ActionSpec("edit.move_right", "Move Chunk Ri&ght", "&Edit", "timeline.move_chunk_right", None, "Ctrl+Right",
               "Move the selected chunk one place later (into the next shot at a shot's end)"),
    ActionSpec("edit.split_shot", "S&plit Shot at Chunk", "&Edit", "timeline.split_shot", None, "Ctrl+K",
               "The selected chunk and the ones after it become a new shot that continues this one",
               group_start=True),
    ActionSpec("edit.new_shot", "New S&hot", "&Edit", "timeline.new_shot", None, "Ctrl+Alt+N",
               "Start a new shot after the selected one"),
    ActionSpec("edit.rename_shot", "Re&name Shot", "&Edit", "timeline.rename_shot", None, "F2",
               "Rename the selected shot"),
    ActionSpec("edit.reference_image", "Set &Reference Image…", "&Edit", "timeline.choose_reference_image", "image",
               "Ctrl+I", "Use an image as the first frame of the selected shot (or drop one on the shot)",
               group_start=True),
    ActionSpec("edit.lock_seed", "Loc&k Seed", "&Edit", "timeline.toggle_seed_lock", None, "Ctrl+L",
               "Keep the selected chunk's seed when it is regenerated"),
    ActionSpec("edit.new_seed", "New S&eed", "&Edit", "timeline.new_seed", None, "Ctrl+Shift+E",
               "Give the selected chunk a new random seed"),
    ActionSpec("edit.settings", "&Settings…", "&Edit", "show_settings", "settings", "Ctrl+,", "Model, device and "
               "generation settings", group_start=True, role=QAction.MenuRole.PreferencesRole, target=STUDIO),
    # Generate
    ActionSpec("generate.run", "&Generate", "&Generate", "generate_storyboard", "generate", "Ctrl+Return",
               "Generate the chunks that have no frames yet", toolbar=True, group_start=True, primary=True),
    ActionSpec("generate.draft", "&Draft Mode", "&Generate", "set_draft_mode", None, "Ctrl+Shift+D",
               "Generate quick drafts to iterate on: fewer steps and a smaller picture, same prompts and seeds "
               "(Render at Final Quality makes a draft take again at the project's settings)", checkable=True,
               toolbar=True),
    ActionSpec("generate.shot", "Generate S&hot", "&Generate", "timeline.request_generate_shot", None,
               "Ctrl+Shift+Return", "Generate the selected shot's chunks that have no frames yet"),
    ActionSpec("generate.from", "Generate &From Chunk", "&Generate", "timeline.request_generate_from", None, "Ctrl+G",
               "Keep the chunks before the selected one; generate it and the rest of its shot"),
    ActionSpec("generate.in_out", "Generate &In/Out Range", "&Generate", "generate_in_out", None, "Ctrl+Shift+G",
               "Generate the chunks the player's in/out range touches: each shot in it from its first chunk in the "
               "range on, with the seeds on the cards (mark the range with I and O)"),
    ActionSpec("generate.regenerate", "&Regenerate From Chunk", "&Generate", "timeline.request_regenerate",
               "regenerate", "Ctrl+R",
               "Keep the chunks before the selected one, make it and the rest again as a new take"),
    ActionSpec("generate.variations", "Generate &Variations…", "&Generate", "takes_view.generate_variations", None,
               "Ctrl+Alt+G", "Make several takes of the selected chunk's shot from that chunk on, each with new "
               "seeds, to compare in the takes panel"),
    ActionSpec("generate.final_quality", "Render at &Final Quality", "&Generate", "takes_view.render_final_quality",
               None, None, "Make the selected draft take again at the project's settings: a new take with the same "
               "seeds and prompts (the draft take stays)"),
    ActionSpec("generate.cancel", "&Stop Generating", "&Generate", "cancel_engine_job", "stop", "Esc",
               "Stop within one denoising step; finished chunks are kept", toolbar=True),
    ActionSpec("generate.takes", "&Takes…", "&Generate", "show_takes", "takes", "Ctrl+T",
               "Compare and switch the takes of the selected shot", group_start=True),
    # Playback — the preview player is real from day one.
    ActionSpec("playback.play", "&Play / Pause", "&Playback", "player.toggle_play", "play", "Space",
               "Play or pause the preview"),
    # J/K/L shuttle, as in every editor: L again plays faster (2x, 4x, 8x), J the same backwards, K stops.
    ActionSpec("playback.backward", "Play &Backward / Faster", "&Playback", "player.shuttle_backward", None, "J",
               "Play backwards; again: twice as fast (up to 8x)", group_start=True),
    ActionSpec("playback.stop", "&Stop", "&Playback", "player.hold_stop", None, "K",
               "Stop playing; hold K and press J or L to step one frame"),
    ActionSpec("playback.forward", "Play F&orward / Faster", "&Playback", "player.shuttle_forward", None, "L",
               "Play forwards; again: twice as fast (up to 8x)"),
    ActionSpec("playback.step_back", "Previous &Frame", "&Playback", "player.step_backward", "step-back", "Left",
               "Step one frame back", group_start=True),
    ActionSpec("playback.step_forward", "&Next Frame", "&Playback", "player.step_forward", "step-forward", "Right",
               "Step one frame forward"),
    ActionSpec("playback.previous_chunk", "Pre&vious Chunk", "&Playback", "player.previous_chunk", "chunk-prev",
               "Shift+Left", "Go to the start of the previous chunk"),
    ActionSpec("playback.next_chunk", "Next &Chunk", "&Playback", "player.next_chunk", "chunk-next", "Shift+Right",
               "Go to the start of the next chunk"),
    ActionSpec("playback.start", "Go to &Start", "&Playback", "player.go_to_start", "go-start", "Home",
               "Go to the first frame", group_start=True),
    ActionSpec("playback.end", "Go to &End", "&Playback", "player.go_to_end", "go-end", "End",
               "Go to the last frame"),
    ActionSpec("playback.mark_in", "Mark &In", "&Playback", "player.mark_in", None, "I",
               "Start the in/out range at the playhead (Loop plays the range)", group_start=True),
    ActionSpec("playback.mark_out", "Mark O&ut", "&Playback", "player.mark_out", None, "O",
               "End the in/out range at the playhead"),
    ActionSpec("playback.go_in", "Go to I&n", "&Playback", "player.go_to_in", None, "Shift+I",
               "Move the playhead to the in mark"),
    ActionSpec("playback.go_out", "Go to Ou&t", "&Playback", "player.go_to_out", None, "Shift+O",
               "Move the playhead to the out mark"),
    ActionSpec("playback.clear_in_out", "Cle&ar In and Out", "&Playback", "player.clear_in_out", None, "Alt+X",
               "Remove the in/out range: Loop plays everything again"),
    ActionSpec("playback.loop", "&Loop", "&Playback", "player.set_looping", "loop", "Ctrl+/",
               "Loop the in/out range, or the whole video when none is marked", checkable=True,
               group_start=True),
    # View — the docks around the player.
    ActionSpec("view.storyboard", "&Storyboard Panel", "&View", "timeline_dock.set_shown", None, "Ctrl+1",
               "Show or hide the storyboard timeline", checkable=True),
    ActionSpec("view.takes", "&Takes Panel", "&View", "takes_dock.set_shown", None, "Ctrl+2",
               "Show or hide the takes of the selected shot", checkable=True),
    ActionSpec("view.history", "&History Panel", "&View", "history_dock.set_shown", None, "Ctrl+3",
               "Show or hide the undo history", checkable=True),
    ActionSpec("view.queue", "&Queue Panel", "&View", "queue_dock.set_shown", None, "Ctrl+4",
               "Show or hide what the run will generate, in order", checkable=True),
    ActionSpec("view.frame_numbers", "&Frame Numbers", "&View", "player.set_frame_counter", None, None,
               "Show the player's position as frame numbers instead of timecode (HH:MM:SS:FF)",
               checkable=True, group_start=True),
    ActionSpec("view.zoom_in", "Zoom &In", "&View", "timeline.zoom_in", None, "Ctrl+=",
               "Wider storyboard cards: the prompt and seed beside each picture (or Ctrl+wheel)", group_start=True),
    ActionSpec("view.zoom_out", "Zoom &Out", "&View", "timeline.zoom_out", None, "Ctrl+-",
               "Narrower storyboard cards: more of a long storyboard at once (or Ctrl+wheel)"),
    # Help
    ActionSpec("help.user_guide", "&User Guide", "&Help", "show_user_guide", None, None,
               "Open the user guide: the workflow, settings, shortcuts and the command line"),
    ActionSpec("help.shortcuts", "&Keyboard Shortcuts", "&Help", "show_shortcuts", "keyboard", "F1",
               "List every keyboard shortcut"),
    ActionSpec("help.welcome", "Show &Welcome", "&Help", "show_welcome", "info", None,
               "Show the introduction to MAGI Studio again"),
    ActionSpec("help.log_folder", "Show &Log Folder", "&Help", "show_log_folder", None, None,
               "Open the folder of MAGI Studio's log (magi-studio.log): what to attach to a bug report"),
    ActionSpec("help.about", "&About MAGI Studio", "&Help", "show_about", None, None, "Version and licences",
               role=QAction.MenuRole.AboutRole),
)


#: Keys that belong to one widget, not to an action: (where, what, keys), listed in Help > Keyboard Shortcuts.
CONTEXT_KEYS: tuple[tuple[str, str, str], ...] = (
    ("Storyboard", "Select previous / next chunk", "Left / Right"),
    ("Storyboard", "Select first / last chunk", "Home / End"),
    ("Storyboard", "Edit the selected chunk's prompt", "Return"),
    ("Storyboard", "Delete the selected chunk", "Backspace"),
    ("Text fields", "Leave the field: single keys are shortcuts again", "Esc"),
    ("Storyboard", "Zoom the cards around the mouse", "Ctrl+Wheel"),
    ("Storyboard overview", "Scroll there / select the chunk", "Click, drag / double-click"),
    ("Storyboard", "Seed one up / down (in a seed field)", "Up / Down"),
    ("Player", "One frame back / forward (K held down)", "K+J / K+L"),
    ("Scrub bar", "One chunk back / forward", "PgUp / PgDown"),
    ("Takes", "Make the selected take active", "Return"),
    ("Takes", "Compare A/B: the player flips between the compared take and the active one", "\\"),
)


class ActionSet:
    """The QActions built from ACTIONS for one host window, by id."""

    def __init__(self, host: QObject, specs: tuple[ActionSpec, ...] = ACTIONS) -> None:
        self.specs = specs
        self._actions: dict[str, QAction] = {}
        self._bound: set[str] = set()
        for spec in specs:
            if spec.id in self._actions:
                raise ValueError(f"action id {spec.id!r} is declared twice")
            self._actions[spec.id] = self._build(host, spec)
        self.bind(WINDOW, host)

    def bind(self, target: str, obj: QObject) -> None:
        """Connect the actions whose handlers live on `target` to `obj` and enable them (once per target)."""
        if target in self._bound:
            raise ValueError(f"actions of {target!r} are bound already")
        self._bound.add(target)
        for spec in self.specs:
            if spec.target == target and spec.handler is not None:
                self._connect(self._actions[spec.id], spec, obj)

    @staticmethod
    def _connect(action: QAction, spec: ActionSpec, obj: QObject) -> None:
        handler = operator.attrgetter(spec.handler)(obj)  # AttributeError: a declaration is stale
        if spec.checkable:
            action.toggled.connect(handler)
        else:
            action.triggered.connect(lambda checked=False, call=handler: call())
        action.setEnabled(True)

    @staticmethod
    def _build(host: QObject, spec: ActionSpec) -> QAction:
        action = QAction(spec.text, host)
        action.setObjectName(spec.id)
        if spec.icon:
            action.setIcon(icon(spec.icon))
        action.setShortcuts(spec.key_sequences())
        # Shortcuts work anywhere in the window; text inputs still get the keys they edit with
        # (Qt offers them the key first through ShortcutOverride).
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        tip = spec.tip or spec.plain_text()
        keys = spec.key_sequence().toString(QKeySequence.SequenceFormat.NativeText)
        action.setToolTip(f"{spec.plain_text()} ({keys})" if keys else spec.plain_text())
        action.setStatusTip(tip)
        action.setMenuRole(spec.role)
        action.setCheckable(spec.checkable)
        action.setEnabled(False)  # until its target is bound
        return action

    def __getitem__(self, action_id: str) -> QAction:
        return self._actions[action_id]

    def __iter__(self) -> Iterator[QAction]:
        return iter(self._actions.values())

    def spec(self, action_id: str) -> ActionSpec:
        return next(s for s in self.specs if s.id == action_id)

    def in_menu(self, menu: str) -> list[ActionSpec]:
        return [s for s in self.specs if s.menu == menu]

    # Rendering --------------------------------------------------------------------------------
    def fill_menu_bar(self, menu_bar: QMenuBar) -> None:
        for title in MENUS:
            menu = menu_bar.addMenu(title)
            menu.setObjectName(f"menu.{title.replace('&', '').lower()}")
            for position, spec in enumerate(self.in_menu(title)):
                if spec.group_start and position:
                    menu.addSeparator()
                menu.addAction(self._actions[spec.id])

    def fill_tool_bar(self, tool_bar: QToolBar) -> None:
        shown = [s for s in self.specs if s.toolbar]
        for position, spec in enumerate(shown):
            if position and (spec.group_start or spec.menu != shown[position - 1].menu):
                tool_bar.addSeparator()
            tool_bar.addAction(self._actions[spec.id])
            if spec.primary:
                button: QWidget | None = tool_bar.widgetForAction(self._actions[spec.id])
                if button is not None:
                    button.setProperty("accent", True)
                    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)

    def shortcut_rows(self) -> list[tuple[str, str, str]]:
        """(menu, command, shortcut text) for every action that has a shortcut, in menu order, then the
        keys of single widgets (CONTEXT_KEYS)."""
        rows = []
        for spec in self.specs:
            keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in spec.key_sequences())
            if keys:
                rows.append((spec.menu.replace("&", ""), spec.plain_text(), keys))
        return rows + list(CONTEXT_KEYS)
