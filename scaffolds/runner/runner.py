"""The matrix runner: every episode of a MatrixSpec, concurrently, traced, resumable."""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from shardscope.config.errors import ConfigError
from shardscope.scaffolds.agents.base import EpisodeResult, Scaffold, ToolBox
from shardscope.scaffolds.agents.registry import get_scaffold
from shardscope.scaffolds.agents.runtime import Episode
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.executor import (
    EpisodeExecutor,
    LocalExecutor,
    RunJob,
    trace_context,
)
from shardscope.scaffolds.runner.matrix import EpisodeSpec, MatrixSpec, expand, in_shard
from shardscope.scaffolds.runner.progress import Progress
from shardscope.tracer import attributes as A
from shardscope.tracer.attributes import Outcome, SpanType
from shardscope.tracer.spans import TracedSpan, Tracing

if TYPE_CHECKING:
    from shardscope.scaffolds.tasks import Ablation, CheckResult, Suite, Task, TaskInstance
    from shardscope.scaffolds.types import ToolCall

DEFAULT_CONCURRENCY = {"llama_cpp": 1, "scripted": 8}
REMOTE_CONCURRENCY = 4


class Checker(Protocol):
    def __call__(
        self, task: Task, answer: str | None, instance: TaskInstance,
        calls: Sequence[ToolCall] = (), /,
    ) -> CheckResult: ...


# Checks that judge the calls of declared functions: they judge every finished episode,
# whatever ended it (BFCL counts a reply it cannot decode as "no call").
CALL_CHECKS = ("tool_call", "irrelevance")


@dataclass
class Resources:
    """What the runner needs from the rest of the product (injectable for tests)."""

    suites: Mapping[str, Suite]  # by name
    registry: ToolBox
    open_model: Callable[[str], TracedModel]  # catalog id -> traced model
    provider_of: Callable[[str], str]  # catalog id -> gen_ai provider name
    check: Checker  # judges a final answer (or the declared calls made)
    known_models: Callable[[], list[str]]
    # catalog id -> the provider's model name (gen_ai.request.model on the episode span)
    request_model_of: Callable[[str], str | None] = lambda model_id: None


@dataclass
class RunReport:
    run_id: str
    planned: int
    skipped: int
    reused: int = 0  # stored baselines this run did not repeat
    outcomes: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def ran(self) -> int:
        return sum(self.outcomes.values())


class Runner:
    """Runs a matrix through one Tracing session; ``run`` is a coroutine."""

    def __init__(self, tracing: Tracing, resources: Resources, *, progress: bool = True,
                 executor: EpisodeExecutor | None = None) -> None:
        self.tracing = tracing
        self.resources = resources
        self.show_progress = progress
        self.executor = executor  # None: this process's asyncio loop (LocalExecutor)
        self._models: dict[str, TracedModel] = {}
        self.last_report: RunReport | None = None  # readable after Ctrl-C ends asyncio.run

    def validate(self, spec: MatrixSpec) -> dict[str, Scaffold]:
        """Check every name in the spec; unknown ones are an error listing the known ones."""
        known_models = self.resources.known_models()
        for model in spec.models:
            if model not in known_models:
                raise ConfigError(f"unknown model {model!r}; known models: {', '.join(known_models)}")
        for suite in spec.suites:
            if suite not in self.resources.suites:
                known = ", ".join(sorted(self.resources.suites))
                raise ConfigError(f"unknown suite {suite!r}; known suites: {known}")
        scaffolds = {n: get_scaffold(n, spec.scaffold_params.get(n)) for n in spec.scaffolds}
        unknown_params = set(spec.scaffold_params) - set(spec.scaffolds)
        if unknown_params:
            raise ConfigError(
                f"parameters given for scaffold(s) not in the run: {', '.join(sorted(unknown_params))}"
            )
        return scaffolds

    async def run(
        self,
        spec: MatrixSpec,
        *,
        run_id: str | None = None,
        done_keys: set[str] | frozenset[str] = frozenset(),
        reused_keys: set[str] | frozenset[str] = frozenset(),
        orphans: Sequence[str] = (),
    ) -> RunReport:
        """Run what of ``spec`` is not in ``done_keys``; Ctrl-C and SIGTERM stop cleanly
        (resumable). A SystemExit (SIGTERM) or KeyboardInterrupt is raised again once every
        in-flight attempt is abandoned and the run is marked interrupted.

        ``reused_keys`` are episodes another run already stored (baselines an ablation run
        reuses): they are not part of this run at all. ``orphans`` are episode ids of an
        earlier attempt of this run that left spans but no episode (its process was killed):
        they are marked abandoned before anything runs."""
        scaffolds = self.validate(spec)
        hashes = {name: s.identity for name, s in scaffolds.items()}
        episodes = expand(spec, self.resources.suites, hashes)
        if not episodes:
            raise ConfigError("the matrix has no episodes: no task matched --tasks / --limit")
        planned, episodes = len(episodes), in_shard(spec, episodes)
        if not episodes:
            raise ConfigError(f"--shard {spec.shard} holds none of the matrix's {planned} episodes: "
                              "use fewer shards than episodes")
        kept = [e for e in episodes if e.key not in reused_keys]
        reused, episodes = len(episodes) - len(kept), kept
        todo = [e for e in episodes if e.key not in done_keys]
        run_id = run_id or new_run_id()
        report = RunReport(run_id, planned=len(episodes), skipped=len(episodes) - len(todo),
                           reused=reused)
        self.last_report = report
        started = time.monotonic()
        exiting: BaseException | None = None
        with self.tracing.inherit({A.RUN_ID: run_id}):
            self._mark_start(spec, run_id, len(episodes), resumed=bool(done_keys), reused=reused)
            for episode_id in orphans:
                mark_abandoned(self.tracing, episode_id, A.AbandonReason.ORPHANED)
            with self.tracing.span(f"run {run_id}", SpanType.RUN, {A.RUN_NAME: spec.name}) as span:
                progress = Progress(len(todo), enabled=self.show_progress, skipped=report.skipped)
                try:
                    if self.executor is None:
                        await LocalExecutor(self._limit_for(spec)).run(
                            todo, lambda e: self._episode(e, scaffolds[e.scaffold], spec, report, progress),
                            key=lambda e: self.resources.provider_of(e.model),
                        )
                    else:
                        await self._remote(self.executor, spec, run_id, span, todo, report, progress)
                    span.set(A.RUN_STATUS, "finished")
                except (asyncio.CancelledError, KeyboardInterrupt, SystemExit) as exc:
                    report.interrupted = True
                    span.set(A.RUN_STATUS, "interrupted")
                    # The program must still stop, once the run span says why it ended.
                    exiting = None if isinstance(exc, asyncio.CancelledError) else exc
                finally:
                    progress.close()
                    await self._close_models()
        report.seconds = time.monotonic() - started
        if exiting is not None:
            raise exiting
        return report

    async def _remote(self, executor: EpisodeExecutor, spec: MatrixSpec, run_id: str,
                      span: TracedSpan, todo: list[EpisodeSpec], report: RunReport,
                      progress: Progress) -> None:
        """Run ``todo`` on another executor; the report counts what the store holds."""
        job = RunJob(spec, run_id, trace_context(span), self._limit_for(spec),
                     self.resources.provider_of)

        def done(episode: EpisodeSpec, outcome: str) -> None:
            report.outcomes[outcome] += 1
            progress.advance(episode, outcome)

        stored = await executor.run_episodes(job, todo, done)
        report.outcomes = Counter(stored.values())

    def _mark_start(self, spec: MatrixSpec, run_id: str, planned: int, resumed: bool,
                    reused: int = 0) -> None:
        with self.tracing.span(
            f"run start {run_id}",
            SpanType.RUN_START,
            {
                A.RUN_NAME: spec.name,
                A.RUN_PLANNED_EPISODES: planned,
                A.RUN_CONFIG: spec.to_json(),
                A.RUN_RESUMED: resumed,
                A.RUN_REUSED_EPISODES: reused,
            },
        ):
            pass

    def _limit_for(self, spec: MatrixSpec) -> Callable[[str], int]:
        def limit(provider: str) -> int:
            if provider in spec.concurrency:
                return max(1, int(spec.concurrency[provider]))
            return DEFAULT_CONCURRENCY.get(provider, REMOTE_CONCURRENCY)

        return limit

    def _model(self, model_id: str, spec: MatrixSpec) -> TracedModel:
        if model_id not in self._models:
            model = self.resources.open_model(model_id)
            # A local model serves as many episodes at once as its provider may run.
            model.backend.plan_concurrency(self._limit_for(spec)(self.resources.provider_of(model_id)))
            self._models[model_id] = model
        return self._models[model_id]

    async def _close_models(self) -> None:
        for model in self._models.values():
            await model.aclose()
        self._models.clear()

    async def _episode(
        self, episode: EpisodeSpec, scaffold: Scaffold, spec: MatrixSpec, report: RunReport,
        progress: Progress,
    ) -> None:
        outcome = await run_episode(
            episode, scaffold, self.tracing, self.resources, lambda: self._model(episode.model, spec)
        )
        report.outcomes[outcome] += 1
        progress.advance(episode, outcome)


async def run_episode(
    spec: EpisodeSpec,
    scaffold: Scaffold,
    tracing: Tracing,
    resources: Resources,
    model_factory: Callable[[], TracedModel],
) -> str:
    """One task attempt inside its ``invoke_agent`` span; returns the outcome.

    The episode span is the root of a trace of its own (linked to the run span), so peers that
    treat a trace as one agent session (Phoenix, Langfuse, Logfire, Jaeger) see one episode
    per trace; ``session.id`` (the run id) groups a run's episodes there.

    An interrupted attempt (cancellation, or SystemExit / KeyboardInterrupt raised inside it)
    leaves the episode span unended, so it never shows up as an episode and ``--resume`` runs
    it again; its finished steps stay stored and an ``abandoned_episode`` marker keeps them
    out of the views.
    """
    suite = resources.suites[spec.suite]
    task = next(t for t in suite.tasks if t.id == spec.task_id)
    episode_id = uuid.uuid4().hex[:16]
    provider = resources.provider_of(spec.model)
    attributes = {
        A.GEN_AI_OPERATION_NAME: A.OP_INVOKE_AGENT,
        A.GEN_AI_AGENT_NAME: spec.scaffold,
        A.GEN_AI_AGENT_VERSION: spec.scaffold_hash,
        A.GEN_AI_CONVERSATION_ID: episode_id,
        A.GEN_AI_PROVIDER_NAME: provider,
        A.GEN_AI_REQUEST_MODEL: resources.request_model_of(spec.model),
        A.EPISODE_ID: episode_id,
        A.EPISODE_KEY: spec.key,
        A.SUITE_NAME: spec.suite,
        A.TASK_ID: spec.task_id,
        A.SCAFFOLD_NAME: spec.scaffold,
        A.SCAFFOLD_HASH: spec.scaffold_hash,
        A.SCAFFOLD_PARAMS: dataclasses.asdict(scaffold.params),
        A.SCAFFOLD_PROMPTS: dict(type(scaffold).prompts),
        A.MODEL_ID: spec.model,
        A.SEED: spec.seed,
        A.SHARDS: [s.name for s in task.shards],
        A.ABLATION_SHARD: spec.ablation.shard if spec.ablation else None,
        A.ABLATION_MODE: spec.ablation.mode if spec.ablation else None,
        A.ABLATION_KIND: _shard_kind(task, spec.ablation),
        A.ABLATION_BASELINE_KEY: spec.baseline_key,
    }
    run_id = tracing.inherited().get(A.RUN_ID)
    with tracing.inherit({A.EPISODE_ID: episode_id, A.MODEL_ID: spec.model,
                          A.SESSION_ID: run_id, A.GEN_AI_CONVERSATION_ID: episode_id}):
        scope = tracing.span(f"invoke_agent {spec.scaffold}", SpanType.EPISODE, attributes,
                             new_trace=True)
        span = scope.__enter__()
        try:
            with tempfile.TemporaryDirectory(prefix="shardscope-episode-") as workdir:
                outcome = await _attempt(spec, scaffold, task, tracing, resources, model_factory,
                                         span, Path(workdir))
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit) as exc:
            scope.abandon()
            mark_abandoned(tracing, episode_id, _abandon_reason(exc), spec.key)
            raise
        except BaseException as exc:
            scope.__exit__(type(exc), exc, exc.__traceback__)
            raise
        scope.__exit__(None, None, None)
    return outcome


async def _attempt(
    spec: EpisodeSpec, scaffold: Scaffold, task: Task, tracing: Tracing, resources: Resources,
    model_factory: Callable[[], TracedModel], span: TracedSpan, workdir: Path,
) -> str:
    try:
        instance = task.instantiate(workdir, spec.ablation)
        model = model_factory()
        span.set(A.GEN_AI_REQUEST_MODEL, model.backend.model)  # what the backend will be sent
        episode = Episode(model, tracing, instance, resources.registry, scaffold.params, seed=spec.seed)
        result = await scaffold.run(episode)
    except Exception as exc:  # infrastructure failure: record it, the run goes on (an
        # interruption is a BaseException: it passes through to run_episode)
        span.set_many({A.EPISODE_OUTCOME: Outcome.ERROR, A.EPISODE_ERROR: f"{type(exc).__name__}: {exc}",
                       A.EPISODE_SCORE: 0.0})
        span.fail(getattr(exc, "error_type", type(exc).__name__), str(exc))
        return Outcome.ERROR
    outcome, score, detail = _judge(result, task, instance, resources)
    span.set_many(
        {
            A.EPISODE_OUTCOME: outcome,
            A.EPISODE_SCORE: score,
            A.EPISODE_FINAL_ANSWER: result.final_answer,
            A.EPISODE_STEPS: result.steps,
            A.EPISODE_CHECK_DETAIL: detail,
            A.EPISODE_ERROR: "; ".join(result.protocol_errors[-3:]) or None,
        }
    )
    return outcome


def mark_abandoned(tracing: Tracing, episode_id: str, reason: str,
                   episode_key: str | None = None) -> None:
    """Record that the attempt ``episode_id`` was abandoned: its spans stay stored, the views
    leave them out (unless an episode span with that id exists after all)."""
    attributes = {A.EPISODE_ID: episode_id, A.EPISODE_ABANDONED_REASON: reason}
    if episode_key is not None:
        attributes[A.EPISODE_KEY] = episode_key
    with tracing.span(f"abandoned_episode {episode_id}", SpanType.ABANDONED_EPISODE, attributes):
        pass


def _abandon_reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return A.AbandonReason.CANCELLED
    return A.AbandonReason.INTERRUPTED


def _judge(result: EpisodeResult, task: Task, instance: TaskInstance,
           resources: Resources) -> tuple[str, float, str | None]:
    if result.end_reason in ("final_answer", "tool_call") or task.check.type in CALL_CHECKS:
        check = resources.check(task, result.final_answer, instance, result.declared_calls)
        return check.outcome, float(check.score), check.detail
    if result.end_reason == "protocol_error":
        return Outcome.PROTOCOL_ERROR, 0.0, result.detail
    return Outcome.BUDGET_EXHAUSTED, 0.0, result.detail


def _shard_kind(task: Task, ablation: Ablation | None) -> str | None:
    if ablation is None:
        return None
    return next((s.kind for s in task.shards if s.name == ablation.shard), None)


def new_run_id() -> str:
    """A new run's id: its start time and a random suffix."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
