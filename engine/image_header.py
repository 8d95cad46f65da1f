"""An image file's format, size and EXIF orientation, read from its header before any pixel is decoded.

OpenCV has no header-only API, and a decoder allocates whatever the header asks for: a 20000 x 20000
RGBA PNG of a few hundred kilobytes needs gigabytes once decoded. `read_image_header` reads only the
bytes that name the format and the size, so `magi_engine.video_io.load_image` can refuse an image over
`MAX_IMAGE_PIXELS` before OpenCV sees it. The formats are those the app decodes: PNG (and APNG), JPEG,
GIF, BMP, WebP, TIFF and PNM. Anything else is refused as well, since every decoder is attack surface
and OpenCV carries many more (JPEG 2000, HDR, Sun raster, ...).

Every problem is an `InputError` naming the file. A header that lies is caught twice: here when it is
inconsistent, and by the decoder (whose output size `load_image` checks again) when it is not.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from magi_engine.errors import InputError

#: The largest image accepted, in pixels (a 48-megapixel phone photo fits; decoding costs at most
#: 8 bytes a pixel for 16-bit RGBA, so about 400 MB).
MAX_IMAGE_PIXELS = 50_000_000
#: The largest image file read into memory (an uncompressed 16-bit TIFF at the pixel cap fits).
MAX_IMAGE_BYTES = 512 * 2**20
FORMATS = ("PNG", "JPEG", "WebP", "GIF", "BMP", "TIFF", "PNM")

_SEGMENTS_LIMIT = 4096  # JPEG segments / PNG chunks / GIF blocks looked at before giving up


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says."""

    format: str
    width: int
    height: int
    #: EXIF orientation, 1 (as stored) to 8; see `magi_engine.video_io.load_image`.
    orientation: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height


class _Malformed(Exception):
    """The header is damaged; the message says how (it ends a sentence about the file)."""


def read_image_header(path: str | os.PathLike) -> ImageHeader:
    """The header of the image file `path`, refused (InputError) when over the caps, damaged or unknown."""
    path = Path(path)
    try:
        size = os.stat(path).st_size
        with open(path, "rb") as handle:
            header = _parse(handle, size)
    except _Malformed as err:
        raise InputError(f"'{path}' is not an image that can be read: {err}.") from None
    except struct.error:
        raise InputError(f"'{path}' is not an image that can be read: its header is damaged.") from None
    except OSError as err:
        raise InputError(f"Image file '{path}' cannot be read ({err.strerror or err}).") from None
    check_image_size(header, path, size)
    return header


def check_image_size(header: ImageHeader, path: str | os.PathLike, file_bytes: int = 0) -> None:
    """Refuse an image over `MAX_IMAGE_PIXELS` pixels or `MAX_IMAGE_BYTES` bytes, naming the limit."""
    if header.pixels > MAX_IMAGE_PIXELS:
        raise InputError(f"'{path}' is {header.width} x {header.height} pixels ({header.pixels / 1e6:.0f} "
                         f"megapixels); images are limited to {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels, so scale it "
                         "down first.")
    if file_bytes > MAX_IMAGE_BYTES:
        raise InputError(f"Image file '{path}' is {file_bytes / 2**20:.0f} MiB; image files are limited to "
                         f"{MAX_IMAGE_BYTES // 2**20} MiB.")


def _parse(handle: BinaryIO, size: int) -> ImageHeader:
    magic = handle.read(16)
    handle.seek(0)
    if magic.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png(handle)
    if magic.startswith(b"\xff\xd8"):
        return _jpeg(handle)
    if magic[:6] in (b"GIF87a", b"GIF89a"):
        return _gif(handle)
    if magic.startswith(b"BM"):
        return _bmp(handle)
    if magic[:4] == b"RIFF" and magic[8:12] == b"WEBP":
        return _webp(handle)
    if magic[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(handle)
    if magic[:1] == b"P" and magic[1:2] in b"123456" and len(magic) > 2:
        return _pnm(handle)
    raise _Malformed(f"its format is not one MAGI Studio reads ({', '.join(FORMATS)})")


def _read(handle: BinaryIO, count: int, what: str) -> bytes:
    data = handle.read(count)
    if len(data) < count:
        raise _Malformed(f"it ends inside its {what}")
    return data


def _checked(fmt: str, width: int, height: int, orientation: int = 1) -> ImageHeader:
    if width <= 0 or height <= 0:
        raise _Malformed(f"its {fmt} header gives a size of {width} x {height} pixels")
    return ImageHeader(fmt, width, height, orientation if 1 <= orientation <= 8 else 1)


# ------------------------------------------------------------------------------------------ formats


def _png(handle: BinaryIO) -> ImageHeader:
    handle.seek(8)
    length, kind = struct.unpack(">I4s", _read(handle, 8, "PNG header"))
    if kind != b"IHDR" or length != 13:
        raise _Malformed("its PNG header (IHDR) is missing")
    width, height = struct.unpack(">II", _read(handle, 13, "PNG header")[:8])
    handle.seek(4, io.SEEK_CUR)
    orientation = 1
    for _ in range(_SEGMENTS_LIMIT):  # an eXIf chunk, if any, comes before the pixels (IDAT)
        head = handle.read(8)
        if len(head) < 8:
            break
        length, kind = struct.unpack(">I4s", head)
        if kind in (b"IDAT", b"IEND"):
            break
        if kind == b"eXIf" and length < 2**16:
            orientation = _exif_orientation(handle.read(length))
            break
        handle.seek(length + 4, io.SEEK_CUR)
    return _checked("PNG", width, height, orientation)


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(handle: BinaryIO) -> ImageHeader:
    handle.seek(2)
    orientation = 1
    for _ in range(_SEGMENTS_LIMIT):
        if _read(handle, 1, "JPEG header") != b"\xff":
            raise _Malformed("its JPEG header is damaged (a segment does not start with a marker)")
        marker = _read(handle, 1, "JPEG header")[0]
        while marker == 0xFF:  # fill bytes
            marker = _read(handle, 1, "JPEG header")[0]
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            continue
        if marker in (0xD9, 0xDA):
            raise _Malformed("its JPEG data starts before the frame header that gives its size")
        (length,) = struct.unpack(">H", _read(handle, 2, "JPEG header"))
        if length < 2:
            raise _Malformed("its JPEG header is damaged (a segment of negative length)")
        if marker in _SOF_MARKERS:
            height, width = struct.unpack(">xHH", _read(handle, 5, "JPEG frame header"))
            return _checked("JPEG", width, height, orientation)
        body_start = handle.tell()
        if marker == 0xE1 and orientation == 1:
            body = handle.read(length - 2)
            if body.startswith(b"Exif\x00\x00"):
                orientation = _exif_orientation(body[6:])
        handle.seek(body_start + length - 2)
    raise _Malformed("its JPEG header has too many segments before the frame header")


def _gif(handle: BinaryIO) -> ImageHeader:
    width, height, flags = struct.unpack("<HHB", _read(handle, 13, "GIF header")[6:11])
    if flags & 0x80:  # a global colour table follows
        handle.seek(3 * 2 ** ((flags & 7) + 1), io.SEEK_CUR)
    for _ in range(_SEGMENTS_LIMIT):  # the first frame may reach beyond the logical screen
        block = _read(handle, 1, "GIF blocks")[0]
        if block == 0x2C:
            left, top, frame_w, frame_h = struct.unpack("<HHHH", _read(handle, 9, "GIF frame header")[:8])
            return _checked("GIF", max(width, left + frame_w), max(height, top + frame_h))
        if block != 0x21:
            raise _Malformed("it holds no frame")
        handle.seek(1, io.SEEK_CUR)  # extension label
        for _ in range(2**16):
            sub = _read(handle, 1, "GIF extension")[0]
            if sub == 0:
                break
            handle.seek(sub, io.SEEK_CUR)
    raise _Malformed("its GIF header has too many blocks before the first frame")


def _bmp(handle: BinaryIO) -> ImageHeader:
    head = _read(handle, 26, "BMP header")
    (dib,) = struct.unpack("<I", head[14:18])
    if dib == 12:
        width, height = struct.unpack("<HH", head[18:22])
    elif dib >= 40:
        width, height = struct.unpack("<ii", head[18:26])
        height = abs(height)  # negative: stored top-down
    else:
        raise _Malformed(f"its BMP header has an unknown size ({dib} bytes)")
    return _checked("BMP", width, height)


def _webp(handle: BinaryIO) -> ImageHeader:
    handle.seek(12)
    kind, length = struct.unpack("<4sI", _read(handle, 8, "WebP header"))
    body = _read(handle, min(length, 30), "WebP header")
    if kind == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", body[6:10])
        return _checked("WebP", width & 0x3FFF, height & 0x3FFF)
    if kind == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        (bits,) = struct.unpack("<I", body[1:5])
        return _checked("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if kind == b"VP8X" and len(body) >= 10:
        width = int.from_bytes(body[4:7], "little") + 1
        height = int.from_bytes(body[7:10], "little") + 1
        return _checked("WebP", width, height, _webp_orientation(handle, 20 + length + (length & 1)))
    raise _Malformed("its WebP header is damaged")


def _webp_orientation(handle: BinaryIO, offset: int) -> int:
    handle.seek(offset)
    for _ in range(_SEGMENTS_LIMIT):
        head = handle.read(8)
        if len(head) < 8:
            return 1
        kind, length = struct.unpack("<4sI", head)
        if kind == b"EXIF" and length < 2**16:
            body = handle.read(length)
            return _exif_orientation(body[6:] if body.startswith(b"Exif\x00\x00") else body)
        handle.seek(length + (length & 1), io.SEEK_CUR)
    return 1


def _tiff(handle: BinaryIO) -> ImageHeader:
    tags = _tiff_tags(handle, base=0)
    if 256 not in tags or 257 not in tags:
        raise _Malformed("its TIFF header gives no size")
    return _checked("TIFF", tags[256], tags[257])


def _pnm(handle: BinaryIO) -> ImageHeader:
    text = handle.read(1024)
    tokens: list[bytes] = []
    for line in text[2:].splitlines():
        tokens += line.split(b"#", 1)[0].split()
        if len(tokens) >= 2:
            break
    if len(tokens) < 2 or not all(t.isdigit() and len(t) < 12 for t in tokens[:2]):
        raise _Malformed("its PNM header gives no size")
    return _checked("PNM", int(tokens[0]), int(tokens[1]))


# ------------------------------------------------------------------------------------------ TIFF / EXIF


def _tiff_tags(handle: BinaryIO, base: int) -> dict[int, int]:
    """The single-number SHORT and LONG tags of a TIFF structure's first directory (IFD0)."""
    handle.seek(base)
    order = _read(handle, 8, "TIFF header")
    endian = {b"II": "<", b"MM": ">"}.get(order[:2])
    if endian is None or struct.unpack(endian + "H", order[2:4])[0] != 42:
        raise _Malformed("its TIFF header is damaged")
    (offset,) = struct.unpack(endian + "I", order[4:8])
    handle.seek(base + offset)
    (count,) = struct.unpack(endian + "H", _read(handle, 2, "TIFF directory"))
    entries = _read(handle, 12 * min(count, 1024), "TIFF directory")
    tags: dict[int, int] = {}
    for start in range(0, len(entries), 12):
        tag, kind, number = struct.unpack(endian + "HHI", entries[start:start + 8])
        if number == 1 and kind == 3:
            tags[tag] = struct.unpack(endian + "H", entries[start + 8:start + 10])[0]
        elif number == 1 and kind == 4:
            tags[tag] = struct.unpack(endian + "I", entries[start + 8:start + 12])[0]
    return tags


def _exif_orientation(exif: bytes) -> int:
    """The Orientation tag (0x0112) of EXIF data (a TIFF structure); 1 when absent or damaged."""
    try:
        return _tiff_tags(io.BytesIO(exif), base=0).get(0x0112, 1)
    except (_Malformed, struct.error):
        return 1
