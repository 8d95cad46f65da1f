"""How a world of ranks is split between guidance passes and sequence shards (no torch here).

Ranks are numbered guidance-group-major: rank = group * sequence + position, so the ranks of one
sequence group are neighbours (on one host they are also the GPUs most likely to share NVLink).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from magi_engine.config import DiTConfig
from magi_engine.errors import ConfigError

ParallelMode = Literal["auto", "guidance", "sequence"]
PARALLEL_MODES = ("auto", "guidance", "sequence")
BACKENDS = ("nccl", "gloo")

#: Passes a step can run at once: base models three (text, history, unconditional); distilled two
#: (the window and the near-clean copy, the latter only in the oldest chunk's last quarter).
MAX_GUIDANCE_GROUPS = {False: 3, True: 2}


@dataclass(frozen=True)
class ParallelPlan:
    guidance: int = 1
    sequence: int = 1

    def __post_init__(self) -> None:
        if self.guidance < 1 or self.sequence < 1:
            raise ConfigError(f"A parallel plan needs at least one rank per way, got {self.guidance}x{self.sequence}.")

    @property
    def world(self) -> int:
        return self.guidance * self.sequence

    def group_of(self, rank: int) -> int:
        return rank // self.sequence

    def position_of(self, rank: int) -> int:
        return rank % self.sequence

    def leader_of(self, group: int) -> int:
        return group * self.sequence

    def describe(self) -> str:
        parts = []
        if self.guidance > 1:
            parts.append(f"{self.guidance} guidance groups")
        if self.sequence > 1:
            parts.append(f"{self.sequence}-way sequence split")
        return " x ".join(parts) or "one rank"

    def check(self, config: DiTConfig) -> None:
        """ConfigError unless `config` can run split this way."""
        limit = MAX_GUIDANCE_GROUPS[bool(config.distilled)]
        if self.guidance > limit:
            kind = "A distilled model" if config.distilled else "A base model"
            raise ConfigError(f"{kind} runs at most {limit} guidance passes at once; {self.guidance} guidance groups "
                              "would leave ranks idle. Use sequence-parallel for the others.")
        if config.num_heads % self.sequence:
            raise ConfigError(f"A {self.sequence}-way sequence split needs the model's {config.num_heads} attention "
                              f"heads to divide evenly; choose {', '.join(map(str, divisors(config.num_heads)))} ranks.")


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def kv_head_repeats(num_heads: int, kv_heads: int, ranks: int) -> int:
    """How many times each key/value head is repeated so the heads split evenly over `ranks` and
    every rank's query heads find their own key/value heads (GQA) — 1 when kv_heads divides already."""
    group = num_heads // kv_heads
    for repeats in divisors(group):
        if (kv_heads * repeats) % ranks == 0:
            return repeats
    raise ConfigError(f"{num_heads} query heads with {kv_heads} key/value heads cannot be split over {ranks} ranks.")


def choose_plan(ranks: int, mode: ParallelMode, config: DiTConfig) -> ParallelPlan:
    """The split of `ranks` for a model: guidance groups first (no all-to-all, one broadcast a pass),
    the rest as sequence shards of each group; 'sequence' or 'guidance' forces one way."""
    if ranks < 1:
        raise ConfigError(f"--gpus must be at least 1, got {ranks}.")
    if mode not in PARALLEL_MODES:
        raise ConfigError(f"The parallel mode must be one of {', '.join(PARALLEL_MODES)}, got {mode!r}.")
    limit = MAX_GUIDANCE_GROUPS[bool(config.distilled)]
    if mode == "sequence":
        plan = ParallelPlan(1, ranks)
    elif mode == "guidance":
        plan = ParallelPlan(ranks, 1)
    else:
        # Distilled models gain little from a second group (the copy is one chunk, a quarter of the steps).
        guidance = 1 if config.distilled else max(g for g in range(1, limit + 1) if ranks % g == 0)
        plan = ParallelPlan(guidance, ranks // guidance)
    plan.check(config)
    return plan
