"""Properties of the chunk sampler on tiny random models: causality, caching, seeds, regeneration."""

from __future__ import annotations

import pytest
import torch

from magi_engine.config import CHUNK_LATENT_FRAMES
from magi_engine.dit.attention import ChunkLayout
from magi_engine.dit.model import ChunkText
from magi_engine.sampler.loop import ChunkDone, ChunkPlan, StepDone, sample_chunks
from magi_engine.sampler.schedule import attention_span, flow_schedule, guidance_scales, shortcut_step_sizes
from magi_engine.sampler.window import window_steps
from tests.engine.factories import LATENT_H, LATENT_W, chunk_text, plans, tiny_dit, tiny_sampling

TOKENS = 6 * (LATENT_H // 2) * (LATENT_W // 2)


def run(dit, sampling, chunk_plans, *, context=(), first_frames=None):
    null = dit.null_text()
    latents, steps = {}, []
    with torch.no_grad():
        for event in sample_chunks(dit, sampling, chunk_plans, null, context=context, first_frames=first_frames):
            if isinstance(event, ChunkDone):
                latents[event.index] = event.latent
            elif isinstance(event, StepDone):
                steps.append(event)
    return latents, steps


@pytest.mark.parametrize("window", [1, 4])
@pytest.mark.parametrize("distilled", [False, True])
def test_later_chunks_never_change_earlier_ones(window, distilled):
    dit = tiny_dit(distilled=distilled)
    sampling = tiny_sampling(window=window, distilled=distilled)
    base, _ = run(dit, sampling, plans(range(4)))
    changed_plans = plans(range(4))
    changed_plans[3] = ChunkPlan(3, torch.randn(1, 16, 6, LATENT_H, LATENT_W), chunk_text(99))
    changed, _ = run(dit, sampling, changed_plans)
    for c in range(3):
        assert torch.equal(base[c], changed[c]), f"chunk {c} changed when only chunk 3 did"
    assert not torch.allclose(base[3], changed[3])


@pytest.mark.parametrize("window", [1, 4])
def test_chunk_result_depends_on_its_seed_not_on_video_length(window):
    dit, sampling = tiny_dit(), tiny_sampling(window=window)
    short, _ = run(dit, sampling, plans(range(2)))
    long, _ = run(dit, sampling, plans(range(5)))
    for c in range(2):
        if window == 1:
            assert torch.equal(short[c], long[c])
        else:
            # With W = 4 a chunk's last steps share a forward with however many younger chunks exist;
            # the math is identical (they are never attended to) but matmul shapes differ, so float
            # rounding may differ in the last bits.
            assert (short[c] - long[c]).abs().max() < 1e-5
    reseeded = plans(range(2))
    reseeded[1] = ChunkPlan(1, torch.randn(1, 16, 6, LATENT_H, LATENT_W, generator=torch.Generator().manual_seed(7)),
                            reseeded[1].text)
    other, _ = run(dit, sampling, reseeded)
    assert torch.equal(other[0], short[0]) and not torch.allclose(other[1], short[1])


@pytest.mark.parametrize("window, steady_chunks", [(1, [4, 4, 3, 3, 3, 3, 3, 3]), (4, [1, 1])])
def test_kv_cache_stops_growing_and_holds_only_attendable_chunks(window, steady_chunks):
    dit, sampling = tiny_dit(), tiny_sampling(window=window)
    _, steps = run(dit, sampling, plans(range(9)))
    per_chunk_bytes = max(s.cache_bytes for s in steps) // sampling.cache_chunks if window == 1 else None
    assert max(len(s.cached_chunks) for s in steps) <= sampling.cache_chunks
    per_stage = sampling.num_steps // window
    # Steady state: every stage caches the same number of chunks, so memory is flat however long the video.
    late = [len(s.cached_chunks) for s in steps if 5 <= s.step.stage < 8]  # chunks with a successor
    stage_pattern = [len(s.cached_chunks) for s in steps if s.step.stage == 5]
    assert stage_pattern == steady_chunks[:per_stage]
    assert late == stage_pattern * (len(late) // per_stage)
    if per_chunk_bytes:
        assert all(s.cache_bytes == len(s.cached_chunks) * per_chunk_bytes for s in steps)
    # The cached chunks are always the most recent clean ones.
    for s in steps:
        if len(s.cached_chunks):
            assert s.cached_chunks.stop == s.step.oldest


@pytest.mark.parametrize("distilled", [False, True])
def test_regenerate_from_chunk_n_equals_uninterrupted_run_with_window_1(distilled):
    dit = tiny_dit(distilled=distilled)
    sampling = tiny_sampling(window=1, distilled=distilled)
    full, _ = run(dit, sampling, plans(range(6)))
    n = 4
    context = [(c, full[c]) for c in range(max(0, n - sampling.cache_chunks), n)]
    again, _ = run(dit, sampling, plans(range(n, 6)), context=context)
    for c in range(n, 6):
        assert torch.equal(again[c], full[c]), f"chunk {c} differs after regenerating from {n}"


def test_regenerate_with_window_4_sees_clean_neighbours_instead_of_noisy_ones():
    # With W = 4, chunk N started while N-3..N-1 were still noisy; regenerating from N gives it clean
    # neighbours instead, so the result is a valid but different sample (documented behaviour).
    dit, sampling = tiny_dit(), tiny_sampling(window=4)
    full, _ = run(dit, sampling, plans(range(5)))
    again, _ = run(dit, sampling, plans(range(3, 5)), context=[(c, full[c]) for c in range(3)])
    assert not torch.allclose(again[3], full[3], atol=1e-4)


def test_first_frames_are_held_and_returned():
    dit, sampling = tiny_dit(), tiny_sampling()
    held = torch.randn(1, 16, 1, LATENT_H, LATENT_W, generator=torch.Generator().manual_seed(3))
    out, _ = run(dit, sampling, plans(range(2)), first_frames=held)
    assert torch.equal(out[0][:, :, :1], held)
    free, _ = run(dit, sampling, plans(range(2)))
    assert not torch.allclose(free[0][:, :, 1:], out[0][:, :, 1:])


# --- The cached sampler against a reference that recomputes the whole history every step ----------

def reference_run(dit, sampling, chunk_plans):
    """No KV cache: every forward re-runs all clean chunks (each attending to itself) with the window."""
    schedule = flow_schedule(sampling.num_steps, sampling.shift)
    distilled = sampling.guidance.mode == "distilled"
    sizes = shortcut_step_sizes(sampling.num_steps)
    null = dit.null_text()
    texts = {p.index: p.text for p in chunk_plans}
    x = {p.index: p.noise.clone() for p in chunk_plans}
    clean: dict[int, torch.Tensor] = {}

    def forward(step, t_values, active_texts, flag_active, flag_newest_clean, isolated=False):
        n = len(step.chunks)
        starts = [c if isolated else max(min(clean, default=step.oldest),
                                         c - attention_span(k, sampling.num_steps, sampling.attention_spans) + 1)
                  for c, k in zip(step.chunks, step.steps)]
        first = min(starts + [step.oldest])
        clean_ids = list(range(first, step.oldest))
        latents = torch.cat([clean[i] for i in clean_ids] + [x[c] for c in step.chunks], dim=2)
        t = torch.tensor([[sampling.clean_t] * len(clean_ids) + t_values])
        flags = torch.tensor([[flag_newest_clean if i == step.oldest - 1 else distilled for i in clean_ids]
                              + [flag_active] * n])
        layout = ChunkLayout(first, len(clean_ids) + n, TOKENS, tuple(clean_ids) + tuple(starts), first)
        text = ChunkText.from_sequences([null] * len(clean_ids) + active_texts)
        step_size = torch.tensor([[sizes[0]] * len(clean_ids) + [sizes[k] for k in step.steps]]) if distilled else None
        v = dit(latents, t, text, flags, layout, step_size=step_size).velocity
        return v[:, :, len(clean_ids) * CHUNK_LATENT_FRAMES:]

    for step in window_steps(chunk_plans[0].index, chunk_plans[-1].index + 1, sampling.num_steps, sampling.window):
        t_values = [float(schedule[k]) for k in step.steps]
        cond = [texts[c] for c in step.chunks]
        n = len(step.chunks)
        if distilled:
            v = forward(step, t_values, cond, True, True)
            if t_values[0] > 0.3:
                alone = dit(x[step.oldest], torch.tensor([t_values[:1]]), ChunkText.from_sequences(cond[:1]), True,
                            ChunkLayout.isolated(step.oldest, 1, TOKENS),
                            step_size=torch.tensor([[sizes[step.steps[0]]]])).velocity
                v = torch.cat([0.7 * v[:, :, :6] + 0.3 * alone, v[:, :, 6:]], dim=2)
        else:
            newest_flag = step.substep == 0  # the just-finished chunk is re-encoded in this pass's forward
            v_text = forward(step, t_values, cond, True, newest_flag)
            v_hist = forward(step, t_values, [null] * n, False, False)
            v_unc = forward(step, t_values, [null] * n, False, False, isolated=True)
            parts = []
            for j, t in enumerate(t_values):
                h, s = guidance_scales(t, sampling.guidance)
                f = slice(6 * j, 6 * j + 6)
                parts.append((1 - h) * v_unc[:, :, f] + (h - s) * v_hist[:, :, f] + s * v_text[:, :, f])
            v = torch.cat(parts, dim=2)
        for j, (c, k) in enumerate(zip(step.chunks, step.steps)):
            x[c] = x[c] + v[:, :, 6 * j: 6 * j + 6] * (schedule[k + 1] - schedule[k])
        if step.finishes is not None:
            clean[step.finishes] = x.pop(step.finishes)
    return clean


@pytest.mark.parametrize("window", [1, 2, 4])
@pytest.mark.parametrize("distilled", [False, True])
def test_cached_sampler_equals_recomputing_the_full_history(window, distilled):
    dit = tiny_dit(distilled=distilled, seed=5)
    sampling = tiny_sampling(window=window, distilled=distilled)
    chunk_plans = plans(range(6))
    cached, _ = run(dit, sampling, chunk_plans)
    with torch.no_grad():
        reference = reference_run(dit, sampling, chunk_plans)
    for c in range(6):
        diff = (cached[c] - reference[c]).abs().max().item()
        assert diff < 1e-4, f"chunk {c}: max |Δ| {diff:.2g}"
