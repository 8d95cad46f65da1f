"""The KV cache's joined context: one layer joined at a time, equal to joining them all."""

import torch

from magi_engine.dit.kv_cache import JoinedLayers, KVCache, concat_contexts
from magi_engine.dit.model import KVContext


def layers(seed: int, count: int = 3):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(1, 4, 2, 8, generator=g), torch.randn(1, 4, 2, 8, generator=g)) for _ in range(count)]


def test_a_context_of_several_chunks_joins_each_layer_when_asked():
    cache = KVCache(4)
    parts = [layers(i) for i in range(3)]
    for i, part in enumerate(parts):
        cache.put(10 + i, part)
    context = cache.context(10, 13)
    assert isinstance(context.layers, JoinedLayers) and len(context.layers) == 3
    for layer in range(3):
        k, v = context.layers[layer]
        assert torch.equal(k, torch.cat([p[layer][0] for p in parts], 1))
        assert torch.equal(v, torch.cat([p[layer][1] for p in parts], 1))
    single = cache.context(11, 12)
    assert single.layers[2][0] is parts[1][2][0]  # one chunk: its own tensors, no copy


def test_joining_a_context_with_a_fresh_chunk_appends_its_tokens():
    older, fresh = KVContext(3, 1, layers(1)), KVContext(4, 1, layers(2))
    joined = concat_contexts(older, fresh)
    assert (joined.first_chunk, joined.num_chunks) == (3, 2)
    assert torch.equal(joined.layers[1][0], torch.cat([older.layers[1][0], fresh.layers[1][0]], 1))
