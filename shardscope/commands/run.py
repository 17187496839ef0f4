"""`shardscope run`, `ablate` and `demo`: build the matrix, run it, print the comparison."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from shardscope.commands.options import parse_assignments, scaffold_params, split_list, whole_number
from shardscope.config.errors import ConfigError, ShardscopeError
from shardscope.config.settings import Settings, load_settings
from shardscope.scaffolds.runner.executor import EpisodeExecutor
from shardscope.scaffolds.runner.hashes import HashChange, current_hashes, hash_changes
from shardscope.scaffolds.runner.matrix import MatrixSpec, expand
from shardscope.scaffolds.runner.resources import default_resources
from shardscope.scaffolds.runner.runner import (
    Resources,
    Runner,
    RunReport,
    mark_abandoned,
    new_run_id,
)
from shardscope.scaffolds.runner.shard import parse_shard
from shardscope.tracer import attributes as A
from shardscope.tracer.lake_store import LakeStore
from shardscope.tracer.locking import RunLock
from shardscope.tracer.queries.runs import (
    completed_episode_cells,
    completed_episode_keys,
    error_episodes,
    orphan_episode_ids,
    run_episodes,
    run_info,
    stored_baseline_cells,
    stored_baseline_keys,
)
from shardscope.tracer.schema import STALE_AFTER_S
from shardscope.tracer.setup import TracingSession, setup_tracing
from shardscope.tracer.spans import Tracing
from shardscope.tracer.store import Store

if TYPE_CHECKING:
    import pandas as pd

# The demo: every embedded model, two scaffolds, a few easy tasks of two suites; sized to
# finish within ten minutes on 2 cores (measured: 6 min 9 s and 6 min 18 s, see README "Performance").
DEMO = MatrixSpec(
    suites=("arithmetic", "village"),
    models=("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "gemma-3-270m"),
    scaffolds=("react-tools", "react-text"),
    seeds=1,
    limit_tasks=3,
    name="demo",
)


def execute(spec: MatrixSpec | None, settings: Settings, *, resume_run: str | None = None,
            accept_changed_scaffolds: bool = False, retry_errors: bool = False,
            progress: bool = True, show_influence: bool = False, executor: str = "local") -> int:
    """Run (or resume) a matrix into the store; print the summary and where to look next.

    The store is checked before anything runs. A run, fresh or resumed, is held under a
    per-run lock (a resume of it meanwhile is refused, naming the process). A resumed run whose stored episodes
    ran under another scaffold hash than the current code's is refused (ConfigError), unless
    ``accept_changed_scaffolds``: then those episodes count as done. ``retry_errors`` runs
    again the episodes that ended in infrastructure errors. ``executor`` is local or ray.
    Returns the exit code: 0, 130 after Ctrl-C, 128 + signal after SIGTERM."""
    store = _run_store(settings)
    store.check_usable()  # before any episode is paid for
    if resume_run is None:
        # held by a fresh run too: a `--resume latest` meanwhile is refused, naming this process
        run_id = new_run_id()
        with RunLock(store.path, run_id):
            return _execute(store, _Resume(spec), settings, progress, show_influence, executor,
                            run_id)
    with RunLock(store.path, _resume_id(store, resume_run)) as lock:
        target = _resume_target(store, lock.run_id, accept_changed_scaffolds, retry_errors)
        return _execute(store, target, settings, progress, show_influence, executor)


EXECUTORS = ("local", "ray")


def _run_store(settings: Settings) -> Store:
    """Where the run's spans are read back from (resume, summary, the Ray executor's count):
    the DuckDB store, or the Parquet lake when the run writes only there (exporter
    ``parquet`` without ``duckdb``: every writer appends its own files, no lock taken)."""
    if "duckdb" in settings.exporters or settings.lake is None or "parquet" not in settings.exporters:
        return Store(settings.db, settings.lock_timeout)
    return _WrittenLake(settings.lake, settings.lock_timeout)


class _WrittenLake(LakeStore):
    """A lake this process writes to through its exporter: usable when it holds a lake (or
    nothing yet), read like any lake."""

    def check_usable(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"lake {self.path} is a file, not a directory; set another `lake`")


def executor_name(value: str) -> str:
    """``--executor``, checked: local or ray."""
    name = value.strip().lower()
    if name not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {value!r}")
    return name


def _episode_executor(executor: str, settings: Settings, tracing: TracingSession, store: Store,
                      spec: MatrixSpec) -> EpisodeExecutor | None:
    """None for the local executor (the runner's own loop); a RayExecutor for ``ray``."""
    if executor == "local":
        return None
    from shardscope.scaffolds.runner.ray_executor import RayExecutor

    return RayExecutor(settings, functools.partial(default_resources, logprobs=spec.logprobs),
                       tracing, store)


def _execute(store: Store, target: _Resume, settings: Settings, progress: bool,
             show_influence: bool, executor: str = "local", fresh_id: str | None = None) -> int:
    spec = target.spec
    assert spec is not None
    for change in target.accepted:
        _note(f"keeping {_count(change.episodes, 'episode')} of {change.scaffold} stored under "
              f"scaffold hash {change.stored[:12]} as done (the current code hashes to "
              f"{change.current[:12]}); the missing ones run with the current code")
    warning = greedy_seeds_warning(spec) if target.run_id is None else None
    if warning:
        _note(warning)
    reused = stored_baseline_keys(store) - target.done if spec.reuse_baselines else set()
    tracing = setup_tracing(settings, install_signal_handlers=True, set_global=False)
    resources = default_resources(settings, tracing, logprobs=spec.logprobs)
    try:
        _check_concurrency(spec, resources)
    except BaseException:
        tracing.shutdown()
        raise
    try:
        remote = _episode_executor(executor, settings, tracing, store, spec)
    except BaseException:
        tracing.shutdown()
        raise
    runner = Runner(tracing, resources, progress=progress and sys.stderr.isatty(), executor=remote)
    report: RunReport | None = None
    exit_code: int | None = None
    try:
        if spec.reuse_baselines:
            _note_changed_baselines(store, spec, runner, resources, reused | target.done)
        _mark_retried(tracing, target)
        report = asyncio.run(runner.run(spec, run_id=target.run_id or fresh_id,
                                        done_keys=target.done,
                                        reused_keys=reused, orphans=target.orphans))
    except KeyboardInterrupt:
        report = runner.last_report
    except SystemExit as exc:  # SIGTERM (tracer.setup): the run is marked interrupted
        report = runner.last_report
        exit_code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        tracing.shutdown()
    if report is None:
        if exit_code is not None:
            return exit_code
        raise ShardscopeError("the run stopped before it started")
    _print_outcome(store, report)
    _note_errors(store, report.run_id)
    if (show_influence or spec.ablations) and store.exists():
        _print_influence(store, spec, report.run_id, settings.suites_dir)
    if exit_code is not None:
        return exit_code
    return 130 if report.interrupted else 0


def _print_influence(store: Store, spec: MatrixSpec, run_id: str,
                     suites_dir: Path | None = None, limit: int = 30) -> None:
    from shardscope.analysis.compare import ablation_detail
    from shardscope.analysis.influence import pooled_influence
    from shardscope.commands.compare import print_follows, print_influence, print_pooled_influence
    from shardscope.commands.output import console
    from shardscope.tracer.queries.comparison import Selection

    selection = Selection(suites=spec.suites, models=spec.models, scaffolds=spec.scaffolds,
                          run_ids=(run_id,))
    influence, pairs = ablation_detail(store, selection)
    print_influence(console(), influence, limit,
                    more=f"in `shardscope compare --run {run_id} --report report.html`")
    if not pairs.empty:
        print_pooled_influence(console(), pooled_influence(pairs))
    print_follows(console(), pairs, suites_dir)


def greedy_seeds_warning(spec: MatrixSpec) -> str | None:
    """Seeds > 1 under a scaffold at temperature 0: greedy decoding repeats each task byte for
    byte (measured in issue 17: 20 of 24 seed pairs identical), so the extra seeds cost time
    and add no evidence."""
    from shardscope.scaffolds.agents.registry import get_scaffold

    if spec.seeds < 2:
        return None
    greedy = [name for name in spec.scaffolds
              if get_scaffold(name, spec.scaffold_params.get(name, {})).params.temperature == 0]
    if not greedy:
        return None
    example = greedy[0]
    return (f"--seeds {spec.seeds} at temperature 0 ({', '.join(greedy)}): greedy decoding "
            "repeats the same work, so seeds beyond the first mostly measure nothing new "
            "(compare counts byte-identical repeats once). To sample, set a temperature, "
            f"e.g. -p {example}.temperature=0.7 (the seed is passed to the model)")


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr, flush=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _note_changed_baselines(store: Store, spec: MatrixSpec, runner: Runner, resources: Resources,
                            skip: set[str]) -> None:
    """Say which stored baselines of the matrix are not reused because their scaffold changed."""
    hashes = {name: scaffold.identity for name, scaffold in runner.validate(spec).items()}
    planned = {e.key for e in expand(spec, resources.suites, hashes) if e.ablation is None} - skip
    for change in hash_changes(stored_baseline_cells(store), hashes, skip):
        count = len(change.keys & planned)
        if count:
            are, they = ("is", "it runs") if count == 1 else ("are", "they run")
            _note(f"{_count(count, 'stored baseline')} of {change.scaffold} (scaffold hash "
                  f"{change.stored[:12]}) {are} not reused: the scaffold's code changed since (it "
                  f"hashes to {change.current[:12]} now), and an ablation is only compared with a "
                  f"baseline of the same code, so {they} again")


def _mark_retried(tracing: Tracing, target: _Resume) -> None:
    """Episodes run again by --retry-errors leave the views (their spans stay stored)."""
    if not target.retried:
        return
    _note(f"running again {_count(len(target.retried), 'episode')} that ended in "
          "infrastructure errors (--retry-errors)")
    with tracing.inherit({A.RUN_ID: target.run_id}):
        for episode_id, key in target.retried.items():
            mark_abandoned(tracing, episode_id, A.AbandonReason.RETRIED, key)


def _check_concurrency(spec: MatrixSpec, resources: Resources) -> None:
    used = {resources.provider_of(m) for m in spec.models}
    unused = sorted(set(spec.concurrency) - used)
    if unused:
        raise ConfigError(f"--concurrency {unused[0]}=...: no model of this run has provider "
                          f"{unused[0]!r} (its providers: {', '.join(sorted(used))})")


def _note_errors(store: Store, run_id: str) -> None:
    errors = error_episodes(store, run_id) if store.exists() else {}
    if errors:
        _note(f"{_count(len(errors), 'episode')} of run {run_id} ended in infrastructure errors "
              "(call timeouts, server errors after retries), not model failures; "
              f"`shardscope run --resume {run_id} --retry-errors` runs them again")


@dataclass(frozen=True)
class _Resume:
    """What a (resumed) run starts from: its matrix, id, finished keys, orphaned attempts, and
    the stored episodes of changed scaffolds that were accepted as done."""

    spec: MatrixSpec | None
    run_id: str | None = None
    done: set[str] = field(default_factory=set)
    orphans: tuple[str, ...] = ()
    accepted: tuple[HashChange, ...] = ()
    retried: dict[str, str] = field(default_factory=dict)  # episode id -> key


def _resume_id(store: Store, requested: str) -> str:
    """The id of the run to resume ('' is the latest)."""
    if not store.exists():
        raise ConfigError(f"nothing to resume: no store at {store.path}")
    info = run_info(store, requested or None)
    if info is None:
        what = f"run {requested!r}" if requested else "any run"
        raise ConfigError(f"nothing to resume: {what} not found in {store.path}")
    return str(info["run_id"])


def _resume_target(store: Store, run_id: str, accept_changed: bool = False,
                   retry_errors: bool = False) -> _Resume:
    info = run_info(store, run_id)
    assert info is not None
    if info["status"] == "running":
        raise ConfigError(
            f"run {run_id} is still running (its writer was heard within the last "
            f"{STALE_AFTER_S:.0f} s): resuming it now would run its tasks twice. Stop it first "
            "(Ctrl-C), or if its process was killed, retry once the run shows as 'stale'")
    spec = MatrixSpec.from_json(info["config"])
    done = completed_episode_keys(store, run_id)
    # Episode keys hold the scaffold's hash: after a code change no stored key matches, and
    # every stored episode would silently run again.
    changes = hash_changes(completed_episode_cells(store, run_id), current_hashes(spec), done)
    if changes and not accept_changed:
        raise _changed_scaffolds_error(run_id, changes)
    done |= {key for change in changes for key in change.keys}
    retried = error_episodes(store, run_id) if retry_errors else {}
    done -= set(retried.values())
    # A killed process left its in-flight attempts' spans without an episode: they are
    # marked abandoned (kept, but out of the views) before the tasks run again.
    return _Resume(spec, run_id, done, tuple(orphan_episode_ids(store, run_id)), tuple(changes),
                   retried)


def _changed_scaffolds_error(run_id: str, changes: Sequence[HashChange]) -> ConfigError:
    which = "; ".join(f"{c.scaffold} hash {c.stored[:12]} stored ({_count(c.episodes, 'episode')}), "
                      f"{c.current[:12]} now" for c in changes)
    return ConfigError(
        f"run {run_id} was stored with other scaffold code: {which}. The scaffold's code changed "
        "since, so --resume would run those episodes again rather than skip them. Start a new "
        f"run with the current code, or run `shardscope run --resume {run_id} "
        "--accept-changed-scaffolds` to keep the stored episodes and run only the missing ones "
        "(the run then holds two versions of the scaffold)")


def _print_outcome(store: Store, report: RunReport) -> None:
    from shardscope.commands import output

    output.print_run_report(report, summary_of(store, report.run_id), store.path)


def summary_of(store: Store, run_id: str) -> pd.DataFrame | None:
    """The table printed at the end of a run: per model x scaffold, the success rate with
    its SE clustered by task and 95% interval (the estimator of the Overview and compare)."""
    from shardscope.analysis.summaries import run_summary

    return run_summary(run_episodes(store, run_id)) if store.exists() else None


@dataclass(frozen=True)
class MatrixOptions:
    """The matrix options of ``run`` and ``ablate`` as typed on the command line."""

    suites: Sequence[str] | None
    models: Sequence[str] | None
    scaffolds: Sequence[str] | None
    seeds: int = 1
    tasks: Sequence[str] | None = None
    limit: int | None = None
    params: Sequence[str] | None = None
    concurrency: Sequence[str] | None = None
    logprobs: bool = False
    ablate: str | None = None
    reuse_baselines: bool = False
    name: str | None = None
    shard: str | None = None

    def missing(self) -> list[str]:
        """The flags a matrix cannot do without that were not given."""
        return [flag for flag, value in (("--suite", self.suites), ("--models", self.models),
                                         ("--scaffolds", self.scaffolds)) if not value]


def build_spec(options: MatrixOptions) -> MatrixSpec:
    """The run's matrix from its command-line options (each checked, with the flag named)."""
    return MatrixSpec(
        suites=split_list(options.suites),
        models=split_list(options.models),
        scaffolds=split_list(options.scaffolds),
        seeds=options.seeds,
        tasks=split_list(options.tasks),
        limit_tasks=options.limit,
        scaffold_params=scaffold_params(options.params),
        concurrency={k: _concurrency(k, v) for k, v in
                     parse_assignments(options.concurrency, "--concurrency").items()},
        logprobs=options.logprobs,
        ablations=options.ablate or "",
        reuse_baselines=options.reuse_baselines,
        name=options.name or "",
        shard=str(parse_shard(options.shard)) if options.shard else "",
    )


MAX_CONCURRENCY = 1024


def _concurrency(provider: str, value: str) -> int:
    n = whole_number(value, "--concurrency")
    if not 1 <= n <= MAX_CONCURRENCY:
        raise ConfigError(f"--concurrency {provider}={value}: episodes at once must be between 1 "
                          f"and {MAX_CONCURRENCY}")
    return n


def settings_for(db: Path | None) -> Settings:
    return load_settings(db=db)
