"""ParallelSession: rank 0 in this process, the other ranks spawned; events, results and failures."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from magi_engine.errors import OutOfMemory
from magi_engine.events import ChunkFinished, Failed, Finished
from magi_engine.parallel.launch import LaunchSpec
from magi_engine.parallel.session import ParallelSession
from magi_engine.requests import ChunkSpec, GenerationRequest
from magi_engine.session import GenerationSession
from tests.engine.factories import TINY_VOCAB_CAPTIONS, tiny_bundle
from tests.engine.parallel.ranks_util import (failing_tiny_bundle_dit, failing_tiny_bundle_vae, tiny_bundle_dit,
                                              tiny_bundle_vae)


@pytest.fixture(autouse=True)
def one_thread():
    """Rank 0 is this process: one intra-op thread, as each spawned rank gets on a 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _request(**kwargs) -> GenerationRequest:
    # Chunk 1 has a negative prompt: base models use it in their guidance passes (it travels to the ranks).
    chunks = tuple(ChunkSpec(TINY_VOCAB_CAPTIONS[i], seed=i, negative_prompt="a green triangle" if i == 1 else "")
                   for i in range(3))
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    kwargs.setdefault("decode", False)
    return GenerationRequest(chunks=chunks, width=64, height=64, reference_image=image, previews=False, **kwargs)


def _latents(events) -> dict[int, torch.Tensor]:
    events = list(events)
    assert isinstance(events[-1], Finished), events[-1]
    return {e.chunk: e.latent for e in events if isinstance(e, ChunkFinished)}


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max() / b.float().abs().max())


@pytest.mark.slow
def test_sequence_parallel_session_equals_one_device_and_leaves_no_process():
    """One launch: an i2v run decoded with the VAE's tiles shared by both ranks, a regeneration on the same
    ranks, then a tiled decode and encode on their own, all equal to one process; close ends the ranks."""
    bundle = tiny_bundle(distilled=False)
    one = GenerationSession(bundle)
    expected_events = list(one.generate(_request(decode=True)))
    expected = _latents(expected_events)
    expected_frames = {e.chunk: e.frames for e in expected_events if isinstance(e, ChunkFinished)}
    session = ParallelSession.from_bundle(bundle, LaunchSpec(2, "gloo", "sequence"),
                                          functools.partial(tiny_bundle_dit, distilled=False),
                                          functools.partial(tiny_bundle_vae, distilled=False))
    try:
        assert session.plan.sequence == 2 and session.workers.spreads_vae
        events = list(session.generate(_request(decode=True)))
        got = _latents(events)
        frames = {e.chunk: e.frames for e in events if isinstance(e, ChunkFinished)}
        # Regenerate from chunk 2 after the first two: the same run goes on (second job on the same ranks).
        again = _latents(session.generate(_request(start_chunk=1, context_latents=(expected[0],))))
        # The VAE's passes themselves, in float: 2 time slabs x 2 x 2 tiles of a chunk, 4 on each rank.
        vae, runner = bundle.vae, session._tile_runner()
        latent = expected[1][None] / vae.config.scale_factor
        pixels = torch.rand(1, 3, 12, 64, 64) * 2 - 1
        with torch.inference_mode():
            decode_error = _relative_error(vae.decode(latent, runner=runner), vae.decode(latent))
            encode_error = _relative_error(vae.encode(pixels, runner=runner), vae.encode(pixels))
        tile_bytes = session.model.runtime.meter.bytes_sent.get("vae_tiles", 0)
    finally:
        processes = list(session.workers.processes)
        session.close()
    assert sorted(got) == [0, 1, 2]
    for index in got:
        assert _relative_error(got[index], expected[index]) <= 1e-5, index
        # The same frames but for a rare rounding step of the uint8 cast.
        assert np.abs(frames[index].astype(int) - expected_frames[index].astype(int)).max() <= 1
    assert decode_error <= 1e-5 and encode_error <= 1e-5, (decode_error, encode_error)
    assert tile_bytes > 0
    assert sorted(again) == [1, 2, 3]
    assert processes and not any(p.is_alive() for p in processes)


@pytest.mark.slow
def test_a_failing_rank_stops_the_run_with_its_typed_error_and_the_next_run_starts_again(tmp_path):
    bundle = tiny_bundle(distilled=True)
    session = ParallelSession.from_bundle(bundle, LaunchSpec(2, "gloo", "guidance"),
                                          functools.partial(failing_tiny_bundle_dit, distilled=True, fail_at_call=2,
                                                            once_marker=str(tmp_path / "failed-once")))
    first = list(session.workers.processes)
    try:
        events = list(session.generate(_request()))
        failed = events[-1]
        stopped = not any(p.is_alive() for p in first)
        # The next Generate starts the ranks again (the restarted rank does not fail) and finishes.
        again = _latents(session.generate(_request()))
        second = list(session.workers.processes)
    finally:
        session.close()
    assert isinstance(failed, Failed) and isinstance(failed.error, OutOfMemory), failed
    assert "Rank 1" in str(failed.error) and "ran out of memory" in str(failed.error)
    assert stopped
    assert sorted(again) == [0, 1, 2]
    assert second and set(p.pid for p in second).isdisjoint(p.pid for p in first)
    assert not any(p.is_alive() for p in first + second)


@pytest.mark.slow
def test_a_rank_failing_in_its_share_of_the_tiles_stops_the_run_with_its_typed_error():
    bundle = tiny_bundle(distilled=True)
    session = ParallelSession.from_bundle(bundle, LaunchSpec(2, "gloo", "sequence"),
                                          functools.partial(tiny_bundle_dit, distilled=True),
                                          functools.partial(failing_tiny_bundle_vae, distilled=True))
    processes = list(session.workers.processes)
    try:
        # The reference image's encode is shared first (it works); the first chunk's decode fails on rank 1.
        events = list(session.generate(_request(decode=True)))
    finally:
        session.close()
    failed = events[-1]
    assert isinstance(failed, Failed) and isinstance(failed.error, OutOfMemory), failed
    assert "Rank 1" in str(failed.error) and "decoding a tile" in str(failed.error)
    assert not any(isinstance(e, ChunkFinished) for e in events)
    assert not any(p.is_alive() for p in processes)

