"""Guidance-parallel steps: the passes of one step run on different guidance groups at once.

Every rank knows every step's passes (the sampler is deterministic and runs on all ranks), so the
owner of each pass is decided without a message: the passes, heaviest first, each go to the group
with the least work so far this step (ties to the lower group). The owner computes it; then each
pass's velocity is broadcast from its owner's leader to every rank, in the order the passes were
declared, and every rank combines them with the single-device code. The KV cache is kept by every
rank (any group may own a history pass next step); its two clean encodes per finished chunk cost
one chunk's forward each per stage.
"""

from __future__ import annotations

import math

import torch

from magi_engine.parallel.runtime import ParallelRuntime
from magi_engine.sampler.denoiser import GuidancePass


def assign_passes(passes: dict[str, GuidancePass], groups: int) -> dict[str, int]:
    """Owner group of each pass: largest first to the least loaded group (deterministic)."""
    load = [0] * groups
    owners = {}
    for name in sorted(passes, key=lambda n: (-math.prod(passes[n].shape), list(passes).index(n))):
        group = min(range(groups), key=lambda g: (load[g], g))
        owners[name] = group
        load[group] += math.prod(passes[name].shape)
    return owners


class GuidanceParallelPasses:
    """The denoiser's PassRunner across guidance groups."""

    def __init__(self, runtime: ParallelRuntime) -> None:
        self.runtime = runtime
        self.separate = runtime.plan.guidance > 1

    def run(self, passes: dict[str, GuidancePass]) -> dict[str, torch.Tensor]:
        plan = self.runtime.plan
        if plan.guidance == 1:
            return {name: p.compute() for name, p in passes.items()}
        owners = assign_passes(passes, plan.guidance)
        results = {name: p.compute().float().contiguous() for name, p in passes.items()
                   if owners[name] == self.runtime.group}
        for name, p in passes.items():
            if name not in results:
                results[name] = torch.empty(p.shape, dtype=torch.float32, device=self.runtime.device)
            self.runtime.broadcast(results[name], plan.leader_of(owners[name]), kind="guidance_broadcast")
        return results
