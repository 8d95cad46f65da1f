"""Where Help › User Guide finds the user guide: the copy beside the code, else the published page.

A checkout (and an editable install) has docs/user-guide.md beside magi_studio/; the app bundle ships
it at the same place relative to the frozen package (packaging/magi-studio.spec copies docs/ into
_internal/docs/, with the screenshots it shows), so one rule finds both, offline. A wheel installed
without the docs opens the page the project publishes.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl

import magi_studio

#: The guide as published with the project's sources (packaging/linux's metainfo names the same home).
PUBLISHED_GUIDE = "https://github.com/magistudio/magi-studio/blob/main/docs/user-guide.md"


def local_user_guide() -> Path:
    """Where the guide is when it ships with the code (whether it is there is the caller's question)."""
    return Path(magi_studio.__file__).resolve().parent.parent / "docs" / "user-guide.md"


def user_guide_url() -> QUrl:
    """The local guide when it is there, else the published one."""
    guide = local_user_guide()
    return QUrl.fromLocalFile(str(guide)) if guide.is_file() else QUrl(PUBLISHED_GUIDE)
