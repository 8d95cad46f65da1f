"""The storyboard document without Qt.

model          dataclasses and the state derived from them (active paths, empty/done/stale, time ranges)
commands       undoable edits of chunks, shots and settings; take_commands: edits of takes
observer       typed change notifications, the Document that publishes them, a plain undo history
planning       document -> engine GenerationRequest, and finished chunks -> results and takes
manifest       project.json: versioned JSON, migrations, strict reading
store          the project folder on disk: atomic saves, results written once, autosave and recovery

See docs/project-format.md.
"""

from magi_studio.document.errors import ProjectError

__all__ = ["ProjectError"]
