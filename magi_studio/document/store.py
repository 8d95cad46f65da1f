"""The project on disk: a folder bundle `Name.magi/`, written atomically, results written once.

    Name.magi/
      project.json                       the manifest (manifest.py; docs/project-format.md)
      autosave.json                      recovery copy of the manifest, only while there are unsaved edits
      assets/<sha256[:16]>.<ext>         reference images, as the user's file (stored once per content)
      results/<id>/latent.safetensors    clean latents [16, 6, H/8, W/8] float32 (what regenerate-from-N reuses)
      results/<id>/frames.png            the 24 decoded frames stacked vertically, lossless ([24 H, W, 3])
      results/<id>/thumbnail.png         the middle frame, 160 px wide

A result is written the moment its chunk finishes (to a temporary folder renamed into place) and
never rewritten, so a crash loses nothing generated and a save only has to write project.json:
new bytes to a temporary file, fsync, rename over the old one, fsync the folder. A failed write
leaves the previous project.json as it was. Untitled projects live in a scratch bundle (see
`ProjectStore.create_scratch`) until they are saved somewhere with `save_as`.

Nothing inside the bundle is trusted: every file is reached through project_files.py (no symbolic
links, regular files only, size limits) and the manifest through validation.py. A result whose files
are missing or damaged does not stop the project from opening: `check_files` lists it in
`Project.damaged` and its chunk shows as damaged. Temporary files a killed save left behind (our
names only) are removed the next time the project is opened or saved.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from magi_engine.output_files import describe_os_error, fsync_dir
from magi_studio.document.errors import ProjectError
from magi_studio.document.manifest import manifest_bytes, parse_manifest
from magi_studio.document.model import CHUNK_FRAMES, Asset, ChunkResult, Project, new_id
from magi_studio.document.project_files import (checked_path, decode_frames, decode_latent, latent_shape, read_bytes,
                                               result_problem)
from magi_studio.document.validation import MAX_MANIFEST_BYTES, MAX_NAME_BYTES

if TYPE_CHECKING:
    import torch

MANIFEST = "project.json"
AUTOSAVE = "autosave.json"
EXTENSION = ".magi"
THUMBNAIL_WIDTH = 160
#: What our interrupted writes leave behind (see _atomic_write and write_result): only these are removed.
LEFTOVERS = {
    "": re.compile(r"\.(project|autosave)\.json\.[0-9a-f]{12}\.tmp"),
    "assets": re.compile(r"\.[^/]+\.[0-9a-f]{12}\.tmp"),
    "results": re.compile(r"\.[A-Za-z0-9_-]+\.tmp-[0-9a-f]{12}"),
}
#: A leftover younger than this may belong to a save still running (another window, `render`).
LEFTOVER_AGE_S = 60.0


def bundle_path(path: str | os.PathLike) -> Path:
    """The bundle folder for a path the user chose: `project.json` inside one, or a name given the .magi suffix."""
    path = Path(path).expanduser()
    if path.name == MANIFEST:
        return path.parent
    return path if path.suffix == EXTENSION else path.with_name(path.name + EXTENSION)


def open_project(path: str | os.PathLike) -> tuple[Project, "ProjectStore"]:
    """Read a project; a missing, damaged or newer one raises ProjectError and is never written to."""
    folder = Path(path).expanduser()
    folder = folder.parent if folder.name == MANIFEST else folder
    try:
        is_folder = stat.S_ISDIR(os.stat(folder).st_mode)
    except FileNotFoundError:
        raise ProjectError(f"The project '{folder}' does not exist.") from None
    except ValueError:  # a NUL in the name
        raise ProjectError(f"The project name {str(folder)!r:.200} holds a NUL character.") from None
    except OSError as error:
        raise ProjectError(f"The project '{folder}' cannot be opened: {describe_os_error(error)}.") from None
    if not is_folder or not os.path.lexists(folder / MANIFEST):
        raise ProjectError(f"'{folder}' is not a MAGI Studio project (it has no {MANIFEST}).")
    store = ProjectStore(folder)
    project = parse_manifest(read_bytes(folder, MANIFEST, limit=MAX_MANIFEST_BYTES), str(folder / MANIFEST))
    store.check_files(project)
    store.remove_leftovers()
    return project, store


@dataclass(frozen=True)
class Recovery:
    """Unsaved work found beside a project: an autosave newer than its last save."""

    path: Path
    autosaved_at: str


def find_recovery(path: str | os.PathLike) -> Recovery | None:
    return ProjectStore(bundle_path(path)).find_recovery()


def load_recovery(path: str | os.PathLike) -> Project:
    return ProjectStore(bundle_path(path)).load_recovery()


def write_autosave(project: Project, path: str | os.PathLike) -> None:
    ProjectStore(bundle_path(path)).write_autosave(project)


def discard_recovery(path: str | os.PathLike) -> None:
    ProjectStore(bundle_path(path)).discard_recovery()


def find_scratch_recoveries(root: str | os.PathLike) -> list[Path]:
    """Untitled projects under `root` that were autosaved and never saved (the app died): offer them back."""
    root = Path(root)
    return sorted(p for p in root.glob(f"*{EXTENSION}") if _is_regular(p / AUTOSAVE)) if root.is_dir() else []


class ProjectStore:
    """One project bundle folder: reads and writes its manifest, assets and results."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | os.PathLike) -> "ProjectStore":
        """A new, empty bundle (refuses to take over a folder that holds something else)."""
        folder = _chosen_path(bundle_path(path))
        if folder.exists() and not (folder.is_dir() and (not any(folder.iterdir()) or (folder / MANIFEST).exists())):
            raise ProjectError(f"'{folder}' already exists and is not a MAGI Studio project; choose another name.")
        try:
            (folder / "assets").mkdir(parents=True, exist_ok=True)
            (folder / "results").mkdir(exist_ok=True)
        except OSError as error:
            raise ProjectError(f"Could not create the project folder '{folder}': "
                               f"{describe_os_error(error)}.") from error
        return cls(folder)

    @classmethod
    def create_scratch(cls, root: str | os.PathLike) -> "ProjectStore":
        """A bundle for an untitled project under `root` (the app's data folder), where results land until saved."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return cls.create(Path(root) / f"Untitled-{stamp}-{new_id()[:6]}{EXTENSION}")

    # -- the manifest

    def save(self, project: Project) -> None:
        """Write project.json atomically; the autosave is dropped once the save is safe on disk.

        Damaged results stay listed (their files may come back from a backup); nothing is lost by saving.
        """
        self._atomic_write(self.path / MANIFEST, manifest_bytes(project))
        self.discard_recovery()
        self.remove_leftovers()

    def save_as(self, project: Project, path: str | os.PathLike, *, overwrite: bool = False) -> "ProjectStore":
        """Copy the project (its assets and results) to a new bundle and save it there; returns the new store.

        The copy is built in a hidden folder beside the target and renamed into place only when complete.
        `overwrite` replaces an existing MAGI Studio project at the target (never any other folder).
        """
        target = _chosen_path(bundle_path(path))
        if target.resolve() == self.path.resolve():
            self.save(project)
            return self
        if target.exists():
            if not overwrite:
                raise ProjectError(f"'{target}' already exists.")
            if not (target / MANIFEST).is_file():
                raise ProjectError(f"'{target}' is not a MAGI Studio project, so it will not be replaced.")
        staging = target.with_name(f".{target.name}.saving-{new_id()}")
        replaced = target.with_name(f".{target.name}.old-{new_id()}")
        try:
            (staging / "results").mkdir(parents=True)
            (staging / "assets").mkdir()
            staged = ProjectStore(staging)
            for relative in _project_files(project):
                self._copy_immutable(relative, staging)
            staged._atomic_write(staging / MANIFEST, manifest_bytes(project))
            if target.exists():
                os.rename(target, replaced)
            os.rename(staging, target)
        except (OSError, ProjectError) as error:
            shutil.rmtree(staging, ignore_errors=True)
            if replaced.exists() and not target.exists():
                os.rename(replaced, target)
            if isinstance(error, ProjectError):
                raise
            raise ProjectError(f"Could not save the project as '{target}': {describe_os_error(error)}. "
                               "Nothing was changed.") from error
        shutil.rmtree(replaced, ignore_errors=True)
        fsync_dir(target.parent)
        return ProjectStore(target)

    def check_files(self, project: Project) -> dict[str, str]:
        """Mark the results whose latent or frames file is missing, a link or damaged (headers checked).

        Sets and returns `project.damaged` (result id -> what is wrong, naming the file). Their chunks
        show as damaged; the rest of the project is usable. Assets are checked when they are used.
        """
        project.damaged = {result.id: str(problem) for result in project.results.values()
                           if (problem := result_problem(self.path, result)) is not None}
        return project.damaged

    def remove_leftovers(self) -> list[str]:
        """Delete the temporary files and folders our killed saves left in the bundle (our names only,
        older than LEFTOVER_AGE_S, never through a link); returns what was removed, relative."""
        removed, now = [], time.time()
        for sub, pattern in LEFTOVERS.items():
            try:
                folder = checked_path(self.path, sub, kind="dir") if sub else self.path
                names = os.listdir(folder)
            except (OSError, ProjectError):
                continue
            for name in names:
                path = folder / name
                try:
                    info = os.lstat(path)
                    if not pattern.fullmatch(name) or now - info.st_mtime < LEFTOVER_AGE_S:
                        continue
                    if stat.S_ISREG(info.st_mode):
                        os.unlink(path)
                    elif stat.S_ISDIR(info.st_mode):
                        shutil.rmtree(path)  # removes links inside, never what they point to
                    else:
                        continue  # a link or a device with our name is not ours
                except OSError:
                    continue  # read-only media, or it went away: nothing to do
                removed.append(f"{sub}/{name}" if sub else name)
        return removed

    # -- autosave and recovery

    def write_autosave(self, project: Project) -> None:
        """The recovery copy: the same manifest beside project.json (results are on disk already)."""
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._atomic_write(self.path / AUTOSAVE, manifest_bytes(project, autosaved_at=stamp))

    def find_recovery(self) -> Recovery | None:
        autosave, manifest = _regular_stat(self.path / AUTOSAVE), _regular_stat(self.path / MANIFEST)
        if autosave is None:
            return None
        if manifest is not None and manifest.st_mtime > autosave.st_mtime:
            return None  # saved after the autosave: nothing to recover
        stamp = datetime.fromtimestamp(autosave.st_mtime, timezone.utc).isoformat(timespec="seconds")
        return Recovery(self.path, stamp)

    def load_recovery(self) -> Project:
        project = parse_manifest(read_bytes(self.path, AUTOSAVE, limit=MAX_MANIFEST_BYTES), str(self.path / AUTOSAVE))
        self.check_files(project)
        return project

    def discard_recovery(self) -> None:
        (self.path / AUTOSAVE).unlink(missing_ok=True)

    # -- assets

    def import_image(self, source: str | os.PathLike) -> Asset:
        """Copy a reference image into assets/ (same content: same asset). Non-images raise InputError."""
        source = Path(source)
        from magi_engine.video_io import load_image

        load_image(source)  # the clear "not an image" message, before anything is copied
        data = self._read(source)
        fingerprint = hashlib.sha256(data).hexdigest()
        suffix = source.suffix.lower() if re.fullmatch(r"\.[a-z0-9]{1,10}", source.suffix.lower()) else ".img"
        relative = f"assets/{fingerprint[:16]}{suffix}"
        if not _is_regular(self.path / relative):
            self._writable_folder("assets")
            self._atomic_write(self.path / relative, data)
        return Asset(fingerprint[:16], relative, fingerprint, source.name)

    def asset_path(self, asset: Asset) -> Path:
        """The asset's file, checked (ProjectFileError when missing, a link or not a regular file)."""
        return checked_path(self.path, asset.path)

    # -- results

    def write_result(self, result: ChunkResult, latent: torch.Tensor, frames: np.ndarray) -> ChunkResult:
        """Write a finished chunk's files once (temporary folder, then rename); returns it with `files` set."""
        shape = latent_shape(result)
        if tuple(latent.shape) != shape or frames.shape != (CHUNK_FRAMES, result.height, result.width, 3) \
                or frames.dtype != np.uint8:
            raise ProjectError(f"A generated chunk has latents {tuple(latent.shape)} and frames {frames.shape}; "
                               f"expected {shape} and {(CHUNK_FRAMES, result.height, result.width, 3)} uint8.")
        relative = f"results/{result.id}"
        files = {"latent": f"{relative}/latent.safetensors", "frames": f"{relative}/frames.png",
                 "thumbnail": f"{relative}/thumbnail.png"}
        result = dataclasses.replace(result, files=files, frames_format="png-strip")
        results = self._writable_folder("results")
        final = results / result.id
        if os.path.lexists(final):
            return result  # results are immutable: never rewritten
        staging = results / f".{result.id}.tmp-{new_id()}"
        import torch  # whoever writes a chunk holds the engine's tensors: torch is loaded already
        from safetensors.torch import save as save_safetensors

        try:
            staging.mkdir()
            self._write_synced(staging / "latent.safetensors",
                               save_safetensors({"latent": latent.detach().to("cpu", torch.float32).contiguous()}))
            self._write_synced(staging / "frames.png", _encode_png(frames.reshape(-1, result.width, 3)))
            self._write_synced(staging / "thumbnail.png", _encode_png(_thumbnail(frames[len(frames) // 2])))
            os.rename(staging, final)
            fsync_dir(final.parent)
        except OSError as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise ProjectError(f"Could not save a generated chunk in '{self.path}': "
                               f"{describe_os_error(error)}.") from error
        return result

    def read_latent(self, result: ChunkResult) -> torch.Tensor:
        """The clean latents [16, 6, H/8, W/8] float32, bit-exactly as the engine produced them.

        ProjectFileError naming the file when it is missing, a link, or not that tensor."""
        return decode_latent(self.path, result)

    def read_frames(self, result: ChunkResult) -> np.ndarray:
        """The decoded frames, uint8 RGB [24, H, W, 3], exactly as generated (ProjectFileError if damaged)."""
        return decode_frames(self.path, result)

    def thumbnail_path(self, result: ChunkResult) -> Path | None:
        """The thumbnail file, or None when it is missing, a link or not a regular file (it is optional)."""
        try:
            return checked_path(self.path, result.files["thumbnail"])
        except ProjectError:
            return None

    # -- file primitives

    def _writable_folder(self, name: str) -> Path:
        """A folder of the bundle we are about to write into: created if missing, refused if it is a link."""
        folder = checked_path(self.path, name, kind="any")
        try:
            folder.mkdir(exist_ok=True)
        except OSError as error:
            raise ProjectError(f"Could not create '{folder}': {describe_os_error(error)}.") from error
        return checked_path(self.path, name, kind="dir")

    def _copy_immutable(self, relative: str, staging: Path) -> None:
        """Copy one of the bundle's files into `staging` (a new bundle): a hard link where the file system
        allows (results are never rewritten, so sharing is safe), else a copy. A file that is missing, a
        link or not a regular file is left out: the copy opens with that result marked damaged."""
        try:
            source = checked_path(self.path, relative)
        except ProjectError:
            return
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)  # `source` is no link (checked_path), so nothing is followed
        except (OSError, NotImplementedError):
            shutil.copyfile(source, target, follow_symlinks=False)

    def _read(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as error:
            raise ProjectError(f"Could not read '{path}': {describe_os_error(error)}.") from error

    def _write_synced(self, path: Path, data: bytes) -> None:
        with open(path, "xb") as handle:
            _write_all(handle, data)
            handle.flush()
            os.fsync(handle.fileno())

    def _atomic_write(self, path: Path, data: bytes) -> None:
        """New bytes to a temporary file beside `path`, fsync, rename over it: `path` is old or new, never half."""
        tmp = path.with_name(f".{path.name}.{new_id()}.tmp")
        try:
            self._write_synced(tmp, data)
            os.replace(tmp, path)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            raise ProjectError(f"Could not save '{path}': {describe_os_error(error)}. "
                               "The previous version was left as it was.") from error
        fsync_dir(path.parent)


def _write_all(handle, data: bytes) -> None:
    """Every file's bytes go through here (tests replace it to simulate a full disk)."""
    handle.write(data)


def _project_files(project: Project) -> list[str]:
    files = [asset.path for asset in project.assets.values()]
    for result in project.results.values():
        files += [result.files["latent"], result.files["frames"], result.files["thumbnail"]]
    return files


def _chosen_path(path: Path) -> Path:
    """A path the user chose for a new or saved project, refused in one sentence when no file system takes it."""
    for part in path.parts:
        if "\0" in part:
            raise ProjectError(f"The name {part!r:.80} holds a NUL character; choose another name.")
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            raise ProjectError(f"The name '{part[:60]}…' is longer than {MAX_NAME_BYTES} bytes; choose a shorter one.")
    return path


def _regular_stat(path: Path) -> os.stat_result | None:
    """lstat of `path` when it is a regular file (not a link), else None."""
    try:
        info = os.lstat(path)
    except (OSError, ValueError):
        return None
    return info if stat.S_ISREG(info.st_mode) else None


def _is_regular(path: Path) -> bool:
    return _regular_stat(path) is not None


def _encode_png(image: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ProjectError("Could not encode frames as PNG.")
    return data.tobytes()


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    if width <= THUMBNAIL_WIDTH:
        return frame
    size = (THUMBNAIL_WIDTH, max(1, round(height * THUMBNAIL_WIDTH / width)))
    import cv2

    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)

