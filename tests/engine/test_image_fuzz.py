"""Fuzzing the image loader: random bytes, mutated real images and headers that lie about their size.

Whatever the bytes, `load_image` returns an RGB uint8 image or raises InputError; any other exception
(an OpenCV error, a struct error, a MemoryError, ...) fails. The pixel cap is lowered to one megapixel
here so that a header promising a large image is refused at once instead of decoding garbage for a
second, which keeps the suite bounded; the cap itself is tested at its real value elsewhere.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from magi_engine import image_header
from magi_engine.errors import InputError
from magi_engine.video_io import load_image
from tests.engine import image_bytes

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _seeds() -> dict[str, bytes]:
    bgr = np.zeros((12, 20, 3), np.uint8)
    bgr[:6, :10] = (40, 30, 220)
    bgra = np.dstack([bgr, np.full((12, 20), 128, np.uint8)])
    seeds = {ext: cv2.imencode(ext, bgr)[1].tobytes() for ext in (".png", ".jpg", ".webp", ".bmp", ".tiff", ".gif",
                                                                  ".ppm")}
    seeds["rgba16.png"] = cv2.imencode(".png", bgra.astype(np.uint16) * 257)[1].tobytes()
    seeds["lossless.webp"] = cv2.imencode(".webp", bgra, [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes()
    seeds["cmyk.jpg"] = image_bytes.cmyk_jpeg((0, 200, 100, 20), 16, 8)
    seeds["exif.jpg"] = image_bytes.with_jpeg_exif(seeds[".jpg"], 6)
    seeds["palette.png"] = image_bytes.png(3, 2, 3, 8, [bytes([0, 1, 0]), bytes([1, 0, 1])],
                                           image_bytes.png_chunk(b"PLTE", bytes(range(6))))
    seeds["gray-alpha.png"] = image_bytes.png(2, 2, 4, 8, [bytes([1, 2, 3, 4]), bytes([5, 6, 7, 8])])
    animation = cv2.Animation()
    animation.frames, animation.durations = [bgr, bgr[::-1].copy()], [50, 50]
    for ext in (".png", ".webp"):
        seeds["animated" + ext] = cv2.imencodeanimation(ext, animation)[1].tobytes()
    return seeds


SEEDS = _seeds()
#: Where each format keeps its width and height (offset, struct format), for headers that lie.
SIZE_FIELDS = {".png": (16, ">II"), ".bmp": (18, "<ii"), ".gif": (6, "<HH"), ".ppm": None}


def _load(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(image_header, "MAX_IMAGE_PIXELS", 1 << 20)
        path = Path(folder) / "fuzzed.img"
        path.write_bytes(data)
        try:
            image = load_image(path)
        except InputError as error:
            assert str(error).strip() and "\n" not in str(error)
            return
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.flags.c_contiguous
        assert image.shape[0] * image.shape[1] <= 1 << 20


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes(data):
    _load(data)


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=8),
       st.integers(0, 5000))
def test_mutated_images(name, edits, keep):
    data = bytearray(SEEDS[name])
    for position, value in edits:
        data[position % len(data)] = value
    _load(bytes(data[:max(keep, 1)] if keep < len(data) else data))


@FUZZ
@given(st.sampled_from([".png", ".bmp", ".gif"]), st.integers(-2**31, 2**31 - 1), st.integers(-2**31, 2**31 - 1))
def test_headers_that_lie_about_the_size(ext, width, height):
    offset, layout = SIZE_FIELDS[ext]
    data = bytearray(SEEDS[ext])
    limit = 2**16 if layout == "<HH" else 2**32 if layout == ">II" else 2**31
    width, height = (v % limit if layout != "<ii" else v for v in (width, height))
    data[offset:offset + struct.calcsize(layout)] = struct.pack(layout, width, height)
    _load(bytes(data))


@FUZZ
@given(st.sampled_from(["png", "jpeg", "webp", "tiff", "bmp", "gif"]), st.integers(1, 70000), st.integers(1, 70000))
def test_hand_made_headers_of_any_size(kind, width, height):
    makers = {"png": lambda w, h: image_bytes.png(w, h, 6, 8, [], idat=b"\x78\x9c\x03\x00"),
              "jpeg": lambda w, h: _jpeg_with_size(w % 65536, h % 65536),
              "webp": lambda w, h: image_bytes.webp_vp8x_header(min(w, 2**24), min(h, 2**24)),
              "tiff": image_bytes.tiff_header, "bmp": image_bytes.bmp_header,
              "gif": lambda w, h: image_bytes.gif_header(w % 65536, h % 65536) + b"\x2c" + bytes(9) + b"\x3b"}
    _load(makers[kind](width, height))


def _jpeg_with_size(width: int, height: int) -> bytes:
    data = bytearray(image_bytes.cmyk_jpeg((10, 20, 30, 40)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)
