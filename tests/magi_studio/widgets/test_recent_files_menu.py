"""File › Open Recent: each project's name with its folder's real path (no "~"), long paths elided in the middle."""

from __future__ import annotations

from pathlib import Path

from magi_studio.widgets.recent_files_menu import RecentFilesMenu


def test_entries_show_the_name_and_the_real_folder_elided_in_the_middle(qtbot):
    menu = RecentFilesMenu()
    qtbot.addWidget(menu)
    home = Path.home()
    deep = home / "work" / ("a very long folder name " * 6).strip() / "storyboards" / "Final"
    opened = []
    menu.openRequested.connect(opened.append)
    menu.set_paths([str(home / "Film.magi"), str(deep / "Film.magi")])
    names, folders = zip(*(entry.text().split("\t") for entry in menu.entries()))
    assert names == ("&1  Film", "&2  Film")
    assert folders[0] == str(home) and "~" not in "".join(folders)
    assert folders[1].startswith(str(home / "work")) and folders[1].endswith("storyboards/Final")
    assert "…" in folders[1] and len(folders[1]) < len(str(deep))
    assert [entry.toolTip() for entry in menu.entries()] == [str(home / "Film.magi"), str(deep / "Film.magi")]
    menu.entries()[1].trigger()
    assert opened == [str(deep / "Film.magi")]
