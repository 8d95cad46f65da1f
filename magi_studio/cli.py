"""The `magi-studio` command: the desktop app by default, `generate` and `render` without a window.

    magi-studio [PROJECT]
    magi-studio generate --model studio-mini --prompt "a red ball falls" --prompt "it bounces" -o out.mp4
    magi-studio render PROJECT -o out.mp4
    magi-studio render PROJECT -o cut.otio --otio-clips shot
    magi-studio serve --model studio-mini             # the engine for other computers (--engine ws://HOST:8765)

Qt is imported only for the app, so `generate` works on a machine without a display. Every argument is
checked before a model loads (`check_generate_args`, render's `check_render_args`): a wrong one costs a
second, not the model's load, and gets one sentence.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import sys
from collections import deque
from pathlib import Path

from magi_engine.config import CHUNK_FRAMES, GUIDANCE_SCALE_RANGE, MAX_WINDOW, SUPPORTED_STEPS
from magi_engine.errors import ConfigError, EngineError, InputError
from magi_engine.requests import MAX_PROMPT_CHARS, MAX_SEED, MAX_SIZE, MIN_SIZE

_SIZE = re.compile(r"\s*([+-]?\d+)\s*[xX×*]\s*([+-]?\d+)\s*")


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line in the app's style: `error: argument --size: ...`, exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see '{self.prog} --help').\n")


def parse_size(text: str) -> tuple[int, int]:
    match = _SIZE.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"the size must look like 256x256 (WIDTHxHEIGHT in pixels), not {text!r}")
    width, height = int(match[1]), int(match[2])
    if not (MIN_SIZE <= width <= MAX_SIZE and MIN_SIZE <= height <= MAX_SIZE and width % 16 == height % 16 == 0):
        raise argparse.ArgumentTypeError(f"{width}x{height} cannot be made: width and height must be multiples of 16 "
                                         f"from {MIN_SIZE} to {MAX_SIZE} pixels")
    return width, height


def _whole_number(low: int, high: int, allowed: tuple[int, ...] = ()):
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if allowed and value not in allowed:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(map(str, allowed))}, not {value}")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, not {value}")
        return value

    return parse


def parse_guidance(text: str) -> float:
    low, high = GUIDANCE_SCALE_RANGE
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise argparse.ArgumentTypeError(f"must be a number from {low:g} to {high:g}, not {text}")
    return value


def parse_prompt(text: str) -> str:
    if len(text) > MAX_PROMPT_CHARS:
        raise argparse.ArgumentTypeError(f"a prompt of {len(text)} characters is too long; the limit is "
                                         f"{MAX_PROMPT_CHARS}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="magi-studio", description="Storyboard editor for chunk-by-chunk video "
                            "generation (MAGI-1 architecture).")
    parser.add_argument("-v", "--verbose", action="store_true", help="log engine details to the terminal")
    sub = parser.add_subparsers(dest="command", parser_class=ArgumentParser)

    gen = sub.add_parser("generate", help="make a video from prompts, one --prompt per 24-frame chunk")
    gen.add_argument("--model", default="studio-mini",
                     help="studio-mini, a checkpoint folder, or a MAGI-1 hub variant such as 4.5B_distill")
    gen.add_argument("--prompt", action="append", required=True, type=parse_prompt,
                     help="prompt of the next chunk (repeatable)")
    gen.add_argument("--negative-prompt", default="", type=parse_prompt,
                     help="what no chunk should show (base models with guidance; distilled models ignore it)")
    gen.add_argument("--image", type=Path, help="reference image: the first frame of the video")
    gen.add_argument("--video", type=Path, help="prefix video to continue")
    gen.add_argument("--seed", type=_whole_number(0, MAX_SEED), default=0,
                     help="seed of the first chunk; chunk i uses seed + i")
    gen.add_argument("--steps", type=_whole_number(1, max(SUPPORTED_STEPS), SUPPORTED_STEPS),
                     help="denoising steps per chunk (model default if omitted)")
    gen.add_argument("--window", type=_whole_number(1, MAX_WINDOW),
                     help="chunks denoised at once (model default if omitted; 1 = sequential)")
    gen.add_argument("--size", type=parse_size, help="WIDTHxHEIGHT, multiples of 16 (model default if omitted)")
    gen.add_argument("--guidance", type=parse_guidance, help="text guidance scale of base models (MAGI-1 default 7.5)")
    gen.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    gen.add_argument("--dtype", default=None, help="float32, bfloat16 or float16 (default: per device)")
    _add_runtime_args(gen)
    gen.add_argument("--draft", action="store_true",
                     help="a quick draft: 8 steps (16 for base models) at half the width and height (a picture "
                          "of at most 128x128 keeps its size and halves its steps), same prompts and seeds; run "
                          "again without --draft for the final quality")
    gen.add_argument("-o", "--output", type=Path, required=True, help="mp4 file to write")
    gen.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_engine_args(gen)
    _add_parallel_args(gen)

    render = sub.add_parser("render", help="render a project's storyboard to an mp4 without the window")
    render.add_argument("project", type=Path)
    render.add_argument("-o", "--output", type=Path, required=True)
    render.add_argument("--otio-clips", choices=("chunk", "shot"), default=None,
                        help="a .otio output's clips: one per chunk (the default) or one per shot")
    render.add_argument("-q", "--quiet", action="store_true")
    _add_engine_args(render)

    serve = sub.add_parser("serve", help="serve a model to other computers (WebSocket; they use --engine URL)")
    serve.add_argument("--model", default="studio-mini", help="the model to load once and serve")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this computer only)")
    serve.add_argument("--port", type=_whole_number(0, 65535), default=8765)
    serve.add_argument("--token-file", type=Path,
                       help="bearer token file, created (mode 0600) if missing; default ~/.config/magi-studio/remote-token")
    serve.add_argument("--tls-cert", type=Path, help="TLS certificate (PEM): serve wss:// instead of ws://")
    serve.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    serve.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    serve.add_argument("--dtype", default=None, help="float32, bfloat16 or float16 (default: per device)")
    _add_runtime_args(serve)
    _add_parallel_args(serve)
    return parser


def _add_parallel_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gpus", type=_whole_number(1, 64), default=1,
                        help="GPUs of this computer to run the model on (NCCL; rank 0 on the first)")
    parser.add_argument("--parallel", choices=("auto", "guidance", "sequence"), default="auto",
                        help="how --gpus share the work: guidance passes, sequence shards, or both (auto)")
    parser.add_argument("--ranks", type=_whole_number(1, 64), default=1,
                        help="several processes without GPUs (tests: --ranks 2 --dist-backend gloo)")
    parser.add_argument("--dist-backend", choices=("nccl", "gloo"), default=None,
                        help="torch.distributed backend (default: nccl for --gpus, gloo for --ranks)")


def launch_spec(args: argparse.Namespace):
    """The LaunchSpec of --gpus / --ranks, or None for one device."""
    if args.gpus > 1 and args.ranks > 1:
        raise ConfigError("Give --gpus (GPUs) or --ranks (processes without GPUs), not both.")
    if args.gpus == 1 and args.ranks == 1:
        return None
    if getattr(args, "engine", None):
        raise ConfigError("--gpus and --ranks choose this computer's devices; the --engine server chooses its own.")
    from magi_engine.parallel.plan import LaunchSpec  # plain data: no torch before a model loads

    if args.gpus > 1:
        return LaunchSpec(args.gpus, args.dist_backend or "nccl", args.parallel)
    return LaunchSpec(args.ranks, args.dist_backend or "gloo", args.parallel)


def _add_runtime_args(parser: argparse.ArgumentParser) -> None:
    """How the model runs on this computer's GPU (magi_engine.config.RuntimeConfig)."""
    parser.add_argument("--text-encoder", choices=("auto", "gpu", "cpu", "offload"), default="auto",
                        help="where MAGI-1's T5 text encoder runs: on the GPU, on the CPU, or offloaded (on the "
                             "GPU only while it encodes new prompts); auto picks the first that fits the GPU")
    parser.add_argument("--text-on-cpu", action="store_true", help="the same as --text-encoder cpu")
    parser.add_argument("--dit-offload", choices=("auto", "none", "kv-cache", "layers", "both"), default="auto",
                        help="what of the DiT waits in CPU memory and streams to the GPU a layer ahead: nothing, "
                             "the KV cache, the layers' weights, or both; auto picks, of those measured on a GPU "
                             "(all but kv-cache) that fit it, the one that copies least")
    parser.add_argument("--no-compile", action="store_true",
                        help="run the DiT's layers uncompiled on CUDA (no compilation before the first chunk; "
                             "about 13%% slower per chunk)")
    parser.add_argument("--no-fp8-attention", action="store_true",
                        help="run attention in bf16 also for native FP8 models (by default their self-attention "
                             "runs in FP8 on Hopper GPUs with FlashAttention 3 or the cuDNN frontend installed)")
    parser.add_argument("--no-fused-kernels", action="store_true",
                        help="run each DiT layer's norms, gates, residual adds and RoPE as torch code also where the "
                             "engine would use its fused Triton kernels (CUDA GPUs with Triton installed)")
    parser.add_argument("--no-flash-attention", action="store_true",
                        help="run bf16 self-attention through torch's SDPA (cuDNN's kernel) also where the engine "
                             "would use FlashAttention (Hopper GPUs with flash-attn-4 or FlashAttention 3 installed)")
    parser.add_argument("--quantize-fp8", action="store_true",
                        help="quantise a bf16 MAGI-1 checkpoint's linears to FP8 as it loads (those MAGI-1's FP8 "
                             "checkpoints store in FP8; GPUs of compute capability 8.9 or later): about half the "
                             "DiT's memory and FP8 matmuls, at a small cost in accuracy (BENCHMARKS.md)")


def runtime_config(args: argparse.Namespace):
    """The RuntimeConfig of --text-encoder, --text-on-cpu, --dit-offload, --no-compile, --no-fp8-attention,
    --no-fused-kernels, --no-flash-attention and --quantize-fp8 (None: all left to the engine)."""
    from magi_engine.config import RuntimeConfig

    text = "cpu" if args.text_on_cpu else (None if args.text_encoder == "auto" else args.text_encoder)
    offload = getattr(args, "dit_offload", "auto")
    offload = None if offload == "auto" else offload
    if (text is None and offload is None and not args.no_compile and not args.no_fp8_attention
            and not args.no_fused_kernels and not args.no_flash_attention and not args.quantize_fp8):
        return None
    return RuntimeConfig(compile_layers=False if args.no_compile else None, text_encoder=text, dit_offload=offload,
                         fp8_attention=False if args.no_fp8_attention else None,
                         fused_kernels=False if args.no_fused_kernels else None,
                         flash_attention=False if args.no_flash_attention else None, quantize_fp8=args.quantize_fp8)


def _add_engine_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", metavar="URL", help="use the engine of `magi-studio serve` at URL (ws://HOST:PORT "
                        "or wss://...) instead of this computer's; its model is used")
    parser.add_argument("--token-file", type=Path, help="the server's token file (default: "
                        "~/.config/magi-studio/remote-token)")
    parser.add_argument("--engine-ca", type=Path, help="certificate to trust for a wss:// server with its own certificate")


def connect_engine(args: argparse.Namespace):
    """The RemoteSession of --engine (None without it): the remote counterpart of GenerationSession.load."""
    if not getattr(args, "engine", None):
        return None
    from magi_engine.remote.client import RemoteSession
    from magi_engine.remote.token import default_token_path

    return RemoteSession.connect(args.engine, token_file=args.token_file or default_token_path(),
                                 ca_file=args.engine_ca)


def _values_may_start_with_a_dash(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """`--size -16x16` as `--size=-16x16`: argparse takes any value starting with '-' that is not a plain
    negative number for an option and says "expected one argument"; joined, the value reaches its check."""
    takes_value, options = set(), set()
    for action in _all_actions(parser):
        options.update(action.option_strings)
        if action.option_strings and action.nargs is None:
            takes_value.update(action.option_strings)
    joined, index = [], 0
    while index < len(argv):
        item = argv[index]
        following = argv[index + 1] if index + 1 < len(argv) else None
        if (item in takes_value and following is not None and following.startswith("-") and following != "--"
                and following.split("=", 1)[0] not in options):
            joined.append(f"{item}={following}")
            index += 2
        else:
            joined.append(item)
            index += 1
    return joined


def _all_actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        yield action
        for child in getattr(action, "choices", None) or {}:
            if isinstance(action.choices, dict):
                yield from _all_actions(action.choices[child])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"generate", "render", "serve"}
    # The app unless a command comes (after options such as -v) or help is asked: `magi-studio --gpus 2 PROJECT`.
    if not argv or argv[0] not in ("-h", "--help") and not commands.intersection(argv):
        from magi_studio.app import run_app  # Qt only here

        return run_app(argv)
    parser = build_parser()
    args = parser.parse_args(_values_may_start_with_a_dash(list(argv), parser))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "generate":
            check_generate_args(args)
            return run_generate(args)
        if args.command == "render":
            from magi_studio.render import check_render_args, run_render

            check_render_args(args)
            return run_render(args)
        if args.command == "serve":
            from magi_engine.remote.server import run_server

            return run_server(args.model, args.host, args.port, args.token_file, args.tls_cert, args.tls_key,
                              device=args.device, dtype=args.dtype, text_on_cpu=args.text_on_cpu,
                              launch=launch_spec(args), runtime=runtime_config(args))
    except EngineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    build_parser().print_help()
    return 2


def check_generate_args(args: argparse.Namespace) -> None:
    """Everything about `generate`'s arguments that can be known before the model loads; EngineError if wrong.

    The cheap checks come first (files' headers, the output's folder), then the model's name and the
    device, which import torch but load nothing.
    """
    last_seed = args.seed + len(args.prompt) - 1
    if last_seed > MAX_SEED:
        raise ConfigError(f"--seed {args.seed} with {len(args.prompt)} prompts would reach seed {last_seed}; seeds go "
                          f"up to {MAX_SEED}.")
    if args.steps is not None and args.window is not None and args.steps % args.window:
        raise ConfigError(f"--steps {args.steps} must be a multiple of --window {args.window}.")
    if args.image is not None and args.video is not None:
        raise InputError("Give either a reference image (--image) or a prefix video (--video), not both.")
    from magi_engine.output_files import check_output_file
    from magi_engine.video_io import check_image_file, check_video_file

    check_output_file(args.output, "video")
    if args.image is not None:
        check_image_file(args.image)
    if args.video is not None:
        check_video_file(args.video)
    if args.engine:  # the server's model and device: only the token is ours to check
        from magi_engine.remote.token import default_token_path, read_token

        read_token(args.token_file or default_token_path())
        return
    from magi_engine.device import parse_dtype, pick_device
    from magi_engine.models import resolve_model

    resolve_model(args.model)
    spec = launch_spec(args)
    parse_dtype(args.dtype, spec.device_of(0) if spec else pick_device(args.device))
    warn_unknown_words(args.model, args.prompt)


def warn_unknown_words(model: str, prompts: list[str]) -> None:
    """A word-level model (studio-mini) passes over words it does not know: say so once per prompt."""
    from magi_engine.text.words import model_vocabulary, unknown_words_warning

    vocabulary = model_vocabulary(model)
    for prompt in dict.fromkeys(prompts):
        warning = unknown_words_warning(prompt, vocabulary)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)


def memory_target(args: argparse.Namespace):
    """What `generate`'s model is fitted to (magi_engine.loading.memory.MemoryTarget), as the app fits it to a
    project: the size and window asked for (None: the model's) and the chunks made (a prefix video fills the
    KV cache whatever their number: None)."""
    from magi_engine.loading.memory import MemoryTarget

    width, height = args.size or (None, None)
    return MemoryTarget(width, height, args.window, None if args.video else len(args.prompt))


def run_generate(args: argparse.Namespace) -> int:
    from magi_engine.session import GenerationSession
    from magi_engine.video_io import load_image
    from magi_studio.terminal_progress import TerminalProgress

    progress = TerminalProgress(enabled=not args.quiet)
    image = load_image(args.image) if args.image else None  # decoded before the model loads: damage shows now
    progress.message(f"connecting to {args.engine} ..." if args.engine else f"loading {args.model} ...")
    runtime = runtime_config(args)
    spec = launch_spec(args)
    if spec is not None:
        from magi_engine.parallel.session import ParallelSession

        session = ParallelSession.load(args.model, spec, dtype=args.dtype, text_on_cpu=args.text_on_cpu,
                                       runtime=runtime)
        progress.message(f"{spec.ranks} ranks ({spec.backend}): {session.plan.describe()}")
    else:
        target = memory_target(args)  # the loader fits T5, the DiT offload and the VAE decode to this request
        session = connect_engine(args) or GenerationSession.load(args.model, device=args.device, dtype=args.dtype,
                                                                 text_on_cpu=args.text_on_cpu, runtime=runtime,
                                                                 width=target.width, height=target.height,
                                                                 window=target.window, chunks=target.chunks)
    try:
        return _generate_with(session, args, progress, image)
    finally:
        if spec is not None:
            session.close()


def _generate_with(session, args: argparse.Namespace, progress, image) -> int:
    from magi_engine.events import CancelToken, Cancelled, ChunkFinished, Failed, Finished
    from magi_engine.remote.protocol import Queued
    from magi_engine.requests import ChunkSpec, GenerationRequest
    from magi_engine.video_io import VideoWriter, fit_image, iter_video

    bundle = session.bundle
    if getattr(bundle, "memory_plan", ""):
        progress.message(bundle.memory_plan)
    width, height = args.size or (bundle.width, bundle.height)
    sampling = session.default_sampling.overridden(steps=args.steps, window=args.window, guidance_scale=args.guidance)
    video = None
    if args.video:
        # Only the last chunks of a prefix are ever attended, each frame fitted as the engine fits it
        # ("cover", which leaves a fitted frame as it is): memory stays flat for long or large videos.
        frames = (fit_image(frame, width, height, "cover") for frame in iter_video(args.video, fps=bundle.fps))
        video = _last_frames(frames, keep=sampling.cache_chunks * CHUNK_FRAMES)
    request = GenerationRequest(
        chunks=tuple(ChunkSpec(prompt, args.seed + i, args.negative_prompt) for i, prompt in enumerate(args.prompt)),
        width=width, height=height, sampling=sampling, reference_image=image, prefix_video=video, previews=False)
    if args.draft:
        from magi_engine.draft import draft_request

        request = draft_request(request, sampling, distilled=sampling.guidance.mode == "distilled")
        sampling, width, height = request.sampling, request.width, request.height

    if args.negative_prompt.strip() and sampling.guidance.mode == "distilled":
        print(f"note: {bundle.label} is distilled (it has no guidance pass): --negative-prompt has no effect",
              file=sys.stderr)
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
            elif isinstance(event, Queued):
                progress.message(f"waiting: {event.position} run(s) ahead on the server")
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
