"""docs/user-guide.md agrees with the code: its shortcut tables with magi_studio.actions (both ways), its
command-line options with the real argparse parser (both ways), and its links and images with the files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtGui import QKeySequence

from magi_studio.actions import ACTIONS, CONTEXT_KEYS
from magi_studio.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "user-guide.md"
SCREENSHOTS = ("main-1366x768.png", "main-1920x1080.png", "takes-1920x1080.png", "welcome-1366x768.png",
               "settings.png", "export.png", "shortcuts.png")


def section(title: str) -> str:
    """The text under `## title` up to the next `## ` heading."""
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"the guide has no '## {title}' section"
    return match.group(1)


def table_rows(text: str, header: str) -> list[list[str]]:
    """The body rows of the markdown table whose first header cell is `header`, cells stripped of backticks."""
    rows, inside = [], False
    for line in text.splitlines():
        if not line.startswith("|"):
            inside = False
            continue
        cells = [cell.strip().strip("`").strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == header:
            inside = True
        elif inside and not set(cells[0]) <= set("-: "):
            rows.append(cells)
    return rows


def portable(keys: str) -> str:
    sequence = QKeySequence(keys)
    assert not sequence.isEmpty(), f"{keys!r} is not a key sequence Qt understands"
    return sequence.toString(QKeySequence.SequenceFormat.PortableText)


def test_the_shortcut_table_is_the_actions_shortcuts(qapp):
    rows = table_rows(section("Keyboard shortcuts"), "Menu")
    documented = {(menu, command): portable(keys) for menu, command, keys in rows}
    assert len(documented) == len(rows), "a command is listed twice"
    declared = {(spec.menu.replace("&", ""), spec.plain_text()): portable(spec.shortcut)
                for spec in ACTIONS if spec.shortcut}
    assert sorted(set(documented) - set(declared)) == [], "the guide lists shortcuts the app does not have"
    assert sorted(set(declared) - set(documented)) == [], "the guide misses shortcuts of the app"
    wrong = {name: (documented[name], keys) for name, keys in declared.items() if documented[name] != keys}
    assert wrong == {}, "(guide, app) keys differ"


def test_the_widget_keys_table_is_context_keys():
    rows = table_rows(section("Keyboard shortcuts"), "Where")
    assert sorted(map(tuple, rows)) == sorted(CONTEXT_KEYS)


def options_of(parser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings} - {"-h", "--help"}


def test_the_generate_and_render_options_are_the_parsers():
    commands = build_parser()._subparsers._group_actions[0].choices
    text = section("Command line")
    generate = text[text.index("### `magi-studio generate`"):text.index("### `magi-studio serve`")]
    serve = text[text.index("### `magi-studio serve`"):text.index("### `magi-studio render`")]
    documented = {option for row in table_rows(generate, "option") for option in re.findall(r"--?[a-z][\w-]*", row[0])}
    assert documented == options_of(commands["generate"])
    render = text[text.index("### `magi-studio render`"):]
    assert set(re.findall(r"`(--?[a-z][\w-]*)`", render)) == options_of(commands["render"])
    assert {option for row in table_rows(serve, "server option") for option in re.findall(r"--?[a-z][\w-]*", row[0])} \
        == options_of(commands["serve"])
    assert set(commands) == {"generate", "render", "serve"}
    for command in ("`magi-studio`", "`magi-studio PROJECT`", "`magi-studio generate", "`magi-studio render PROJECT"):
        assert command in text


def test_links_and_images_point_at_existing_files():
    text = GUIDE.read_text(encoding="utf-8")
    targets = [t for t in re.findall(r"\]\(([^)#\s]+)", text) if not t.startswith(("http://", "https://"))]
    assert "project-format.md" in targets
    missing = [t for t in targets if not (GUIDE.parent / t).exists() and not t.startswith("screenshots/")]
    assert missing == []
    images = re.findall(r"!\[[^]]*\]\(screenshots/([^)]+)\)", text)
    assert sorted(images) == sorted(SCREENSHOTS)


@pytest.mark.parametrize("name", SCREENSHOTS)
def test_the_screenshots_exist(name):
    path = REPO / "docs" / "screenshots" / name
    assert path.is_file(), f"{path} is missing: run scripts/screenshots.py"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_readme_links_the_guide():
    assert "(docs/user-guide.md)" in (REPO / "README.md").read_text(encoding="utf-8")
