"""What runs inside Ray's worker processes: the episode worker and the provider semaphore.

Plain classes: :mod:`shardscope.scaffolds.runner.ray_executor` makes them Ray actors
(``ray.remote(cls)``), so this module imports Ray only where a worker needs it. A worker
process builds its own tracing session (its own sinks and writer id: the DuckDB store, whose
writers take turns) and its own resources from the plan, then runs episodes with the runner's
own :func:`run_episode`, so an episode is traced exactly as the local executor traces it."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shardscope.scaffolds.agents.registry import get_scaffold
from shardscope.scaffolds.runner.matrix import EpisodeSpec, MatrixSpec
from shardscope.scaffolds.runner.runner import Resources, run_episode
from shardscope.tracer import attributes as A

if TYPE_CHECKING:
    from shardscope.config.settings import Settings
    from shardscope.scaffolds.agents.base import Scaffold
    from shardscope.scaffolds.backends.traced import TracedModel
    from shardscope.tracer.spans import Tracing

NAMESPACE = "shardscope"


@dataclass(frozen=True)
class WorkerPlan:
    """Everything a worker process needs, sent once when its actor starts (cloudpickled)."""

    settings: Settings  # the workers' tracing: their sinks
    resources: Callable[[Settings, Tracing], Resources]  # rebuilt in each worker
    spec_json: str
    run_id: str
    trace_context: Mapping[str, str]  # W3C traceparent of the run span: episodes are its children
    limits_name: str  # the named ProviderLimits actor of the run
    local_providers: frozenset[str]  # in-process models: limited per worker, not cluster-wide
    limits: Mapping[str, int]  # each provider's episodes at once, as the runner plans them


class EpisodeWorker:
    """Runs episodes of one run in one process; ``run`` is called concurrently (async actor)."""

    def __init__(self, plan: WorkerPlan) -> None:
        from shardscope.tracer.setup import setup_tracing

        self.plan = plan
        # No secret crosses to a worker that does not need it; SIGTERM is Ray's to handle here.
        settings = dataclasses.replace(plan.settings, collect_token=None)
        self.tracing = setup_tracing(settings, install_signal_handlers=False)
        self.resources = plan.resources(settings, self.tracing)
        spec = MatrixSpec.from_json(plan.spec_json)
        self.scaffolds: dict[str, Scaffold] = {
            name: get_scaffold(name, spec.scaffold_params.get(name)) for name in spec.scaffolds}
        self._models: dict[str, TracedModel] = {}
        self._limits: Any = None

    def ready(self) -> int:
        """The worker's process id, once it has started (an error here names what failed)."""
        return os.getpid()

    async def run(self, episode: EpisodeSpec, lease: str) -> str:
        """Run one episode under its provider's cluster-wide limit; returns its outcome."""
        provider = self.resources.provider_of(episode.model)
        shared = provider not in self.plan.local_providers
        if shared:
            await self._limits_actor().acquire.remote(provider, lease)
        try:
            token = otel_context.attach(TraceContextTextMapPropagator().extract(
                dict(self.plan.trace_context)))
            try:
                with self.tracing.inherit({A.RUN_ID: self.plan.run_id}):
                    return await run_episode(episode, self.scaffolds[episode.scaffold],
                                             self.tracing, self.resources,
                                             lambda: self._model(episode.model))
            finally:
                otel_context.detach(token)
        finally:
            if shared:
                await self._limits_actor().release.remote(lease)

    async def flush(self) -> bool:
        """Write every finished span of this worker to the store; True when all were written."""
        return await asyncio.to_thread(self.tracing.force_flush)

    async def close(self) -> None:
        """Close the models and the tracing session (flushing it)."""
        for model in self._models.values():
            await model.aclose()
        self._models.clear()
        await asyncio.to_thread(self.tracing.shutdown)

    def _model(self, model_id: str) -> TracedModel:
        if model_id not in self._models:
            model = self.resources.open_model(model_id)
            # As the local runner does: a local model serves as many episodes at once as its
            # actor runs (parallel slots); other backends ignore the hint.
            model.backend.plan_concurrency(
                self.plan.limits.get(self.resources.provider_of(model_id), 1))
            self._models[model_id] = model
        return self._models[model_id]

    def _limits_actor(self) -> Any:
        if self._limits is None:
            import ray

            self._limits = ray.get_actor(self.plan.limits_name, namespace=NAMESPACE)
        return self._limits


class ProviderLimits:
    """A semaphore per provider, held across the cluster (one named actor per run).

    A permit is a lease: the worker that took it gives it back, and the driver gives back the
    leases of a worker that died holding them (or still waiting for them), so a killed worker
    never shrinks a provider's limit."""

    def __init__(self, limits: Mapping[str, int]) -> None:
        self.limits = dict(limits)
        self._semaphores = {p: asyncio.Semaphore(n) for p, n in self.limits.items()}
        self._held: dict[str, str] = {}  # lease -> provider
        self._revoked: set[str] = set()  # released before they were granted
        self._busy: dict[str, int] = dict.fromkeys(self.limits, 0)
        self.peaks: dict[str, int] = dict.fromkeys(self.limits, 0)

    async def acquire(self, provider: str, lease: str) -> None:
        semaphore = self._semaphores.get(provider)
        if semaphore is None:  # a provider the driver did not plan for: limit it to 1
            semaphore = self._semaphores[provider] = asyncio.Semaphore(1)
            self._busy[provider] = self.peaks[provider] = 0
        await semaphore.acquire()
        if lease in self._revoked:
            self._revoked.discard(lease)
            semaphore.release()
            return
        self._held[lease] = provider
        self._busy[provider] += 1
        self.peaks[provider] = max(self.peaks[provider], self._busy[provider])

    def release(self, lease: str) -> bool:
        """Give the lease's permit back (once); a lease not granted yet is revoked instead."""
        provider = self._held.pop(lease, None)
        if provider is None:
            self._revoked.add(lease)
            return False
        self._busy[provider] -= 1
        self._semaphores[provider].release()
        return True

    def stats(self) -> dict[str, dict[str, int]]:
        """Per provider: its limit, the most permits ever held at once, and those held now."""
        return {p: {"limit": self.limits.get(p, 1), "peak": self.peaks[p], "held": self._busy[p]}
                for p in self._semaphores}
