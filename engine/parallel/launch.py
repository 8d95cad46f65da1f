"""Starting the ranks of a several-device run, and stopping all of them when one fails.

Rank 0 is the calling process (the command line, the server, a benchmark): it owns the model's text
encoder and VAE, all I/O and the event stream. It starts ranks 1..N-1 with multiprocessing's forkserver:
the server, itself a fresh interpreter, imports torch and this module once, and every rank of every
launch is forked from it (no CUDA state is ever forked; a rank starts in milliseconds instead of the
seconds of torch's import, which also makes a restart after a failure quick). They rendezvous
through a TCPStore rank 0 hosts on 127.0.0.1,
and then drives them step by step: a generation job, then one STEP command per advance of the
sampler, STOP when the run is cancelled, QUIT at the end; VAE when rank 0 encodes or decodes, whose
tiles every rank then shares (vae_tiles.py). The other ranks load only the DiT, and the VAE when they
are given one to load.

Failure handling, so that no rank is left waiting and no process is left behind:
* a follower that raises reports (rank, error class, message) on a pipe and exits; its sockets close,
  so rank 0's next collective fails (gloo at once; for NCCL a watcher thread aborts the process group
  when a follower's process ends) and rank 0 raises one typed error naming the rank and its message;
* rank 0 failing (or cancelling through an exception) terminates the followers;
* followers watch their parent and exit if it disappears;
* after any failure the ranks are stopped and restarted by the next run.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import torch
import torch.distributed as dist

from magi_engine import errors
from magi_engine.dit.model import MagiDiT
from magi_engine.errors import EngineError, RankFailed
from magi_engine.parallel.guidance import GuidanceParallelPasses
from magi_engine.parallel.jobs import (
    JOB,
    QUIT,
    STEP,
    STOP,
    VAE,
    Job,
    receive_command,
    receive_job,
    send_command,
    send_job,
)
from magi_engine.parallel.plan import LaunchSpec, ParallelPlan, choose_plan
from magi_engine.parallel.runtime import ParallelRuntime
from magi_engine.parallel.sequence import SequenceParallelDiT
from magi_engine.parallel.vae_tiles import SpreadTiles, follow_tiles
from magi_engine.sampler.loop import sample_chunks

log = logging.getLogger(__name__)

#: How long a rank waits in one collective before giving up (loading a 24B DiT fits in it).
COLLECTIVE_TIMEOUT = timedelta(minutes=15)
#: How long rank 0 waits for a failed follower's report once its collective broke.
REPORT_WAIT_S = 5.0
#: Errors a follower raises when another rank's failure broke a collective (not the cause).
COMMUNICATION_ERRORS = ("RuntimeError", "DistError", "DistBackendError", "DistNetworkError", "DistStoreError")

DiTFactory = Callable[[torch.device], MagiDiT]
#: Builds a follower's VAE (magi_engine.vae.VideoVAE) on its device, for its share of the tiles.
VAEFactory = Callable[[torch.device], object]


class ParallelModel:
    """This rank's share of the work: the model the sampler calls and the runner of its guidance passes."""

    def __init__(self, dit: MagiDiT, runtime: ParallelRuntime) -> None:
        self.runtime = runtime
        self.dit = SequenceParallelDiT(dit, runtime) if runtime.plan.sequence > 1 else dit
        self.passes = GuidanceParallelPasses(runtime)

    def sample(self, job: Job) -> Iterator:
        return sample_chunks(self.dit, job.sampling, job.plans, self.dit.null_text(), context=job.context,
                             first_frames=job.first_frames, passes=self.passes)


def _init_group(spec: LaunchSpec, rank: int, port: int, device: torch.device) -> None:
    store = dist.TCPStore("127.0.0.1", port, spec.ranks, is_master=False, timeout=COLLECTIVE_TIMEOUT)
    kwargs = {"device_id": device} if spec.backend == "nccl" else {}
    dist.init_process_group(spec.backend, store=store, rank=rank, world_size=spec.ranks, timeout=COLLECTIVE_TIMEOUT,
                            **kwargs)


def _agree(device: torch.device, failed: bool) -> bool:
    """Every rank says whether it is ready; True when all are (a collective: nobody waits on a dead rank)."""
    flag = torch.tensor([1 if failed else 0], dtype=torch.int64, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag[0]) == 0


def _report(reports, rank: int, exc: BaseException) -> None:
    try:
        reports.put(f"{rank}|{type(exc).__name__}|{exc}")
    except Exception:  # the pipe is gone: rank 0 has already stopped
        pass


def _watch_parent(parent: int) -> None:
    """End this rank when rank 0's process ends (its pipe closes: multiprocessing's parent sentinel, which a
    forkserver's child has too; its OS parent is the server)."""
    process = multiprocessing.parent_process()
    if process is not None:
        multiprocessing.connection.wait([process.sentinel])
        os._exit(3)
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(3)


def rank_context():
    """The multiprocessing context ranks start in: a forkserver that has imported torch and this module."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def follower_main(rank: int, spec: LaunchSpec, port: int, make_dit: DiTFactory, plan: ParallelPlan, reports,
                  parent: int, make_vae: VAEFactory | None = None) -> None:
    """Entry point of ranks 1..N-1: load the DiT (and the VAE), then run rank 0's jobs until QUIT."""
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    try:
        device = spec.device_of(rank)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        else:  # CPU ranks share the cores instead of each spinning on all of them
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // spec.ranks))
        _init_group(spec, rank, port, device)
        dit, vae, failed = None, None, False
        try:
            dit = make_dit(device)
            vae = make_vae(device) if make_vae is not None else None
        except Exception as exc:
            _report(reports, rank, exc)
            failed = True
        if not _agree(device, failed) or failed:
            os._exit(1)
        model = ParallelModel(dit, ParallelRuntime(plan, rank, device, timed=spec.timed))
        loop = None
        with torch.inference_mode():
            while True:
                command, payload = receive_command(model.runtime)
                if command == JOB:
                    loop = model.sample(receive_job(model.runtime, payload))
                elif command == STEP:
                    next(loop, None)
                elif command == STOP:
                    loop.close()
                    loop = None
                elif command == VAE:
                    follow_tiles(model.runtime, vae, payload)
                elif command == QUIT:
                    break
    except BaseException as exc:  # noqa: BLE001 - every failure must reach rank 0 and end this process
        _report(reports, rank, exc)
        os._exit(1)
    # Leaving the process group would wait on the other ranks leaving theirs; rank 0 does that once we
    # are gone, and ending the process closes this rank's connections.
    os._exit(0)


def _typed_error(report: str) -> EngineError:
    rank, name, message = report.split("|", 2)
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, EngineError):
        return cls(f"Rank {rank} of the parallel run stopped: {message}")
    return RankFailed(f"Rank {rank} of the parallel run stopped ({name}: {message}); all ranks were stopped.")


class ParallelWorkers:
    """Rank 0's handle on ranks 1..N-1 of one process group."""

    def __init__(self, spec: LaunchSpec, make_dit: DiTFactory, plan: ParallelPlan,
                 make_vae: VAEFactory | None = None) -> None:
        self.spec = spec
        self.plan = plan
        #: Whether the other ranks hold a VAE and take their share of its tiles.
        self.spreads_vae = make_vae is not None and spec.ranks > 1
        self.device = spec.device_of(0)
        self.healthy = False
        context = rank_context()
        self._reports = context.SimpleQueue()
        self._store = dist.TCPStore("127.0.0.1", 0, spec.ranks, is_master=True, timeout=COLLECTIVE_TIMEOUT,
                                    wait_for_workers=False)
        self.processes = [
            context.Process(target=follower_main, daemon=True, name=f"magi-rank-{rank}",
                            args=(rank, spec, self._store.port, make_dit, plan, self._reports, os.getpid(), make_vae))
            for rank in range(1, spec.ranks)]
        for process in self.processes:
            process.start()
        self._closing = False
        threading.Thread(target=self._watch_followers, daemon=True).start()
        try:
            kwargs = {"device_id": self.device} if spec.backend == "nccl" else {}
            dist.init_process_group(spec.backend, store=self._store, rank=0, world_size=spec.ranks,
                                    timeout=COLLECTIVE_TIMEOUT, **kwargs)
        except Exception as exc:
            failure = self._failure(exc)
            self.stop()
            raise failure from None

    def join(self, dit: MagiDiT | None) -> ParallelModel:
        """Wait until every rank has its DiT (rank 0 passes None when its own load failed)."""
        try:
            ready = _agree(self.device, dit is None)
        except Exception as exc:
            failure = self._failure(exc)
            self.stop()
            raise failure from None
        if not ready:
            failure = self._failure(None)
            self.stop()
            raise failure
        self.healthy = True
        return ParallelModel(dit, ParallelRuntime(self.plan, 0, self.device, timed=self.spec.timed))

    # Driving a run ------------------------------------------------------------------------------
    def lockstep(self, model: ParallelModel, job: Job) -> Iterator:
        """Rank 0's sampler events; each advance is mirrored on every rank."""
        send_job(model.runtime, job)
        loop = model.sample(job)
        ended = False
        try:
            while True:
                send_command(model.runtime, STEP)
                try:
                    event = next(loop)
                except StopIteration:
                    ended = True
                    return
                yield event
        except GeneratorExit:
            raise
        except Exception as exc:
            self.healthy = False
            failure = self._failure(exc)
            self.stop()
            raise failure from None
        finally:
            loop.close()
            if not ended and self.healthy:
                try:
                    send_command(model.runtime, STOP)
                except Exception:
                    self.healthy = False
                    self.stop()

    def tile_runner(self, model: ParallelModel):
        """The VAE's TileRunner for rank 0 (None when the others hold no VAE): every rank computes a share;
        a failure on any rank stops them all and raises the one typed error."""
        if not self.spreads_vae:
            return None
        spread = SpreadTiles(model.runtime)

        def run(direction, x, fn, inputs):
            try:
                return spread(direction, x, fn, inputs)
            except Exception as exc:
                self.healthy = False
                failure = self._failure(exc)
                self.stop()
                raise failure from None

        return run

    # Stopping -----------------------------------------------------------------------------------
    def _watch_followers(self) -> None:
        sentinels = [p.sentinel for p in self.processes]
        if not sentinels:
            return
        multiprocessing.connection.wait(sentinels)
        if self._closing or self.spec.backend != "nccl":
            return  # gloo's sockets close with the process: the waiting collective fails by itself
        log.error("a rank of the parallel run ended; aborting the NCCL process group")
        try:
            dist.distributed_c10d._abort_process_group()
        except Exception:
            log.exception("aborting the process group failed")

    def _failure(self, exc: BaseException | None) -> EngineError:
        """One typed error: a follower's report if one came (it is the cause), else rank 0's own error.
        A follower whose collective broke because another rank died reports that too; the first report
        that is not such a communication error is the cause."""
        wait = 0.5 if isinstance(exc, EngineError) else REPORT_WAIT_S
        deadline = time.monotonic() + wait
        reports = []
        while time.monotonic() < deadline:
            while not self._reports.empty():
                reports.append(self._reports.get())
            if all(not p.is_alive() for p in self.processes) and self._reports.empty():
                break
            time.sleep(0.05)
        while not self._reports.empty():
            reports.append(self._reports.get())
        causes = [r for r in reports if r.split("|", 2)[1] not in COMMUNICATION_ERRORS]
        if causes or reports:
            return _typed_error((causes or reports)[0])
        if isinstance(exc, EngineError):
            return exc
        if exc is None:
            return RankFailed("A rank of the parallel run could not start; all ranks were stopped.")
        return RankFailed(f"The parallel run broke on rank 0 ({type(exc).__name__}: {exc}); all ranks were stopped.")

    def stop(self) -> None:
        """Ask the followers to quit while they can hear it (healthy and idle), else end them at once;
        then leave the process group."""
        self._closing = True
        if self.healthy:
            self.healthy = False
            try:
                send_command_world(self.device, QUIT)
                for process in self.processes:
                    process.join(timeout=10.0)
            except Exception:
                pass
        for process in self.processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=5.0)
            if process.is_alive():
                process.kill()
                process.join()
        if dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:
                log.exception("leaving the process group failed")

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]


def send_command_world(device: torch.device, command: int) -> None:
    dist.broadcast(torch.tensor([command, 0], dtype=torch.int64, device=device), 0)


def launch(spec: LaunchSpec, config, load_rank0: Callable[[torch.device], MagiDiT], make_dit: DiTFactory,
           make_vae: VAEFactory | None = None) -> tuple[ParallelWorkers, ParallelModel]:
    """Start ranks 1..N-1 (each builds its DiT with `make_dit`, and its VAE with `make_vae` when given), load
    rank 0's with `load_rank0`, and return when every rank is ready. `config` is the DiT's config, for
    choosing the plan before loading."""
    plan = choose_plan(spec.ranks, spec.mode, config)
    workers = ParallelWorkers(spec, make_dit, plan, make_vae)
    try:
        dit = load_rank0(workers.device)
    except BaseException:
        try:
            workers.join(None)  # tells the others to give up, then stops them
        except EngineError:
            pass
        raise
    return workers, workers.join(dit)
