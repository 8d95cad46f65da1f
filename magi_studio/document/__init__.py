"""The storyboard document without Qt: model (dataclasses and derived state), commands (undoable
edits), observer (change notifications, plain undo history), planning (document <-> engine
requests and events), manifest and store (the project on disk). See docs/project-format.md.
"""

from magi_studio.document.errors import ProjectError

__all__ = ["ProjectError"]
