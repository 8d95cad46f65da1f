"""ProjectError: a project file or folder that cannot be opened, saved or used, explained in one sentence.

It subclasses engine.errors.EngineError so that the command line (cli.main prints `error: ...`) and
the GUI's single error-reporting path treat it like any other failure the user can act on.
"""

from __future__ import annotations

from engine.errors import EngineError


class ProjectError(EngineError):
    """A project is damaged, from a newer MAGI Studio, missing files, or could not be written."""

    title = "Project problem"
