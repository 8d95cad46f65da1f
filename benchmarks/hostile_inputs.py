"""Hostile inputs at the edges of the app: bad images for the image loader, bad arguments for the command line.

* images: each kind of bad (or merely large) image file is loaded by `magi_engine.video_io.load_image` in a
  child process of its own, which reports its outcome (loaded, or the one-sentence refusal) and its peak
  resident memory (VmHWM, ru_maxrss's figure for the process itself). A traceback, a crash or a hang
  counts against the loader.
* arguments: each bad `magi-studio generate` / `magi-studio render` command line runs through the real
  entry point (`python -m magi_studio.cli`) in a child process; it must exit with status 1 or 2 and a
  single `error: ...` line, with no traceback. The time from start to exit is the time to reject.

    python benchmarks/hostile_inputs.py --out benchmarks/results/hostile_inputs.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.record import publish  # noqa: E402
from tests.engine import image_bytes  # noqa: E402

TIMEOUT_S = 120


# ------------------------------------------------------------------------------------------ images


def make_images(folder: Path) -> dict[str, Path]:
    """Every kind of image file the benchmark loads, written under `folder`."""
    made: dict[str, bytes | None] = {}
    small = np.zeros((48, 64, 3), np.uint8)
    small[:, :32] = (40, 30, 220)
    png = cv2.imencode(".png", small)[1].tobytes()
    made["small valid PNG (baseline)"] = png
    made["20000x20000 RGBA PNG, valid (1.5 MB)"] = image_bytes.huge_rgba_png(20000, 20000)
    made["PNG header claiming 20000x20000 RGB"] = image_bytes.png(20000, 20000, 2, 8, [], idat=b"\x78\x9c\x03\x00")
    made["JPEG frame header claiming 65535x65535"] = _jpeg_with_size(65535, 65535)
    made["GIF screen claiming 65535x65535"] = image_bytes.gif_header(65535, 65535) + b"\x2c" + bytes(9) + b"\x3b"
    made["BMP claiming 30000x30000, no pixels"] = image_bytes.bmp_header(30000, -30000)
    made["WebP canvas claiming 16384x16384"] = image_bytes.webp_vp8x_header(16384, 16384)
    made["TIFF claiming 40000x40000"] = image_bytes.tiff_header(40000, 40000)
    made["PPM claiming 70000x70000"] = b"P6\n70000 70000\n255\n" + bytes(64)
    made["PNG cut in half"] = png[: len(png) // 2]
    made["PNG with damaged pixel data"] = png[:60] + bytes(40) + png[100:]
    made["empty file"] = b""
    made["text file named .png"] = b"not an image at all\n" * 10
    made["random bytes"] = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    made["JPEG 2000 (a format we do not decode)"] = b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(64)
    made["CMYK JPEG"] = image_bytes.cmyk_jpeg((0, 200, 100, 20), 64, 48)
    made["palette PNG with transparency"] = image_bytes.png(
        2, 1, 3, 8, [bytes([0, 1])], image_bytes.png_chunk(b"PLTE", bytes(6)) + image_bytes.png_chunk(b"tRNS", b"\xff\x00"))
    animation = cv2.Animation()
    animation.frames, animation.durations = [small, small[::-1].copy()], [50, 50]
    made["animated GIF"] = cv2.imencodeanimation(".gif", animation)[1].tobytes()
    made["7000x7000 16-bit RGBA PNG (49 MP, the largest kind accepted)"] = None  # written below, big
    paths = {}
    for number, (kind, data) in enumerate(made.items()):
        path = folder / f"image{number:02d}.img"
        if data is None:
            cv2.imwrite(str(path.with_suffix(".png")), np.full((7000, 7000, 4), 30000, np.uint16))
            path = path.with_suffix(".png")
        else:
            path.write_bytes(data)
        paths[kind] = path
    os.mkfifo(folder / "pipe.png")
    paths["a FIFO named .png"] = folder / "pipe.png"
    (folder / "folder.png").mkdir()
    paths["a folder named .png"] = folder / "folder.png"
    (folder / "zero.png").symlink_to("/dev/zero")
    paths["a link to /dev/zero"] = folder / "zero.png"
    return paths


def _jpeg_with_size(width: int, height: int) -> bytes:
    data = bytearray(image_bytes.cmyk_jpeg((10, 20, 30, 40)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def peak_rss_mib() -> float:
    """This process's peak resident memory since it started (VmHWM). ru_maxrss would do on a fresh
    process, but Linux carries it over exec from the forked copy of the parent, which is large here."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def load_in_child(path: str) -> None:
    """The child's side: load one image, print the outcome and the peak memory as JSON."""
    from magi_engine.errors import EngineError
    from magi_engine.video_io import load_image

    started = time.perf_counter()
    try:
        image = load_image(path)
        outcome = {"outcome": "loaded", "shape": list(image.shape)}
    except EngineError as error:
        outcome = {"outcome": "refused", "message": str(error)}
    outcome["seconds"] = round(time.perf_counter() - started, 3)
    outcome["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(outcome))


def run_images(folder: Path) -> dict:
    rows = []
    for kind, path in make_images(folder).items():
        result = _child([sys.executable, __file__, "--load-image", str(path)])
        row = {"kind": kind, "file_bytes": path.stat().st_size if path.is_file() and not path.is_symlink() else None,
               "exit_status": result["exit_status"], "traceback": result["traceback"], "seconds": result["seconds"]}
        try:
            row.update(json.loads(result["stdout"].strip().splitlines()[-1]))
        except (ValueError, IndexError):
            row["outcome"] = "crashed or hung"
        rows.append(row)
        print(f"{kind:62s} {row['outcome']:8s} {row.get('peak_rss_mib', '?'):>7} MiB  {row.get('message', '')[:90]}",
              file=sys.stderr)
    worst = max(rows, key=lambda r: r.get("peak_rss_mib", 0))
    refused_big = [r for r in rows if "20000x20000 RGBA" in r["kind"]][0]
    return {
        "kinds": len(rows), "tracebacks": sum(r["traceback"] for r in rows),
        "crashed_or_hung": sum(r["outcome"] == "crashed or hung" for r in rows),
        "baseline_peak_rss_mib": rows[0].get("peak_rss_mib"),
        "worst_peak_rss_mib": worst.get("peak_rss_mib"), "worst_kind": worst["kind"],
        "rgba_20000_peak_rss_mib": refused_big.get("peak_rss_mib"), "rows": rows,
    }


# ------------------------------------------------------------------------------------------ arguments


def make_project(folder: Path) -> Path:
    """A saved project of one shot of one chunk, on studio-mini, nothing generated."""
    from magi_studio.document.model import ProjectSettings, new_project
    from magi_studio.document.store import ProjectStore

    store = ProjectStore.create(folder / "Film")
    store.save(new_project(ProjectSettings(model="studio-mini", width=64, height=64)))
    return store.path


def argument_cases(folder: Path) -> list[tuple[str, list[str]]]:
    out = str(folder / "out.mp4")
    images = folder / "images"
    project = make_project(folder)
    os.mkfifo(folder / "pipe.mp4")
    (folder / "dir.mp4").mkdir()
    (folder / "pickles").mkdir()
    (folder / "pickles" / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    (folder / "linked.mp4").symlink_to("/dev/null")
    (folder / "broken.magi").mkdir()
    (folder / "broken.magi" / "project.json").write_text("{ not json")
    os.mkfifo(folder / "film.json")
    generate = ["generate", "--prompt", "a red ball falls", "-o", out]
    cases = [
        ("--size 0x0", ["--size", "0x0"]), ("--size -16x16", ["--size", "-16x16"]), ("--size 65x64", ["--size", "65x64"]),
        ("--size 100000x100000", ["--size", "100000x100000"]), ("--size wide", ["--size", "wide"]),
        ("--size 256x", ["--size", "256x"]), ("--steps 7", ["--steps", "7"]), ("--steps -4", ["--steps", "-4"]),
        ("--steps many", ["--steps", "many"]), ("--seed -1", ["--seed", "-1"]), ("--seed 2**64", ["--seed", str(2**64)]),
        ("--seed at the top with 2 prompts", ["--seed", str(2**63 - 1), "--prompt", "it bounces"]),
        ("--window 0", ["--window", "0"]), ("--window 9", ["--window", "9"]),
        ("--steps 8 --window 3", ["--steps", "8", "--window", "3"]), ("--guidance nan", ["--guidance", "nan"]),
        ("--guidance -inf", ["--guidance", "-inf"]), ("--guidance 1e9", ["--guidance", "1e9"]),
        ("a 5000-character prompt", ["--prompt", "x" * 5000]),
        ("--image missing", ["--image", str(folder / "missing.png")]),
        ("--image 20000x20000 RGBA PNG", ["--image", str(images / "image01.img")]),
        ("--image text file", ["--image", str(images / "image12.img")]),
        ("--image a FIFO", ["--image", str(images / "pipe.png")]),
        ("--image and --video", ["--image", str(images / "image00.img"), "--video", str(folder / "x.mp4")]),
        ("--video a text file", ["--video", str(REPO / "README.md")]),
        ("-o /dev/null", ["-o", "/dev/null"]), ("-o a FIFO", ["-o", str(folder / "pipe.mp4")]),
        ("-o a folder", ["-o", str(folder / "dir.mp4")]), ("-o a link to /dev/null", ["-o", str(folder / "linked.mp4")]),
        ("-o in a missing folder", ["-o", str(folder / "nowhere" / "out.mp4")]),
        ("--model a folder of pickles", ["--model", str(folder / "pickles")]),
        ("--model no such model", ["--model", "no/such/model"]), ("--device gpu", ["--device", "gpu"]),
        ("--device cuda (none here)", ["--device", "cuda"]), ("--dtype int8", ["--dtype", "int8"]),
        ("no --prompt", None),
    ]
    commands = [(f"generate {name}", generate + extra if extra is not None else ["generate", "-o", out])
                for name, extra in cases]
    render = ["render", str(project), "-o"]
    commands += [
        ("render -o a FIFO", render + [str(folder / "pipe.mp4")]),
        ("render -o /dev/null", render + ["/dev/null"]),
        ("render -o a .json name", render + [str(folder / "film2.json")]),
        ("render -o film.mp4 whose sidecar is a FIFO", render + [str(folder / "film.mp4")]),
        ("render -o in a missing folder", render + [str(folder / "nowhere" / "film.mp4")]),
        ("render a missing project", ["render", str(folder / "missing.magi"), "-o", out]),
        ("render a damaged project.json", ["render", str(folder / "broken.magi"), "-o", out]),
        ("render a file as the project", ["render", str(REPO / "README.md"), "-o", out]),
        ("render without -o", ["render", str(project)]),
    ]
    return commands


def run_arguments(folder: Path, images: Path) -> dict:
    rows = []
    for name, argv in argument_cases(folder):
        result = _child([sys.executable, "-m", "magi_studio.cli", *argv], cwd=REPO)
        lines = [line for line in result["stderr"].splitlines() if line.strip()]
        one_sentence = len(lines) == 1 and lines[0].startswith("error: ")
        rows.append({"case": name, "exit_status": result["exit_status"], "seconds": result["seconds"],
                     "traceback": result["traceback"], "one_line": one_sentence,
                     "message": lines[0] if lines else "", "extra_lines": lines[1:3]})
        print(f"{name:48s} {result['exit_status']:>3} {result['seconds']:6.2f} s  {rows[-1]['message'][:100]}",
              file=sys.stderr)
    seconds = [r["seconds"] for r in rows]
    return {
        "cases": len(rows), "tracebacks": sum(r["traceback"] for r in rows),
        "not_one_line": sum(not r["one_line"] for r in rows),
        "wrong_exit_status": sum(r["exit_status"] not in (1, 2) for r in rows),
        "size_0x0_seconds": next(r["seconds"] for r in rows if r["case"] == "generate --size 0x0"),
        "median_seconds": round(statistics.median(seconds), 2), "max_seconds": max(seconds),
        "slowest_case": max(rows, key=lambda r: r["seconds"])["case"], "rows": rows,
    }


# ------------------------------------------------------------------------------------------ common


def _child(command: list[str], cwd: Path | None = None) -> dict:
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=cwd,
                              stdin=subprocess.DEVNULL)
        status, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as expired:
        status, stdout, stderr = "timeout", expired.stdout or "", expired.stderr or ""
    return {"exit_status": status, "stdout": stdout if isinstance(stdout, str) else stdout.decode(),
            "stderr": stderr if isinstance(stderr, str) else stderr.decode(),
            "traceback": "Traceback (most recent call last)" in (stderr if isinstance(stderr, str) else ""),
            "seconds": round(time.perf_counter() - started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the record here as JSON")
    parser.add_argument("--load-image", help=argparse.SUPPRESS)  # the child's side
    args = parser.parse_args()
    if args.load_image:
        load_in_child(args.load_image)
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "images").mkdir()
        images = run_images(folder / "images")
        arguments = run_arguments(folder, folder / "images")
    publish(__file__, None, {"cpu_count": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
                             "images": images, "arguments": arguments}, args.out)


if __name__ == "__main__":
    main()
