"""ProjectError: a project file or folder that cannot be opened, saved or used, explained in one sentence.

ProjectFileError, one of them, names a file inside the project and what is wrong with it (a damaged
result is reported with one, and the project still opens).

It subclasses magi_engine.errors.EngineError so that the command line (cli.main prints `error: ...`) and
the GUI's single error-reporting path treat it like any other failure the user can act on.
"""

from __future__ import annotations

from magi_engine.errors import EngineError


class ProjectError(EngineError):
    """A project is damaged, from a newer MAGI Studio, missing files, or could not be written."""

    title = "Project problem"


class ProjectFileError(ProjectError):
    """A file inside a project that cannot be used: missing, a link, not a regular file, or not what it should be.

    `path` is the file and `problem` what is wrong with it ("is empty", "is a symbolic link; ...").
    """

    def __init__(self, path, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"'{path}' {problem}.")
