"""``--executor ray``: a run's episodes as tasks of Ray actors, on a new local cluster or an
existing one (``RAY_ADDRESS``).

- Hosted and scripted providers: a pool of async worker actors (one per CPU of the cluster by
  default) runs episodes concurrently; each provider's limit (``--concurrency``) is a
  semaphore held across the cluster by one named actor per run (:class:`ProviderLimits`).
- Embedded local models (``llama_cpp``): one actor per model, each a process of its own with
  one CPU, so a model's weights load once and stay pinned there; its limit applies per actor.
- Every worker writes its own spans (the DuckDB store; its writers take turns).

Exactly once: the driver never counts what a worker says, only what the store holds. A worker
that dies (SIGKILL, a lost node) takes its unwritten spans with it; Ray restarts it, and once
every episode has been tried the driver flushes the workers, marks the attempts left half-written
as abandoned (as ``--resume`` does) and runs again, up to MAX_PASSES times, only the episodes
whose key the store does not hold. An episode is never sent twice while an attempt at it may
still be written, so no key is stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shardscope.config.errors import ConfigError, ShardscopeError
from shardscope.scaffolds.runner.matrix import EpisodeSpec
from shardscope.scaffolds.runner.ray_worker import (
    NAMESPACE,
    EpisodeWorker,
    ProviderLimits,
    WorkerPlan,
)
from shardscope.scaffolds.runner.runner import Resources, mark_abandoned
from shardscope.tracer import attributes as A
from shardscope.tracer.queries.outcomes import stored_outcomes
from shardscope.tracer.queries.runs import orphan_episode_ids

if TYPE_CHECKING:
    from shardscope.config.settings import Settings
    from shardscope.scaffolds.runner.executor import RunJob
    from shardscope.tracer.setup import TracingSession
    from shardscope.tracer.spans import Tracing
    from shardscope.tracer.store import Store

log = logging.getLogger("shardscope.runner")
LOCAL_PROVIDERS = frozenset({"llama_cpp"})  # in-process models: an actor (a process) per model
MAX_PASSES = 4  # tries at an episode whose workers kept dying before the run gives up on it
MAX_SLOTS = 64  # episodes in flight per pool worker
FLUSH_TIMEOUT_S = 120.0
CANCEL_TIMEOUT_S = 15.0
_RAY_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
ResourcesFactory = Callable[["Settings", "Tracing"], Resources]


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide: ``address`` None uses ``RAY_ADDRESS`` or starts a local cluster."""

    address: str | None = None
    workers: int | None = None  # pool workers; default: the cluster's CPUs
    num_cpus: int | None = None  # CPUs of a local cluster; default: this machine's
    temp_dir: str | None = None  # a local cluster's session files; default: Ray's (/tmp/ray)


class RayExecutor:
    """Runs episodes on Ray (see the module docstring); one instance per run."""

    def __init__(self, settings: Settings, resources: ResourcesFactory, tracing: TracingSession,
                 store: Store, options: RayOptions = RayOptions()) -> None:
        self.settings = _portable(settings)
        self.resources = resources
        self.tracing = tracing
        self.store = store
        self.options = options
        self.lost_attempts = 0  # attempts whose worker died under them (each run again)
        self.limit_stats: dict[str, dict[str, int]] = {}  # ProviderLimits.stats() at the end
        self.worker_pids: dict[str, int] = {}  # actor name -> process id (restarts update it)
        self._ray: Any = _import_ray()  # before the run starts: a missing extra is an error
        self._started_cluster = False
        self._workers: dict[str, Any] = {}
        self._limits: Any = None
        self._inflight: dict[Any, str] = {}  # object ref -> lease

    async def run_episodes(self, job: RunJob, todo: Sequence[EpisodeSpec],
                           done: Callable[[EpisodeSpec, str], None]) -> Mapping[str, str]:
        self._connect()
        try:
            return await self._run(job, todo, done)
        except BaseException:
            self._abort()
            raise
        finally:
            self._teardown()

    async def _run(self, job: RunJob, todo: Sequence[EpisodeSpec],
                   done: Callable[[EpisodeSpec, str], None]) -> Mapping[str, str]:
        ray = self._ray
        providers = {job.provider_of(e.model) for e in todo}
        shared = {p: job.limit_for(p) for p in providers - LOCAL_PROVIDERS}
        name = f"shardscope-limits-{job.run_id}"
        self._limits = ray.remote(ProviderLimits).options(
            name=name, namespace=NAMESPACE, num_cpus=0, max_concurrency=100_000).remote(shared)
        plan = WorkerPlan(self.settings, self.resources, job.spec.to_json(), job.run_id,
                          dict(job.trace_context), name, LOCAL_PROVIDERS,
                          {p: job.limit_for(p) for p in providers})
        pending, stored = list(todo), {}
        for _ in range(MAX_PASSES):
            await self._pass(plan, job, pending, done, max(shared.values(), default=1))
            stored = self._reconcile(job.run_id)
            pending = [e for e in todo if e.key not in stored]
            if not pending:
                break
            log.warning("shardscope: %d episodes of run %s were lost with their workers; running "
                        "them again", len(pending), job.run_id)
        self.limit_stats = ray.get(self._limits.stats.remote())
        if pending:
            raise ShardscopeError(
                f"{len(pending)} episodes of run {job.run_id} were not stored after {MAX_PASSES} "
                f"tries (their Ray workers kept dying); `shardscope run --resume {job.run_id}` "
                "runs them")
        twice = sorted(e.key for e in todo if len(stored[e.key]) > 1)
        if twice:
            raise ShardscopeError(f"{len(twice)} episode keys of run {job.run_id} were stored "
                                  f"twice (first: {twice[0]}); please report this")
        return {e.key: stored[e.key][0] for e in todo}

    async def _pass(self, plan: WorkerPlan, job: RunJob, episodes: Sequence[EpisodeSpec],
                    done: Callable[[EpisodeSpec, str], None], slots: int) -> None:
        """Try every episode once: pool episodes on the pool, local models on their actors."""
        pool: deque[EpisodeSpec] = deque()
        local: dict[str, deque[EpisodeSpec]] = {}
        for episode in episodes:
            if job.provider_of(episode.model) in LOCAL_PROVIDERS:
                local.setdefault(episode.model, deque()).append(episode)
            else:
                pool.append(episode)
        feeds = []
        if pool:
            slots = min(MAX_SLOTS, max(1, slots))
            for i in range(self._pool_size()):
                worker = await self._worker(f"pool-{i}", plan, slots, num_cpus=0)
                feeds += [self._feed(worker, pool, done) for _ in range(slots)]
        for model, queue in local.items():
            limit = job.limit_for(job.provider_of(model))
            feeds.append(self._local_model(f"model-{model}", plan, queue, limit, done))
        await asyncio.gather(*feeds)

    async def _local_model(self, name: str, plan: WorkerPlan, queue: deque[EpisodeSpec],
                           limit: int, done: Callable[[EpisodeSpec, str], None]) -> None:
        """A local model's episodes on its own actor, which is then stopped to free its CPU
        for the next model's."""
        worker = await self._worker(name, plan, limit, num_cpus=1)
        await asyncio.gather(*(self._feed(worker, queue, done) for _ in range(limit)))
        await self._stop(name)

    async def _feed(self, worker: Any, queue: deque[EpisodeSpec],
                    done: Callable[[EpisodeSpec, str], None]) -> None:
        ray = self._ray
        while queue:
            episode = queue.popleft()
            lease = uuid.uuid4().hex
            ref = worker.run.remote(episode, lease)
            self._inflight[ref] = lease
            # A cancellation (Ctrl-C, SIGTERM) leaves the attempt in _inflight: _abort cancels it.
            try:
                outcome = await ref
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                    ray.exceptions.ObjectLostError, ray.exceptions.NodeDiedError):
                self._inflight.pop(ref, None)
                self.lost_attempts += 1
                self._limits.release.remote(lease)  # a permit the dead worker held or awaited
                if not await self._await_restart(worker):
                    return  # the other feeds (or the next pass) take the rest
                continue
            self._inflight.pop(ref, None)
            done(episode, outcome)

    async def _await_restart(self, worker: Any) -> bool:
        """Wait until Ray has restarted a dead worker; False when it stays dead."""
        ray = self._ray
        for _ in range(20):
            try:
                await worker.ready.remote()
                return True
            except ray.exceptions.ActorUnavailableError:
                await asyncio.sleep(0.5)
            except ray.exceptions.RayActorError:
                return False
        return False

    async def _worker(self, name: str, plan: WorkerPlan, concurrency: int, num_cpus: float) -> Any:
        """The named worker actor, started (and checked) when it is not running."""
        if name in self._workers:
            return self._workers[name]
        ray = self._ray
        actor = ray.remote(EpisodeWorker).options(
            num_cpus=num_cpus, max_concurrency=concurrency, max_restarts=-1, max_task_retries=0,
            scheduling_strategy="SPREAD").remote(plan)
        try:
            self.worker_pids[name] = await actor.ready.remote()
        except ray.exceptions.RayActorError as exc:
            raise ShardscopeError(f"a Ray worker could not start: {_cause(exc)}") from None
        self._workers[name] = actor
        return actor

    async def _stop(self, name: str) -> None:
        actor = self._workers.pop(name, None)
        if actor is None:
            return
        try:
            await actor.close.remote()
        except self._ray.exceptions.RayActorError:
            pass  # died after its last episode: what it had not written, the next pass redoes
        self._ray.kill(actor, no_restart=True)

    def _reconcile(self, run_id: str) -> dict[str, list[str]]:
        """Every worker's spans written; attempts that died half-written marked abandoned;
        then what the store holds for the run, by key."""
        ray = self._ray
        for actor in list(self._workers.values()):
            try:
                ray.get(actor.flush.remote(), timeout=FLUSH_TIMEOUT_S)
            except ray.exceptions.RayActorError:
                pass  # its unwritten spans died with it: those episodes run again
        self.tracing.force_flush()
        with self.tracing.inherit({A.RUN_ID: run_id}):
            for episode_id in orphan_episode_ids(self.store, run_id):
                mark_abandoned(self.tracing, episode_id, A.AbandonReason.ORPHANED)
        self.tracing.force_flush()
        return stored_outcomes(self.store, run_id)

    def _pool_size(self) -> int:
        if self.options.workers is not None:
            return self.options.workers
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def _connect(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        # ray.init replaces SIGTERM's handler with its own (sys.exit(15)): keep ours, which
        # unwinds the run so that it is marked interrupted (exit code 128 + 15).
        previous = signal.getsignal(signal.SIGTERM)
        address = self.options.address or os.environ.get("RAY_ADDRESS") or None
        kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING,
                                  "namespace": NAMESPACE}
        loopback = _loopback_only() if address is None else contextlib.nullcontext()
        if address is None:
            kwargs.update(num_cpus=self.options.num_cpus or os.cpu_count() or 1,
                          include_dashboard=False, _node_ip_address="127.0.0.1")
            if self.options.temp_dir:
                kwargs["_temp_dir"] = self.options.temp_dir
        try:
            with loopback:
                ray.init(address=address, **kwargs)
        except ConnectionError as exc:
            raise ConfigError(f"cannot reach the Ray cluster at {address}: {exc}") from None
        finally:
            if previous is not None and signal.getsignal(signal.SIGTERM) is not previous:
                signal.signal(signal.SIGTERM, previous)
        self._started_cluster = address is None

    def _abort(self) -> None:
        """Interrupted: cancel the attempts in flight (each is marked abandoned by its worker),
        write what the workers finished, give back the permits."""
        ray = self._ray
        refs = list(self._inflight)
        for ref in refs:
            ray.cancel(ref)
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=CANCEL_TIMEOUT_S)
        for actor in list(self._workers.values()):
            try:
                ray.get(actor.flush.remote(), timeout=FLUSH_TIMEOUT_S)
            except ray.exceptions.RayError:
                pass  # a dead worker: its attempts are orphans, which --resume marks
        self.tracing.force_flush()

    def _teardown(self) -> None:
        ray = self._ray
        for name in list(self._workers):
            actor = self._workers.pop(name)
            try:
                ray.get(actor.close.remote(), timeout=FLUSH_TIMEOUT_S)
            except ray.exceptions.RayError:
                pass
            ray.kill(actor, no_restart=True)
        if self._limits is not None:
            ray.kill(self._limits, no_restart=True)
            self._limits = None
        if self._started_cluster:
            ray.shutdown()
            self._started_cluster = False


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """A local cluster of one machine listens on loopback only. Ray turns 127.0.0.1 into the
    host's reachable address and binds every interface, unless its multi-node mode is off
    (the variable Ray reads for that; measured with ss: nothing listens beyond 127.0.0.1)."""
    saved = os.environ.get(_RAY_CLUSTER_ENV)
    os.environ[_RAY_CLUSTER_ENV] = "0"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(_RAY_CLUSTER_ENV, None)
        else:
            os.environ[_RAY_CLUSTER_ENV] = saved


def _portable(settings: Settings) -> Settings:
    """The settings a worker on another host (or in another directory) reads the same way:
    paths made absolute."""
    def absolute(path: Path | None) -> Path | None:
        return None if path is None else Path(path).expanduser().resolve()

    return dataclasses.replace(settings, db=Path(settings.db).expanduser().resolve(),
                               models_file=absolute(settings.models_file),
                               suites_dir=absolute(settings.suites_dir))


def _cause(exc: BaseException) -> str:
    """The last line of what a worker raised (Ray wraps it in a long report)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'shardscope[ray]'") from None
    return ray
