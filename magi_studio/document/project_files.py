"""The files inside a project folder, reached without ever leaving it, and checked before they are used.

Every path a manifest names is relative (validation.RelativePath). Here each of its components is
looked at with lstat from the project folder down: a symbolic link anywhere below the folder (a file,
`assets/`, `results/<id>/`, project.json itself) is refused, never followed, and so is anything that
is not a plain folder or regular file (a FIFO would block a read forever). The final open adds
O_NOFOLLOW and checks again what it opened. The project folder itself may be reached through links:
that is the user's choice of where to keep it.

`result_problem` checks a generated chunk's files cheaply (headers only) for `store.check_files`, which
marks the chunk damaged instead of refusing the project; `read_latent` / `decode_frames` check the
full contents when the chunk is used. Every failure is a ProjectFileError naming the file.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterator

import numpy as np

from magi_engine.config import CHUNK_LATENT_FRAMES
from magi_engine.output_files import NotRegularFile, open_regular_file
from magi_studio.document.errors import ProjectFileError
from magi_studio.document.model import CHUNK_FRAMES, ChunkResult
from magi_studio.document.validation import MAX_NAME_BYTES, parse_json

#: A latent file's header (JSON after an 8-byte length); ours are about 100 bytes.
MAX_SAFETENSORS_HEADER = 64 * 2**10
LATENT_CHANNELS = 16
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def checked_path(folder: Path, relative: str, *, kind: str = "file") -> Path:
    """`folder/relative` after checking every component below `folder`: no link, folders are folders.

    `kind` is what the last component must be: "file" (a regular file), "dir", or "any" (anything but
    a link, or nothing yet: a place to create). Raises ProjectFileError.
    """
    parts = PurePosixPath(relative).parts
    if not parts or any(part in ("", ".", "..") for part in parts):
        raise ProjectFileError(folder / relative, "is not a path inside the project")
    current = folder
    for i, part in enumerate(parts):
        current = current / part
        last = i == len(parts) - 1
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            raise ProjectFileError(current, f"has a name longer than {MAX_NAME_BYTES} bytes")
        try:
            info = os.lstat(current)
        except ValueError:  # an embedded NUL
            raise ProjectFileError(current, "has a name with a NUL character") from None
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ENOTDIR) and last and kind == "any":
                return current
            raise ProjectFileError(current, _os_problem(error)) from None
        if stat.S_ISLNK(info.st_mode):
            raise ProjectFileError(current, "is a symbolic link; MAGI Studio does not follow links in a project")
        wanted = "dir" if not last else kind
        if wanted == "dir" and not stat.S_ISDIR(info.st_mode):
            raise ProjectFileError(current, "is not a folder")
        if wanted == "file" and not stat.S_ISREG(info.st_mode):
            raise ProjectFileError(current, "is not a regular file")
    return current


@contextmanager
def _open_regular(folder: Path, relative: str) -> Iterator[tuple[Path, int, int]]:
    """(path, descriptor, length) of a regular file inside the project, links refused; an OSError while
    it is open becomes the project's ProjectFileError naming the file."""
    path = checked_path(folder, relative)
    try:
        with open_regular_file(path) as (fd, size):
            yield path, fd, size
    except NotRegularFile:
        raise ProjectFileError(path, "is not a regular file") from None
    except OSError as error:
        raise ProjectFileError(path, _os_problem(error)) from None


def read_bytes(folder: Path, relative: str, *, limit: int) -> bytes:
    """The bytes of a regular file inside the project (at most `limit`), links refused."""
    with _open_regular(folder, relative) as (path, fd, size):
        if size > limit:
            raise ProjectFileError(path, f"is {size:,} bytes; at most {limit:,} are expected")
        chunks, left = [], limit + 1
        while left > 0:
            data = os.read(fd, min(left, 2**24))
            if not data:
                break
            chunks.append(data)
            left -= len(data)
        data = b"".join(chunks)
        if len(data) > limit:
            raise ProjectFileError(path, f"is more than {limit:,} bytes")
        return data


def read_head(folder: Path, relative: str, size: int) -> tuple[bytes, int]:
    """The first `size` bytes of a regular file inside the project, and the file's length."""
    with _open_regular(folder, relative) as (_path, fd, length):
        return os.read(fd, size), length


# --------------------------------------------------------------------------------------------- results


def latent_shape(result: ChunkResult) -> tuple[int, int, int, int]:
    return LATENT_CHANNELS, CHUNK_LATENT_FRAMES, result.height // 8, result.width // 8


def latent_file_size(result: ChunkResult) -> int:
    return MAX_SAFETENSORS_HEADER + 8 + 4 * int(np.prod(latent_shape(result)))


def frames_file_limit(result: ChunkResult) -> int:
    """An upper bound on a PNG strip's size: raw pixels plus generous container overhead."""
    return 2 * CHUNK_FRAMES * result.width * result.height * 3 + 2**20


def result_problem(folder: Path, result: ChunkResult) -> ProjectFileError | None:
    """What is wrong with a result's latent and frames files, judged from their headers (None: nothing)."""
    try:
        check_latent_header(folder, result)
        check_frames_header(folder, result)
    except ProjectFileError as error:
        return error
    return None


def check_latent_header(folder: Path, result: ChunkResult) -> int:
    """Check the safetensors header: one float32 tensor `latent` of the result's shape. Returns the data offset."""
    relative = result.files["latent"]
    head, size = read_head(folder, relative, 8 + MAX_SAFETENSORS_HEADER)
    path = folder / relative
    if len(head) < 8:
        raise ProjectFileError(path, "is damaged (it is empty or cut short)")
    (length,) = struct.unpack("<Q", head[:8])
    if length > MAX_SAFETENSORS_HEADER or 8 + length > len(head):
        raise ProjectFileError(path, "is damaged (not a safetensors file: its header is broken)")
    try:
        header = parse_json(head[8:8 + length], str(path))
    except Exception:
        raise ProjectFileError(path, "is damaged (not a safetensors file: its header is not JSON)") from None
    entry = header.get("latent") if isinstance(header, dict) else None
    expected = list(latent_shape(result))
    if not isinstance(entry, dict) or entry.get("dtype") != "F32" or entry.get("shape") != expected:
        raise ProjectFileError(path, f"is damaged (it does not hold the float32 latent {expected} this chunk needs)")
    offsets = entry.get("data_offsets")
    nbytes = 4 * int(np.prod(expected))
    if offsets != [0, nbytes] or size != 8 + length + nbytes:
        raise ProjectFileError(path, "is damaged (it is cut short or has extra bytes)")
    return 8 + length


def check_frames_header(folder: Path, result: ChunkResult) -> None:
    """Check the PNG header: 8-bit RGB, the result's width, 24 frames of its height."""
    relative = result.files["frames"]
    head, size = read_head(folder, relative, 33)
    path = folder / relative
    if size == 0:
        raise ProjectFileError(path, "is damaged (it is empty)")
    if len(head) < 33 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise ProjectFileError(path, "is damaged (not a PNG image)")
    width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
    if (width, height) != (result.width, CHUNK_FRAMES * result.height) or (depth, colour) != (8, 2):
        raise ProjectFileError(path, f"is damaged (a {width}x{height} image, not the {CHUNK_FRAMES} frames "
                                     f"of {result.width}x{result.height} 8-bit RGB this chunk needs)")


def decode_latent(folder: Path, result: ChunkResult):
    """The clean latents [16, 6, H/8, W/8] float32, checked (safetensors never runs code: no pickle)."""
    import torch
    from safetensors.torch import load as load_safetensors

    check_latent_header(folder, result)
    path = folder / result.files["latent"]
    data = read_bytes(folder, result.files["latent"], limit=latent_file_size(result))
    try:
        tensors = load_safetensors(data)
    except Exception as error:  # safetensors' own error type: the file is damaged
        raise ProjectFileError(path, f"is damaged (not readable as safetensors: {str(error)[:120]})") from None
    latent = tensors.get("latent")
    if latent is None or latent.dtype != torch.float32 or tuple(latent.shape) != latent_shape(result):
        shape = list(latent_shape(result))
        raise ProjectFileError(path, f"is damaged (it does not hold the float32 latent {shape} this chunk needs)")
    return latent


def decode_frames(folder: Path, result: ChunkResult) -> np.ndarray:
    """The decoded frames, uint8 RGB [24, H, W, 3], checked before and after decoding."""
    import cv2  # on the decoding thread, when frames are first read: not at startup

    check_frames_header(folder, result)
    path = folder / result.files["frames"]
    data = read_bytes(folder, result.files["frames"], limit=frames_file_limit(result))
    try:
        strip = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        strip = None
    expected = (CHUNK_FRAMES * result.height, result.width, 3)
    if strip is None or strip.shape != expected or strip.dtype != np.uint8:
        raise ProjectFileError(path, f"is damaged (not a {result.width}-pixel-wide strip of {CHUNK_FRAMES} frames)")
    return np.ascontiguousarray(strip[..., ::-1].reshape(CHUNK_FRAMES, result.height, result.width, 3))


def _os_problem(error: OSError) -> str:
    if error.errno == errno.ENOENT:
        return "is missing"
    if error.errno == errno.ENAMETOOLONG:
        return "has a name that is too long"
    if error.errno == errno.ELOOP:
        return "is a symbolic link; MAGI Studio does not follow links in a project"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "cannot be read (no permission)"
    if error.errno == errno.ENOTDIR:
        return "is missing (a folder on its path is a file)"
    return f"cannot be read ({error.strerror or error})"

