"""TakesView: the takes of the selected shot as a tree — preview one, compare, make it active, rename, delete.

Each regeneration of a shot from chunk N made a take that shares the chunks before N with its
parent; the tree shows that ancestry with, per take, where it starts, how many chunks it made and
when. Under it, the selected take's prompts and what it changed from its parent (specs_text), and
its chunks as a filmstrip. Selecting a take previews it in the player (the session's preview take:
the document does not change); A/B (the button or "\\") flips the player between that take and the
active one at the same frame, so the two can be compared frame-locked; "Side by Side" shows two takes
next to each other in the player instead (the selected take and the active one, or two takes
selected with Ctrl+click; `sideBySideRequested`, shown by takes.side_by_side.SideBySide, which Esc
or the button again ends); "Make Active" switches the
shot's active take (SetActiveTake, which also puts the take's specs back on the cards), so the
timeline and the player show it at once, with no generation. Renaming is inline (F2 or the button,
RenameTake); deleting asks first (DeleteTake; undo brings it back).
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QInputDialog, QLabel, QMenu, QMessageBox,
                               QPlainTextEdit, QPushButton, QScrollArea, QSplitter, QTabWidget, QToolButton, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from magi_studio.document.errors import ProjectError
from magi_studio.document.model import Shot, Take, is_draft_take, take_boundary
from magi_studio.document.take_commands import DeleteTake, RenameTake, SetActiveTake
from magi_studio.takes.filmstrip import GAP, TILE, TakeFilmstrip
from magi_studio.takes.specs_text import take_differences, take_prompts
from magi_studio.takes.variations import VariationRun
from magi_studio.theme import icon
from magi_studio.timeline.glyphs import glyph
from magi_studio.timeline.style import set_style_property
from magi_studio.widgets.elided_label import ElidedLabel

TAKE_ID = Qt.ItemDataRole.UserRole
COLUMNS = ("Take", "From", "Chunks", "Made")
#: The tree always shows at least this many takes, however short the panel (the details give way).
MIN_VISIBLE_TAKES = 4
#: What marks a take made in Draft mode (the tree's Chunks column, the cards' badge), in the drafts' amber.
DRAFT_BADGE = "Draft"
DRAFT_COLOUR = "#f3c060"
#: Flips the player between the selected take and the active one (A/B compare).
COMPARE_KEY = "\\"

TAKES_QSS = """
#TakesView { background: #17191e; }
#TakesTitle { font-weight: bold; color: #f1f2f6; font-size: 10.5pt; }
#TakesHint { color: #9aa2b1; }
#TakesHint[preview="true"] { color: #7fdcef; font-weight: bold; }
#TakesTree::item { padding: 3px 4px; }
#TakesEmpty { color: #6b7280; }
#TakeDetails { color: #c9cedb; background: transparent; border: none; }
#TakesView QPushButton:checked { background: #22b8d6; color: #0d0e11; }
#TakeFilmstripScroll, #TakeFilmstripScroll > QWidget > QWidget { background: transparent; }
"""


def created_text(shot: Shot, take: Take, project) -> str:
    """When the take was made: its first result's creation time, in local time."""
    stamps = [project.results[r].created for r in take.results.values() if r in project.results
              and project.results[r].created]
    if not stamps:
        return "—"
    try:
        made = datetime.fromisoformat(min(stamps)).astimezone()
    except ValueError:
        return min(stamps)
    return made.strftime("%H:%M") if made.date() == datetime.now().astimezone().date() else made.strftime("%b %d")


def details_text(project, shot: Shot, take: Take) -> str:
    """The take's prompts, after what it changed from its parent (the Prompts tab and the tree's tooltip)."""
    parent = shot.find_take(take.parent_id)
    draft = [f"{take.name} is a draft{draft_made_text(project, take)}: Render at Final Quality makes it again at the "
             "project's settings."] if is_draft_take(take) else []
    if parent is None:
        lines = draft + [f"{take.name} is a first take of {shot.name}."]
    else:
        changes = take_differences(project, shot, take)
        lines = draft + [f"Changed from {parent.name}:" if changes else f"Same specs as {parent.name} (new run)."]
        lines += [f"  {change}" for change in changes]
    return "\n".join(lines + ["Prompts:"] + [f"  {line}" for line in take_prompts(shot, take)])


def draft_made_text(project, take: Take) -> str:
    """" (4 steps, 64×64)": how a draft take's first draft result was made ("" when it is not listed)."""
    result = next((project.results[r] for c, r in take.results.items()
                   if r in project.results and c in take.specs and take.specs[c].draft), None)
    if result is None:
        return ""
    steps = (result.sampling or {}).get("num_steps")
    return f" ({f'{steps} steps, ' if steps else ''}{result.width}×{result.height})"


def chunks_text(take: Take) -> str:
    """The tree's Chunks column: "3", "3 · Draft" (all drafts), "3 · 1 draft" (a take filled on in Draft mode)."""
    made, drafts = len(take.results), sum(1 for c in take.results if c in take.specs and take.specs[c].draft)
    if not drafts:
        return str(made)
    return f"{made} · {DRAFT_BADGE}" if drafts >= made else f"{made} · {drafts} {DRAFT_BADGE.lower()}"


def from_text(shot: Shot, take: Take) -> str:
    if take.first_chunk_id is None:
        return "Start"
    boundary = take_boundary(shot, take)
    return f"Chunk {boundary + 1}" if boundary < len(shot.chunks) else "—"


class TakesView(QWidget):
    #: (shot id, take id) to show beside the player's picture; ("", "") to stop comparing side by side.
    sideBySideRequested = Signal(str, str)
    #: (ProjectError) a request of this view could not be made; the window says why (its error banner).
    errorReported = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("TakesView")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setStyleSheet(TAKES_QSS)
        self.session = None
        self._connections: list = []
        self._signature = None
        self._filling = False
        #: Asked before deleting a take (tests replace it).
        self.confirm_delete = self._ask_delete
        #: Asked how many variations to generate; None cancels (tests replace it).
        self.ask_variation_count = self._ask_variation_count
        #: Generates variations once a generation controller is attached (set_generation).
        self.variations: VariationRun | None = None
        #: The generation controller Render at Final Quality queues on (set_generation; None: not available).
        self.generation = None

        self.title = QLabel("Takes")
        self.title.setObjectName("TakesTitle")
        # One line beside the title, cut where it does not fit (whole in its tool tip): the takes below stay where
        # they are when a preview starts or ends, and the panel asks no more height of the window for it.
        self.hint = ElidedLabel(shortest="")
        self.hint.setObjectName("TakesHint")
        self.tree = QTreeWidget()
        self.tree.setObjectName("TakesTree")
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setRootIsDecorated(True)
        self.tree.setIndentation(14)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)
        # Ctrl+click selects a second take to compare side by side with the current one.
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setIconSize(QSize(14, 14))
        header = self.tree.header()
        # The names take the room they need; "Made" takes what is left (a narrow panel scrolls sideways).
        header.setStretchLastSection(True)
        for column in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.tree.setToolTip("Select a take to preview it in the player; ✓ marks the active take")
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._show_context_menu)
        self.empty = QLabel()
        self.empty.setObjectName("TakesEmpty")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.strip_caption = QLabel()
        self.strip_caption.setObjectName("TakesHint")
        self.filmstrip = TakeFilmstrip()
        self.strip_scroll = QScrollArea()
        self.strip_scroll.setObjectName("TakeFilmstripScroll")
        self.strip_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.strip_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.strip_scroll.setWidget(self.filmstrip)
        self.strip_scroll.setFixedHeight(self.filmstrip.height() + 12)
        # A text view rather than a word-wrapped label in a scroll area: it lays out only the lines in view, and a
        # take being generated changes its text with every committed chunk (the label's whole-text layout in its
        # scroll area was 5-7 ms of GUI-thread CPU per chunk of a 20-chunk take's run).
        self.details = QPlainTextEdit()
        self.details.setObjectName("TakeDetails")
        self.details.setReadOnly(True)
        self.details.setFrameShape(QPlainTextEdit.Shape.NoFrame)
        self.details.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        chunks_page = QWidget()
        chunks_layout = QVBoxLayout(chunks_page)
        chunks_layout.setContentsMargins(4, 4, 4, 0)
        chunks_layout.setSpacing(2)
        chunks_layout.addWidget(self.strip_caption)
        chunks_layout.addWidget(self.strip_scroll)
        chunks_layout.addStretch(1)
        # The take's prompts and chunks share one tabbed pane under the tree, which gives way to the tree
        # when the panel is short (1366x768): the tree keeps MIN_VISIBLE_TAKES rows.
        self.detail_tabs = QTabWidget()
        self.detail_tabs.setObjectName("TakeDetailTabs")
        self.detail_tabs.setDocumentMode(True)
        self.detail_tabs.addTab(self.details, "Prompts")
        self.detail_tabs.addTab(chunks_page, "Chunks")
        self.detail_tabs.setMinimumHeight(self.detail_tabs.tabBar().sizeHint().height()
                                          + 3 * self.fontMetrics().height())
        self.activate_button = QPushButton("Make Active")
        self.activate_button.setIcon(glyph("check"))
        self.activate_button.setToolTip("Use this take in the storyboard, the player and the export (Enter)")
        self.compare_button = QPushButton("A/B")
        self.compare_button.setCheckable(True)
        self.compare_button.setToolTip("Compare: flip the player between this take and the active take at the "
                                       f"same frame ({COMPARE_KEY})")
        self.side_button = QPushButton("Side by Side")
        self.side_button.setObjectName("SideBySideButton")
        self.side_button.setCheckable(True)
        self.side_button.setToolTip("Compare two takes next to each other in the player, frame-locked: this take and "
                                    "the active one, or two takes selected with Ctrl+click (Esc leaves)")
        self.rename_button = QToolButton()
        self.rename_button.setIcon(glyph("rename"))
        self.rename_button.setToolTip("Rename the take (F2)")
        self.rename_button.setAccessibleName("Rename take")
        self.delete_button = QToolButton()
        self.delete_button.setIcon(icon("delete"))
        self.delete_button.setToolTip("Delete the take; chunks other takes share with it are kept")
        self.delete_button.setAccessibleName("Delete take")
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        for button in (self.activate_button, self.compare_button, self.side_button, self.rename_button,
                       self.delete_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(self.detail_tabs)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(4)
        heading = QHBoxLayout()
        heading.setSpacing(12)
        heading.addWidget(self.title)
        heading.addWidget(self.hint, 1)
        layout.addLayout(heading)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.empty, 1)
        layout.addLayout(buttons)
        row = self.fontMetrics().height() + 8  # TAKES_QSS pads items by 3 px
        self.tree.setMinimumHeight(self.tree.header().sizeHint().height() + MIN_VISIBLE_TAKES * row + 4)
        # The panel is as wide with takes as without: its width never jumps when the first take appears.
        self.setMinimumWidth(self.minimumSizeHint().width())
        self.compare_shortcut = QShortcut(QKeySequence(COMPARE_KEY), self, self.toggle_compare,
                                          context=Qt.ShortcutContext.WindowShortcut)
        #: (shot id, take id) the A/B compare flips to while the player shows the active take.
        self._compare: tuple[str, str] = ("", "")
        #: Two takes are shown side by side (set_side_by_side, told by whoever shows them).
        self._side_by_side = False

        self.tree.currentItemChanged.connect(self._on_current_changed)
        # Pushing rebuilds the tree: never inside the tree's own signal (its item or editor is still in use).
        self.tree.itemActivated.connect(lambda item, column: QTimer.singleShot(0, self.make_active))
        self.tree.itemChanged.connect(self._on_item_changed)
        self.activate_button.clicked.connect(lambda: self.make_active())
        self.compare_button.clicked.connect(lambda: self.toggle_compare())
        self.side_button.clicked.connect(lambda: self.toggle_side_by_side())
        self.tree.itemSelectionChanged.connect(self._show_state)
        self.rename_button.clicked.connect(lambda: self.start_rename())
        self.delete_button.clicked.connect(lambda: self.delete_take())
        self.refresh()

    def set_session(self, session) -> None:
        for signal, slot in self._connections:
            signal.disconnect(slot)
        self._connections = []
        self.session = session
        if self.variations is not None:
            self.variations.session = session
        if session is not None:
            for signal, slot in ((session.changed, self.refresh), (session.selectionChanged, self._on_selection),
                                 (session.previewTakeChanged, self._on_preview)):
                signal.connect(slot)
                self._connections.append((signal, slot))
        self._signature = None
        self.filmstrip.forget_images()
        self.refresh()

    def set_generation(self, generation) -> None:
        """The generation controller that "Generate Variations…" goes through (None: not available)."""
        if self.variations is not None:
            self.variations.deleteLater()
        self.generation = generation
        self.variations = VariationRun(generation, self.session, self) if generation is not None else None
        if self.variations is not None:
            self.variations.ended.connect(lambda *_: self._show_state())

    # Reading ----------------------------------------------------------------------------------
    def shot(self) -> Shot | None:
        return self.session.selected_shot() if self.session is not None else None

    def current_take_id(self) -> str:
        item = self.tree.currentItem()
        return item.data(0, TAKE_ID) if item is not None else ""

    def item(self, take_id: str) -> QTreeWidgetItem | None:
        return next((i for i in self._items() if i.data(0, TAKE_ID) == take_id), None)

    def _items(self) -> list[QTreeWidgetItem]:
        found, stack = [], [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while stack:
            item = stack.pop(0)
            found.append(item)
            stack += [item.child(i) for i in range(item.childCount())]
        return found

    # Redrawing --------------------------------------------------------------------------------
    def refresh(self) -> None:
        shot = self.shot()
        project = self.session.project if self.session is not None else None
        # The tree's shape, then each take's row: a committed chunk changes one row, which is written again
        # in place (rebuilding the tree was about 13 ms of each chunk of a 120-chunk storyboard's run).
        signature = None if shot is None else (
            (shot.id, shot.name, shot.active_take_id, tuple(c.id for c in shot.chunks),
             tuple((t.id, t.name, t.parent_id, t.first_chunk_id) for t in shot.takes)),
            tuple((tuple(t.results.items()), is_draft_take(t)) for t in shot.takes))
        if signature != self._signature:
            if signature is not None and self._signature is not None and signature[0] == self._signature[0]:
                changed = [t for t, now, before in zip(shot.takes, signature[1], self._signature[1]) if now != before]
                self._signature = signature
                self._update_rows(shot, project, changed)
            else:
                self._signature = signature
                self._fill(shot, project)
        self._show_state()

    def _fill(self, shot: Shot | None, project) -> None:
        self._filling = True
        self.tree.clear()
        self.title.setText(f"Takes of {shot.name}" if shot else "Takes")
        if shot is not None:
            known = {t.id for t in shot.takes}
            items: dict[str, QTreeWidgetItem] = {}
            pending = list(shot.takes)
            while pending:  # parents before children; an orphan (damaged tree) becomes a root
                ready = [t for t in pending if t.parent_id in items or t.parent_id not in known]
                ready = ready or pending[:1]
                for take in ready:
                    pending.remove(take)
                    parent = items.get(take.parent_id)
                    item = QTreeWidgetItem([take.name, from_text(shot, take)])
                    self._write_row(item, shot, take, project)
                    item.setToolTip(1, "Made from the shot's first chunk" if take.first_chunk_id is None else
                                    f"Regenerated from {from_text(shot, take).lower()} on; the chunks before come "
                                    "from the take above it")
                    item.setData(0, TAKE_ID, take.id)
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                    if take.id == shot.active_take_id:
                        font = QFont(item.font(0))
                        font.setBold(True)
                        item.setFont(0, font)
                        item.setIcon(0, glyph("check"))
                        item.setToolTip(0, f"{take.name} is the active take")
                    (parent.addChild(item) if parent is not None else self.tree.addTopLevelItem(item))
                    items[take.id] = item
            self.tree.expandAll()
        self._select_shown_take()
        self._filling = False

    def _update_rows(self, shot: Shot, project, takes: list[Take]) -> None:
        """Write again the rows of `takes`, whose chunks changed (the tree's shape did not)."""
        self._filling = True
        for take in takes:
            item = self.item(take.id)
            if item is not None:
                self._write_row(item, shot, take, project)
        self._filling = False

    @staticmethod
    def _write_row(item: QTreeWidgetItem, shot: Shot, take: Take, project) -> None:
        """The columns of a take's row that its chunks decide: Chunks (drafts in amber) and Made."""
        draft = is_draft_take(take)
        item.setText(2, chunks_text(take))
        item.setText(3, created_text(shot, take, project))
        item.setToolTip(2, f"{len(take.results)} chunks generated in this take" + (
            " as drafts (fewer steps, a smaller picture): Render at Final Quality makes them again at "
            "the project's settings" if draft else ""))
        if draft:
            item.setForeground(2, QColor(DRAFT_COLOUR))
        else:
            item.setData(2, Qt.ItemDataRole.ForegroundRole, None)

    def _select_shown_take(self) -> None:
        shot = self.shot()
        if shot is None:
            return
        preview_shot, preview_take = self.session.preview_take
        target = preview_take if preview_shot == shot.id else shot.active_take_id
        item = self.item(target or "")
        if item is not None and item is not self.tree.currentItem():
            filling, self._filling = self._filling, True  # showing the state is not a request to preview
            self.tree.setCurrentItem(item)
            self._filling = filling

    def _show_state(self) -> None:
        shot = self.shot()
        take_id = self.current_take_id()
        has_takes = shot is not None and bool(shot.takes)
        previewing = bool(self.session and self.session.preview_take[0])
        with_takes = (self.splitter, self.activate_button, self.compare_button, self.side_button,
                      self.rename_button, self.delete_button)
        # What goes is hidden before what comes is shown: both at once would ask for their heights together,
        # and a window at the screen's height grows for it.
        for widget in (with_takes if not has_takes else (self.empty,)):
            widget.setVisible(False)
        for widget in (with_takes if has_takes else (self.empty,)):
            widget.setVisible(True)
        take = shot.find_take(take_id) if shot is not None else None
        self.filmstrip.show_take(self.session, shot, take.id if take else None)
        self.filmstrip.setFixedWidth(max(1, self.filmstrip.tile_count() * (TILE + GAP)))
        self.strip_caption.setText(f"Chunks of {take.name}" if take else "")
        self._show_details(details_text(self.session.project, shot, take) if take else "")
        short = ""  # what the hint shows where the whole does not fit beside the title
        if shot is None:
            hint = "Select a chunk to see its shot's takes."
            self.empty.setText("")
        elif not has_takes:
            hint = ""
            self.empty.setText("No takes yet.\nGenerating this shot makes its first take;\n"
                               "each regeneration adds another.")
        elif self.variations is not None and self.variations.running:
            hint, short = (f"Generating variations of {shot.name}: {self.variations.progress_text()}…",
                           f"Variations: {self.variations.progress_text()}…")
        elif previewing:
            hint, short = "Previewing in the player — the storyboard still uses the active take (✓).", "Previewing"
        else:
            hint = ""  # the tree's tooltip says it: a short panel keeps its lines for the takes
        self.hint.setText(hint, short)
        self.hint.setVisible(bool(hint))
        set_style_property(self.hint, "preview", previewing)
        active = shot.active_take_id if shot else None
        self.activate_button.setEnabled(bool(take_id) and take_id != active)
        set_style_property(self.activate_button, "accent", bool(take_id) and take_id != active)
        self.rename_button.setEnabled(bool(take_id))
        self.delete_button.setEnabled(bool(take_id))
        self.compare_button.setEnabled(bool(self._compare_target()))
        self.compare_button.setChecked(bool(shot) and self.session.preview_take[0] == shot.id)
        self.side_button.setEnabled(self._side_by_side or bool(self.side_by_side_target()[0]))
        self.side_button.setChecked(self._side_by_side)

    def _show_details(self, text: str) -> None:
        if text == self.details.toPlainText():
            return
        bar = self.details.verticalScrollBar()
        scrolled = bar.value()  # a take's next chunk adds a line: the reader keeps their place
        self.details.setPlainText(text)
        bar.setValue(scrolled)

    # Compare (A/B) -------------------------------------------------------------------------------
    def _compare_target(self) -> tuple[str, str]:
        """(shot id, take id) that A/B shows against the active take: the take being previewed, else the
        last one compared, else the selected take ("", "" when there is nothing to compare)."""
        shot = self.shot()
        if shot is None or self.session is None or len(shot.takes) < 2:
            return "", ""
        if self.session.preview_take[0] == shot.id:
            return self.session.preview_take
        for shot_id, take_id in (self._compare, (shot.id, self.current_take_id())):
            if shot_id == shot.id and take_id != shot.active_take_id and shot.find_take(take_id) is not None:
                return shot_id, take_id
        return "", ""

    def toggle_compare(self) -> bool:
        """Flip the player between the compared take and the active one; the playhead stays on its frame."""
        target = self._compare_target()
        if not target[0]:
            return False
        self._compare = target
        previewing = self.session.preview_take == target
        self.session.set_preview_take(*(("", "") if previewing else target))
        return True

    # Side by side ------------------------------------------------------------------------------
    def side_by_side_target(self) -> tuple[str, str]:
        """(shot id, take id) to show beside the player's take: another take selected with Ctrl+click, else
        the active take when another is selected ("", "" when there is nothing to compare)."""
        shot = self.shot()
        current = self.current_take_id()
        if shot is None or len(shot.takes) < 2 or not current:
            return "", ""
        others = [i.data(0, TAKE_ID) for i in self.tree.selectedItems() if i.data(0, TAKE_ID) != current]
        if others and shot.find_take(others[0]) is not None:
            return shot.id, others[0]
        if current != shot.active_take_id and shot.find_take(shot.active_take_id) is not None:
            return shot.id, shot.active_take_id
        return "", ""

    def toggle_side_by_side(self) -> bool:
        """Ask for the two takes side by side, or for the end of it when they are."""
        if self._side_by_side:
            self.sideBySideRequested.emit("", "")
            return True
        target = self.side_by_side_target()
        if not target[0]:
            self._show_state()
            return False
        self.sideBySideRequested.emit(*target)
        return True

    def set_side_by_side(self, shown: bool) -> None:
        self._side_by_side = shown
        self._show_state()

    def _on_selection(self, *_ids) -> None:
        self.refresh()

    def _on_preview(self, *_ids) -> None:
        self._select_shown_take()
        self._show_state()

    # Gestures ---------------------------------------------------------------------------------
    def _on_current_changed(self, current, previous) -> None:
        if not self._filling and self.session is not None and current is not None:
            self.session.set_preview_take(self.shot().id, current.data(0, TAKE_ID))
        self._show_state()

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != 0 or self.session is None:
            return
        shot, take_id, name = self.shot(), item.data(0, TAKE_ID), item.text(0).strip()
        take = shot.find_take(take_id) if shot else None
        if take is None:
            return
        if name and name != take.name:
            command = RenameTake(shot.id, take_id, name)
            QTimer.singleShot(0, lambda: self.session is not None and self.session.try_push(command))
        elif not name:
            self._signature = None  # a take keeps a name: show the old one again
            QTimer.singleShot(0, self.refresh)

    def make_active(self) -> bool:
        shot, take_id = self.shot(), self.current_take_id()
        if shot is None or not take_id or take_id == shot.active_take_id:
            return False
        return self.session.try_push(SetActiveTake(shot.id, take_id))

    def start_rename(self) -> None:
        item = self.tree.currentItem()
        if item is not None:
            self.tree.editItem(item, 0)

    def delete_take(self) -> bool:
        shot, take_id = self.shot(), self.current_take_id()
        take = shot.find_take(take_id) if shot else None
        if take is None or not self.confirm_delete(take.name):
            return False
        return self.session.try_push(DeleteTake(shot.id, take_id))

    def final_quality_take(self) -> Take | None:
        """The take Render at Final Quality would make again: the selected take of the shot, if it is a draft."""
        shot, take_id = self.shot(), self.current_take_id()
        take = shot.find_take(take_id) if shot is not None and take_id else None
        return take if take is not None and is_draft_take(take) else None

    def render_final_quality(self) -> bool:
        """Render at Final Quality: a new take of the selected draft take's chunks, at the project's settings, with
        the same seeds and prompts, queued like any request (the draft take stays)."""
        take = self.final_quality_take()
        if take is None or self.generation is None:
            return False
        try:
            self.generation.render_final_quality(self.shot().id, take.id)
        except ProjectError as error:
            self.errorReported.emit(error)  # the window's banner: a modal box here blocked the app (and the soak)
            return False
        return True

    def context_menu(self, take_id: str) -> QMenu:
        """The menu of one take (right click): make it active, render a draft at final quality, rename, delete."""
        item = self.item(take_id)
        if item is not None and item is not self.tree.currentItem():
            self.tree.setCurrentItem(item)  # previews it, as a click does: the menu acts on what is shown
        shot = self.shot()
        menu = QMenu(self)
        activate = menu.addAction(glyph("check"), "Make Active", self.make_active)
        activate.setEnabled(shot is not None and take_id != shot.active_take_id)
        final = menu.addAction(glyph("final"), "Render at Final Quality", self.render_final_quality)
        final.setEnabled(self.generation is not None and self.final_quality_take() is not None)
        final.setToolTip("A new take of this draft at the project's settings, with the same seeds and prompts")
        menu.addSeparator()
        menu.addAction(glyph("rename"), "Rename", self.start_rename)
        menu.addAction(icon("delete"), "Delete…", self.delete_take)
        return menu

    def _show_context_menu(self, position) -> None:
        item = self.tree.itemAt(position)
        if item is not None:
            self.context_menu(item.data(0, TAKE_ID)).exec(self.tree.viewport().mapToGlobal(position))

    def generate_variations(self) -> bool:
        """Generate Variations…: N takes of the selected chunk's shot from that chunk on, each with new seeds."""
        session = self.session
        index = session.selected_index() if session is not None else None
        if index is None or self.variations is None:
            return False
        shot = session.selected_shot()
        count = self.ask_variation_count(shot.name, index)
        if not count:
            return False
        try:
            self.variations.start(shot.id, index, count)
        except ProjectError as error:
            self.errorReported.emit(error)  # the window's banner: a modal box here blocked the app (and the soak)
            return False
        self._show_state()
        return True

    def _ask_variation_count(self, shot_name: str, index: int) -> int | None:
        count, ok = QInputDialog.getInt(
            self, "Generate Variations", f"Takes of {shot_name} from chunk {index + 1} on, each with new seeds:",
            4, 2, 16)
        return count if ok else None

    def _ask_delete(self, name: str) -> bool:
        answer = QMessageBox.question(
            self, "Delete take", f"Delete {name}? Chunks other takes share with it are kept, "
            "and Undo brings it back.", QMessageBox.StandardButton.Delete | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Delete
