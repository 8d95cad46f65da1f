"""`magi-studio generate`: prompts to mp4 from the command line, with clear errors."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from magi_engine.bundle import save_native_bundle
from magi_engine.video_io import probe_video, read_video
from magi_studio.cli import main
from tests.engine import image_bytes
from tests.engine.factories import tiny_bundle


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "tiny"
    save_native_bundle(tiny_bundle(), folder)
    return folder


def test_one_prompt_per_chunk_makes_a_video(model_dir, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    code = main(["generate", "--model", str(model_dir), "--prompt", "a red ball falls", "--prompt",
                 "the blue square moves left", "--seed", "3", "-o", str(out)])
    assert code == 0
    info = probe_video(out)
    assert (info.frames, info.width, info.height, round(info.fps)) == (48, 64, 64, 24)
    assert "wrote 48 frames" in capsys.readouterr().err


def test_a_draft_is_half_the_size_in_fewer_steps(model_dir, tmp_path, capsys):
    out = tmp_path / "draft.mp4"
    code = main(["generate", "--model", str(model_dir), "--prompt", "a red ball falls", "--size", "160x128",
                 "--steps", "16", "--window", "4", "--draft", "-o", str(out)])
    assert code == 0
    info = probe_video(out)
    assert (info.frames, info.width, info.height) == (24, 80, 64)
    assert "8 steps, window 4" in capsys.readouterr().err  # the tiny model is distilled: 8 steps


def test_runtime_arguments_become_the_engine_s_runtime_config():
    from magi_engine.config import RuntimeConfig
    from magi_studio.cli import build_parser, runtime_config

    def parsed(*extra):
        return runtime_config(build_parser().parse_args(["generate", "--prompt", "p", "-o", "x.mp4", *extra]))

    assert parsed() is None
    assert parsed("--text-encoder", "offload") == RuntimeConfig(text_encoder="offload")
    assert parsed("--text-on-cpu", "--no-compile") == RuntimeConfig(compile_layers=False, text_encoder="cpu")
    assert parsed("--dit-offload", "kv-cache") == RuntimeConfig(dit_offload="kv-cache")
    assert parsed("--dit-offload", "auto") is None
    assert parsed("--no-fp8-attention") == RuntimeConfig(fp8_attention=False)
    assert parsed("--no-fused-kernels") == RuntimeConfig(fused_kernels=False)
    assert parsed("--no-flash-attention") == RuntimeConfig(flash_attention=False)
    assert parsed("--quantize-fp8") == RuntimeConfig(quantize_fp8=True)
    serve = build_parser().parse_args(["serve", "--text-encoder", "gpu", "--no-compile"])
    assert runtime_config(serve) == RuntimeConfig(compile_layers=False, text_encoder="gpu")


def test_same_seed_same_video_and_image_prompt(model_dir, tmp_path):
    image = tmp_path / "ref.png"
    cv2.imwrite(str(image), np.full((100, 150, 3), (20, 40, 200), np.uint8))
    paths = []
    for name in ("a.mp4", "b.mp4"):
        paths.append(tmp_path / name)
        assert main(["generate", "--model", str(model_dir), "--prompt", "a green triangle grows", "--image",
                     str(image), "-q", "-o", str(paths[-1])]) == 0
    assert np.array_equal(read_video(paths[0]), read_video(paths[1]))


def test_prefix_video_output_holds_only_new_frames(model_dir, tmp_path):
    prefix = tmp_path / "prefix.mp4"
    assert main(["generate", "--model", str(model_dir), "--prompt", "a red ball falls", "-q", "-o", str(prefix)]) == 0
    out = tmp_path / "continued.mp4"
    assert main(["generate", "--model", str(model_dir), "--video", str(prefix), "--prompt", "it keeps falling",
                 "--prompt", "it stops", "-q", "-o", str(out)]) == 0
    assert probe_video(out).frames == 48  # the 24-frame prefix is one whole chunk of context, not repeated


def test_a_large_prefix_is_fitted_as_it_streams_with_the_engine_s_own_result(model_dir, tmp_path, monkeypatch):
    from magi_engine.events import ChunkFinished
    from magi_engine.requests import GenerationRequest
    from magi_engine.session import GenerationSession
    from magi_engine.video_io import write_video

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (24, 96, 160, 3), dtype=np.uint8)  # 160x96: larger than the model's 64x64
    write_video(tmp_path / "wide.mp4", frames, fps=24)
    seen = []
    monkeypatch.setattr("magi_engine.requests.GenerationRequest.__post_init__",
                        lambda self, original=GenerationRequest.__post_init__: (seen.append(self), original(self))[1])
    assert main(["generate", "--model", str(model_dir), "--video", str(tmp_path / "wide.mp4"), "--prompt", "it stops",
                 "-q", "-o", str(tmp_path / "cli.mp4")]) == 0
    assert seen[-1].prefix_video.shape == (24, 64, 64, 3)  # kept at the model's size, not 160x96
    session = GenerationSession.load(str(model_dir))
    request = GenerationRequest(chunks=seen[-1].chunks, width=64, height=64, sampling=seen[-1].sampling,
                                prefix_video=read_video(tmp_path / "wide.mp4"), previews=False)
    native = [e.frames[e.prefix_frames:] for e in session.generate(request) if isinstance(e, ChunkFinished)]
    write_video(tmp_path / "native.mp4", np.concatenate(native), fps=24)
    assert np.array_equal(read_video(tmp_path / "native.mp4"), read_video(tmp_path / "cli.mp4"))


@pytest.fixture
def no_model_load(monkeypatch):
    """Loading a model fails the test: every argument must be refused before one loads."""
    from magi_engine.session import GenerationSession

    monkeypatch.setattr(GenerationSession, "load", classmethod(lambda *a, **k: pytest.fail("a model was loaded")))


def run_generate_with(args, tmp_path, model_dir, capsys):
    argv = ["generate", "--model", str(model_dir), "--prompt", "x", "-q", "-o", str(tmp_path / "x.mp4"), *args]
    code = main(argv)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x.mp4").exists()
    return code, err


@pytest.mark.parametrize("args, message", [
    (["--size", "-16x16"], "-16x16 cannot be made: width and height must be multiples of 16 from 64 to 4096"),
    (["--size", "0x0"], "0x0 cannot be made"),
    (["--size", "65x64"], "multiples of 16"),
    (["--size", "99999x64"], "from 64 to 4096 pixels"),
    (["--size", "wide"], "must look like 256x256"),
    (["--steps", "7"], "must be one of 4, 8, 12, 16, 32, 64, not 7"),
    (["--steps", "many"], "'many' is not a whole number"),
    (["--seed", "-1"], "from 0 to 9223372036854775807, not -1"),
    (["--window", "0"], "from 1 to 8, not 0"),
    (["--guidance", "nan"], "from -1 to 50, not nan"),
    (["--guidance", "-inf"], "from -1 to 50, not -inf"),
    (["--prompt", "x" * 4001], "the limit is 4000"),
    (["--prompt"], "--prompt: expected one argument"),
])
def test_malformed_arguments_are_refused_by_the_parser(model_dir, tmp_path, capsys, no_model_load, args, message):
    with pytest.raises(SystemExit) as stopped:
        run_generate_with(args, tmp_path, model_dir, capsys)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: argument ") and message in err and err.count("\n") == 1


def test_a_prompt_may_start_with_a_dash(model_dir, tmp_path, no_model_load):
    from magi_studio.cli import _values_may_start_with_a_dash, build_parser

    parser = build_parser()
    args = parser.parse_args(_values_may_start_with_a_dash(
        ["generate", "--prompt", "-- fade in", "--prompt", "-1", "-o", "-out.mp4", "-q"], parser))
    assert args.prompt == ["-- fade in", "-1"] and str(args.output) == "-out.mp4" and args.quiet


@pytest.mark.parametrize("args, message", [
    (["--model", "no/such/model"], "neither a folder nor a known model"),
    (["--image", "README.md"], "format is not one MAGI Studio reads"),
    (["--image", "missing.png"], "does not exist"),
    (["--video", "README.md"], "not a video that can be read"),
    (["--device", "cuda"], "No CUDA GPU is available"),
    (["--device", "gpu"], "Unknown device 'gpu'"),
    (["--dtype", "int8"], "Unknown dtype 'int8'"),
    (["--steps", "8", "--window", "3"], "--steps 8 must be a multiple of --window 3"),
    (["--seed", str(2**63 - 1), "--prompt", "y"], "would reach seed"),
])
def test_bad_input_is_one_sentence_before_the_model_loads(model_dir, tmp_path, capsys, no_model_load, args, message):
    code, err = run_generate_with(args, tmp_path, model_dir, capsys)
    assert code == 1 and message in err


def test_a_huge_reference_image_is_refused_from_its_header(model_dir, tmp_path, capsys, no_model_load):
    (tmp_path / "huge.png").write_bytes(image_bytes.png(20000, 20000, 6, 8, [], idat=b"\x78\x9c\x03\x00"))
    code, err = run_generate_with(["--image", str(tmp_path / "huge.png")], tmp_path, model_dir, capsys)
    assert code == 1 and "limited to 50 megapixels" in err


@pytest.mark.parametrize("target, kind", [("fifo", "a named pipe"), ("folder", "a folder"), ("/dev/null", "a character device")])
def test_an_output_that_is_not_a_regular_file_is_refused(model_dir, tmp_path, capsys, no_model_load, target, kind):
    out = {"fifo": tmp_path / "pipe.mp4", "folder": tmp_path / "dir.mp4", "/dev/null": "/dev/null"}[target]
    if target == "fifo":
        os.mkfifo(out)
    elif target == "folder":
        out.mkdir()
    code = main(["generate", "--model", str(model_dir), "--prompt", "x", "-q", "-o", str(out)])
    assert code == 1 and kind in capsys.readouterr().err


def test_a_folder_of_pickles_is_refused_as_pickles(tmp_path, capsys, no_model_load):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    code, err = run_generate_with(["--model", str(tmp_path / "model")], tmp_path, tmp_path / "model", capsys)
    assert code == 1 and "pickled weights are refused" in err and "safetensors" in err


def test_console_entry_point_runs_without_a_display(model_dir, tmp_path):
    out = tmp_path / "cli.mp4"
    result = subprocess.run([sys.executable, "-m", "magi_studio.cli", "generate", "--model", str(model_dir),
                             "--prompt", "a red ball falls", "-o", str(out)], capture_output=True, text=True,
                            timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, cwd=str(tmp_path.parent))
    assert result.returncode == 0, result.stderr
    assert probe_video(out).frames == 24


def test_words_a_word_level_model_does_not_know_are_warned_once_per_prompt(model_dir, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    code = main(["generate", "--model", str(model_dir), "--prompt", "a red bal falls", "--prompt", "a red bal falls",
                 "--prompt", "the blue square moves left", "-q", "-o", str(out)])
    assert code == 0 and probe_video(out).frames == 72
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1  # the repeated prompt is named once, the known one not at all
    assert "'bal'" in warnings[0] and "ball" in warnings[0] and "'a red bal falls'" in warnings[0]


@pytest.mark.parametrize("model, warned", [("studio-mini", True), ("4.5B_distill", False)])
def test_studio_mini_warns_and_magi1_models_read_any_word(model, warned, tmp_path, capsys, no_model_load):
    from magi_studio.cli import build_parser, check_generate_args

    args = build_parser().parse_args(["generate", "--model", model, "--prompt", "a cobalt zorblat lowers", "-o",
                                      str(tmp_path / "x.mp4")])
    check_generate_args(args)
    err = capsys.readouterr().err
    assert ("warning: studio-mini does not know 'zorblat'" in err) is warned
    assert ("zorblat" in err) is warned
    assert "'cobalt'" not in err  # a lexicon word (a survey colour WordNet knows first as a metal) is known
    assert "'lowers'" not in err  # a lexicon word of the fourth build (its gloss: move to a lower position)


def test_negative_prompt_changes_a_base_model_s_video_and_a_distilled_one_says_it_has_no_effect(model_dir, tmp_path,
                                                                                                capsys):
    base_dir = tmp_path / "base"
    save_native_bundle(tiny_bundle(distilled=False), base_dir)
    videos = {}
    for name, extra in (("plain", []), ("negative", ["--negative-prompt", "the blue square moves left"])):
        out = tmp_path / f"{name}.mp4"
        assert main(["generate", "--model", str(base_dir), "--prompt", "a red ball falls", "--steps", "4", "-q",
                     "-o", str(out), *extra]) == 0
        videos[name] = read_video(out)
    assert not np.array_equal(videos["plain"], videos["negative"])
    capsys.readouterr()
    assert main(["generate", "--model", str(model_dir), "--prompt", "a red ball falls", "--negative-prompt", "blur",
                 "-q", "-o", str(tmp_path / "distilled.mp4")]) == 0
    assert "--negative-prompt has no effect" in capsys.readouterr().err


def test_generate_fits_the_model_to_its_request_as_the_app_fits_it_to_a_project():
    from magi_engine.loading.memory import MemoryTarget
    from magi_studio.cli import build_parser, memory_target

    def target(*extra):
        return memory_target(build_parser().parse_args(["generate", "--prompt", "a", "--prompt", "b", "-o", "x.mp4",
                                                        *extra]))

    assert target() == MemoryTarget(None, None, None, 2)
    assert target("--size", "832x480", "--window", "1") == MemoryTarget(832, 480, 1, 2)
    assert target("--video", "prefix.mp4").chunks is None  # a prefix fills the KV cache whatever the prompts
