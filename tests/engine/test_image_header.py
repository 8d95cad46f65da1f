"""magi_engine.image_header: format, size and orientation from the header, checked against OpenCV's decoder."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from magi_engine.errors import InputError
from magi_engine.image_header import MAX_IMAGE_PIXELS, read_image_header
from tests.engine import image_bytes


def picture(width=37, height=21) -> np.ndarray:
    bgr = np.zeros((height, width, 3), np.uint8)
    bgr[: height // 2, : width // 3] = (40, 30, 220)
    return bgr


@pytest.mark.parametrize("ext, fmt", [(".png", "PNG"), (".jpg", "JPEG"), (".webp", "WebP"), (".bmp", "BMP"),
                                      (".tiff", "TIFF"), (".gif", "GIF"), (".ppm", "PNM"), (".pgm", "PNM")])
def test_header_size_is_the_decoded_size(tmp_path, ext, fmt):
    image = picture() if ext != ".pgm" else picture()[..., 0]
    path = tmp_path / f"image{ext}"
    path.write_bytes(cv2.imencode(ext, image)[1].tobytes())
    header = read_image_header(path)
    decoded = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    assert (header.format, header.width, header.height) == (fmt, decoded.shape[1], decoded.shape[0])


@pytest.mark.parametrize("params", [[cv2.IMWRITE_WEBP_QUALITY, 101], [cv2.IMWRITE_WEBP_QUALITY, 80]],
                         ids=["lossless", "lossy"])
def test_both_webp_codings_give_their_size(tmp_path, params):
    path = tmp_path / "image.webp"
    path.write_bytes(cv2.imencode(".webp", picture(53, 17), params)[1].tobytes())
    assert (read_image_header(path).width, read_image_header(path).height) == (53, 17)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_of_jpeg_and_png_is_read(tmp_path, orientation):
    jpeg = image_bytes.with_jpeg_exif(cv2.imencode(".jpg", picture())[1].tobytes(), orientation)
    png = cv2.imencode(".png", picture())[1].tobytes()
    png = png[:33] + image_bytes.png_chunk(b"eXIf", image_bytes.exif_orientation(orientation)) + png[33:]
    for name, data in (("a.jpg", jpeg), ("a.png", png)):
        (tmp_path / name).write_bytes(data)
        assert read_image_header(tmp_path / name).orientation == orientation


@pytest.mark.parametrize("data", [
    image_bytes.png(20000, 20000, 6, 8, [], idat=b"\x78\x9c\x03\x00"),
    image_bytes.gif_header(30000, 30000) + b"\x2c" + bytes(9) + b"\x3b",
    image_bytes.bmp_header(30000, -30000),
    image_bytes.webp_vp8x_header(16000, 16000),
    image_bytes.tiff_header(40000, 40000),
    b"P6\n# made by hand\n70000 70000\n255\n",
], ids=["png", "gif", "bmp", "webp", "tiff", "pnm"])
def test_huge_images_are_refused_from_the_header_naming_the_limit(tmp_path, data):
    path = tmp_path / "huge.img"
    path.write_bytes(data)
    with pytest.raises(InputError, match=f"limited to {MAX_IMAGE_PIXELS // 1_000_000} megapixels") as caught:
        read_image_header(path)
    assert "huge.img" in str(caught.value)


@pytest.mark.parametrize("data, reason", [
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "not one MAGI Studio reads"),  # JPEG 2000: OpenCV reads it, we do not
    (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n", "not one MAGI Studio reads"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00", "ends inside"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + bytes(13), "size of 0 x 0"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x04IDAT", "header .IHDR. is missing"),
    (b"\xff\xd8\xff\xda\x00\x02", "before the frame header"),
    (b"\xff\xd8\xff\xe0\x00\x01", "negative length"),
    (b"\xff\xd8\x00", "does not start with a marker"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 \x04\x00\x00\x00abcd", "WebP header is damaged"),
    (b"BM" + bytes(12) + b"\x07\x00\x00\x00" + bytes(8), "unknown size"),
    (b"II*\x00\x08\x00\x00\x00\x00\x00", "gives no size"),
    (b"P6\nwide tall\n", "gives no size"),
])
def test_damaged_or_foreign_headers_are_one_sentence(tmp_path, data, reason):
    path = tmp_path / "odd.bin"
    path.write_bytes(data)
    with pytest.raises(InputError, match=reason):
        read_image_header(path)
