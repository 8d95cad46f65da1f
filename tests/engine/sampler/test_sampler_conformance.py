"""Full tiny generations against the official `SampleTransport` (shared/conformance/sampler)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from magi_engine.config import GuidanceConfig, SamplingConfig
from magi_engine.sampler.loop import ChunkDone, ChunkPlan, sample_chunks
from magi_engine.sampler.schedule import flow_schedule
from tests.conformance import conformance_path
from tests.engine.dit.conformance_util import load_case_folder


@pytest.mark.parametrize("mode", ["cfg3", "distill"])
def test_three_chunk_generation_matches_the_reference(mode):
    model, *_ = load_case_folder("dit_tiny", distilled=mode == "distill")
    data = load_file(conformance_path("sampler", f"{mode}.safetensors"))
    sampling = SamplingConfig(num_steps=8, window=4,
                              guidance=GuidanceConfig(mode="cfg3" if mode == "cfg3" else "distilled"))
    assert torch.equal(flow_schedule(8), data["t_schedule"])
    y, mask = data["y"], data["emb_masks"]
    plans = [ChunkPlan(c, data["noise"][:, :, 6 * c:6 * c + 6], y[0, c][mask[0, c].bool()]) for c in range(3)]
    null_text = y[1, 0][mask[1, 0].bool()]
    with torch.no_grad():
        done = [e for e in sample_chunks(model, sampling, plans, null_text) if isinstance(e, ChunkDone)]
    assert [e.index for e in done] == [0, 1, 2]  # streamed in order, one per stage
    for event in done:
        diff = (event.latent - data[f"clean_chunk{event.index}"]).abs().max().item()
        assert diff < 1e-3, f"chunk {event.index}: max |Δ| {diff:.3g}"
    final = torch.cat([e.latent for e in done], dim=2)
    assert (final - data["final_latent"]).abs().max() < 1e-3
