"""Where the app may write a file the user named: a new name, or a regular file it replaces whole.

Our writers put their bytes in a hidden temporary file beside the target and rename it over the target
at the end. A rename replaces whatever the name holds: run as root, `-o /dev/full` turned the device node
into an mp4, and a FIFO or a socket would be replaced the same way. So a target must be absent or a
regular file (not a symbolic link: a link is not our file, and replacing it would surprise whoever
made it), in a folder we can write. `check_output_file` says so in one sentence before any expensive
work starts; `replace_output_file` checks again at the rename, since the name may have changed while
the work ran. `create_temporary` makes that temporary file without ever opening through a link planted
at its name, and `open_regular_file` opens a file for reading only when it is a regular file, so a FIFO
or a link put there can neither block nor redirect the read (`read_regular_file` reads a small one whole;
the project's reader, magi_studio.document.project_files, opens through it too). `fsync_dir` makes a
rename durable; `describe_os_error` says in a few words why
a file could not be written or opened.
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from magi_engine.errors import ExportError

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_output_file(path: str | os.PathLike, what: str = "file") -> Path:
    """`path` if it names a new file or a regular file in a writable folder; else ExportError.

    `what` names the file in the message ("video", "sidecar", ...).
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        why = "is not a folder" if folder.exists() else "does not exist"
        raise ExportError(f"Cannot save the {what} '{path}': the folder '{folder}' {why}.")
    _check_target(path, what)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"Cannot save the {what} '{path}': there is no permission to write in '{folder}'.")
    return path


def replace_output_file(temporary: str | os.PathLike, path: str | os.PathLike, what: str = "file") -> None:
    """Rename `temporary` over `path`, after checking `path` is still new or a regular file.

    When `path` is refused, `temporary` is deleted: nothing of the attempt is left behind.
    """
    try:
        _check_target(Path(path), what)
    except ExportError:
        Path(temporary).unlink(missing_ok=True)
        raise
    os.replace(temporary, path)


def create_temporary(path: str | os.PathLike) -> int:
    """A new, empty file at `path` opened for writing (a file descriptor); a stale file or link there goes first.

    O_CREAT | O_EXCL never opens an existing name, links included, so nothing is written through a link
    planted at the temporary name, even one planted after the stale name was removed.
    """
    path = Path(path)
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            raise IsADirectoryError(errno.EISDIR, "a folder is in the way of the temporary file", str(path))
        path.unlink()  # our leftover, or a link someone planted: the link goes, never what it points to
    except FileNotFoundError:
        pass
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags, 0o666)


class NotRegularFile(OSError):
    """What open_regular_file opened is a folder, a FIFO, a device or a socket."""


_READ_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_BINARY", 0))


@contextmanager
def open_regular_file(path: str | os.PathLike) -> Iterator[tuple[int, int]]:
    """(descriptor, length) of `path` opened for reading, closed afterwards; OSError if it cannot be opened,
    NotRegularFile if it is not a regular file. Never blocks on a FIFO or a device and never follows a
    link at the last component."""
    fd = os.open(path, _READ_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file", str(path))
        yield fd, info.st_size
    finally:
        os.close(fd)


def read_regular_file(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of `path` when it is a regular file of at most `limit` bytes; OSError otherwise."""
    with open_regular_file(path) as (fd, size):
        if size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(limit + 1)[:limit]


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in `folder` durable (POSIX); folders cannot be opened this way on Windows, where the
    rename is atomic without it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def describe_os_error(error: OSError) -> str:
    """Why a file could not be written or opened, in a few words for a sentence ("the disk is full")."""
    if error.errno == errno.ENOSPC:
        return "the disk is full"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "there is no permission to write there"
    return str(error.strerror or error)


def _check_target(path: Path, what: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as err:
        reason = "its name is too long" if err.errno == errno.ENAMETOOLONG else (err.strerror or str(err))
        raise ExportError(f"Cannot save the {what} '{path}': {reason}.") from None
    except ValueError:  # a NUL in the name
        raise ExportError(f"Cannot save the {what} '{path}': the name holds a NUL character.") from None
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    raise ExportError(f"Cannot save the {what} '{path}': it is {kind}, not a regular file; choose a new file name.")
