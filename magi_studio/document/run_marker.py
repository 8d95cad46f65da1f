"""The marker that says a generation run is in progress in a project folder, so a run the app did not live
to finish can be offered again at the next start.

    write_run_marker(store.path, [(shot_id, chunk_id), ...])   # a run starts: the chunks it is to make
    clear_run_marker(store.path)                               # it ended (finished, stopped or failed)
    marker = read_run_marker(store.path)                        # at open: None, or what the dead run was doing
    finished, total = marker.progress(project)                  # "N of M chunks were finished"

The generation controller writes it when a run leaves idle and removes it when the run is back at idle;
only a process that died in between leaves it. It is a small JSON file written whole (a new temporary
file, never through a link, renamed over the old marker) and read the way every project file is read
(project_files: no link, no FIFO, bounded). Finished chunks need no record here: each is committed and
autosaved as it lands, so the project itself says which of the marker's chunks are done. No Qt.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from magi_engine.output_files import create_temporary, replace_output_file
from magi_studio.document.errors import ProjectError
from magi_studio.document.model import ChunkState, Project, storyboard_states
from magi_studio.document.project_files import checked_path, read_bytes

RUN_MARKER = ".run-in-progress.json"
MARKER_FORMAT = "magi-studio-run"
#: A marker names each chunk of the run by two short ids: a megabyte is tens of thousands of chunks.
MAX_MARKER_BYTES = 2**20


@dataclass(frozen=True)
class RunMarker:
    """What an interrupted run was to generate: (shot id, chunk id) in order, and the process that ran it."""

    chunks: tuple[tuple[str, str], ...]
    pid: int

    def shot_ids(self) -> list[str]:
        """The run's shots, in its order, each once."""
        return list(dict.fromkeys(shot_id for shot_id, _ in self.chunks))

    def progress(self, project: Project) -> tuple[int, int]:
        """(finished, total): how many of the run's chunks still in the project are done now."""
        by_shot = storyboard_states(project)
        states = {(shot.id, chunk.id): state for shot in project.shots
                  for chunk, state in zip(shot.chunks, by_shot[shot.id])}
        mine = [states[key] for key in self.chunks if key in states]
        return sum(state is ChunkState.DONE for state in mine), len(mine)

    def is_live(self) -> bool:
        """Whether the process that wrote it still runs (another MAGI Studio generating now): then the run
        was not interrupted. Our own process is not live here: our runs clear their marker."""
        if self.pid == os.getpid() or self.pid <= 0 or os.name != "posix":
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except OSError:  # PermissionError: it exists, under another user
            return True
        return True


def write_run_marker(folder: str | os.PathLike, chunks: list[tuple[str, str]]) -> None:
    """Say that a run making `chunks` is in progress in the project `folder` (OSError / ProjectError if not)."""
    folder = Path(folder)
    target = checked_path(folder, RUN_MARKER, kind="any")  # never a link, never out of the project
    text = json.dumps({"format": MARKER_FORMAT, "pid": os.getpid(), "chunks": [list(key) for key in chunks]})
    temporary = folder / f"{RUN_MARKER}.tmp"
    with os.fdopen(create_temporary(temporary), "w", encoding="utf-8") as handle:
        handle.write(text)
    replace_output_file(temporary, target, "run marker")


def clear_run_marker(folder: str | os.PathLike) -> None:
    """The run ended: remove the marker (a regular file of that name only; nothing else is ours)."""
    try:
        os.unlink(checked_path(Path(folder), RUN_MARKER))
    except (OSError, ProjectError):
        pass  # none there (the usual case), or not ours to remove


def read_run_marker(folder: str | os.PathLike) -> RunMarker | None:
    """The marker in `folder`, or None when there is none or it is unreadable (nothing to offer then)."""
    folder = Path(folder)
    if not os.path.lexists(folder / RUN_MARKER):
        return None
    try:
        data = json.loads(read_bytes(folder, RUN_MARKER, limit=MAX_MARKER_BYTES).decode("utf-8"))
        chunks = tuple((str(shot_id), str(chunk_id)) for shot_id, chunk_id in data["chunks"])
        pid = data.get("pid", 0)
        if data.get("format") != MARKER_FORMAT or not isinstance(pid, int):
            return None
    except (ProjectError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None
    return RunMarker(chunks, pid)
