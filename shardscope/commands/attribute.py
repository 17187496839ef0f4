"""`shardscope attribute`: likelihood attribution of recorded episodes (see
:mod:`shardscope.analysis.attribution`), stored in the ``attributions`` table and printed per
model x shard with standard errors clustered by task, and what it cost."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from shardscope.analysis import attribution as attr
from shardscope.config.errors import ConfigError, ShardscopeError
from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.registry import build_backend, kind_of, load_catalog
from shardscope.scaffolds.tasks.loader import get_suite
from shardscope.scaffolds.tasks.suite import Suite
from shardscope.tracer.queries import attributions as q
from shardscope.tracer.store import Store

KEY = ["episode_id", "span_id", "shard", "mode"]  # one attribution row
Key = tuple[str, str, str, str]
CUT_NOTE = "output cut to its first {} characters (--output-chars)"  # in a row's detail
_CUT = re.compile(r"output cut to its first (\d+) characters")
NO_MESSAGES = ("the store has no recorded message content for these calls (recorded with "
               "capture_content = false): likelihood attribution scores the recorded output "
               "under the recorded input; re-run with content capture on")


@dataclass
class AttributionRun:
    """What one `attribute` did: rows, the models it could not score, the cost."""

    rows: pd.DataFrame
    unscorable: dict[str, str] = field(default_factory=dict)
    forward_passes: int = 0
    evaluated_tokens: int = 0
    episodes: int = 0
    seconds: float = 0.0
    written: int = 0  # rows this run wrote to the store
    skipped: int = 0  # call x shard x mode rows already recorded, not scored again


@dataclass(frozen=True)
class Limits:
    """Which recorded calls to score: suites, scaffolds, the first ``steps`` calls of each
    episode, tasks whose id matches a ``tasks`` pattern (fnmatch, as ``ablate --tasks``),
    and each output cut to its first ``output_chars`` characters (a cheaper, partial
    attribution: the rows' ``output_tokens`` say what was scored, and a cut row's ``detail``
    says where it was cut; ``cut`` holds it per call, None where the output was shorter)."""

    suites: Sequence[str] = ()
    scaffolds: Sequence[str] = ()
    steps: int | None = None
    output_chars: int | None = None
    tasks: Sequence[str] = ()

    def select(self, calls: pd.DataFrame) -> pd.DataFrame:
        if self.suites:
            calls = calls[calls.suite.isin(list(self.suites))]
        if self.scaffolds:
            calls = calls[calls.scaffold.isin(list(self.scaffolds))]
        if self.tasks:
            calls = calls[[any(fnmatch.fnmatch(t, p) for p in self.tasks) for t in calls.task_id]]
        if self.steps is not None:
            calls = calls[calls.groupby("episode_id").cumcount() < self.steps]
        if self.output_chars is not None:
            longer = (calls.output.str.len() > self.output_chars).tolist()
            calls = calls.assign(output=calls.output.str.slice(0, self.output_chars),
                                 cut=[self.output_chars if c else None for c in longer])
        if calls.empty:
            raise attr.AttributionError("no recorded llm calls of baseline episodes in these "
                                        "suites, scaffolds and tasks: check --suite, --scaffolds and --tasks")
        return calls


def scorer_for(model: str, settings: Settings) -> Any:
    """The model's backend when it can score a given output, else an AttributionError."""
    try:
        entry = load_catalog(settings.models_file).get(model)
    except ConfigError as exc:
        raise attr.AttributionError(f"cannot load {model!r} to score its calls: {exc}") from None
    kind = kind_of(entry)
    if kind.name == "openai-compatible" and entry.base_url:
        return _completions_scorer(entry)
    if kind.name != "local":
        raise attr.AttributionError(
            f"model {model!r} ({kind.name} backend) cannot score a recorded output: hosted chat "
            "APIs return no log-probabilities of a given text; `shardscope ablate` measures "
            "its shard influence from outcomes instead")
    return build_backend(entry)


def _completions_scorer(entry: Any) -> Any:
    """A scorer over the server's /v1/completions, when it returns prompt log-probabilities."""
    from shardscope.scaffolds.backends.errors import BackendError
    from shardscope.scaffolds.backends.openai_scoring import CompletionsScorer

    key = os.environ.get(entry.api_key_env) if entry.api_key_env else None
    scorer = CompletionsScorer(str(entry.base_url), entry.model, key,
                               template=entry.options.get("scoring_template"))
    try:
        scorer.probe()
    except BackendError as exc:
        raise attr.AttributionError(
            f"model {entry.id!r} cannot score a recorded output here: {exc}; `shardscope "
            "ablate` measures its shard influence from outcomes instead") from None
    return scorer


def _rendered(calls: pd.DataFrame, scorers: dict[str, Any]) -> pd.DataFrame:
    """Calls of HTTP-served models get the text their chat request rendered to as prompt."""
    calls = calls.copy()
    for model, scorer in scorers.items():
        render = getattr(scorer, "render_messages", None)
        need = (calls.model == model) & calls.prompt.isna() & calls.request_messages.notna()
        if render is None or not need.any():
            continue
        try:
            calls.loc[need, "prompt"] = [render(json.loads(m)) for m in calls.request_messages[need]]
        except ShardscopeError as exc:
            raise attr.AttributionError(str(exc)) from None
    return calls


def calls_frame(store: Store, run_ids: Sequence[str], models: Sequence[str]) -> pd.DataFrame:
    calls = q.recorded_calls(store, run_ids, models)
    if calls.empty:
        known = "" if not models else f" of {', '.join(models)}"
        raise attr.AttributionError(
            f"no recorded llm calls{known} in baseline episodes of the selection: "
            "run `shardscope run` first (or check --run and --models)")
    if calls.prompt.isna().all() and not calls.has_messages.any():
        raise attr.AttributionError(NO_MESSAGES)
    return calls


def scorable_calls(store: Store, settings: Settings, run_ids: Sequence[str],
                   models: Sequence[str], limits: Limits | None, scorers: dict[str, Any] | None,
                   unscorable: dict[str, str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The selection's recorded calls that can be scored (a rendered prompt and a raw output,
    a model that scores), and each model's scorer; why the others cannot goes to
    ``unscorable``. An AttributionError when none can."""
    calls = (limits or Limits()).select(calls_frame(store, run_ids, models))
    scorers = dict(scorers or {})
    for model in sorted(calls.model.unique()):
        if model not in scorers:
            try:
                scorers[model] = scorer_for(model, settings)
            except attr.AttributionError as exc:
                unscorable[model] = str(exc)
    calls = _rendered(calls, scorers)
    usable = calls[calls.model.isin(list(scorers)) & calls.prompt.notna() & calls.output.notna()]
    for model in sorted(set(calls.model) - set(usable.model) - set(unscorable)):
        unscorable[model] = (f"model {model!r}: its calls recorded no rendered prompt "
                             "and raw output to score")
    if usable.empty:
        raise attr.AttributionError("; ".join(unscorable.values()) or NO_MESSAGES)
    return usable, scorers


def run_attribution(store: Store, settings: Settings, *, run_ids: Sequence[str] = (),
                    models: Sequence[str] = (), modes: Sequence[str] = attr.MODES,
                    scorers: dict[str, Any] | None = None, limits: Limits | None = None,
                    rescore: bool = False, progress: Callable[[str], None] | None = None,
                    shield: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext
                    ) -> AttributionRun:
    """Score every recorded call of the selection under each shard removed / replaced.

    Each episode's rows are written to the store as soon as it is scored (one transaction),
    so a killed run keeps what it finished. A call x shard x mode already in the store is
    skipped (``skipped`` counts them) unless ``rescore``, or unless it was scored on an output
    cut elsewhere than this run cuts it (``--output-chars``; a whole output is always kept):
    re-running a killed command resumes it. ``rows`` holds the whole selection's rows, the
    skipped ones as stored. Each write runs inside ``shield()`` (the command's: a signal
    waits for the write to end)."""
    result = AttributionRun(pd.DataFrame(columns=attr.ROW_COLUMNS))
    usable, scorers = scorable_calls(store, settings, run_ids, models, limits, scorers,
                                     result.unscorable)
    episode_ids = list(usable.episode_id.unique())
    tools = q.tool_results(store, episode_ids)
    stored = _stored(store, episode_ids, rescore)
    suites: dict[str, Suite] = {}
    rows: list[dict[str, object]] = []
    kept: set[Key] = set()
    start = time.perf_counter()
    for number, (episode_id, episode) in enumerate(usable.groupby("episode_id", sort=False), 1):
        first = episode.iloc[0]
        suite = suites.get(first.suite) or suites.setdefault(
            first.suite, get_suite(first.suite, settings.suites_dir))
        task = suite.task(first.task_id)
        episode_tools = tools[tools.episode_id == episode_id]
        results = {name: list(g.result) for name, g in episode_tools.groupby("tool_name")}
        recorded = [attr.RecordedCall(c.run_id, c.episode_id, c.span_id, int(c.step_index or 0),
                                      c.model, c.suite, c.task_id, c.prompt, c.output)
                    for c in episode.itertuples()]
        shards = attr.shard_texts(task, results)
        cuts = {c.span_id: _cut_of(getattr(c, "cut", None)) for c in episode.itertuples()}
        have = {k for k in ((str(episode_id), c.span_id, s.shard, m) for c in recorded
                            for s in shards for m in modes)
                if k in stored.cuts and stored.cuts[k] in (None, cuts[k[1]])}
        new: list[dict[str, object]] = []
        for needed, todo in _todo(recorded, shards, modes, have).items():
            scored = attr.attribute_episode(recorded, todo,
                                            scorers[first.model].score_continuation, needed)
            result.forward_passes += len(recorded) + sum(1 for r in scored
                                                         if r["status"] == "scored")
            new += [_noting_cut(r, cuts[str(r["span_id"])]) for r in scored
                    if (r["episode_id"], r["span_id"], r["shard"], r["mode"]) not in have]
        if new:
            with shield():
                result.written += q.write_attributions(
                    store, pd.DataFrame(new, columns=attr.ROW_COLUMNS))
        result.skipped += len(have)
        kept |= have
        rows += new
        if progress is not None:
            progress(f"[{number}/{len(episode_ids)}] {first.model} {first.suite}/{first.task_id}: "
                     f"{len(new)} rows written, {len(have)} skipped as already recorded")
    result.seconds = time.perf_counter() - start
    result.rows = pd.DataFrame(rows, columns=attr.ROW_COLUMNS)
    result.evaluated_tokens = int(pd.to_numeric(result.rows.evaluated_tokens).sum())  # this run's
    if kept:
        result.rows = pd.concat([stored.of(kept), result.rows], ignore_index=True)
    result.episodes = len(episode_ids)
    return result


def _todo(calls: Sequence[attr.RecordedCall], shards: Sequence[attr.ShardText],
          modes: Sequence[str], have: set[Key]) -> dict[tuple[str, ...], list[attr.ShardText]]:
    """The shards to score, by the modes each one still lacks a row of: a run with
    ``--mode both`` after one with ``--mode removed`` scores only the replaced variants."""
    todo: dict[tuple[str, ...], list[attr.ShardText]] = {}
    for shard in shards:
        needed = tuple(m for m in modes if any((c.episode_id, c.span_id, shard.shard, m) not in have
                                               for c in calls))
        if needed:
            todo.setdefault(needed, []).append(shard)
    return todo


@dataclass(frozen=True)
class _Stored:
    """The attribution rows already in the store for the selection's episodes, and where each
    one's output was cut (None: the whole output was scored)."""

    rows: pd.DataFrame
    cuts: dict[Key, int | None]

    def of(self, keys: set[Key]) -> pd.DataFrame:
        """The stored rows of these keys, as ``ROW_COLUMNS``."""
        mine = [k in keys for k in self.rows[KEY].itertuples(index=False, name=None)]
        return self.rows[mine].reindex(columns=attr.ROW_COLUMNS)


def _stored(store: Store, episode_ids: Sequence[str], rescore: bool) -> _Stored:
    """What a resumed run may keep (nothing under ``rescore``)."""
    if rescore:
        return _Stored(pd.DataFrame(columns=attr.ROW_COLUMNS), {})
    rows = q.read_attributions(store, episode_ids=episode_ids)
    cuts = {tuple(k[:4]): _cut_in(k[4]) for k in
            rows[[*KEY, "detail"]].itertuples(index=False, name=None)}
    return _Stored(rows, cuts)


def _cut_in(detail: object) -> int | None:
    found = _CUT.search(detail) if isinstance(detail, str) else None
    return int(found.group(1)) if found else None


def _cut_of(value: object) -> int | None:
    return None if value is None or pd.isna(value) else int(value)  # type: ignore[call-overload]


def _noting_cut(row: dict[str, object], cut: int | None) -> dict[str, object]:
    """A row scored on a cut output says so in its ``detail``: a run over the whole output
    scores it again instead of keeping it."""
    if cut is None:
        return row
    notes = (str(row["detail"] or ""), CUT_NOTE.format(cut))
    return {**row, "detail": "; ".join(n for n in notes if n)}


def print_attribution(console: Console, run: AttributionRun) -> None:
    for message in run.unscorable.values():
        console.print(f"[yellow]not scored:[/] {message}")
    summary = attr.attribution_summary(run.rows)
    table = Table(title="likelihood attribution: Δ log p of the recorded action when the shard "
                        "is ablated (per episode, SE clustered by task, 95% CI)",
                  title_justify="left")
    for col in ("model", "shard", "mode", "episodes", "tasks", "Δ log p", "95% CI", "located",
                "not found", "unlocatable"):
        table.add_column(col, justify="left" if col in ("model", "shard", "mode") else "right")
    for r in summary.itertuples():
        table.add_row(r.model, r.shard, r.mode, str(r.episodes), str(r.tasks),
                      f"{r.mean:.2f} ± {r.se:.2f}", f"[{r.ci_low:.2f}, {r.ci_high:.2f}]",
                      str(r.located), str(r.not_found), str(r.unlocatable))
    console.print(table)
    missing = run.rows[run.rows.status.isin(["not_found", "unlocatable", "no_replacement"])]
    for (shard, status), group in missing.groupby(["shard", "status"]):
        detail = next((d for d in group.detail if d), "")
        console.print(f"shard {shard!r}: {status} in {len(group)} call(s)"
                      + (f" ({detail})" if detail else ""))
    console.print(
        f"cost: {run.forward_passes} forward passes ({run.evaluated_tokens} tokens evaluated, "
        f"{run.seconds:.1f} s) for {run.episodes} episodes ({run.skipped} rows skipped as "
        f"already recorded); outcome ablation of the same "
        f"shards would run {ablation_episodes(run.rows)} episodes")


def ablation_episodes(rows: pd.DataFrame) -> int:
    """Episodes outcome ablation runs for these rows: one per episode x shard of its task x
    mode (not every shard name of the suite for every episode)."""
    return len(rows[["episode_id", "shard", "mode"]].drop_duplicates())


def attribute_command(store: Store, settings: Settings, *, run_ids: Sequence[str],
                      models: Sequence[str], modes: Sequence[str],
                      limits: Limits | None = None, rescore: bool = False) -> int:
    """Score, writing each episode as it is done; Ctrl-C or SIGTERM stops between writes
    (exit 130 / 143), and the same command run again resumes where it stopped."""
    console = Console()
    progress = Console(stderr=True)
    with _stop_signals() as stops:
        try:
            run = run_attribution(store, settings, run_ids=run_ids, models=models, modes=modes,
                                  limits=limits, rescore=rescore, shield=stops.writing,
                                  progress=lambda line: progress.print(line, highlight=False,
                                                                         soft_wrap=True))
        except _Terminated:
            progress.print("terminated: every episode scored so far is in the store; run the "
                           "same command again to resume", soft_wrap=True)
            return 128 + signal.SIGTERM
        except KeyboardInterrupt:
            progress.print("interrupted: every episode scored so far is in the store; run the "
                           "same command again to resume", soft_wrap=True)
            return 130
    print_attribution(console, run)
    console.print(f"{run.written} rows written, {run.skipped} skipped as already recorded; "
                  f"{len(run.rows)} rows in the store's `attributions` table for this selection")
    print_agreement(console, store, run.rows)
    return 0


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread between writes."""


class _Stops:
    """SIGTERM raises :class:`_Terminated` and SIGINT ``KeyboardInterrupt``, except while an
    episode's rows are written: there the signal waits for the write to end. Raised inside
    it, it could land after the write's COMMIT, whose ROLLBACK then failed with a DuckDB
    TransactionException (a traceback instead of exit 143). A second signal during a write
    (one waiting on the store's lock) stops at once."""

    def __init__(self) -> None:
        self._writing = False
        self._pending: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self._writing and self._pending is None:
            self._pending = signum
            return
        self._raise(signum)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        self._writing = True
        try:
            yield
        finally:
            self._writing = False
        if self._pending is not None:
            self._raise(self._pending)

    @staticmethod
    def _raise(signum: int) -> None:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise _Terminated


@contextlib.contextmanager
def _stop_signals() -> Iterator[_Stops]:
    stops = _Stops()
    if threading.current_thread() is not threading.main_thread():
        yield stops
        return
    previous = {s: signal.signal(s, stops.handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stops
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def print_agreement(console: Console, store: Store, rows: pd.DataFrame) -> None:
    """Where outcome ablation measured the same shards: rank correlation and sign agreement."""
    from shardscope.analysis.agreement import agreement, pooled_agreement
    from shardscope.analysis.compare import ablation_detail
    from shardscope.tracer.queries.comparison import Selection

    if rows.empty:
        return
    suites = tuple(sorted(rows.suite.dropna().unique()))
    influence, pairs = ablation_detail(store, Selection(suites=suites))
    if influence.empty:
        return
    stored = q.stored_attributions(store, suites=suites)
    mine = stored[stored.span_id.isin(rows.span_id)]
    found = agreement(mine, influence)
    if not found.cells:
        return
    console.print(
        f"agreement with outcome ablation ({found.outcome_value}): {found.cells} model · "
        f"scaffold x task x shard cells measured both ways; Spearman rank correlation "
        f"{found.spearman:.2f} (p = {found.p_value:.3f}); where the outcome interval excludes "
        f"0 ({found.significant} cells) the likelihood delta has its sign in {found.same_sign}; "
        f"{found.nonzero} cells have a nonzero outcome influence; Spearman with the trajectory "
        f"change {found.trajectory_spearman:.2f} ({found.trajectory_cells} cells)")
    pooled = pooled_agreement(mine, pairs)
    if pooled is not None and pooled.cells:
        console.print(
            f"pooled over tasks (a shard name on 2 or more tasks, intervals clustered by task): "
            f"{pooled.cells} model · scaffold x shard cells; Spearman {pooled.spearman:.2f} "
            f"(p = {pooled.p_value:.3f}); where the outcome interval excludes 0 "
            f"({pooled.significant} cells) the likelihood delta has its sign in {pooled.same_sign}")
