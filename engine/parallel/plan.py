"""How a world of ranks is split between guidance passes and sequence shards, and what a launch asks
for (no torch here: the studio's settings and the command line build a LaunchSpec before any model).

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
class LaunchSpec:
    ranks: int
    backend: str = "nccl"
    mode: ParallelMode = "auto"
    #: Time every collective (synchronises CUDA around it): for measuring only.
    timed: bool = False

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"The distributed backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}.")
        if self.ranks < 1:
            raise ConfigError(f"A parallel run needs at least one rank, got {self.ranks}.")

    def device_of(self, rank: int):
        """The torch.device of `rank` (imports torch); DeviceError when this computer lacks the GPUs."""
        import torch

        from magi_engine import errors

        if self.backend == "gloo":
            return torch.device("cpu")
        if not torch.cuda.is_available() or torch.cuda.device_count() < self.ranks:
            found = torch.cuda.device_count() if torch.cuda.is_available() else 0
            raise errors.DeviceError(f"--gpus {self.ranks} needs {self.ranks} CUDA GPUs; this computer shows {found}.")
        return torch.device("cuda", rank)

    def describe(self, plan: "ParallelPlan") -> str:
        """What the user reads: "2 GPUs (sequence-parallel)", "4 GPUs (guidance x sequence-parallel)",
        "2 CPU ranks (guidance-parallel)"."""
        ways = [way for way, n in (("guidance", plan.guidance), ("sequence", plan.sequence)) if n > 1]
        units = "GPUs" if self.backend == "nccl" else "CPU ranks"
        return f"{self.ranks} {units} ({' x '.join(ways)}-parallel)" if ways else f"{self.ranks} {units}"


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
