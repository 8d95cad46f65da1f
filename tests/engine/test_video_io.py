"""Behaviour of magi_engine.video_io with real files: images through OpenCV, videos through ffmpeg."""

from __future__ import annotations

import os
import struct
import sys
import threading

import cv2
import numpy as np
import pytest

from magi_engine import image_header, video_io
from magi_engine.errors import ConfigError, EngineError, InputError
from magi_engine.video_io import fit_image, load_image, probe_video, read_video, write_video
from tests.engine import image_bytes

RED, GREEN, BLUE = (220, 30, 40), (30, 200, 60), (40, 60, 210)


def solid(colour, frames=1, width=64, height=48) -> np.ndarray:
    """Frames of one colour, uint8 [T, H, W, 3]."""
    return np.broadcast_to(np.array(colour, np.uint8), (frames, height, width, 3)).copy()


def mean_colour(frame: np.ndarray) -> np.ndarray:
    return frame.reshape(-1, 3).mean(axis=0)


def files_in(folder) -> list[str]:
    return sorted(os.listdir(folder))


# ------------------------------------------------------------------------------------------ video


def test_round_trip_keeps_frames_size_fps_and_colour(tmp_path):
    path = tmp_path / "clip.mp4"
    frames = np.concatenate([solid(RED, 12), solid(BLUE, 12)])
    info = write_video(path, frames, fps=24)
    assert (info.frames, info.width, info.height, info.fps) == (24, 64, 48, 24.0)
    assert probe_video(path) == info
    assert probe_video(path).duration == pytest.approx(1.0)
    video = read_video(path)
    assert video.shape == (24, 48, 64, 3) and video.dtype == np.uint8
    np.testing.assert_allclose(mean_colour(video[0]), RED, atol=6)
    np.testing.assert_allclose(mean_colour(video[-1]), BLUE, atol=6)
    assert files_in(tmp_path) == ["clip.mp4"]


def test_read_video_limits_resamples_and_stretches(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, solid(GREEN, 24), fps=24)
    assert read_video(path, max_frames=5).shape == (5, 48, 64, 3)
    assert read_video(path, fps=12).shape[0] == 12
    stretched = read_video(path, size=(32, 16))
    assert stretched.shape == (24, 16, 32, 3)
    np.testing.assert_allclose(mean_colour(stretched[3]), GREEN, atol=6)


def test_writer_accepts_batches_and_reports_progress(tmp_path):
    calls = []
    chunks = [solid(RED, 4), solid(GREEN, 4), solid(BLUE, 2)[0]]  # two [T,H,W,3] chunks and one frame
    info = write_video(tmp_path / "c.mp4", chunks, fps=8, progress=lambda n, total: calls.append((n, total)))
    assert info.frames == 9
    assert calls == [(n, 9) for n in range(1, 10)]
    calls.clear()
    write_video(tmp_path / "g.mp4", (f for f in solid(RED, 3)), fps=8, progress=lambda n, t: calls.append((n, t)))
    assert calls == [(1, None), (2, None), (3, None)]


@pytest.mark.parametrize(
    "size, kwargs, expected",
    [
        ((33, 17), {}, (34, 18)),  # yuv420p needs even sizes
        ((33, 17), {"macro_block_size": 16}, (48, 32)),
        ((64, 48), {"scale": 0.5}, (32, 24)),
        ((64, 48), {"scale": (81, 40)}, (82, 40)),
    ],
)
def test_output_size_is_scaled_and_rounded(tmp_path, size, kwargs, expected):
    path = tmp_path / "odd.mp4"
    info = write_video(path, solid(GREEN, 3, *size), fps=24, preset="ultrafast", **kwargs)
    assert (info.width, info.height) == expected
    probed = probe_video(path)
    assert (probed.width, probed.height, probed.frames) == (*expected, 3)
    np.testing.assert_allclose(mean_colour(read_video(path)[1]), GREEN, atol=8)


@pytest.mark.parametrize("kind", ["callable", "event"])
def test_cancel_leaves_no_file_and_keeps_existing_target(tmp_path, kind):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"the previous export")
    written = []
    if kind == "callable":
        cancel = lambda: len(written) >= 5  # noqa: E731
    else:
        cancel = threading.Event()

    def frames():
        for i, frame in enumerate(solid(RED, 50)):
            written.append(i)
            if kind == "event" and i == 5:
                cancel.set()
            yield frame

    assert write_video(target, frames(), fps=24, cancel=cancel) is None
    assert len(written) < 10  # stopped promptly
    assert target.read_bytes() == b"the previous export"
    assert files_in(tmp_path) == ["out.mp4"]


def test_cancel_before_the_first_frame_creates_nothing(tmp_path):
    assert write_video(tmp_path / "new.mp4", solid(RED, 5), fps=24, cancel=lambda: True) is None
    assert files_in(tmp_path) == []


def test_error_in_the_frame_source_discards_the_partial_file(tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"old")

    def frames():
        yield from solid(RED, 3)
        raise RuntimeError("generation failed")

    with pytest.raises(RuntimeError, match="generation failed"):
        write_video(target, frames(), fps=24)
    assert target.read_bytes() == b"old"
    assert files_in(tmp_path) == ["out.mp4"]


def test_writer_rejects_mismatched_frames_and_no_frames(tmp_path):
    with pytest.raises(InputError, match="size of the first"):
        write_video(tmp_path / "a.mp4", [solid(RED)[0], solid(RED, 1, 32, 32)[0]], fps=24)
    with pytest.raises(InputError, match="uint8 RGB"):
        write_video(tmp_path / "b.mp4", [np.zeros((8, 8, 3), np.float32)], fps=24)
    with pytest.raises(InputError, match="no frames"):
        write_video(tmp_path / "c.mp4", [], fps=24)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs", [{"fps": 0}, {"fps": 24, "crf": 60}, {"fps": 24, "preset": "warp"}, {"fps": 24, "scale": -1}]
)
def test_bad_settings_are_config_errors(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        write_video(tmp_path / "a.mp4", solid(RED, 2), **kwargs)
    assert files_in(tmp_path) == []


def test_missing_or_non_folder_destination_is_a_clear_error(tmp_path):
    with pytest.raises(EngineError, match="does not exist"):
        write_video(tmp_path / "missing" / "out.mp4", solid(RED, 2), fps=24)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(EngineError, match="is not a folder"):
        write_video(tmp_path / "file.txt" / "out.mp4", solid(RED, 2), fps=24)


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_folder_is_a_clear_error(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(EngineError, match="no permission"):
            write_video(folder / "out.mp4", solid(RED, 2), fps=24)
    finally:
        folder.chmod(0o700)


FAKE_FFMPEG = {
    # ffmpeg stops while frames still arrive (the writer sees a broken pipe)
    "dies early": "#!/bin/sh\necho 'Error writing output: No space left on device' >&2\nexit 1\n",
    # ffmpeg takes every frame, then fails while writing the end of the file
    "fails at the end": "#!/bin/sh\ncat >/dev/null\necho 'av_interleaved_write_frame(): No space left on device' >&2\n"
    "exit 1\n",
}


@pytest.mark.skipif(sys.platform == "win32", reason="fake ffmpeg is a shell script")
@pytest.mark.parametrize("behaviour", sorted(FAKE_FFMPEG))
def test_disk_full_is_reported_and_target_untouched(tmp_path, monkeypatch, behaviour):
    fake = tmp_path / "ffmpeg"
    fake.write_text(FAKE_FFMPEG[behaviour])
    fake.chmod(0o755)
    monkeypatch.setattr(video_io, "_ffmpeg_exe", lambda: str(fake))
    out = tmp_path / "out"
    out.mkdir()
    (out / "film.mp4").write_bytes(b"old")
    with pytest.raises(EngineError, match="disk is full"):
        write_video(out / "film.mp4", solid(RED, 200, 256, 256), fps=24)
    assert (out / "film.mp4").read_bytes() == b"old"
    assert files_in(out) == ["film.mp4"]


@pytest.mark.skipif(sys.platform == "win32", reason="fake ffmpeg is a shell script")
def test_other_ffmpeg_failure_names_ffmpeg_message(tmp_path, monkeypatch):
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\ncat >/dev/null\necho 'Unknown encoder libx264' >&2\necho 'Conversion failed!' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(video_io, "_ffmpeg_exe", lambda: str(fake))
    with pytest.raises(EngineError, match="ffmpeg failed \\(Unknown encoder libx264\\)"):
        write_video(tmp_path / "a.mp4", solid(RED, 2), fps=24)
    assert files_in(tmp_path) == ["ffmpeg"]


@pytest.mark.parametrize("content", [b"", b"this is not a video at all"])
def test_unreadable_video_is_an_input_error_naming_the_file(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    for call in (read_video, probe_video):
        with pytest.raises(InputError, match="broken.mp4"):
            call(path)
    with pytest.raises(InputError, match="does not exist"):
        read_video(tmp_path / "nope.mp4")


# ------------------------------------------------------------------------------------------ images


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".bmp", ".tiff"])
def test_load_image_formats_give_rgb(tmp_path, ext):
    bgr = np.zeros((20, 30, 3), np.uint8)
    bgr[:] = RED[::-1]
    path = tmp_path / f"image{ext}"
    assert cv2.imwrite(str(path), bgr)
    image = load_image(path)
    assert image.shape == (20, 30, 3) and image.dtype == np.uint8
    np.testing.assert_allclose(mean_colour(image), RED, atol=4)


def test_sixteen_bit_and_grayscale_images(tmp_path):
    deep = np.full((10, 12, 3), (65535, 32768, 0), np.uint16)  # BGR
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    np.testing.assert_array_equal(load_image(tmp_path / "deep.png")[0, 0], [0, 128, 255])

    gray = np.tile(np.arange(0, 250, 25, dtype=np.uint8), (4, 1))
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    image = load_image(tmp_path / "gray.png")
    assert image.shape == (4, 10, 3)
    np.testing.assert_array_equal(image[..., 0], gray)
    np.testing.assert_array_equal(image[..., 2], gray)

    cv2.imwrite(str(tmp_path / "gray16.png"), gray.astype(np.uint16) * 257)
    np.testing.assert_array_equal(load_image(tmp_path / "gray16.png")[..., 1], gray)


def test_alpha_is_composited_over_the_background(tmp_path):
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[:, :2] = (*BLUE[::-1], 255)  # opaque blue on the left
    bgra[:, 2:] = (0, 0, 0, 0)  # transparent on the right
    cv2.imwrite(str(tmp_path / "alpha.png"), bgra)
    image = load_image(tmp_path / "alpha.png")
    assert tuple(image[0, 0]) == BLUE and tuple(image[0, 3]) == (255, 255, 255)
    assert tuple(load_image(tmp_path / "alpha.png", background=(0, 0, 0))[0, 3]) == (0, 0, 0)


def test_exif_orientation_is_applied(tmp_path):
    bgr = np.zeros((8, 16, 3), np.uint8)
    bgr[:, :8] = RED[::-1]  # red on the left; EXIF orientation 6 = turn 90 degrees clockwise
    jpeg = cv2.imencode(".jpg", bgr)[1].tobytes()
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack(">I", 0)
    exif = b"Exif\x00\x00MM\x00\x2a" + struct.pack(">I", 8) + ifd
    (tmp_path / "phone.jpg").write_bytes(jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[2:])
    image = load_image(tmp_path / "phone.jpg")
    assert image.shape == (16, 8, 3)
    np.testing.assert_allclose(image[2, 4], RED, atol=12)  # top is red now
    np.testing.assert_allclose(image[13, 4], (0, 0, 0), atol=12)


def test_palette_and_gray_alpha_pngs_become_rgb(tmp_path):
    palette = image_bytes.png_chunk(b"PLTE", bytes([*RED, *BLUE]))
    (tmp_path / "p.png").write_bytes(image_bytes.png(2, 1, 3, 8, [bytes([0, 1])], palette))
    assert [tuple(p) for p in load_image(tmp_path / "p.png")[0]] == [RED, BLUE]
    see_through = palette + image_bytes.png_chunk(b"tRNS", bytes([255, 0]))  # the second entry is transparent
    (tmp_path / "pt.png").write_bytes(image_bytes.png(2, 1, 3, 8, [bytes([0, 1])], see_through))
    assert [tuple(p) for p in load_image(tmp_path / "pt.png", background=(0, 0, 0))[0]] == [RED, (0, 0, 0)]
    (tmp_path / "ga.png").write_bytes(image_bytes.png(2, 1, 4, 8, [bytes([200, 255, 200, 0])]))
    assert [tuple(p) for p in load_image(tmp_path / "ga.png", background=BLUE)[0]] == [(200, 200, 200), BLUE]
    half = struct.pack(">4H", 0, 32896, 65535, 65535)  # black at half opacity, then opaque white
    (tmp_path / "ga16.png").write_bytes(image_bytes.png(2, 1, 4, 16, [half]))
    assert [tuple(p) for p in load_image(tmp_path / "ga16.png")[0]] == [(127, 127, 127), (255, 255, 255)]


def test_sixteen_bit_rgba_is_composited(tmp_path):
    bgra = np.zeros((3, 2, 4), np.uint16)
    bgra[:, 0] = (65535, 0, 0, 65535)  # opaque blue
    bgra[:, 1] = (0, 0, 65535, 0)  # transparent red
    cv2.imwrite(str(tmp_path / "deep.png"), bgra)
    image = load_image(tmp_path / "deep.png", background=GREEN)
    assert tuple(image[2, 0]) == (0, 0, 255) and tuple(image[2, 1]) == GREEN


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    for cmyk, rgb in (((255, 0, 0, 0), (0, 255, 255)), ((0, 255, 255, 0), (255, 0, 0)), ((0, 0, 0, 255), (0, 0, 0))):
        (tmp_path / "cmyk.jpg").write_bytes(image_bytes.cmyk_jpeg(cmyk, width=20, height=12))
        image = load_image(tmp_path / "cmyk.jpg")
        assert image.shape == (12, 20, 3)
        np.testing.assert_allclose(image.reshape(-1, 3), np.broadcast_to(rgb, (240, 3)), atol=3)


@pytest.mark.parametrize("ext", [".gif", ".png", ".webp"])
def test_animated_images_give_their_first_frame(tmp_path, ext):
    animation = cv2.Animation()
    animation.frames = [solid(RED, width=12, height=10)[0][..., ::-1].copy(), solid(BLUE, width=12, height=10)[0]]
    animation.durations = [100, 100]
    ok, data = cv2.imencodeanimation(ext, animation)
    assert ok
    (tmp_path / f"anim{ext}").write_bytes(data.tobytes())
    image = load_image(tmp_path / f"anim{ext}")
    assert image.shape == (10, 12, 3)
    np.testing.assert_allclose(mean_colour(image), RED, atol=8)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_opencv(tmp_path, orientation):
    bgr = np.zeros((8, 16, 3), np.uint8)
    bgr[:4, :8], bgr[4:, 12:] = RED[::-1], BLUE[::-1]
    png = cv2.imencode(".png", bgr)[1].tobytes()
    png = png[:33] + image_bytes.png_chunk(b"eXIf", image_bytes.exif_orientation(orientation)) + png[33:]
    (tmp_path / "turned.png").write_bytes(png)
    expected = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_array_equal(load_image(tmp_path / "turned.png"), expected)


def test_a_huge_image_is_refused_before_decoding(tmp_path, monkeypatch):
    (tmp_path / "huge.png").write_bytes(image_bytes.png(20000, 20000, 6, 8, [], idat=b"\x78\x9c\x03\x00"))
    monkeypatch.setattr(video_io.cv2, "imdecode", lambda *a: pytest.fail("the image was decoded"))
    with pytest.raises(InputError, match="20000 x 20000 pixels .* limited to 50 megapixels"):
        load_image(tmp_path / "huge.png")


def test_a_decoder_that_disagrees_with_the_header_is_refused(tmp_path, monkeypatch):
    cv2.imwrite(str(tmp_path / "small.png"), np.zeros((4, 4, 3), np.uint8))
    monkeypatch.setattr(video_io.cv2, "imdecode", lambda *a: np.zeros((1, 60_000_000, 3), np.uint8))
    with pytest.raises(InputError, match="limited to 50 megapixels"):
        load_image(tmp_path / "small.png")


def test_large_images_convert_band_by_band(tmp_path, monkeypatch):
    monkeypatch.setattr(video_io, "_BAND_PIXELS", 7 * 5)  # bands of 5 rows at 7 pixels a row
    bgra = np.random.default_rng(0).integers(0, 256, (23, 7, 4), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "noisy.png"), bgra)
    alpha = bgra[..., 3:] / 255.0
    expected = np.rint(bgra[..., 2::-1] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    np.testing.assert_allclose(load_image(tmp_path / "noisy.png"), expected, atol=1)


@pytest.mark.parametrize("content", [None, b"", b"plain text, no pixels", "folder"])
def test_unusable_image_is_an_input_error_naming_the_file(tmp_path, content):
    path = tmp_path / "picture.png"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match="picture.png"):
        load_image(path)


# ------------------------------------------------------------------------------------------ fitting


def two_halves(width=200, height=100) -> np.ndarray:
    """Left half red, right half blue."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = RED
    image[:, width // 2 :] = BLUE
    return image


@pytest.mark.parametrize("mode", ["cover", "contain", "stretch"])
@pytest.mark.parametrize("size", [(64, 64), (48, 80), (300, 100), (7, 5)])
def test_fit_gives_the_exact_size(mode, size):
    out = fit_image(two_halves(), *size, mode=mode)
    assert out.shape == (size[1], size[0], 3) and out.dtype == np.uint8


def test_cover_fills_and_crops_the_centre():
    out = fit_image(two_halves(200, 100), 64, 64, mode="cover")  # 2:1 into 1:1: the sides are cut
    np.testing.assert_array_equal(out[32, 2], RED)
    np.testing.assert_array_equal(out[32, 61], BLUE)
    assert not (out == 0).all(axis=2).any()  # no black anywhere


def test_contain_letterboxes_with_black():
    out = fit_image(two_halves(200, 100), 64, 64, mode="contain")  # 64 x 32 picture, 16 px bars
    assert (out[:16] == 0).all() and (out[-16:] == 0).all()
    np.testing.assert_array_equal(out[32, 2], RED)
    np.testing.assert_array_equal(out[32, 61], BLUE)


def test_stretch_keeps_everything_and_ignores_aspect():
    out = fit_image(two_halves(200, 100), 40, 80, mode="stretch")
    np.testing.assert_array_equal(out[0, 0], RED)
    np.testing.assert_array_equal(out[-1, -1], BLUE)
    np.testing.assert_array_equal(out[:, 19], np.broadcast_to(RED, (80, 3)))


def test_fit_uses_area_when_shrinking_and_cubic_when_enlarging(monkeypatch):
    seen = []
    real_resize = cv2.resize
    monkeypatch.setattr(cv2, "resize", lambda *a, **k: seen.append(k["interpolation"]) or real_resize(*a, **k))
    fit_image(two_halves(200, 100), 100, 50, mode="stretch")
    fit_image(two_halves(200, 100), 400, 200, mode="stretch")
    assert seen == [cv2.INTER_AREA, cv2.INTER_CUBIC]
    same = two_halves(64, 32)
    np.testing.assert_array_equal(fit_image(same, 64, 32), same)
    assert len(seen) == 2  # nothing resampled at the same size


def test_fit_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="cover"):
        fit_image(two_halves(), 64, 64, mode="zoom")
    with pytest.raises(ConfigError):
        fit_image(two_halves(), 0, 64)
    with pytest.raises(InputError):
        fit_image(np.zeros((0, 5, 3), np.uint8), 8, 8)


def test_a_missing_ffmpeg_is_one_clear_sentence(tmp_path, monkeypatch):
    import builtins

    import numpy as np

    from magi_engine.errors import ExportError
    from magi_engine.video_io import write_video

    real_import = builtins.__import__

    def no_ffmpeg(name, *args, **kwargs):
        if name == "imageio_ffmpeg":
            raise ImportError("No module named 'imageio_ffmpeg'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ffmpeg)
    with pytest.raises(ExportError, match="ffmpeg is not available"):
        write_video(tmp_path / "x.mp4", [np.zeros((16, 16, 3), np.uint8)], fps=24)
    assert not (tmp_path / "x.mp4").exists()


def test_check_video_file_opens_one_frame_and_caps_its_size(tmp_path, monkeypatch):
    write_video(tmp_path / "clip.mp4", solid(RED, 3), fps=24)
    video_io.check_video_file(tmp_path / "clip.mp4")
    monkeypatch.setattr(image_header, "MAX_IMAGE_PIXELS", 64 * 48 - 1)
    with pytest.raises(InputError, match="clip.mp4' is 64 x 48 pixels"):
        video_io.check_video_file(tmp_path / "clip.mp4")
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(InputError, match="not a video"):
        video_io.check_video_file(tmp_path / "notes.mp4")
