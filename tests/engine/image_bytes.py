"""Image files made byte by byte, for the kinds OpenCV cannot write: palette and gray+alpha PNGs, APNG
pieces, CMYK JPEGs and headers that promise any size. Used by the image tests, the image fuzz suite
and benchmarks/hostile_inputs.py."""

from __future__ import annotations

import struct
import zlib


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, colour_type: int, depth: int, rows: list[bytes], extra: bytes = b"",
        idat: bytes | None = None) -> bytes:
    """A PNG of the given IHDR; `rows` are the raw scanlines (filter byte 0 is added); `extra` chunks
    go before the pixels; `idat` replaces the compressed pixels (for headers that lie)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + row for row in rows)) if idat is None else idat
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", pixels)
            + png_chunk(b"IEND", b""))


def huge_rgba_png(width: int = 20000, height: int = 20000) -> bytes:
    """A valid RGBA PNG of `width` x `height` transparent pixels, compressed to a few hundred kB."""
    row = b"\x00" + bytes(4 * width)
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return png(width, height, 6, 8, [], idat=pixels)


def exif_orientation(orientation: int) -> bytes:
    """EXIF data (big-endian TIFF) holding only an Orientation tag."""
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    return b"MM\x00\x2a" + struct.pack(">I", 8) + ifd


def with_jpeg_exif(jpeg: bytes, orientation: int) -> bytes:
    exif = b"Exif\x00\x00" + exif_orientation(orientation)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[2:]


def cmyk_jpeg(cmyk: tuple[int, int, int, int], width: int = 8, height: int = 8) -> bytes:
    """A baseline JPEG of one CMYK colour (ink amounts 0-255), stored Adobe-style (inverted), as
    Photoshop writes them. Every 8x8 block is flat, so only DC coefficients are coded."""
    stored = [255 - ink for ink in cmyk]
    adobe = b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 0)  # transform 0: CMYK as is
    dqt = b"\x00" + bytes([1] * 64)  # quantisation 1 everywhere
    sof = struct.pack(">BHHB", 8, height, width, 4) + b"".join(bytes([i + 1, 0x11, 0]) for i in range(4))
    # DC table 0: categories 0-11, all 4-bit codes; AC table 0: only end-of-block, code '0'.
    dht = (b"\x00" + bytes([0, 0, 0, 12] + [0] * 12) + bytes(range(12))
           + b"\x10" + bytes([1] + [0] * 15) + b"\x00")
    sos = struct.pack(">B", 4) + b"".join(bytes([i + 1, 0x00]) for i in range(4)) + b"\x00\x3f\x00"
    bits = ""
    previous = [0, 0, 0, 0]
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    for _ in range(blocks):
        for component in range(4):
            dc = 8 * (stored[component] - 128)  # a flat block's DC coefficient
            diff, previous[component] = dc - previous[component], dc
            category = abs(diff).bit_length()
            bits += format(category, "04b")
            if category:
                bits += format(diff if diff > 0 else diff + (1 << category) - 1, f"0{category}b")
            bits += "0"  # end of block
    bits += "1" * (-len(bits) % 8)
    scan = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)).replace(b"\xff", b"\xff\x00")

    def segment(marker: int, body: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body

    return (b"\xff\xd8" + segment(0xEE, adobe) + segment(0xDB, dqt) + segment(0xC0, sof) + segment(0xC4, dht)
            + segment(0xDA, sos) + scan + b"\xff\xd9")


def gif_header(width: int, height: int) -> bytes:
    """The start of a GIF whose logical screen is `width` x `height` (no frame follows)."""
    return b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)


def bmp_header(width: int, height: int) -> bytes:
    """A BMP file header and info header promising `width` x `height` 24-bit pixels, and no pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


def webp_vp8x_header(width: int, height: int) -> bytes:
    """An extended WebP header (VP8X) promising a `width` x `height` canvas, and no image data."""
    body = bytes([0, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def tiff_header(width: int, height: int) -> bytes:
    """A little-endian TIFF whose first directory gives `width` x `height`, and no strips."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (277, 3, 1, 3)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\x00" * 4
    return b"II*\x00" + struct.pack("<I", 8) + ifd
