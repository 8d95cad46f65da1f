"""Memory estimates: the brief's KV table, the parts of the estimate, and the fits-or-explain check."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from magi_engine.config import DiTConfig
from magi_engine.errors import OutOfMemory
from magi_engine.loading import memory
from magi_engine.loading.memory import (
    MemoryEstimate,
    check_fits,
    device_memory_bytes,
    estimate_memory,
    kv_bytes_per_chunk,
    vae_parameter_count,
)

# Shapes of the released models (shared/reference/magi1.md §2.1).
DIT_4_5B = DiTConfig(num_layers=34, hidden_size=3072, ffn_hidden_size=12288, num_heads=24, num_kv_groups=8)
DIT_24B = DiTConfig(num_layers=48, hidden_size=6144, ffn_hidden_size=16384, num_heads=48, num_kv_groups=8,
                    gated_mlp=True, half_channel_vae=True, x_rescale_factor=0.1)


@pytest.mark.parametrize("dit, width, height, gigabytes", [
    (DIT_4_5B, 720, 720, 1.69), (DIT_24B, 1280, 720, 4.25),
    (DIT_4_5B, 832, 480, 1.30), (DIT_24B, 720, 720, 2.39), (DIT_4_5B, 1280, 720, 3.01),
])
def test_kv_per_chunk_matches_the_brief_table(dit, width, height, gigabytes) -> None:
    assert kv_bytes_per_chunk(dit, width=width, height=height) == pytest.approx(gigabytes * 1e9, rel=0.02)
    estimate = estimate_memory(dit, width=width, height=height, window=1, cache_chunks=1)
    assert estimate.kv_cache_bytes == pytest.approx(gigabytes * 1e9, rel=0.02)
    assert estimate_memory(dit, width=width, height=height, window=1, cache_chunks=3).kv_cache_bytes \
        == 3 * estimate.kv_cache_bytes


def test_the_worst_stage_holds_the_kv_of_the_chunks_its_newest_chunk_attends() -> None:
    """Span 5: a stage with n chunks in the window keeps 5 - n clean chunks; the estimate is the worst stage."""
    per_chunk = kv_bytes_per_chunk(DIT_4_5B, width=720, height=720)
    kwargs = dict(width=720, height=720, text_encoder_on_device=False, include_vae=False)
    for window in (1, 2, 4):
        e = estimate_memory(DIT_4_5B, window=window, cache_chunks=4, **kwargs)
        stages = [estimate_memory(DIT_4_5B, window=n, cache_chunks=5 - n, attention_span=5, **kwargs)
                  for n in range(1, window + 1)]
        assert e.kv_cache_bytes + e.activation_bytes == max(s.kv_cache_bytes + s.activation_bytes for s in stages)
    # Full window, nothing cached beyond the one chunk the newest attends: less than four chunks cached.
    full = estimate_memory(DIT_4_5B, window=4, cache_chunks=1, attention_span=5, **kwargs)
    assert full.kv_cache_bytes == per_chunk


def test_parts_add_up_and_weights_follow_parameter_count() -> None:
    e = estimate_memory(DIT_24B, width=1280, height=720, window=4, cache_chunks=4)
    assert e.total_bytes == e.weights_bytes + e.text_encoder_bytes + e.vae_bytes + e.kv_cache_bytes + e.activation_bytes
    params = DIT_24B.parameter_count()
    # bf16 everywhere except the float32 embedders / head: a little above 2 bytes per parameter.
    assert 2 * params < e.weights_bytes < 2.02 * params
    assert e.text_encoder_bytes == int(4.76e9 * 2)
    assert 0.6e9 < vae_parameter_count() < 0.63e9
    assert 1.2e9 < e.vae_bytes < 2.5e9


def test_fp8_is_estimated_at_bf16_unless_kept() -> None:
    kwargs = dict(width=720, height=720, window=4, cache_chunks=4)
    bf16 = estimate_memory(DIT_4_5B, **kwargs)
    assert estimate_memory(DIT_4_5B, fp8=True, **kwargs).weights_bytes == bf16.weights_bytes
    kept = estimate_memory(DIT_4_5B, fp8=True, keep_fp8=True, **kwargs)
    d, f = 3072, 12288
    linears = 2 * d * 3072 + 2 * d * 1024 + 2 * 3072 * d + d * f + f * d
    assert bf16.weights_bytes - kept.weights_bytes == 32 * linears  # layers 1..32 at 1 byte instead of 2


def test_activations_grow_with_window_and_resolution() -> None:
    # One chunk cached, so every stage keeps the same KV and the full window is the worst.
    small = estimate_memory(DIT_4_5B, width=832, height=480, window=1, cache_chunks=1).activation_bytes
    wider = estimate_memory(DIT_4_5B, width=832, height=480, window=4, cache_chunks=1, attention_span=5).activation_bytes
    bigger = estimate_memory(DIT_4_5B, width=1280, height=720, window=4, cache_chunks=1, attention_span=5).activation_bytes
    batched = estimate_memory(DIT_4_5B, width=1280, height=720, window=4, cache_chunks=1, attention_span=5,
                              batch=3).activation_bytes
    assert small < wider < bigger < batched
    # A forward over 5 chunks of 720p tokens holds at least fc1's output ([tokens, ffn] in bf16).
    assert bigger > 5 * 21600 * 12288 * 2


def test_text_encoder_and_vae_can_be_left_out() -> None:
    e = estimate_memory(DIT_4_5B, width=720, height=720, window=4, cache_chunks=4,
                        text_encoder_on_device=False, include_vae=False)
    assert e.text_encoder_bytes == 0 and e.vae_bytes == 0


def test_describe_is_one_line_in_gib() -> None:
    e = estimate_memory(DIT_24B, width=1280, height=720, window=4, cache_chunks=4)
    text = e.describe()
    assert "\n" not in text and "GiB" in text and "1280×720" in text
    assert f"{e.total_bytes / 2**30:.1f}" in text


def _estimate(total_gib: float) -> MemoryEstimate:
    total = int(total_gib * 2**30)
    return MemoryEstimate(total, 0, 0, 0, 0, total, width=1280, height=720)


def test_check_fits_explains_in_one_sentence() -> None:
    with pytest.raises(OutOfMemory) as info:
        check_fits(_estimate(61), "cuda", label="The 24B base model", available_bytes=24 * 2**30,
                   suggestion="Choose 4.5B-distill or a smaller resolution.")
    assert str(info.value) == ("The 24B base model at 1280×720 needs about 61 GiB; this GPU has 24 GiB free. "
                               "Choose 4.5B-distill or a smaller resolution.")
    with pytest.raises(OutOfMemory, match="this computer has 8.0 GiB of RAM free"):
        check_fits(_estimate(9), "cpu", available_bytes=8 * 2**30)


def test_check_fits_headroom_and_unknown_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_fits(_estimate(20), "cuda", available_bytes=24 * 2**30) == 24 * 2**30
    with pytest.raises(OutOfMemory):  # 23 GiB of 24 is more than the 90 % headroom allows
        check_fits(_estimate(23), "cuda", available_bytes=24 * 2**30)
    check_fits(_estimate(23), "cuda", available_bytes=24 * 2**30, headroom=1.0)
    monkeypatch.setattr(memory, "device_memory_bytes", lambda device: None)
    assert check_fits(_estimate(1000), "cuda") is None


def test_device_memory_bytes() -> None:
    cpu = device_memory_bytes("cpu")
    assert cpu is not None and cpu > 0
    if not torch.cuda.is_available():
        assert device_memory_bytes("cuda") is None
    assert device_memory_bytes("meta") is None


def test_non_multiple_resolutions_round_up() -> None:
    exact = kv_bytes_per_chunk(DIT_4_5B, width=720, height=720)
    assert kv_bytes_per_chunk(DIT_4_5B, width=721, height=720) > exact
    assert dataclasses.is_dataclass(MemoryEstimate) and MemoryEstimate.__dataclass_params__.frozen


def test_text_placement_takes_the_first_of_gpu_offload_cpu_that_fits() -> None:
    from magi_engine.loading.memory import choose_text_placement

    kwargs = dict(width=720, height=720, window=4, cache_chunks=4)
    with_text = estimate_memory(DIT_4_5B, **kwargs)
    without = estimate_memory(DIT_4_5B, text_encoder_on_device=False, **kwargs)
    cuda = torch.device("cuda")

    def chosen(free_gib: float) -> str:
        return choose_text_placement(None, device=cuda, with_text=with_text, without_text=without,
                                     free=int(free_gib * 2**30)).placement

    assert chosen(80) == "gpu"
    assert chosen(24) == "offload"  # weights + T5 fit while encoding, and the generation without T5
    assert chosen(20.8) == "cpu"  # the generation fits (18.6 GiB), weights + T5 while encoding (18.9) do not
    choice = choose_text_placement(None, device=cuda, with_text=with_text, without_text=without, free=24 * 2**30)
    assert "offloaded" in choice.reason and "24 GiB free" in choice.reason
    assert choose_text_placement("cpu", device=cuda, with_text=with_text, without_text=without,
                                 free=80 * 2**30).placement == "cpu"  # asked for: no choice made
    assert choose_text_placement(None, device=torch.device("cpu"), with_text=with_text, without_text=without,
                                 free=2**30).placement == "gpu"  # a CPU model: the encoder beside it
    assert choose_text_placement(None, device=cuda, with_text=with_text, without_text=without,
                                 free=None).placement == "gpu"


def test_offload_modes_move_the_kv_cache_or_all_but_two_layers_off_the_device() -> None:
    kwargs = dict(width=720, height=720, window=1, cache_chunks=4, fp8=True, keep_fp8=True,
                  text_encoder_on_device=False)
    resident = estimate_memory(DIT_4_5B, **kwargs)
    kv_host = estimate_memory(DIT_4_5B, offload="kv-cache", **kwargs)
    layers_host = estimate_memory(DIT_4_5B, offload="layers", **kwargs)
    per_chunk = kv_bytes_per_chunk(DIT_4_5B, width=720, height=720)
    assert resident.kv_cache_bytes == 4 * per_chunk
    # Three layers of the four cached chunks (computing, just done, being copied): the encode stage of a
    # finished chunk (its keys of every layer, one chunk's activations) is smaller at this size.
    assert kv_host.kv_cache_bytes == 3 * -(-4 * per_chunk // 34) and kv_host.weights_bytes == resident.weights_bytes
    assert kv_host.activation_bytes == resident.activation_bytes
    assert layers_host.kv_cache_bytes == resident.kv_cache_bytes
    assert layers_host.weights_bytes < resident.weights_bytes / 5  # two bf16 layers and the float32 ends
    both = estimate_memory(DIT_4_5B, offload="both", **kwargs)
    assert both.total_bytes < min(kv_host.total_bytes, layers_host.total_bytes)
    assert memory.offload_copy_bytes(DIT_4_5B, width=720, height=720, cache_chunks=4, offload="none") == 0
    assert memory.offload_copy_bytes(DIT_4_5B, width=720, height=720, cache_chunks=4,
                                     offload="kv-cache") == 4 * per_chunk
    with pytest.raises(Exception, match="offload must be one of"):
        estimate_memory(DIT_4_5B, offload="disk", **kwargs)


def test_the_offload_mode_is_the_fitting_measured_one_that_copies_least() -> None:
    kwargs = dict(width=720, height=720, window=1, cache_chunks=4, fp8=True, keep_fp8=True,
                  text_encoder_on_device=False)
    modes = ("none", "kv-cache", "layers", "both")
    estimates = {m: estimate_memory(DIT_4_5B, offload=m, **kwargs) for m in modes}
    copies = {m: memory.offload_copy_bytes(DIT_4_5B, width=720, height=720, cache_chunks=4, offload=m, fp8=True,
                                           keep_fp8=True) for m in modes}
    cuda = torch.device("cuda")

    def chosen(free_gib: float) -> memory.OffloadChoice:
        return memory.choose_dit_offload(None, device=cuda, estimates=estimates, copy_bytes=copies,
                                         free=int(free_gib * 2**30))

    assert chosen(80).mode == "none" and chosen(80).reason == ""
    # The FP8 4.5B at 720x720, window 1, on a 12 GiB card: "kv-cache" alone would fit and copy least, but its
    # memory was never measured (BENCHMARKS.md), so the automatic choice takes the measured "both".
    assert estimates["kv-cache"].total_bytes <= 0.9 * 12 * 2**30 < estimates["layers"].total_bytes
    assert copies["kv-cache"] < copies["both"]
    twelve = chosen(12)
    assert twelve.mode == "both" and not memory.offload_measured("kv-cache")
    assert set(memory.OFFLOAD_MEASUREMENTS) == {"none", "layers", "both"}
    assert "layers and the KV cache in CPU memory" in twelve.reason and "12 GiB are free" in twelve.reason
    assert twelve.estimate.total_bytes <= 0.9 * 12 * 2**30
    assert chosen(13).mode == "layers"  # measured, and it copies less than "both"
    asked = memory.choose_dit_offload("kv-cache", device=cuda, estimates=estimates, copy_bytes=copies,
                                      free=12 * 2**30)
    assert asked.mode == "kv-cache" and "never measured" in asked.reason  # as set: used, and said to be unchecked
    assert "never measured" not in memory.choose_dit_offload("layers", device=cuda, estimates=estimates,
                                                             copy_bytes=copies, free=12 * 2**30).reason
    assert chosen(7).mode == "both"
    assert "still about" in chosen(3).reason  # nothing fits: the most frugal mode, said plainly
    assert memory.choose_dit_offload("layers", device=cuda, estimates=estimates, copy_bytes=copies,
                                     free=80 * 2**30).mode == "layers"
    assert chosen(0).mode == "both"
    assert memory.choose_dit_offload(None, device=torch.device("cpu"), estimates=estimates, copy_bytes=copies,
                                     free=2**30).mode == "none"


def test_native_fp8_swiglu_holds_float32_copies_of_fc2_input() -> None:
    kwargs = dict(width=720, height=720, window=4, cache_chunks=4, fp8=True, text_encoder_on_device=False)
    dequantised = estimate_memory(DIT_24B, **kwargs)
    native = estimate_memory(DIT_24B, keep_fp8=True, **kwargs)
    tokens = 5 * DIT_24B.tokens_per_chunk(90, 90)  # window 4 and the re-encoded clean chunk
    assert native.activation_bytes - dequantised.activation_bytes == tokens * DIT_24B.ffn_hidden_size * 6
    gelu = [estimate_memory(DIT_4_5B, keep_fp8=keep, **kwargs).activation_bytes for keep in (False, True)]
    assert gelu[0] == gelu[1]  # GELU frees fc1's output before fc2's input is rounded


@pytest.mark.parametrize("dit", [DIT_4_5B, DIT_24B])
def test_quantising_on_load_costs_what_a_native_fp8_checkpoint_costs_and_loads_below_it(dit) -> None:
    kwargs = dict(width=720, height=720, window=1, cache_chunks=4, text_encoder_on_device=False)
    bf16 = estimate_memory(dit, **kwargs)
    native = estimate_memory(dit, fp8=True, keep_fp8=True, **kwargs)
    quantised = estimate_memory(dit, quantize_on_load=True, **kwargs)
    assert bf16.load_bytes == native.load_bytes == 0
    assert (quantised.weights_bytes, quantised.activation_bytes, quantised.total_bytes) == \
        (native.weights_bytes, native.activation_bytes, native.total_bytes)
    assert quantised.weights_bytes < 0.6 * bf16.weights_bytes
    # Loading holds the FP8 weights, one dense layer's FP8 set, the calibration states and one chunk's forward:
    one_layer = memory._quantised_linear_params(dit) * 2
    assert quantised.weights_bytes + one_layer < quantised.load_bytes < quantised.total_bytes
    # ... far from the bf16 model the loader never holds whole.
    assert quantised.load_bytes < bf16.weights_bytes
    layers = estimate_memory(dit, quantize_on_load=True, offload="layers", **kwargs)  # layers go to the host
    assert layers.load_bytes < quantised.load_bytes


def test_the_quantise_on_load_constants_follow_the_engine() -> None:
    from magi_engine.dit.fp8_quantize import CALIBRATION_T, CALIBRATION_TEXTS
    from magi_engine.loading.fp8 import QUANTIZE_BLOCK_ELEMENTS

    assert memory.QUANTIZE_CALIBRATION_FORWARDS == len(CALIBRATION_T) * len(CALIBRATION_TEXTS)
    assert memory.QUANTIZE_WORKING_BYTES == 3 * 4 * QUANTIZE_BLOCK_ELEMENTS


def test_the_measured_rows_match_the_estimate_as_it_is_now() -> None:
    """OFFLOAD_MEASUREMENTS keeps the estimate of each measured case; the FP8 4.5B rows are recomputed here (the
    code's estimate, T5 off the GPU), so a change to the estimate that moves them fails until the table moves."""
    kwargs = dict(width=720, height=720, window=1, cache_chunks=4, fp8=True, keep_fp8=True,
                  text_encoder_on_device=False)
    rows = {mode: next(row for row in memory.OFFLOAD_MEASUREMENTS[mode] if row[0].startswith("4.5B distill FP8"))
            for mode in ("none", "layers", "both")}
    for mode, (_case, estimate_gib, peak_gib) in rows.items():
        assert estimate_memory(DIT_4_5B, offload=mode, **kwargs).total_bytes / 2**30 == pytest.approx(estimate_gib,
                                                                                                   abs=0.01)
        assert abs(estimate_gib - peak_gib) / peak_gib < 0.10  # within the 10 %


def test_a_shorter_run_never_fills_the_window_or_the_cache() -> None:
    assert memory.fitted_window_and_cache(4, 4, None) == (4, 4)
    assert memory.fitted_window_and_cache(4, 4, 1) == (1, 0)
    assert memory.fitted_window_and_cache(1, 4, 3) == (1, 2)
    assert memory.fitted_window_and_cache(4, 4, 40) == (4, 4)
    cuda = torch.device("cuda")
    common = dict(width=720, height=720, window=1, cache_chunks=4, device=cuda, free=80 * 2**30)
    one = memory.plan_memory(DIT_4_5B, chunks=1, **common)
    many = memory.plan_memory(DIT_4_5B, chunks=None, **common)
    assert one.estimate.kv_cache_bytes == 0 < many.estimate.kv_cache_bytes


def test_memory_targets_cover_smaller_runs_of_the_same_window() -> None:
    loaded = memory.MemoryTarget(720, 720, 4, 8)
    assert loaded.covers(memory.MemoryTarget(720, 720, 4, 8))
    assert loaded.covers(memory.MemoryTarget(352, 352, 4, 3))  # a draft, a shorter storyboard
    assert not loaded.covers(memory.MemoryTarget(1280, 720, 4, 8))
    assert not loaded.covers(memory.MemoryTarget(720, 720, 1, 8))  # window 1 caches more chunks a stage
    assert not loaded.covers(memory.MemoryTarget(720, 720, 4, 9))
    assert memory.MemoryTarget(720, 720, None, None).covers(memory.MemoryTarget(720, 720, None, 40))
    assert "1280×720, window 4, 8 chunks" == memory.MemoryTarget(1280, 720, 4, 8).describe()


def test_the_plan_tiles_the_vae_decode_to_what_is_left_beside_the_dit() -> None:
    """A small DiT at 720x720: its activations are smaller than the VAE decode's own tiles need, so on a tight
    card the decode decides the fit. The plan gives it what is left beside the DiT, in smaller tiles."""
    from magi_engine.config import DiTConfig
    from magi_engine.vae.config import VAEConfig
    from magi_engine.vae.tiling import budget_tile_px

    small = DiTConfig(num_layers=4, hidden_size=512, ffn_hidden_size=1024, num_heads=4, num_kv_groups=2,
                      caption_channels=256)
    vae = VAEConfig()
    common = dict(width=720, height=720, window=1, cache_chunks=1, device=torch.device("cuda"),
                  text_encoder="cpu", tile_px_of=lambda budget: budget_tile_px(vae, 720, 720, budget))
    roomy = memory.plan_memory(small, free=80 * 2**30, **common)
    assert roomy.decode_budget is None and roomy.decode_reason == ""  # MAGI-1's own tiles, as the reference
    reference = roomy.estimate
    assert reference.decode_bytes > reference.activation_bytes  # the decode is the peak of this small model
    # A card that holds everything but the decode's 256-px tiles.
    free = int((reference.resident_bytes + reference.activation_bytes + 0.3 * (reference.decode_bytes
                                                                                 - reference.activation_bytes)) / 0.9)
    assert memory.plan_memory(small, free=free, **{**common, "tile_px_of": None}).decode_budget is not None
    tight = memory.plan_memory(small, free=free, **common)
    assert tight.decode_budget is not None and tight.dit_offload == "none"  # tiling beats streaming the layers
    tile = budget_tile_px(vae, 720, 720, tight.decode_budget)
    assert tile < vae.tile_size and vae.decode_tile_bytes(tile) <= tight.decode_budget
    assert tight.estimate.total_bytes <= 0.9 * free
    assert tight.estimate.resident_bytes + memory.decode_pixels_bytes(vae, 720, 720) + tight.decode_budget \
        <= 0.9 * free + 1
    assert f"{tile}-px tiles" in tight.describe() and "left beside the DiT" in tight.describe()
    assert memory.plan_memory(small, free=free, **{**common, "device": torch.device("cpu")}).decode_budget is None
