"""A GenerationSession whose DiT runs on several ranks: rank 0 (this process) keeps its API and events.

    session = ParallelSession.load("4.5B_distill", LaunchSpec(ranks=4))
    for event in session.generate(request): ...
    session.close()

Rank 0 encodes the prompts, sends each run's noise, text and context to the other ranks, and owns
every encoded image and decoded chunk; the VAE's tiles are shared by all ranks when they were given
a VAE (`load` gives them one), else rank 0 computes them alone. A run that fails on any rank ends
with one Failed event carrying the typed error; the ranks are started again for the next run.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from magi_engine.bundle import ModelBundle
from magi_engine.config import RuntimeConfig
from magi_engine.parallel.jobs import Job
from magi_engine.parallel.launch import (
    DiTFactory,
    LaunchSpec,
    ParallelModel,
    ParallelWorkers,
    VAEFactory,
    launch,
)
from magi_engine.session import GenerationSession


class ParallelSession(GenerationSession):
    def __init__(self, bundle: ModelBundle, spec: LaunchSpec, make_dit: DiTFactory,
                 make_vae: VAEFactory | None = None) -> None:
        super().__init__(bundle)
        self.spec = spec
        self._make_dit = make_dit
        self._make_vae = make_vae
        self.workers: ParallelWorkers | None = None
        self.model: ParallelModel | None = None

    @classmethod
    def load(cls, model: str, spec: LaunchSpec, *, dtype: str | None = None, text_on_cpu: bool = False,
             progress=None, cancel=None, runtime: RuntimeConfig | None = None, **_ignored) -> ParallelSession:
        """Load `model` on rank 0 (whole bundle) while ranks 1..N-1 load its DiT."""
        from magi_engine.models import load_model
        from magi_engine.parallel.weights import DiTSource, VAESource, dit_config_of

        loaded: dict[str, ModelBundle] = {}

        def load_rank0(device: torch.device):
            loaded["bundle"] = load_model(model, device=str(device), dtype=dtype, text_on_cpu=text_on_cpu,
                                          progress=progress, cancel=cancel, runtime=runtime)
            return loaded["bundle"].dit

        make_dit, make_vae = DiTSource(model, dtype, runtime), VAESource(model, dtype)
        workers, parallel = launch(spec, dit_config_of(model), load_rank0, make_dit, make_vae)
        session = cls(loaded["bundle"], spec, make_dit, make_vae)
        session.workers, session.model = workers, parallel
        return session

    @classmethod
    def from_bundle(cls, bundle: ModelBundle, spec: LaunchSpec, make_dit: DiTFactory,
                    make_vae: VAEFactory | None = None) -> ParallelSession:
        """Rank 0 uses `bundle` as loaded; the others build their DiT with `make_dit` and their VAE with
        `make_vae` (None: rank 0 decodes alone) (tests, benchmarks)."""
        session = cls(bundle, spec, make_dit, make_vae)
        session._start()
        return session

    @property
    def plan(self):
        return self.model.runtime.plan

    @property
    def description(self) -> str:
        """What the user reads of the split, e.g. "2 GPUs (sequence-parallel)"."""
        return self.spec.describe(self.plan)

    def _start(self) -> None:
        self.workers, self.model = launch(self.spec, self.bundle.dit.config, lambda device: self.bundle.dit,
                                          self._make_dit, self._make_vae)

    def _ready_workers(self) -> ParallelWorkers:
        """The ranks, started again when a failure (or close) stopped them."""
        if self.workers is None or not self.workers.healthy:
            if self.workers is not None:
                self.workers.stop()
            self._start()
        return self.workers

    def _tile_runner(self):
        if self._make_vae is None or self.spec.ranks == 1:
            return None
        return self._ready_workers().tile_runner(self.model)

    def _sample(self, sampling, plans, null_text, context, first_frames) -> Iterator:
        return self._ready_workers().lockstep(self.model, Job(sampling, list(plans), list(context), first_frames))

    def close(self) -> None:
        """Stop the other ranks and leave the process group (also safe after a failure)."""
        if self.workers is not None:
            self.workers.stop()
            self.workers = None
