"""Streaming the DiT's layers and its KV cache from CPU memory: the schedule, equal outputs, FP8 layers."""

from __future__ import annotations

import pytest
import torch

from magi_engine.dit.fp8_linear import Fp8Linear
from magi_engine.dit.kv_cache import HostKVCache, KVCache, kv_cache_for
from magi_engine.dit.model import MagiDiT
from magi_engine.dit.offload import Prefetcher, stream_layers
from magi_engine.dit.official_keys import to_official_state_dict
from magi_engine.loading import save_sharded
from magi_engine.magi_checkpoint import load_magi_dit
from magi_engine.sampler.loop import ChunkDone, sample_chunks
from tests.engine.factories import plans, randomize_, tiny_dit, tiny_sampling
from tests.engine.test_magi_checkpoint import TINY, quantise_layers, tiny_variant, velocity

CPU = torch.device("cpu")


def test_prefetcher_copies_one_ahead_and_wraps_when_cyclic() -> None:
    trace: list = []
    fetched = Prefetcher(3, lambda i: f"item {i}", CPU, cyclic=True, trace=trace)
    assert [fetched.take(i) for i in (0, 1, 2)] == ["item 0", "item 1", "item 2"]
    assert trace == [("fetch", 0), ("take", 0), ("fetch", 1), ("take", 1), ("fetch", 2), ("take", 2), ("fetch", 0)]
    assert fetched.pending == [0]  # the next forward's first layer is already on its way
    once = Prefetcher(2, lambda i: i, CPU, trace=(straight := []))
    once.take(0), once.take(1)
    assert straight[-1] == ("take", 1) and once.pending == []  # no wrap: nothing left in flight


def test_streamed_layers_are_resident_one_at_a_time_with_the_next_one_in_flight() -> None:
    dit = tiny_dit(distilled=True, seed=3)
    expected = velocity_of(dit)
    trace: list = []
    streamer = stream_layers(dit, CPU, trace=trace)
    seen = []
    for index, layer in enumerate(dit.layers):  # registered after the streamer's hook: runs after it
        layer.register_forward_pre_hook(lambda m, a, i=index: seen.append(
            (i, streamer.resident_layers(), streamer.fetching_layers())))
    assert streamer.resident_layers() == []
    got = velocity_of(dit)
    n = len(dit.layers)
    assert seen == [(i, [i], [(i + 1) % n]) for i in range(n)]
    assert trace[:5] == [("fetch", 0), ("take", 0), ("fetch", 1), ("release", 0), ("take", 1)]
    assert trace[-2:] == [("fetch", 0), ("release", n - 1)]
    assert streamer.resident_layers() == []  # every device copy dropped after the forward
    assert torch.equal(got, expected)
    # A second forward starts from the layer 0 fetched at the end of the first.
    trace.clear()
    assert torch.equal(velocity_of(dit), expected)
    assert trace[0] == ("take", 0)


def test_the_model_reports_its_compute_device_while_layers_sit_on_the_host() -> None:
    dit = tiny_dit(distilled=True)
    stream_layers(dit, CPU)
    assert dit.device == CPU and dit.dtype == torch.float32 and dit.layer_streamer is not None


@pytest.fixture
def fp8_weights(tmp_path):
    model = randomize_(MagiDiT(TINY), seed=4).eval()
    official = quantise_layers(to_official_state_dict(model.state_dict(), TINY), range(1, TINY.num_layers - 1))
    weights = tmp_path / "4.5B_distill_quant" / "inference_weight.fp8.distill"
    save_sharded(official, weights, max_shard_bytes=10**9)
    return weights


@pytest.mark.parametrize("native", [True, False], ids=["native-fp8", "dequantised"])
def test_fp8_layers_stream_with_their_scales(fp8_weights, native: bool) -> None:
    load = lambda: load_magi_dit(fp8_weights, tiny_variant(fp8=True), CPU, torch.float32,  # noqa: E731
                                 native_fp8=native)
    resident, streamed = load(), load()
    linears = {name: (m.weight.dtype, m.weight_scale.item(), m.input_divisor.clone())
               for name, m in streamed.named_modules() if isinstance(m, Fp8Linear)}
    assert bool(linears) == native  # the fallback has dense linears only
    stream_layers(streamed, CPU)
    assert torch.equal(velocity(streamed), velocity(resident))
    for name, (dtype, scale, divisor) in linears.items():  # back on the host, bookkeeping intact
        module = streamed.get_submodule(name)
        assert module.weight.dtype == dtype == torch.float8_e4m3fn
        assert module.weight_scale.item() == scale and torch.equal(module.input_divisor, divisor)
    layer_bytes = streamed.layer_streamer.layer_bytes
    if native:  # the FP8 layers (1, 2) move about a quarter of the float32 bytes of the first and last
        assert layer_bytes[1] < layer_bytes[0] / 2 and layer_bytes[2] < layer_bytes[3] / 2


def test_host_kv_cache_streams_each_layer_of_the_joined_context_in_order() -> None:
    trace: list = []
    cache = HostKVCache(3, CPU, trace=trace)
    kv = {c: [(torch.randn(1, 4, 2, 8), torch.randn(1, 4, 2, 8)) for _ in range(3)] for c in range(3)}
    for c in range(3):
        cache.put(c, kv[c])
    assert cache.chunk_indices == range(0, 3)
    assert cache.nbytes == 3 * 3 * 2 * 4 * 2 * 8 * 4
    context = cache.context(0, 3)
    assert trace == [("fetch", 0)]  # layer 0 starts copying as soon as the context exists
    for layer in range(3):
        k, v = context.layers[layer]
        assert torch.equal(k, torch.cat([kv[c][layer][0] for c in range(3)], 1))
        assert torch.equal(v, torch.cat([kv[c][layer][1] for c in range(3)], 1))
    assert trace == [("fetch", 0), ("take", 0), ("fetch", 1), ("take", 1), ("fetch", 2), ("take", 2)]
    kv[0][0][0].zero_()  # the cache holds its own copies
    assert not torch.equal(cache.context(0, 1).layers[0][0], kv[0][0][0])


def test_the_sampler_takes_a_host_cache_when_the_model_asks() -> None:
    dit = tiny_dit(distilled=True)
    assert type(kv_cache_for(dit, 4)) is KVCache
    dit.kv_cache_on_host = True
    assert isinstance(kv_cache_for(dit, 4), HostKVCache)


@pytest.mark.parametrize("distilled", [True, False], ids=["distilled", "cfg3"])
@pytest.mark.parametrize("window", [1, 4])
def test_offloaded_sampling_equals_the_resident_model(distilled: bool, window: int) -> None:
    sampling = tiny_sampling(window=window, steps=4, distilled=distilled)

    def chunks(dit):
        null = dit.null_text()
        with torch.no_grad():
            return [e.latent for e in sample_chunks(dit, sampling, plans(range(4)), null) if isinstance(e, ChunkDone)]

    expected = chunks(tiny_dit(distilled=distilled, seed=5))
    kv_host = tiny_dit(distilled=distilled, seed=5)
    kv_host.kv_cache_on_host = True
    both = tiny_dit(distilled=distilled, seed=5)
    both.kv_cache_on_host = True
    stream_layers(both, CPU)
    for dit in (kv_host, both):
        got = chunks(dit)
        assert len(got) == 4 and all(torch.equal(a, b) for a, b in zip(got, expected))


def velocity_of(dit: MagiDiT) -> torch.Tensor:
    from magi_engine.dit.attention import ChunkLayout
    from magi_engine.dit.model import ChunkText

    g = torch.Generator().manual_seed(0)
    cfg = dit.config
    x = torch.randn(1, cfg.latent_channels, 12, 4, 6, generator=g)
    text = ChunkText.from_sequences([torch.randn(5, cfg.caption_channels, generator=g)] * 2)
    with torch.no_grad():
        return dit(x, torch.tensor([[0.4, 0.1]]), text, True, ChunkLayout.causal(0, 2, cfg.tokens_per_chunk(4, 6)),
                   step_size=torch.tensor([[8.0, 8.0]]) if cfg.distilled else None).velocity
