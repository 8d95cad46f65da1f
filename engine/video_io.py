"""Image and video files for the engine: load a reference image, read a prefix video, export an mp4.

Plain functions over numpy arrays (no Qt, no torch), shared by the sampler, the CLI and the studio:

* `load_image` / `fit_image`: a reference image as uint8 RGB ``[H, W, 3]``, fitted to the model's size.
  ``stretch`` is MAGI-1's own behaviour (ffmpeg ``scale`` to exactly W x H, aspect not kept).
* `iter_video` / `read_video` / `probe_video`: decoding through imageio-ffmpeg's bundled ffmpeg.
* `VideoWriter` / `write_video`: H.264 yuv420p mp4 (BT.709, faststart), written atomically: frames go to
  a temporary file beside the target, which replaces the target only once ffmpeg has finished cleanly,
  and only if the target is a regular file or a new name (magi_engine.output_files).

The writer drives imageio-ffmpeg's ffmpeg binary itself instead of `imageio_ffmpeg.write_frames`,
because write_frames (0.8) ignores ffmpeg's exit status and sends its messages to the console: a disk
that fills up at the final flush would look like success. Bad inputs raise `InputError`; failures to
write raise `ExportError`; cancelling an export is not an error.
"""

from __future__ import annotations

import errno
import logging
import math
import operator
import os
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import cv2
import numpy as np

from magi_engine.errors import ConfigError, EngineError, ExportError, InputError
from magi_engine.image_header import ImageHeader, check_image_size, read_image_header
from magi_engine.output_files import check_output_file, describe_os_error, replace_output_file

FIT_MODES = ("cover", "contain", "stretch")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")

ProgressFn = Callable[[int, "int | None"], Any]

logger = logging.getLogger(__name__)


def _not_resize_notice(record: logging.LogRecord) -> bool:
    """imageio-ffmpeg warns whenever frames are read at another size; here that is always on purpose."""
    return not record.getMessage().startswith("The frame size for reading")


logging.getLogger("imageio_ffmpeg").addFilter(_not_resize_notice)


FFMPEG_MISSING = ("ffmpeg is not available: the imageio-ffmpeg package (which carries it) is missing or "
                  "incomplete. Reinstall MAGI Studio, or set IMAGEIO_FFMPEG_EXE to an ffmpeg program.")


def _imageio_ffmpeg():
    """imageio-ffmpeg, imported on first use: the engine's sampling code must not need ffmpeg."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ExportError(FFMPEG_MISSING) from None
    return imageio_ffmpeg


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds (or what `write_video` wrote)."""

    frames: int
    width: int
    height: int
    fps: float

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.fps if self.fps else 0.0


# --------------------------------------------------------------------------------------------- images


def load_image(path: str | os.PathLike, *, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Read an image file (png, jpg, webp, gif, bmp, tiff, pnm) as uint8 RGB ``[H, W, 3]``.

    The header is read first (`magi_engine.image_header`): an unknown format or an image over
    `MAX_IMAGE_PIXELS` is refused before anything is decoded. 16-bit and float images are scaled to 8
    bits, grayscale and palette images become RGB, CMYK JPEGs are converted by the decoder, an alpha
    channel is composited over `background` (white by default), the EXIF orientation is applied and an
    animated image gives its first frame. Memory stays near the decoded image plus the result.
    """
    path = Path(path)
    _check_input_file(path, "Image")
    header = read_image_header(path)
    data = _read_input_bytes(path, "Image")
    try:
        raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        raw = None
    del data
    if raw is None or raw.size == 0 or raw.ndim not in (2, 3) or (raw.ndim == 3 and raw.shape[2] > 4):
        raise InputError(f"'{path}' is not an image that can be read (use png, jpg, webp, bmp or tiff).")
    # The decoder trusts its own reading of the file; it must agree with the header's promise.
    check_image_size(ImageHeader(header.format, raw.shape[1], raw.shape[0]), path)
    return _to_rgb8(_oriented(raw, header.orientation), background, path)


def check_image_file(path: str | os.PathLike) -> ImageHeader:
    """What `load_image` checks before decoding (the file, its format, its size), without decoding it."""
    path = Path(path)
    _check_input_file(path, "Image")
    return read_image_header(path)


#: Pixels converted at a time: the float copies of one band stay small whatever the image size.
_BAND_PIXELS = 1 << 20


def _to_rgb8(raw: np.ndarray, background: tuple[int, int, int], path: Path) -> np.ndarray:
    """A decoded image (gray, gray+alpha, BGR or BGRA; 8-bit, 16-bit or float) as RGB uint8, band by band."""
    if raw.dtype not in (np.uint8, np.uint16) and raw.dtype.kind != "f":
        raise InputError(f"'{path}' has pixels of type {raw.dtype}, which cannot be converted to 8-bit colour.")
    height, width = raw.shape[:2]
    out = np.empty((height, width, 3), np.uint8)
    back = np.asarray(background[::-1], np.float32) / 255.0  # BGR, like the decoded colour
    rows = max(1, _BAND_PIXELS // width)
    for top in range(0, height, rows):
        out[top:top + rows] = _band_to_rgb8(raw[top:top + rows], back)
    return out


def _band_to_rgb8(band: np.ndarray, back: np.ndarray) -> np.ndarray:
    if band.ndim == 2:
        band = band[..., None]
    channels = band.shape[2]
    if band.dtype == np.uint8 and channels in (1, 3):
        bgr = band if channels == 3 else np.repeat(band, 3, axis=2)
        return bgr[..., ::-1]
    image = _to_float01(band)
    colour = image[..., :3] if channels >= 3 else np.repeat(image[..., :1], 3, axis=2)
    if channels in (2, 4):
        alpha = image[..., -1:]
        colour = colour * alpha + back * (1.0 - alpha)
    return _to_uint8(colour)[..., ::-1]


def _oriented(image: np.ndarray, orientation: int) -> np.ndarray:
    """A view of `image` turned as its EXIF orientation (1-8) asks, as viewers show it."""
    if orientation in (5, 6, 7, 8):
        image = image.swapaxes(0, 1)  # transpose: 5 as is; 6, 7, 8 are a transpose then a flip
    if orientation in (2, 3, 6, 7):
        image = image[:, ::-1]
    if orientation in (3, 4, 7, 8):
        image = image[::-1]
    return image


def fit_image(image: np.ndarray, width: int, height: int, mode: str = "cover") -> np.ndarray:
    """Fit an ``[H, W, C]`` image to exactly ``height x width`` pixels.

    cover: scale to fill, then centre-crop. contain: scale to fit, centred on black bars.
    stretch: scale each axis independently (MAGI-1's official behaviour).
    """
    if mode not in FIT_MODES:
        raise ConfigError(f"fit mode must be one of {FIT_MODES}, not {mode!r}.")
    width, height = _check_size((width, height))
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError(f"expected an image of shape [H, W, C], got shape {tuple(image.shape)}.")
    src_h, src_w = image.shape[:2]
    if mode == "stretch":
        return _resize(image, width, height)
    scale = (max if mode == "cover" else min)(width / src_w, height / src_h)
    if mode == "cover":
        new_w, new_h = max(width, round(src_w * scale)), max(height, round(src_h * scale))
        resized = _resize(image, new_w, new_h)
        top, left = (new_h - height) // 2, (new_w - width) // 2
        return np.ascontiguousarray(resized[top : top + height, left : left + width])
    new_w = min(width, max(1, round(src_w * scale)))
    new_h = min(height, max(1, round(src_h * scale)))
    canvas = np.zeros((height, width, image.shape[2]), image.dtype)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = _resize(image, new_w, new_h)
    return canvas


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """cv2.resize with INTER_AREA when shrinking (either axis) and INTER_CUBIC when enlarging."""
    src_h, src_w = image.shape[:2]
    if (src_w, src_h) == (width, height):
        return image.copy()
    shrinking = width < src_w or height < src_h
    out = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    return out[..., None] if out.ndim == 2 else out  # cv2 drops a single channel axis


def _to_float01(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    return np.clip(np.nan_to_num(image.astype(np.float32)), 0.0, 1.0)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def _read_input_bytes(path: Path, kind: str) -> np.ndarray:
    _check_input_file(path, kind)
    try:
        data = np.fromfile(path, dtype=np.uint8)  # unlike cv2.imread, works with any path on any OS
    except OSError as err:
        raise InputError(f"{kind} file '{path}' cannot be read ({err.strerror or err}).") from err
    if data.size == 0:
        raise InputError(f"{kind} file '{path}' is empty.")
    return data


def _check_input_file(path: Path, kind: str) -> None:
    if not path.exists():
        raise InputError(f"{kind} file '{path}' does not exist.")
    if not path.is_file():
        raise InputError(f"{kind} path '{path}' is not a file.")
    if path.stat().st_size == 0:
        raise InputError(f"{kind} file '{path}' is empty.")


# --------------------------------------------------------------------------------------------- reading


def iter_video(
    path: str | os.PathLike,
    *,
    max_frames: int | None = None,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
) -> Iterator[np.ndarray]:
    """Decode a video lazily, frame by frame, as uint8 RGB ``[H, W, 3]`` arrays.

    `fps` resamples the frame rate (ffmpeg's fps filter); `size` = (width, height) stretches every
    frame to that size, as MAGI-1 does for a prefix video.
    """
    path = Path(path)
    _check_input_file(path, "Video")
    filters = []
    if fps is not None:
        filters.append(f"fps={_fraction(fps, 'fps')}")
    if size is not None:
        width, height = _check_size(size)
        filters.append(f"scale={width}:{height}:flags=area")
    output_params = ["-vf", ",".join(filters)] if filters else []
    if max_frames is not None:
        if max_frames < 0:
            raise ConfigError(f"max_frames must be >= 0, not {max_frames}.")
        if max_frames == 0:
            return iter(())
        output_params += ["-frames:v", str(int(max_frames))]
    reader = _imageio_ffmpeg().read_frames(str(path), output_params=output_params)
    try:
        width, height = next(reader)["size"]
    except Exception as err:  # ffmpeg could not open it, or it holds no video stream
        reader.close()
        raise InputError(f"'{path}' is not a video that can be read.") from err
    return _decoded_frames(reader, (height, width, 3), path)


def _decoded_frames(reader: Iterator[bytes], shape: tuple[int, int, int], path: Path) -> Iterator[np.ndarray]:
    try:
        while True:
            try:
                data = next(reader)
            except StopIteration:
                return
            except Exception as err:
                raise InputError(f"Video file '{path}' is damaged and could not be decoded to the end.") from err
            yield np.frombuffer(data, np.uint8).reshape(shape)
    finally:
        reader.close()  # stops ffmpeg


def check_video_file(path: str | os.PathLike) -> None:
    """Raise InputError unless `path` is a video that ffmpeg opens and that holds a frame (one is decoded)
    no larger than an image may be (`MAX_IMAGE_PIXELS`): a prefix is read at its own size."""
    for frame in iter_video(path, max_frames=1):
        check_image_size(ImageHeader("video", frame.shape[1], frame.shape[0]), path)
        return
    raise InputError(f"Video file '{path}' holds no frames.")


def read_video(
    path: str | os.PathLike,
    max_frames: int | None = None,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Read a whole video (or its first `max_frames`) as uint8 ``[T, H, W, 3]``. See `iter_video`."""
    frames = list(iter_video(path, max_frames=max_frames, fps=fps, size=size))
    if not frames:
        raise InputError(f"Video file '{path}' holds no frames.")
    return np.stack(frames)


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Frame count (by decoding, so exact), size and frame rate of a video file."""
    path = Path(path)
    _check_input_file(path, "Video")
    reader = _imageio_ffmpeg().read_frames(str(path))
    try:
        meta = next(reader)
        reader.close()
        frames, _seconds = _imageio_ffmpeg().count_frames_and_secs(str(path))
    except Exception as err:
        raise InputError(f"'{path}' is not a video that can be read.") from err
    finally:
        reader.close()
    width, height = meta["size"]
    return VideoInfo(frames=int(frames), width=int(width), height=int(height), fps=float(meta["fps"]))


# --------------------------------------------------------------------------------------------- writing


def _ffmpeg_exe() -> str:
    """The ffmpeg binary bundled with imageio-ffmpeg (a function so that tests can replace it)."""
    try:
        return _imageio_ffmpeg().get_ffmpeg_exe()
    except RuntimeError:  # imageio-ffmpeg found no binary
        raise ExportError(FFMPEG_MISSING) from None


class VideoWriter:
    """Streams RGB frames into an H.264 mp4, atomically.

    Use it as a context manager: leaving the block normally publishes the file (`close`), an exception
    discards it (`abort`); either way no temporary file is left and an existing target is replaced only
    by a complete video. The frame size is taken from the first frame.

    `scale` is None, a factor (0.5) or an output size (width, height). The output size is rounded up to
    a multiple of `macro_block_size` (at least 2, which yuv420p needs; 16 suits old players).
    `crf` is x264's quality: 0 lossless, 18 visually lossless (default), 23 x264's default, 51 worst.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        *,
        scale: float | tuple[int, int] | None = None,
        crf: int = 18,
        preset: str = "medium",
        macro_block_size: int = 2,
    ) -> None:
        self.path = Path(path)
        self.fps = _fraction(fps, "fps")
        if not (isinstance(crf, int) and 0 <= crf <= 51):
            raise ConfigError(f"crf must be an integer from 0 (lossless) to 51, not {crf!r}.")
        if preset not in X264_PRESETS:
            raise ConfigError(f"preset must be one of {X264_PRESETS}, not {preset!r}.")
        if not (isinstance(macro_block_size, int) and macro_block_size >= 2 and macro_block_size % 2 == 0):
            raise ConfigError(f"macro_block_size must be an even integer >= 2, not {macro_block_size!r}.")
        if isinstance(scale, (tuple, list)):
            scale = _check_size(scale)
        elif scale is not None and not (isinstance(scale, (int, float)) and 0 < scale < math.inf):
            raise ConfigError(f"scale must be a positive factor or a (width, height) size, not {scale!r}.")
        self.scale, self.crf, self.preset, self.macro_block_size = scale, crf, preset, macro_block_size
        self.frames_written = 0
        self.input_size: tuple[int, int] | None = None  # (width, height) of the frames
        self.output_size: tuple[int, int] | None = None  # (width, height) in the file
        self._process: subprocess.Popen | None = None
        self._stderr = None
        self._done = False
        # Before any file exists and before the caller spends minutes generating: a target that is not
        # ours to replace (a device, a FIFO, a folder, a link) or a missing ffmpeg is reported at once.
        check_output_file(self.path, "video")
        self._ffmpeg = _ffmpeg_exe()
        self._tmp = self._make_temp_file()

    # -- public

    def write(self, frame: Any) -> None:
        """Append one uint8 RGB frame ``[H, W, 3]`` (or a batch ``[T, H, W, 3]``)."""
        if self._done:
            raise RuntimeError("VideoWriter is closed.")
        array = np.asarray(frame)
        if array.ndim == 4:
            for single in array:
                self.write(single)
            return
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
            raise InputError(f"a video frame must be uint8 RGB [H, W, 3], got {array.dtype} {tuple(array.shape)}.")
        size = (array.shape[1], array.shape[0])
        if self._process is None:
            self._start(size)
        elif size != self.input_size:
            raise InputError(f"all frames must have the size of the first one {self.input_size}, got {size}.")
        try:
            self._process.stdin.write(np.ascontiguousarray(array).data)
        except OSError as err:  # ffmpeg stopped (broken pipe): its own message says why
            self._process.wait()
            failure = self._failure(err)
            self.abort()
            raise failure from err
        self.frames_written += 1

    def close(self) -> VideoInfo:
        """Finish the file and move it into place; returns what was written."""
        if self._done:
            raise RuntimeError("VideoWriter is closed.")
        if self._process is None:
            self.abort()
            raise InputError(f"no frames were given, so '{self.path}' was not written.")
        try:
            try:
                self._process.stdin.close()  # ffmpeg flushes the encoder and writes the index
            except OSError:
                pass  # ffmpeg has already stopped; its exit status and message tell why
            if self._process.wait() != 0:
                raise self._failure(None)
            with open(self._tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            replace_output_file(self._tmp, self.path, "video")  # checked again: it may have changed meanwhile
        except OSError as err:
            self.abort()
            raise ExportError(f"Could not save the video '{self.path}': {describe_os_error(err)}.") from err
        except BaseException:
            self.abort()
            raise
        self._finish()
        width, height = self.output_size
        return VideoInfo(self.frames_written, width, height, float(self.fps))

    def abort(self) -> None:
        """Stop ffmpeg at once and delete the partial file; the target is left as it was."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._finish()
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._done:
            return
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- internals

    def _make_temp_file(self) -> str:
        """An empty, hidden file beside the target (same file system, so os.replace is atomic)."""
        tmp = str(self.path.parent / f".{self.path.name}.{uuid.uuid4().hex[:12]}.part")
        try:  # os.open with 0o666 honours the umask (mkstemp would make the video private: 0o600)
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError as err:
            raise ExportError(f"Cannot save the video '{self.path}': {describe_os_error(err)}.") from err
        return tmp

    def _start(self, size: tuple[int, int]) -> None:
        width, height = size
        if self.scale is None:
            out_w, out_h = width, height
        elif isinstance(self.scale, tuple):
            out_w, out_h = self.scale
        else:
            out_w, out_h = max(1, round(width * self.scale)), max(1, round(height * self.scale))
        block = self.macro_block_size
        out_w, out_h = math.ceil(out_w / block) * block, math.ceil(out_h / block) * block
        flags = "area" if (out_w < width or out_h < height) else "bicubic"
        self.input_size, self.output_size = size, (out_w, out_h)
        cmd = [
            self._ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(self.fps), "-i", "-",
            "-an", "-vf", f"scale={out_w}:{out_h}:flags={flags}:out_color_matrix=bt709:out_range=tv",
            "-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf), "-pix_fmt", "yuv420p",
            "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
            "-movflags", "+faststart", "-f", "mp4", self._tmp,
        ]  # fmt: skip
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: ffmpeg can never block on it
        try:
            self._process = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr
            )
        except OSError as err:
            self.abort()
            raise ExportError(f"Could not start ffmpeg to write '{self.path}': {describe_os_error(err)}.") from err

    def _failure(self, err: OSError | None) -> EngineError:
        message = self._ffmpeg_message()
        logger.warning("ffmpeg failed writing %s (exit status %s):\n%s", self.path, self._process.returncode, message)
        if "No space left" in message or (err is not None and err.errno == errno.ENOSPC):
            return ExportError(f"Could not save the video '{self.path}': the disk is full.")
        lines = [line for line in message.splitlines() if line.strip() != "Conversion failed!"]
        detail = lines[-1].strip() if lines else "no message"
        return ExportError(f"Could not save the video '{self.path}': ffmpeg failed ({detail}).")

    def _ffmpeg_message(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()

    def _finish(self) -> None:
        self._done = True
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def write_video(
    path: str | os.PathLike,
    frames: Iterable[Any],
    fps: float,
    *,
    scale: float | tuple[int, int] | None = None,
    crf: int = 18,
    preset: str = "medium",
    macro_block_size: int = 2,
    total: int | None = None,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | Any | None = None,
) -> VideoInfo | None:
    """Write frames (``[H, W, 3]`` arrays or ``[T, H, W, 3]`` batches) to an mp4; see `VideoWriter`.

    `progress(frames_written, total)` is called after each frame; `total` is counted from `frames`
    when it is a list, tuple or array, else it is None unless given. `cancel` is a callable returning
    True, or an object with ``is_set()`` (threading.Event); it is checked before every frame. Returns
    what was written, or None when cancelled (then no file is left and an existing target is untouched).
    """
    should_stop = _cancel_check(cancel)
    if total is None and isinstance(frames, (np.ndarray, list, tuple)):
        total = len(frames) if isinstance(frames, np.ndarray) else sum(_count(item) for item in frames)
    with VideoWriter(path, fps, scale=scale, crf=crf, preset=preset, macro_block_size=macro_block_size) as writer:
        for item in frames:
            array = np.asarray(item)
            for frame in array if array.ndim == 4 else (array,):
                if should_stop():
                    writer.abort()
                    return None
                writer.write(frame)
                if progress is not None:
                    progress(writer.frames_written, total)
        if should_stop():
            writer.abort()
            return None
        return writer.close()


# --------------------------------------------------------------------------------------------- helpers


def _cancel_check(cancel: Any) -> Callable[[], bool]:
    if cancel is None:
        return lambda: False
    if hasattr(cancel, "is_set"):
        return cancel.is_set
    if callable(cancel):
        return cancel
    raise TypeError("cancel must be a callable returning bool or an object with is_set().")


def _count(item: Any) -> int:
    return len(item) if getattr(item, "ndim", 3) == 4 else 1


def _fraction(value: float, name: str) -> Fraction:
    try:
        fraction = Fraction(value).limit_denominator(100_000)
    except (TypeError, ValueError, OverflowError):
        fraction = Fraction(0)
    if fraction <= 0:
        raise ConfigError(f"{name} must be a positive number, not {value!r}.")
    return fraction


def _check_size(size: Any) -> tuple[int, int]:
    try:
        width, height = (operator.index(v) for v in size)
    except (TypeError, ValueError):
        width = height = 0
    if width <= 0 or height <= 0:
        raise ConfigError(f"size must be (width, height) in positive pixels, not {size!r}.")
    return width, height

