"""`shardscope run` and `shardscope demo`: build the matrix, run it, print the comparison."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.settings import Settings, load_settings
from scaffolds.runner.matrix import MatrixSpec
from scaffolds.runner.resources import default_resources
from scaffolds.runner.runner import RunReport, Runner
from shardscope.errors import ConfigError, ShardscopeError
from tracer import setup_tracing
from tracer.queries import (
    completed_episode_keys,
    orphan_episode_ids,
    run_info,
    run_summary,
    stored_baseline_keys,
)
from tracer.schema import STALE_AFTER_S
from tracer.store import Store

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


def split_list(values: Sequence[str] | None) -> tuple[str, ...]:
    """Options may be repeated or comma-separated: ``-m a,b -m c`` is (a, b, c)."""
    out: list[str] = []
    for value in values or ():
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return tuple(out)


def parse_assignments(values: Sequence[str] | None, what: str) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for value in values or ():
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} must look like key=value, got {value!r}")
        parsed[key.strip()] = val.strip()
    return parsed


def scaffold_params(values: Sequence[str] | None) -> dict[str, dict[str, str]]:
    """``--param react-tools.max_steps=4`` -> {"react-tools": {"max_steps": "4"}}."""
    params: dict[str, dict[str, str]] = {}
    for key, value in parse_assignments(values, "--param").items():
        scaffold, dot, name = key.partition(".")
        if not dot or not name:
            raise ConfigError(f"--param must look like scaffold.parameter=value, got {key}={value}")
        params.setdefault(scaffold, {})[name] = value
    return params


def execute(spec: MatrixSpec | None, settings: Settings, *, resume_run: str | None = None,
            progress: bool = True, show_influence: bool = False) -> int:
    """Run (or resume) a matrix into the store; print the summary and where to look next.

    Returns the exit code: 0, 130 after Ctrl-C, 128 + signal after SIGTERM."""
    store = Store(settings.db, settings.lock_timeout)
    target = _Resume(spec) if resume_run is None else _resume_target(store, resume_run)
    spec = target.spec
    assert spec is not None
    reused = stored_baseline_keys(store) - target.done if spec.reuse_baselines else set()
    tracing = setup_tracing(settings, install_signal_handlers=True, set_global=False)
    resources = default_resources(settings, tracing, logprobs=spec.logprobs)
    runner = Runner(tracing, resources, progress=progress and sys.stderr.isatty())
    report: RunReport | None = None
    exit_code: int | None = None
    try:
        report = asyncio.run(runner.run(spec, run_id=target.run_id, done_keys=target.done,
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
    if (show_influence or spec.ablations) and store.exists():
        _print_influence(store, spec, report.run_id)
    if exit_code is not None:
        return exit_code
    return 130 if report.interrupted else 0


def _print_influence(store: Store, spec: MatrixSpec, run_id: str) -> None:
    from shardscope.output import console
    from tracer.analysis.cli import print_influence
    from tracer.analysis.compare import influence_for
    from tracer.analysis.load import Selection

    selection = Selection(suites=spec.suites, models=spec.models, scaffolds=spec.scaffolds,
                          run_ids=(run_id,))
    print_influence(console(), influence_for(store, selection))


@dataclass(frozen=True)
class _Resume:
    """What a (resumed) run starts from: its matrix, id, finished keys, orphaned attempts."""

    spec: MatrixSpec | None
    run_id: str | None = None
    done: set[str] = field(default_factory=set)
    orphans: tuple[str, ...] = ()


def _resume_target(store: Store, requested: str) -> _Resume:
    if not store.exists():
        raise ConfigError(f"nothing to resume: no store at {store.path}")
    info = run_info(store, requested or None)
    if info is None:
        what = f"run {requested!r}" if requested else "any run"
        raise ConfigError(f"nothing to resume: {what} not found in {store.path}")
    run_id = info["run_id"]
    if info["status"] == "running":
        raise ConfigError(
            f"run {run_id} is still running (its writer was heard within the last "
            f"{STALE_AFTER_S:.0f} s): resuming it now would run its tasks twice. Stop it first "
            "(Ctrl-C), or if its process was killed, retry once the run shows as 'stale'")
    # A killed process left its in-flight attempts' spans without an episode: they are
    # marked abandoned (kept, but out of the views) before the tasks run again.
    return _Resume(MatrixSpec.from_json(info["config"]), run_id,
                   completed_episode_keys(store, run_id), tuple(orphan_episode_ids(store, run_id)))


def _print_outcome(store: Store, report: RunReport) -> None:
    from shardscope import output

    summary = run_summary(store, report.run_id) if store.exists() else None
    output.print_run_report(report, summary, store.path)


def build_spec(**options: Any) -> MatrixSpec:
    return MatrixSpec(
        suites=split_list(options["suites"]),
        models=split_list(options["models"]),
        scaffolds=split_list(options["scaffolds"]),
        seeds=options["seeds"],
        tasks=split_list(options["tasks"]),
        limit_tasks=options["limit"],
        scaffold_params=scaffold_params(options["params"]),
        concurrency={k: _int(v, "--concurrency") for k, v in
                     parse_assignments(options["concurrency"], "--concurrency").items()},
        logprobs=options["logprobs"],
        ablations=options.get("ablate") or "",
        reuse_baselines=bool(options.get("reuse_baselines")),
        name=options.get("name") or "",
    )


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{what} values must be whole numbers, got {value!r}") from None


def settings_for(db: Path | None) -> Settings:
    return load_settings(db=db)
