"""The `magi-studio` command: the desktop app by default, `generate` and `render` without a window.

    magi-studio [PROJECT]
    magi-studio generate --model studio-mini --prompt "a red ball falls" --prompt "it bounces" -o out.mp4
    magi-studio render PROJECT -o out.mp4

Qt is imported only for the app, so `generate` works on a machine without a display.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import deque
from pathlib import Path

from engine.errors import EngineError


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 256x256, got {text!r}") from None
    return width, height


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="magi-studio", description="Storyboard editor for chunk-by-chunk video "
                                     "generation (MAGI-1 architecture).")
    parser.add_argument("-v", "--verbose", action="store_true", help="log engine details to the terminal")
    sub = parser.add_subparsers(dest="command")

    gen = sub.add_parser("generate", help="make a video from prompts, one --prompt per 24-frame chunk")
    gen.add_argument("--model", default="studio-mini",
                     help="studio-mini, a checkpoint folder, or a MAGI-1 hub variant such as 4.5B_distill")
    gen.add_argument("--prompt", action="append", required=True, help="prompt of the next chunk (repeatable)")
    gen.add_argument("--image", type=Path, help="reference image: the first frame of the video")
    gen.add_argument("--video", type=Path, help="prefix video to continue")
    gen.add_argument("--seed", type=int, default=0, help="seed of the first chunk; chunk i uses seed + i")
    gen.add_argument("--steps", type=int, help="denoising steps per chunk (model default if omitted)")
    gen.add_argument("--window", type=int, help="chunks denoised at once (model default if omitted; 1 = sequential)")
    gen.add_argument("--size", type=parse_size, help="WIDTHxHEIGHT, multiples of 16 (model default if omitted)")
    gen.add_argument("--guidance", type=float, help="text guidance scale of base models (MAGI-1 default 7.5)")
    gen.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    gen.add_argument("--dtype", default=None, help="float32, bfloat16 or float16 (default: per device)")
    gen.add_argument("--text-on-cpu", action="store_true",
                     help="run MAGI-1's T5 text encoder on the CPU (saves about 9 GiB of GPU memory)")
    gen.add_argument("-o", "--output", type=Path, required=True, help="mp4 file to write")
    gen.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    render = sub.add_parser("render", help="render a project's storyboard to an mp4 without the window")
    render.add_argument("project", type=Path)
    render.add_argument("-o", "--output", type=Path, required=True)
    render.add_argument("-q", "--quiet", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    known = {"generate", "render", "-h", "--help"}
    if not argv or argv[0] not in known and not argv[0].startswith("-"):
        from magi_studio.app import run_app  # Qt only here

        return run_app(argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "generate":
            return run_generate(args)
        if args.command == "render":
            from magi_studio.render import run_render

            return run_render(args)
    except EngineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    build_parser().print_help()
    return 2


def run_generate(args: argparse.Namespace) -> int:
    import dataclasses

    from engine.events import CancelToken, Cancelled, ChunkFinished, Failed, Finished
    from engine.requests import ChunkSpec, GenerationRequest
    from engine.session import Session
    from engine.video_io import VideoWriter, iter_video, load_image
    from magi_studio.terminal_progress import TerminalProgress

    progress = TerminalProgress(enabled=not args.quiet)
    progress.message(f"loading {args.model} ...")
    session = Session.load(args.model, device=args.device, dtype=args.dtype, text_on_cpu=args.text_on_cpu)
    bundle = session.bundle
    width, height = args.size or (bundle.width, bundle.height)
    sampling = session.default_sampling
    if args.steps is not None:
        sampling = dataclasses.replace(sampling, num_steps=args.steps)
    if args.window is not None:
        sampling = dataclasses.replace(sampling, window=args.window)
    if args.guidance is not None:
        sampling = dataclasses.replace(sampling, guidance=sampling.guidance.scaled(text_scale=args.guidance))
    image = load_image(args.image) if args.image else None
    video = None
    if args.video:
        # Only the last chunks of a prefix are ever attended; keep memory flat for long videos.
        video = _last_frames(iter_video(args.video, fps=bundle.fps), keep=sampling.cache_chunks * 24)
    request = GenerationRequest(
        chunks=tuple(ChunkSpec(prompt, args.seed + i) for i, prompt in enumerate(args.prompt)),
        width=width, height=height, sampling=sampling, reference_image=image, prefix_video=video, previews=False)

    cancel = CancelToken()
    progress.message(f"{bundle.label} on {session.device}: {len(request.chunks)} chunk(s) at {width}x{height}, "
                     f"{sampling.num_steps} steps, window {sampling.window}")
    writer = VideoWriter(args.output, fps=bundle.fps)
    events = session.generate(request, cancel)
    outcome = None
    try:
        for event in events:
            progress.update(event)
            if isinstance(event, ChunkFinished):
                writer.write(event.frames[event.prefix_frames:])
            elif isinstance(event, (Finished, Cancelled, Failed)):
                outcome = event
    except KeyboardInterrupt:
        # Ctrl-C lands inside the engine's step, which ends the run; the finished chunks are kept.
        cancel.cancel()
        outcome = Cancelled((), 0.0)
    if isinstance(outcome, Failed):
        if writer.frames_written:
            info = writer.close()
            progress.message(f"kept the {info.frames} frames finished before the error in {args.output}")
        else:
            writer.abort()
        raise outcome.error
    if writer.frames_written == 0:
        writer.abort()
        progress.message("cancelled before any chunk was finished; nothing written")
        return 130
    info = writer.close()
    verb = "cancelled: wrote the finished chunks" if isinstance(outcome, Cancelled) else "wrote"
    progress.message(f"{verb} {info.frames} frames ({info.width}x{info.height}) to {args.output}")
    return 130 if isinstance(outcome, Cancelled) else 0


def _last_frames(frames, keep: int):
    import numpy as np

    tail = deque(frames, maxlen=keep)
    return np.stack(tail) if tail else None


if __name__ == "__main__":
    sys.exit(main())
