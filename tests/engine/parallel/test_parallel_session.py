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
from tests.engine.parallel.ranks_util import failing_tiny_bundle_dit, tiny_bundle_dit


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
    return GenerationRequest(chunks=chunks, width=64, height=64, reference_image=image, previews=False, decode=False, **kwargs)


def _latents(events) -> dict[int, torch.Tensor]:
    events = list(events)
    assert isinstance(events[-1], Finished), events[-1]
    return {e.chunk: e.latent for e in events if isinstance(e, ChunkFinished)}


@pytest.mark.slow
def test_sequence_parallel_session_equals_one_device_and_leaves_no_process():
    bundle = tiny_bundle(distilled=False)
    expected = _latents(GenerationSession(bundle).generate(_request()))
    session = ParallelSession.from_bundle(bundle, LaunchSpec(2, "gloo", "sequence"),
                                          functools.partial(tiny_bundle_dit, distilled=False))
    try:
        assert session.plan.sequence == 2
        got = _latents(session.generate(_request()))
        # Regenerate from chunk 2 after the first two: the same run goes on (second job on the same ranks).
        again = _latents(session.generate(_request(start_chunk=1, context_latents=(expected[0],))))
    finally:
        processes = list(session.workers.processes)
        session.close()
    assert sorted(got) == [0, 1, 2]
    for index in got:
        error = (got[index] - expected[index]).abs().max() / expected[index].abs().max()
        assert error <= 1e-5, (index, float(error))
    assert sorted(again) == [1, 2, 3]
    assert processes and not any(p.is_alive() for p in processes)


@pytest.mark.slow
def test_a_failing_rank_stops_the_run_with_its_typed_error_on_rank_0():
    bundle = tiny_bundle(distilled=True)
    session = ParallelSession.from_bundle(bundle, LaunchSpec(2, "gloo", "guidance"),
                                          functools.partial(failing_tiny_bundle_dit, distilled=True, fail_at_call=2))
    processes = list(session.workers.processes)
    try:
        events = list(session.generate(_request()))
    finally:
        session.close()
    failed = events[-1]
    assert isinstance(failed, Failed) and isinstance(failed.error, OutOfMemory), failed
    assert "Rank 1" in str(failed.error) and "ran out of memory" in str(failed.error)
    assert not any(p.is_alive() for p in processes)
