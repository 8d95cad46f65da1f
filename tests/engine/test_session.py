"""The session API end to end on a tiny model of the real classes: events, streaming, cancel, regenerate."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from magi_engine.bundle import load_native_bundle, save_native_bundle
from magi_engine.errors import ConfigError, InputError
from magi_engine.events import (CancelToken, Cancelled, ChunkFinished, Failed, Finished, GenerationStarted,
                           StepProgress)
from magi_engine.requests import ChunkSpec, GenerationRequest
from magi_engine.session import GenerationSession
from tests.engine.factories import tiny_bundle

PROMPTS = ("a red ball falls", "the blue square moves left", "a green triangle grows", "a red ball falls")


@pytest.fixture(scope="module")
def session() -> GenerationSession:
    return GenerationSession(tiny_bundle())


def request(n: int = 3, **kwargs) -> GenerationRequest:
    chunks = tuple(ChunkSpec(PROMPTS[i % 4], seed=100 + i) for i in range(n))
    return GenerationRequest(chunks=chunks, width=64, height=64, **kwargs)


def test_events_arrive_in_order_and_chunks_stream_before_the_run_ends(session):
    events = list(session.generate(request(3)))
    kinds = [type(e).__name__ for e in events]
    assert isinstance(events[0], GenerationStarted) and events[0].chunks == (0, 1, 2)
    assert isinstance(events[-1], Finished) and events[-1].chunks == (0, 1, 2)
    finished = [e for e in events if isinstance(e, ChunkFinished)]
    assert [e.chunk for e in finished] == [0, 1, 2]
    # Chunk 0 is delivered while later chunks are still being denoised.
    first_done = kinds.index("ChunkFinished")
    assert any(isinstance(e, StepProgress) for e in events[first_done:])
    assert kinds.index("ChunkStarted") < kinds.index("StepProgress")
    frames = finished[0].frames
    assert frames.shape == (24, 64, 64, 3) and frames.dtype == np.uint8
    assert tuple(finished[0].latent.shape) == (16, 6, 8, 8) and finished[0].latent.device.type == "cpu"
    progress = [e for e in events if isinstance(e, StepProgress)]
    assert progress[-1].step == progress[-1].total_steps == events[0].total_steps
    assert progress[0].previews and progress[0].previews[0].shape == (6, 8, 8, 3)


def test_same_seeds_give_the_same_video_and_a_new_seed_changes_only_its_chunk(session):
    def latents(req):
        return {e.chunk: e.latent for e in session.generate(req) if isinstance(e, ChunkFinished)}

    a, b = latents(request(2)), latents(request(2))
    assert all(torch.equal(a[c], b[c]) for c in a)
    reseeded = request(2)
    reseeded = dataclasses.replace(reseeded, chunks=(reseeded.chunks[0], ChunkSpec(PROMPTS[1], seed=9)))
    c = latents(reseeded)
    assert torch.equal(c[0], a[0]) and not torch.allclose(c[1], a[1])


def test_cancel_stops_within_one_step_and_keeps_finished_chunks(session):
    token = CancelToken()
    events, after_cancel = [], []
    for event in session.generate(request(4), token):
        (after_cancel if token.is_set() else events).append(event)
        if isinstance(event, ChunkFinished):
            token.cancel()
    assert [type(e) for e in after_cancel] == [Cancelled]
    assert after_cancel[0].finished_chunks == (0,)


def test_regenerate_from_chunk_2_reuses_earlier_latents_and_reproduces_the_run(session):
    sampling = dataclasses.replace(session.default_sampling, window=1)
    full = {e.chunk: e.latent for e in session.generate(request(4, sampling=sampling)) if isinstance(e, ChunkFinished)}
    again = request(4, sampling=sampling)
    again = dataclasses.replace(again, chunks=again.chunks[2:], start_chunk=2, shot_length=4,
                                context_latents=(full[0], full[1]))
    events = list(session.generate(again))
    redone = {e.chunk: e.latent for e in events if isinstance(e, ChunkFinished)}
    assert sorted(redone) == [2, 3]
    assert all(torch.equal(redone[c], full[c]) for c in (2, 3))


def test_reference_image_becomes_the_first_latent_frame(session):
    image = np.zeros((90, 120, 3), np.uint8)
    image[:, :60] = (220, 30, 30)
    events = list(session.generate(request(1, reference_image=image)))
    chunk = next(e for e in events if isinstance(e, ChunkFinished))
    expected = session.encode_image(image, 64, 64)
    assert torch.equal(chunk.latent[:, :1], expected) and chunk.prefix_frames == 0


def test_prefix_video_continues_from_its_last_frames(session):
    frames = np.random.default_rng(0).integers(0, 255, (40, 64, 64, 3), dtype=np.uint8)
    events = list(session.generate(request(2, prefix_video=frames)))
    done = [e for e in events if isinstance(e, ChunkFinished)]
    assert [e.chunk for e in done] == [0, 1]
    # 40 frames = 10 latent frames: one whole chunk of context and 4 held frames (16 pixel frames).
    assert done[0].prefix_frames == 16
    prefix = session.encode_video(frames, 64, 64)
    assert torch.equal(done[0].latent[:, :4], prefix[:, 6:10])


def test_a_prefix_video_of_any_length_uses_its_last_whole_groups_of_four_frames(session):
    frames = np.random.default_rng(1).integers(0, 255, (26, 64, 64, 3), dtype=np.uint8)
    events = list(session.generate(request(1, prefix_video=frames)))
    done = [e for e in events if isinstance(e, ChunkFinished)]
    assert [e.chunk for e in done] == [0], events[-1]
    # 26 frames: the first 2 are dropped; 24 frames = 6 latent frames = one whole chunk of context,
    # so no frames are held in the new chunk (a 26-frame prefix used to fail: not a multiple of 4).
    assert done[0].prefix_frames == 0


def test_wrong_guidance_mode_fails_with_a_typed_error_event(session):
    wrong = dataclasses.replace(session.default_sampling,
                                guidance=dataclasses.replace(session.default_sampling.guidance, mode="cfg3"))
    events = list(session.generate(request(1, sampling=wrong)))
    assert len(events) == 1 and isinstance(events[0], Failed) and isinstance(events[0].error, ConfigError)


def test_internal_errors_become_failed_events_and_keep_finished_chunks(session, monkeypatch):
    calls = {"n": 0}
    original = session.bundle.vae.latents_to_pixels

    def flaky(latents, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("decoder exploded")
        return original(latents, **kwargs)

    monkeypatch.setattr(session.bundle.vae, "latents_to_pixels", flaky)
    events = list(session.generate(request(3)))
    assert isinstance(events[-1], Failed) and "decoder exploded" in str(events[-1].error)
    assert events[-1].finished_chunks == (0,)


@pytest.mark.parametrize("kwargs, error", [
    ({"width": 65}, "multiple of 16"),
    ({"width": 32}, "multiple of 16 from 64"),
    ({"chunks": ()}, "no chunks"),
    ({"start_chunk": 1, "context_latents": (torch.zeros(16, 6, 4, 4),)}, "needs"),
])
def test_absurd_requests_are_refused_with_clear_messages(kwargs, error):
    base = dict(chunks=(ChunkSpec("x", 1),), width=64, height=64)
    base.update(kwargs)
    with pytest.raises((ConfigError, InputError), match=error):
        GenerationRequest(**base)
    with pytest.raises(InputError, match="seed"):
        ChunkSpec("x", -1)


def test_native_bundle_round_trip(tmp_path, session):
    save_native_bundle(session.bundle, tmp_path / "model")
    loaded = GenerationSession(load_native_bundle(tmp_path / "model", torch.device("cpu"), torch.float32))
    a = [e.latent for e in session.generate(request(1)) if isinstance(e, ChunkFinished)]
    b = [e.latent for e in loaded.generate(request(1)) if isinstance(e, ChunkFinished)]
    assert torch.equal(a[0], b[0])


def test_an_offloaded_text_encoder_visits_the_device_once_per_request_and_not_for_a_regeneration(tmp_path):
    from magi_engine.text import T5TextEncoder
    from tests.engine.factories import save_tiny_t5

    bundle = tiny_bundle()
    bundle.text_encoder = T5TextEncoder.from_folder(save_tiny_t5(tmp_path / "t5"), offload_to="cpu",
                                                    pad_to_max_length=False)
    forwards = []
    bundle.text_encoder.model.register_forward_hook(lambda *_: forwards.append(1))
    session = GenerationSession(bundle)
    chunks = tuple(ChunkSpec(p, seed=100 + i) for i, p in enumerate(("a red circle", "a blue square", "a red circle")))
    first = GenerationRequest(chunks=chunks, width=64, height=64, previews=False)
    latents = [e.latent for e in session.generate(first) if isinstance(e, ChunkFinished)]
    assert len(latents) == 3 and bundle.text_encoder.uploads == 1 and len(forwards) == 2  # two distinct prompts
    again = dataclasses.replace(first, chunks=chunks[1:], start_chunk=1, context_latents=(latents[0],),
                                shot_length=3)
    assert isinstance(list(session.generate(again))[-1], Finished)
    assert bundle.text_encoder.uploads == 1 and len(forwards) == 2


@torch.inference_mode()
def test_the_decode_keeps_to_the_bundles_vae_budget() -> None:
    """A bundle whose memory plan gave the VAE decode a budget (a tight card) decodes in tiles that fit it, within
    the budgeted decode's tolerance of the untiled decode (tests/engine/vae/test_vae_tiling.py)."""
    from magi_engine.models import studio_mini_path
    from magi_engine.vae.tiling import budget_tile_px

    bundle = load_native_bundle(studio_mini_path(), torch.device("cpu"), torch.float32)
    session = GenerationSession(bundle)
    config = bundle.vae.config
    ramp = torch.linspace(0, 1, 192)[None, :] * torch.linspace(0, 1, 128)[:, None]
    frames = torch.stack([(ramp * 0.5 + 0.25 + 0.1 * t / 12) * 255 for t in range(12)])
    latent = bundle.vae.pixels_to_latents(frames[..., None].expand(-1, -1, -1, 3).to(torch.uint8).contiguous())
    whole = session.decode(latent)  # no budget: the VAE's own tiles, which hold this frame whole (untiled)
    assert np.array_equal(whole, bundle.vae.latents_to_pixels(latent, budget_bytes=2**40).numpy())
    bundle.vae_decode_budget = config.decode_tile_bytes(128, 4)
    assert budget_tile_px(config, 128, 192, bundle.vae_decode_budget, 4) == 128 < budget_tile_px(config, 128, 192,
                                                                                                   2**40, 4)
    tiled = session.decode(latent)
    assert tiled.shape == whole.shape == (12, 128, 192, 3) and not np.array_equal(tiled, whole)
    difference = np.abs(tiled.astype(np.int16) - whole.astype(np.int16))
    assert difference.mean() < 0.03 * 127.5 and difference.max() < 0.6 * 127.5 + 1
    assert np.array_equal(tiled, bundle.vae.latents_to_pixels(latent, budget_bytes=bundle.vae_decode_budget).numpy())
