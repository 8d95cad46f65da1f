"""Our DiT against the official MAGI-1 golden vectors (shared/conformance/dit_tiny*, float32).

Each case reproduces one official `VideoDiTModel.forward` call described in the conformance README;
tolerances are the README's (1e-4, ×10 for the 24B family whose output is divided by 0.1).
"""

from __future__ import annotations

import pytest
import torch

from magi_engine.dit.attention import ChunkLayout
from magi_engine.dit.embeddings import timestep_sinusoid
from magi_engine.dit.model import ChunkText, KVContext

from tests.engine.dit.conformance_util import chunk_text, load_case_folder

FAMILIES = [("dit_tiny", 1e-4), ("dit_tiny_24b", 1e-3)]
TOKENS = 72  # 6 latent frames x (8/2) x (6/2)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float) -> None:
    diff = (actual - expected).abs().max().item()
    assert diff <= atol, f"max |Δ| = {diff:.3g} > {atol}"


@pytest.fixture(params=FAMILIES, ids=[f for f, _ in FAMILIES])
def family(request):
    name, atol = request.param
    model, inputs, outputs, meta = load_case_folder(name)
    return model, inputs, outputs, atol, name


@torch.no_grad()
def test_case_a_two_chunks_causal(family):
    model, inp, out, atol, _ = family
    v = model(inp["x"], inp["t"], chunk_text(inp["y"], inp["xattn_mask"]), True, ChunkLayout.causal(0, 2, TOKENS))
    assert_close(v.velocity, out["case_a.v"], atol)


@torch.no_grad()
def test_case_a_caption_dropped_flag(family):
    model, inp, out, atol, _ = family
    v = model(inp["x"], inp["t"], chunk_text(inp["y"], inp["xattn_mask"]), False, ChunkLayout.causal(0, 2, TOKENS))
    assert_close(v.velocity, out["case_a_drop.v"], atol)
    # The flag must matter: otherwise this test could not tell the two rows apart.
    assert (out["case_a_drop.v"] - out["case_a.v"]).abs().max() > 100 * atol


@torch.no_grad()
def test_case_a_each_chunk_alone(family):
    model, inp, out, atol, _ = family
    v = model(inp["x"], inp["t"], chunk_text(inp["y"], inp["xattn_mask"]), True, ChunkLayout.isolated(0, 2, TOKENS))
    assert_close(v.velocity, out["case_a_indep.v"], atol)


@torch.no_grad()
def test_case_a_distilled_step_embedding(family):
    _, inp, out, atol, name = family
    model, *_ = load_case_folder(name, distilled=True)
    step = torch.full((1, 2), 8.0)  # 16 steps: dt = 16 / 4 * 2
    v = model(inp["x"], inp["t"], chunk_text(inp["y"], inp["xattn_mask"]), True, ChunkLayout.causal(0, 2, TOKENS),
              step_size=step)
    assert_close(v.velocity, out["case_a_distill.v"], atol)


def _null_text(model, mask: torch.Tensor) -> torch.Tensor:
    return model.caption_embed.null_caption.detach()[mask[0, 0].bool()]


@torch.no_grad()
def test_case_b_kv_cache(family):
    model, inp, out, atol, _ = family
    null = ChunkText.from_sequences([_null_text(model, inp["case_b.null_xattn_mask"])])
    clean = model(inp["case_b.x_clean"], torch.full((1, 1), 0.9999), null, False, ChunkLayout.isolated(0, 1, TOKENS),
                  collect_kv=True)
    assert_close(clean.velocity, out["case_b.clean_call_v"], atol)
    for i, (k, v) in enumerate(clean.kv):
        rows = torch.cat([k, v], dim=-1)[0]  # [tokens, groups, 2·dh] = the reference's cache rows
        assert_close(rows, out[f"case_b.kv_cache_layer{i}"], 1e-4)

    layout = ChunkLayout(first_chunk=1, num_chunks=2, tokens_per_chunk=TOKENS, key_starts=(0, 1), context_first=0)
    context = KVContext(first_chunk=0, num_chunks=1, layers=clean.kv)
    noisy = model(inp["case_b.x_noisy"], inp["case_b.t"], chunk_text(inp["case_b.y"], inp["case_b.xattn_mask"]), True,
                  layout, context=context)
    assert_close(noisy.velocity, out["case_b.v"], atol)


@torch.no_grad()
@pytest.mark.parametrize("present, key", [(True, "case_c_drop0.v"), (False, "case_c_drop1.v")])
def test_case_c_clean_chunk_in_the_same_forward(family, present, key):
    model, inp, out, atol, _ = family
    layout = ChunkLayout(first_chunk=0, num_chunks=3, tokens_per_chunk=TOKENS, key_starts=(0, 0, 1), context_first=0)
    v = model(inp["case_c.x"], inp["case_c.t"], chunk_text(inp["case_c.y"], inp["case_c.xattn_mask"]), present, layout)
    assert_close(v.velocity, out[key], atol)


@torch.no_grad()
def test_intermediates_timestep_and_rope(family):
    model, inp, out, _, _ = family
    emb = model.timestep_embed(inp["t"].flatten(), round_to=torch.float32)
    assert_close(emb, out["inter.t_embedder"], 1e-4)
    angles = model.rope.angles(0, 12, 4, 3)
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    assert_close(table, out["inter.rope_full"], 1e-5)
    flag = model.caption_embed.flag_vectors(torch.tensor([True]))
    assert_close(flag, out["inter.y_embedder.1"][0], 1e-5)


def test_timestep_sinusoid_is_cos_first():
    emb = timestep_sinusoid(torch.tensor([0.0]), 8, 1000.0)
    assert torch.equal(emb[0, :4], torch.ones(4)) and torch.equal(emb[0, 4:], torch.zeros(4))
