"""magi_engine.output_files and the video writer: only a new name or a regular file is ever replaced."""

from __future__ import annotations

import errno
import os
import socket
import stat

import numpy as np
import pytest

from magi_engine import video_io
from magi_engine.errors import ExportError
from magi_engine.output_files import (NotRegularFile, check_output_file, create_temporary, describe_os_error,
                                 open_regular_file, read_regular_file, replace_output_file)
from magi_engine.video_io import VideoWriter, probe_video, write_video

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs, sockets and devices are POSIX")


def frames(count=3) -> np.ndarray:
    return np.full((count, 32, 48, 3), 90, np.uint8)


def make_fifo(path):
    os.mkfifo(path)


def make_folder(path):
    path.mkdir()


def make_socket(path):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the socket file stays


def make_link_to_null(path):
    path.symlink_to("/dev/null")


def make_link_to_file(path):
    (path.parent / "real.mp4").write_bytes(b"kept")
    path.symlink_to(path.parent / "real.mp4")


def make_device(path):
    if os.geteuid() != 0:  # only root may make device nodes; a link to /dev/null stands in
        pytest.skip("making a device node needs root")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the same device as /dev/null


TARGETS = {
    "fifo": (make_fifo, "a named pipe"), "folder": (make_folder, "a folder"), "socket": (make_socket, "a socket"),
    "link to /dev/null": (make_link_to_null, "a symbolic link"), "link to a file": (make_link_to_file, "a symbolic link"),
    "character device": (make_device, "a character device"),
}


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_a_target_that_is_not_a_regular_file_is_refused_before_ffmpeg_starts(tmp_path, monkeypatch, kind):
    make, name = TARGETS[kind]
    target = tmp_path / "out.mp4"
    make(target)
    before = os.lstat(target)
    monkeypatch.setattr(video_io, "_ffmpeg_exe", lambda: pytest.fail("ffmpeg was looked for"))
    with pytest.raises(ExportError, match=f"it is {name}[^,]*, not a regular file") as caught:
        VideoWriter(target, fps=24)
    message = str(caught.value)
    assert "out.mp4" in message and message.endswith("choose a new file name.") and "\n" not in message
    after = os.lstat(target)
    assert (after.st_ino, after.st_mode, after.st_mtime_ns) == (before.st_ino, before.st_mode, before.st_mtime_ns)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_regular_file_is_replaced_whole(tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"an older video")
    info = write_video(target, frames(5), fps=24)
    assert info.frames == 5 and probe_video(target).frames == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_a_target_that_becomes_a_fifo_while_writing_is_left_alone(tmp_path):
    target = tmp_path / "out.mp4"
    writer = VideoWriter(target, fps=24)
    writer.write(frames())
    os.mkfifo(target)  # someone puts a pipe there while the video is encoded
    with pytest.raises(ExportError, match="named pipe"):
        writer.close()
    assert stat.S_ISFIFO(os.lstat(target).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # the temporary file is gone


def test_replace_output_file_checks_at_the_rename(tmp_path):
    (tmp_path / "new.json.tmp").write_text("{}")
    (tmp_path / "taken").mkdir()
    with pytest.raises(ExportError, match="a folder"):
        replace_output_file(tmp_path / "new.json.tmp", tmp_path / "taken", "sidecar")
    assert not (tmp_path / "new.json.tmp").exists()  # a refused rename leaves nothing behind
    (tmp_path / "new.json.tmp").write_text("{}")
    replace_output_file(tmp_path / "new.json.tmp", tmp_path / "new.json", "sidecar")
    assert (tmp_path / "new.json").read_text() == "{}"


def test_folder_problems_are_one_sentence(tmp_path):
    with pytest.raises(ExportError, match="folder .* does not exist"):
        check_output_file(tmp_path / "missing" / "a.mp4", "video")
    with pytest.raises(ExportError, match="name is too long"):
        check_output_file(tmp_path / ("x" * 300 + ".mp4"), "video")
    assert check_output_file(tmp_path / "fresh.mp4") == tmp_path / "fresh.mp4"


def test_a_temporary_file_is_never_opened_through_a_link_planted_at_its_name(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    for target in (victim, tmp_path / "would-be-created"):
        tmp = tmp_path / ".out.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        fd = create_temporary(tmp)
        os.write(fd, b"new")
        os.close(fd)
        assert not tmp.is_symlink() and tmp.read_bytes() == b"new"
    assert victim.read_text() == "keep me" and not (tmp_path / "would-be-created").exists()


def test_reading_a_fifo_or_a_link_is_refused_at_once(tmp_path):
    fifo, link = tmp_path / "side.json", tmp_path / "link.json"
    os.mkfifo(fifo)  # no writer: a plain open() would block forever
    link.symlink_to(tmp_path / "real.json")
    (tmp_path / "real.json").write_text("{}")
    for path in (fifo, link):
        with pytest.raises(OSError):
            read_regular_file(path, limit=100)
    assert read_regular_file(tmp_path / "real.json", limit=100) == b"{}"
    with pytest.raises(OSError):
        read_regular_file(tmp_path / "real.json", limit=1)


def test_open_regular_file_is_the_one_opener_and_closes_what_it_opened(tmp_path):
    """The sidecar reader and the project's reader (project_files) open through it: a folder or FIFO is
    NotRegularFile, a link at the name an OSError, and the descriptor is closed when the block ends."""
    (tmp_path / "real.json").write_text("{}")
    with open_regular_file(tmp_path / "real.json") as (fd, size):
        assert size == 2 and os.read(fd, 10) == b"{}"
    with pytest.raises(OSError):
        os.fstat(fd)  # closed
    os.mkfifo(tmp_path / "fifo")
    for path in (tmp_path, tmp_path / "fifo"):
        with pytest.raises(NotRegularFile):
            with open_regular_file(path):
                pass
    (tmp_path / "link").symlink_to(tmp_path / "real.json")
    with pytest.raises(OSError) as caught:
        with open_regular_file(tmp_path / "link"):
            pass
    assert not isinstance(caught.value, NotRegularFile)


def test_os_errors_are_described_in_a_few_words():
    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device")) == "the disk is full"
    assert describe_os_error(OSError(errno.EROFS, "Read-only file system")) == "there is no permission to write there"
    assert describe_os_error(OSError(errno.EIO, "Input/output error")) == "Input/output error"


def test_a_model_bundle_is_not_written_through_links_nor_over_a_fifo(tmp_path):
    from magi_engine.bundle import save_native_bundle
    from tests.engine.factories import tiny_bundle

    folder, victim = tmp_path / "model", tmp_path / "victim.txt"
    folder.mkdir()
    victim.write_text("keep me")
    for name in ("model.json.tmp", "dit.safetensors.tmp", "vae.safetensors.tmp"):
        (folder / name).symlink_to(victim)
    bundle = tiny_bundle()
    save_native_bundle(bundle, folder)
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in folder.iterdir()) == ["dit.safetensors", "model.json", "text_encoder.safetensors",
                                                        "vae.safetensors"]
    (folder / "model.json").unlink()
    os.mkfifo(folder / "model.json")
    with pytest.raises(ExportError, match="named pipe"):
        save_native_bundle(bundle, folder)
    assert stat.S_ISFIFO(os.lstat(folder / "model.json").st_mode)
