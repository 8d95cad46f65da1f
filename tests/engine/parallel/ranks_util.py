"""Run a function on several gloo ranks (processes of the launcher's forkserver) and collect what each returns (JSON)."""

from __future__ import annotations

import dataclasses
import json
import os

import torch

from magi_engine.config import GuidanceConfig, SamplingConfig
from magi_engine.dit.model import MagiDiT
from magi_engine.parallel.launch import rank_context
from magi_engine.variants import tiny_dit_config
from tests.engine.factories import randomize_

#: Tiny members of the two families with MAGI-1's head ratios: 4.5B has 3 query heads per kv head
#: (24:8), 24B 6 (48:8, and SwiGLU, 32 input channels, x0.1 input scale).
FAMILIES = {"4.5B": {"gated": False, "num_heads": 6, "num_kv_groups": 2},
            "24B": {"gated": True, "num_heads": 6, "num_kv_groups": 1}}


def family_dit(family: str, *, distilled: bool, seed: int = 0, device=None) -> MagiDiT:
    spec = dict(FAMILIES[family])
    gated = spec.pop("gated")
    config = dataclasses.replace(tiny_dit_config(distilled=distilled, gated=gated), **spec)
    return randomize_(MagiDiT(config), seed).eval()


def family_sampling(distilled: bool) -> SamplingConfig:
    return SamplingConfig(num_steps=8, window=4, guidance=GuidanceConfig(mode="distilled" if distilled else "cfg3"))


def _rank_main(rank: int, world: int, store_path: str, target, args, results) -> None:
    try:
        torch.set_num_threads(1)
        store = torch.distributed.FileStore(store_path, world)
        torch.distributed.init_process_group("gloo", store=store, rank=rank, world_size=world)
        out = target(rank, world, *args)
        torch.distributed.destroy_process_group()
        results.put(json.dumps({"rank": rank, "result": out}))
    except BaseException as exc:  # noqa: BLE001 - the test reports it
        results.put(json.dumps({"rank": rank, "error": f"{type(exc).__name__}: {exc}"}))
        os._exit(1)


def run_on_ranks(target, world: int, tmp_path, *args, timeout: float = 240.0) -> list:
    """target(rank, world, *args) on `world` spawned gloo ranks; the per-rank results, rank order."""
    context = rank_context()  # the launcher's forkserver: torch is imported once for every test's ranks
    results = context.SimpleQueue()
    processes = [context.Process(target=_rank_main, args=(r, world, str(tmp_path / "store"), target, args, results))
                 for r in range(world)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout)
    for p in processes:
        if p.is_alive():
            p.kill()
            p.join()
    got = []
    while not results.empty():
        got.append(json.loads(results.get()))
    errors = [g["error"] for g in got if "error" in g]
    assert not errors, errors
    assert len(got) == world, f"{len(got)} of {world} ranks answered"
    return [g["result"] for g in sorted(got, key=lambda g: g["rank"])]


def tiny_bundle_dit(device, distilled: bool):
    """The DiT of factories.tiny_bundle(distilled=...), for the other ranks of a parallel session."""
    from tests.engine.factories import tiny_dit

    return tiny_dit(distilled=distilled).to(device)


def tiny_bundle_vae(device, distilled: bool):
    """The VAE of factories.tiny_bundle(distilled=...), for the other ranks' share of its tiles."""
    from tests.engine.factories import tiny_bundle

    return tiny_bundle(distilled=distilled).vae.to(device)


def failing_tiny_bundle_vae(device, distilled: bool):
    """As tiny_bundle_vae, but decoding a tile raises OutOfMemory (a rank that fails in its share of the tiles)."""
    from magi_engine.errors import OutOfMemory

    vae = tiny_bundle_vae(device, distilled)

    def failing(*args, **kwargs):
        raise OutOfMemory("the test's rank ran out of memory decoding a tile")

    vae.decoder.forward = failing
    return vae


def failing_tiny_bundle_dit(device, distilled: bool, fail_at_call: int, once_marker: str | None = None):
    """As tiny_bundle_dit, but its forward raises OutOfMemory at call `fail_at_call` (a rank that fails mid-run);
    with `once_marker`, only the first process to fail does (it leaves that file), so restarted ranks work."""
    from pathlib import Path

    from magi_engine.errors import OutOfMemory

    dit = tiny_bundle_dit(device, distilled)
    if once_marker is not None and Path(once_marker).exists():
        return dit
    calls = {"n": 0}
    forward = dit.forward

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= fail_at_call:
            if once_marker is not None:
                Path(once_marker).touch()
            raise OutOfMemory("the test's rank ran out of memory")
        return forward(*args, **kwargs)

    dit.forward = failing
    return dit
