"""What each rank runs in the parallel tests: the parallel result and the single-device one, compared.

Every rank builds the same tiny models (fixed seeds), computes the single-process reference itself
and reports the largest relative error of its parallel result (max |a - b| / max |b|).
"""

from __future__ import annotations

import torch

from magi_engine.dit.attention import ChunkLayout
from magi_engine.dit.model import ChunkText, KVContext
from magi_engine.parallel.launch import ParallelModel
from magi_engine.parallel.plan import ParallelPlan, kv_head_repeats
from magi_engine.parallel.runtime import ParallelRuntime
from magi_engine.sampler.loop import ChunkDone, sample_chunks
from tests.engine.factories import LATENT_H, LATENT_W, chunk_noise, chunk_text, plans
from tests.engine.parallel.ranks_util import FAMILIES, family_dit, family_sampling


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def _dit_forward_errors(dit, model, runtime: ParallelRuntime) -> float:
    """A 3-chunk forward over 2 cached chunks with MAGI-1's mixed spans, velocity and collected KV."""
    config = dit.config
    tokens = config.tokens_per_chunk(LATENT_H, LATENT_W)
    g = torch.Generator().manual_seed(7)
    clean = torch.randn(1, 16, 12, LATENT_H, LATENT_W, generator=g)
    text = ChunkText.from_sequences([chunk_text(i, tokens=3 + i) for i in range(3)])
    null2 = ChunkText.from_sequences([dit.null_text()] * 2)
    step = torch.full((1, 2), 4.0) if config.distilled else None
    step3 = torch.full((1, 3), 4.0) if config.distilled else None
    clean_layout = ChunkLayout.isolated(0, 2, tokens)
    t_clean = torch.full((1, 2), 0.9999)
    ref_kv = dit(clean, t_clean, null2, False, clean_layout, step_size=step, collect_kv=True).kv
    par_kv = model(clean, t_clean, null2, False, clean_layout, step_size=step, collect_kv=True).kv
    errors = []
    r, pos = runtime.sequence_ranks, runtime.position
    repeats = kv_head_repeats(config.num_heads, config.num_kv_groups, r)
    for (rk, rv), (pk, pv) in zip(ref_kv, par_kv):
        for ref, par in ((rk, pk), (rv, pv)):
            mine = ref.repeat_interleave(repeats, dim=2).chunk(r, dim=2)[pos]  # this rank's heads
            errors.append(relative_error(par, mine))
    x = torch.randn(1, 16, 18, LATENT_H, LATENT_W, generator=g)
    layout = ChunkLayout(2, 3, tokens, (0, 1, 4), 0)  # spans of 3, 3 and 1 chunks
    t = torch.tensor([[0.7, 0.4, 0.1]])
    ref = dit(x, t, text, True, layout, context=KVContext(0, 2, ref_kv), step_size=step3).velocity
    par = model(x, t, text, True, layout, context=KVContext(0, 2, par_kv), step_size=step3).velocity
    errors.append(relative_error(par, ref))
    return max(errors)


def _runs(dit, sampling, passes=None):
    """Chunk latents of three runs: i2v from chunk 0; continuation after 2 clean chunks (regenerate from 2)."""
    first = torch.randn(1, 16, 1, LATENT_H, LATENT_W, generator=torch.Generator().manual_seed(3))
    context = [(0, chunk_noise(50)), (1, chunk_noise(51))]
    out = []
    for kwargs, indices in (({"first_frames": first}, range(3)), ({"context": context}, range(2, 5))):
        events = sample_chunks(dit, sampling, plans(indices), dit.null_text(), passes=passes, **kwargs)
        out += [e.latent for e in events if isinstance(e, ChunkDone)]
    return out


def match_single_device(rank: int, world: int, plans_to_try: list[tuple[int, int]]) -> dict[str, float]:
    """For each plan (run by the first guidance x sequence ranks of the world; the others wait for the next
    plan), family and guidance mode: the largest relative error of the DiT forward and its KV shard (sequence
    plans, every rank against its own single-device reference), of the chunk latents of the sampler runs
    (rank 0 against the single-device runs, computed once) and a checksum of those latents, which every rank
    of the plan must share."""
    torch.manual_seed(0)
    report = {}
    references = {}
    for guidance, sequence in plans_to_try:
        plan = ParallelPlan(guidance, sequence)
        runtime = ParallelRuntime(plan, rank, torch.device("cpu"))  # on every rank: its groups are collective
        if rank >= plan.world:
            continue
        for family in FAMILIES:
            for distilled in (False, True):
                if guidance > (2 if distilled else 3):
                    continue
                dit = family_dit(family, distilled=distilled)
                model = ParallelModel(dit, runtime)
                name = f"{family}-{'distill' if distilled else 'base'}-g{guidance}s{sequence}"
                with torch.inference_mode():
                    if sequence > 1:
                        report[name + "-forward"] = _dit_forward_errors(dit, model.dit, runtime)
                    got = _runs(model.dit, family_sampling(distilled), model.passes)
                    key = (family, distilled)
                    if rank == 0 and key not in references:
                        references[key] = _runs(dit, family_sampling(distilled))
                if rank == 0:
                    report[name + "-sampler"] = max(relative_error(a, b) for a, b in zip(got, references[key]))
                report[name + "-checksum"] = float(sum(latent.double().sum() for latent in got))
                report[name + "-chunks"] = len(got)
    return report
