"""From a model name to a working session: studio-mini, local folders, hub variants (offline), memory checks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from huggingface_hub import constants

from magi_engine import models
from magi_engine.bundle import save_native_bundle
from magi_engine.dit.model import MagiDiT
from magi_engine.dit.official_keys import to_official_state_dict
from magi_engine.errors import CheckpointError, DownloadError, OutOfMemory
from magi_engine.events import ChunkFinished, Finished
from magi_engine.loading import save_sharded
from magi_engine.requests import ChunkSpec, GenerationRequest
from magi_engine.session import GenerationSession
from magi_engine.variants import MAGI_VARIANTS, tiny_dit_config
from magi_engine.vae import VideoVAE
from magi_engine.vae.config import VAEConfig
from tests.engine.factories import randomize_, save_tiny_t5, tiny_bundle

COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
TINY_VAE = VAEConfig(video_size=32, video_length=8, embed_dim=256, depth=1, num_heads=4, mlp_ratio=1.0)


@pytest.fixture
def tiny_magi_variants(monkeypatch):
    """Shrink the registered 4.5B distilled variant to a tiny model, so a real load runs in milliseconds."""
    tiny = dataclasses.replace(MAGI_VARIANTS["4.5B_distill"], dit=tiny_dit_config(distilled=True), width=64,
                               height=64, sampling=dataclasses.replace(MAGI_VARIANTS["4.5B_distill"].sampling,
                                                                       num_steps=4))
    monkeypatch.setitem(MAGI_VARIANTS, "4.5B_distill", tiny)
    return tiny


def write_magi_snapshot(root: Path, variant) -> Path:
    """The hub layout of sand-ai/MAGI-1 with tiny weights: DiT (sharded), VAE, T5."""
    dit = randomize_(MagiDiT(variant.dit), seed=4)
    save_sharded(to_official_state_dict(dit.state_dict(), variant.dit), root / variant.hub_folder, 60_000)
    vae_dir = root / "ckpt" / "vae"
    save_sharded(VideoVAE(TINY_VAE).state_dict(), vae_dir, 10**9)
    ddconfig = {k: v for k, v in TINY_VAE.to_dict().items()
                if k not in ("scale_factor", "tile_size", "tile_overlap", "tile_frames", "bf16_attention_inputs")}
    (vae_dir / "config.json").write_text(json.dumps({"_class_name": "ViTVAE", "ddconfig": ddconfig}))
    save_tiny_t5(root / "ckpt" / "t5" / "t5-v1_1-xxl", d_model=variant.dit.caption_channels)
    return root


def one_chunk(session: GenerationSession) -> list:
    return list(session.generate(GenerationRequest(chunks=(ChunkSpec("a red circle rolls to the left", 1),),
                                                   width=64, height=64)))


def test_studio_mini_name_resolves_to_the_shipped_folder_or_says_it_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(models, "studio_mini_path", lambda: tmp_path / "studio-mini")
    with pytest.raises(CheckpointError, match="studio-mini's weights are not installed"):
        models.resolve_model("studio-mini")
    save_native_bundle(tiny_bundle(), tmp_path / "studio-mini")
    assert models.resolve_model("studio-mini").kind == "native"
    events = one_chunk(GenerationSession.load("studio-mini", device="cpu"))
    assert isinstance(events[-1], Finished)


@pytest.mark.parametrize("spec, variant", [("4.5B_distill", "4.5B_distill"), ("magi-1-24b-base", "24B_base"),
                                           ("hub:24B_distill_quant", "24B_distill_quant")])
def test_hub_variant_names(spec, variant):
    source = models.resolve_model(spec)
    assert source.kind == "hub" and source.variant == variant


def test_official_folder_loads_and_generates(tmp_path, tiny_magi_variants):
    root = write_magi_snapshot(tmp_path / "MAGI-1", tiny_magi_variants)
    session = GenerationSession.load(str(root), device="cpu")
    assert session.bundle.name == "4.5B_distill" and session.bundle.dit.config.distilled
    events = one_chunk(session)
    assert isinstance(events[-1], Finished), events[-1]
    frames = next(e for e in events if isinstance(e, ChunkFinished)).frames
    assert frames.shape == (24, 64, 64, 3)


@pytest.mark.parametrize("placement", ["offload", "cpu"])
def test_the_text_encoder_goes_where_the_runtime_asks_and_the_bundle_says_so(tmp_path, tiny_magi_variants, placement):
    from magi_engine.config import RuntimeConfig

    root = write_magi_snapshot(tmp_path / "MAGI-1", tiny_magi_variants)
    session = GenerationSession.load(str(root), device="cpu", runtime=RuntimeConfig(text_encoder=placement))
    text = session.bundle.text_encoder
    assert text.offloaded == (placement == "offload")
    assert text.pad_to_max_length == (placement != "cpu")  # on the CPU only the valid rows are computed
    assert {"offload": "offloaded", "cpu": "on the CPU"}[placement] in session.bundle.memory_plan
    assert isinstance(one_chunk(session)[-1], Finished)


def test_hub_variant_loads_from_the_cache_offline(tmp_path, tiny_magi_variants, monkeypatch):
    cache = tmp_path / "hub"
    repo = cache / "models--sand-ai--MAGI-1"
    write_magi_snapshot(repo / "snapshots" / COMMIT, tiny_magi_variants)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    session = GenerationSession.load("4.5B_distill", device="cpu")
    assert isinstance(one_chunk(session)[-1], Finished)
    with pytest.raises(DownloadError, match="offline"):
        GenerationSession.load("24B_distill", device="cpu")


def test_a_variant_too_big_for_the_device_is_refused_before_loading(tmp_path, monkeypatch):
    root = tmp_path / "MAGI-1"
    (root / MAGI_VARIANTS["24B_base"].hub_folder).mkdir(parents=True)
    (root / "ckpt" / "vae").mkdir(parents=True)
    (root / "ckpt" / "vae" / "config.json").write_text("{}")
    (root / "ckpt" / "t5" / "t5-v1_1-xxl").mkdir(parents=True)
    (root / "ckpt" / "t5" / "t5-v1_1-xxl" / "config.json").write_text("{}")
    monkeypatch.setattr("magi_engine.loading.memory.device_memory_bytes", lambda device: 24 * 2**30)
    with pytest.raises(OutOfMemory) as info:
        GenerationSession.load(str(root), device="cpu")
    message = str(info.value)
    assert "MAGI-1 24B" in message and "GiB" in message


@pytest.mark.parametrize("mode", ["kv-cache", "layers", "both"])
def test_the_dit_offload_the_runtime_asks_for_is_built_and_said(tmp_path, tiny_magi_variants, mode):
    from magi_engine.config import RuntimeConfig

    root = write_magi_snapshot(tmp_path / "MAGI-1", tiny_magi_variants)
    session = GenerationSession.load(str(root), device="cpu", runtime=RuntimeConfig(dit_offload=mode))
    dit = session.bundle.dit
    assert dit.kv_cache_on_host == (mode != "layers")
    assert (dit.layer_streamer is not None) == (mode != "kv-cache")
    assert "DiT:" in session.bundle.memory_plan and "as set" in session.bundle.memory_plan
    assert isinstance(one_chunk(session)[-1], Finished)


def test_the_loader_picks_the_offload_that_fits_the_card(tmp_path, tiny_magi_variants):
    import torch

    import magi_engine.magi_checkpoint as loader
    from magi_engine.loading import memory
    from magi_engine.model_files import locate_magi_checkpoint

    import dataclasses

    root = write_magi_snapshot(tmp_path / "MAGI-1", tiny_magi_variants)
    checkpoint = locate_magi_checkpoint(root)
    # Deeper than the tiny model on disk (the estimate reads the config only), so two layers are a small part.
    variant = checkpoint.variant
    deeper = dataclasses.replace(variant, dit=dataclasses.replace(variant.dit, num_layers=24))
    checkpoint = dataclasses.replace(checkpoint, variant=deeper)
    size = dict(width=64, height=64, window=1, native_fp8=False, text_on_device=False)
    resident = loader.magi_memory_estimate(checkpoint, torch.float32, **size)
    kv_host = loader.magi_memory_estimate(checkpoint, torch.float32, offload="kv-cache", **size)
    assert kv_host.total_bytes < resident.total_bytes
    # Too little for everything on the device, enough with the KV cache on the host.
    free = int((resident.total_bytes + kv_host.total_bytes) / 2 / 0.9)
    choice = loader.choose_offload(checkpoint, torch.float32, None, device=torch.device("cuda"), free=free,
                                   width=64, height=64, window=1, native_fp8=False, text_on_device=False)
    assert choice.mode != "none" and choice.estimate.total_bytes <= 0.9 * free
    assert choice.reason.startswith("DiT: ")
    assert memory.OFFLOAD_WORDS[choice.mode].split("{")[0] in choice.reason


def test_a_tight_card_gets_a_vae_decode_budget_from_the_plan_and_the_session_keeps_to_it(tmp_path, tiny_magi_variants,
                                                                                          monkeypatch):
    """The loader's memory plan (asked as for a CUDA card of a faked capacity; the model itself loads on the CPU)
    gives the VAE decode what is left beside the DiT; the bundle carries it, the plan's text says it, and the
    session's decode uses it."""
    import torch

    import magi_engine.magi_checkpoint as loader
    from magi_engine.model_files import locate_magi_checkpoint

    root = write_magi_snapshot(tmp_path / "MAGI-1", tiny_magi_variants)
    plan_for_cpu = loader.plan_checkpoint_memory
    cuda = torch.device("cuda")
    roomy = plan_for_cpu(locate_magi_checkpoint(root), torch.float32, device=cuda, free=2**40,
                         text_encoder="cpu", chunks=2)
    reference = roomy.estimate
    assert roomy.decode_budget is None and reference.decode_bytes > reference.activation_bytes
    free = int((reference.resident_bytes + (reference.decode_bytes + reference.activation_bytes) / 2) / 0.9)
    plans = []

    def plan_as_on_a_card(checkpoint, dtype, **kwargs):
        plans.append(plan_for_cpu(checkpoint, dtype, **{**kwargs, "device": cuda, "free": free}))
        return plans[-1]

    monkeypatch.setattr(loader, "plan_checkpoint_memory", plan_as_on_a_card)
    session = GenerationSession.load(str(root), device="cpu", width=64, height=64, window=1, chunks=2,
                                     runtime=models.RuntimeConfig(text_encoder="cpu"))
    plan = plans[-1]
    assert plan.decode_budget is not None and plan.estimate.total_bytes <= 0.9 * free
    assert session.bundle.vae_decode_budget == plan.decode_budget
    assert "VAE decode in" in session.bundle.memory_plan and "left beside the DiT" in session.bundle.memory_plan
    # The target it was fitted to is recorded only for a plan of a real GPU's free memory (nothing else re-plans);
    # this load runs on the CPU with the card's plan faked.
    assert session.bundle.memory_target is None
    calls = []
    decode = session.bundle.vae.decode
    monkeypatch.setattr(session.bundle.vae, "decode", lambda z, **kw: calls.append(kw) or decode(z, **kw))
    assert isinstance(one_chunk(session)[-1], Finished)
    assert calls and all(call["budget_bytes"] == plan.decode_budget for call in calls)
