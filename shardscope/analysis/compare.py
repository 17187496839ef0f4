"""One comparison of systems (model · scaffold) over a selection of the store: what
``shardscope compare``, its report and the app's Compare and Shards pages show."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from shardscope.analysis import clusters as clustering
from shardscope.analysis import influence, stats, trajectory
from shardscope.config.errors import ShardscopeError
from shardscope.tracer.queries import comparison as reads
from shardscope.tracer.queries.frames import Source
from shardscope.tracer.store import Store


class NothingToCompare(ShardscopeError):
    """The selection has too few episodes or systems to compare."""


@dataclass(frozen=True)
class PairDivergence:
    a: str
    b: str
    table: pd.DataFrame  # one row per pair of episodes (trajectory.divergence_table)
    summary: dict[str, Any]


@dataclass(frozen=True)
class Comparison:
    selection: reads.Selection
    metric: str
    alpha: float
    correction: str
    systems: tuple[str, ...]
    episodes: pd.DataFrame  # baselines of the selection, with a ``system`` column
    estimates: pd.DataFrame  # per system, both metrics
    comparisons: pd.DataFrame  # every pair of systems, paired test on the chosen metric
    divergences: tuple[PairDivergence, ...]
    tool_profile: pd.DataFrame
    behaviour: pd.DataFrame
    influence: pd.DataFrame  # per suite, shard, model, scaffold, mode (empty: no ablations)
    # per shard name over the tasks declaring it, names on 2+ tasks (influence.pooled_influence)
    pooled_influence: pd.DataFrame = field(default_factory=pd.DataFrame)
    clusters: clustering.Clusters | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    paths: dict[str, list[trajectory.Action]] = field(default_factory=dict)  # episode -> actions
    # `shardscope attribute` rows of the selection's baselines, with ``system`` (empty: none,
    # or not read: ``compare(likelihood=False)``)
    likelihood: pd.DataFrame = field(default_factory=pd.DataFrame)
    # per system: answers under replaced shards declaring implied_answer (follows.follow_table)
    follows: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def has_ablations(self) -> bool:
        return not self.influence.empty


def with_systems(episodes: pd.DataFrame) -> pd.DataFrame:
    if episodes.empty:
        return episodes.assign(system=pd.Series(dtype=str))
    return episodes.assign(system=stats.system_column(episodes))


def check_selection(episodes: pd.DataFrame, store: Source, selection: reads.Selection) -> None:
    """A clear error when there is nothing (or one system only) to compare."""
    if episodes.empty:
        known = reads.available(store)
        raise NothingToCompare(
            "no finished episode matches the selection"
            + "".join(f"; {k} in the store: {', '.join(v) or 'none'}" for k, v in known.items()))
    missing = [m for m in selection.models if m not in set(episodes.model)]
    if missing:
        raise NothingToCompare(f"no episode of model(s) {', '.join(missing)} in the selection; "
                               f"models there: {', '.join(sorted(set(episodes.model)))}")
    if episodes.system.nunique() < 2:
        raise NothingToCompare(
            f"only one model · scaffold in the selection ({episodes.system.iloc[0]}): pass two "
            "or more models (--models a,b) or scaffolds")


def compare(store: Store, selection: reads.Selection, *, metric: str = "success",
            alpha: float = 0.05, correction: str = "holm", clusters: bool = True,
            cluster_method: str = "auto", systems: Sequence[str] | None = None,
            likelihood: bool = True) -> Comparison:
    """Everything the comparison shows, from one pass over the store. ``systems`` keeps
    only these model · scaffold labels; ``likelihood=False`` leaves the stored likelihood
    attributions unread (the app's Compare page shows none: looking for their table cost
    ~5-12 ms of a page load on the 1M-span bench store)."""
    if metric not in stats.METRICS:
        raise ShardscopeError(f"unknown metric {metric!r}; choose from {', '.join(stats.METRICS)}")
    if correction not in ("holm", "bh", "none"):
        raise ShardscopeError(f"unknown correction {correction!r}; choose holm, bh or none")
    with store.reader() as con:  # one connection for every read of the comparison
        episodes = with_systems(reads.episodes(con, selection, systems=systems))
        check_selection(episodes, con, selection)
        ablation = reads.ablation_episodes(con, selection)
        baselines = episodes.episode_id.tolist()
        steps = reads.step_rows(con, baselines + ablation.episode_id.tolist())
        use = reads.tool_use_of(con, baselines)
        paths = trajectory.paths_of(steps)  # one action per step read, by episode
        # Episodes with no step (agents traced by other instrumentations): their tool calls
        # are their trajectories. Only theirs are read.
        unstepped = [e for e in baselines if e not in paths]
        calls = reads.tool_calls_of(con, unstepped) if unstepped else None
        attributions = likelihood_rows(con, episodes) if likelihood else pd.DataFrame()
    recorded = pd.Series({e: len(p) for e, p in paths.items()}, dtype="int64")
    present = set(episodes.system.tolist())
    chosen = tuple(s for s in (systems or sorted(present)) if s in present)
    if calls is not None:
        paths |= trajectory.tool_paths(calls, set(paths))
    episodes = _with_repeat_keys(_with_counts(episodes, recorded, use), paths)
    pairs = influence.ablation_pairs(ablation, paths, trajectory.distance)
    comparisons = stats.compare_systems(episodes, metric, alpha=alpha, correction=correction,
                                        only=chosen)
    divergences = tuple(
        _divergence(episodes, paths, a, b) for a, b in itertools.combinations(chosen, 2))
    notes = _notes(episodes, comparisons)
    return Comparison(
        selection=selection, metric=metric, alpha=alpha, correction=correction, systems=chosen,
        episodes=episodes,
        estimates=_estimates(episodes),
        comparisons=stats.comparisons_frame(comparisons),
        divergences=divergences,
        tool_profile=trajectory.tool_profile(use, episodes.system.set_axis(episodes.episode_id)),
        behaviour=trajectory.behaviour_profile(episodes, paths),
        influence=influence.shard_influence(pairs),
        pooled_influence=influence.pooled_influence(pairs),
        clusters=answer_clusters(episodes, cluster_method) if clusters else None,
        notes=notes,
        paths=paths,
        likelihood=attributions,
        follows=follow_rates(pairs),
    )


def likelihood_rows(store: Source, episodes: pd.DataFrame) -> pd.DataFrame:
    """The stored likelihood attributions of these baseline episodes, with their system."""
    from shardscope.tracer.queries.attributions import stored_attributions

    if episodes.empty:
        return pd.DataFrame()
    rows = stored_attributions(store, suites=sorted(episodes.suite.dropna().unique()))
    rows = rows[rows.episode_id.isin(set(episodes.episode_id))]
    if rows.empty:
        return rows
    return rows.assign(system=stats.system_column(rows))


def follow_rates(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per system, follow / keep / other under replaced shards declaring ``implied_answer``
    (tasks from the shipped suites and the ``suites_dir`` setting)."""
    from shardscope.analysis import follows
    from shardscope.config.settings import load_settings

    pairs = pairs.assign(system=stats.system_column(pairs))
    return follows.follow_table(pairs, follows.suite_tasks(load_settings().suites_dir), by="system")


def _with_counts(episodes: pd.DataFrame, recorded: pd.Series, use: pd.DataFrame) -> pd.DataFrame:
    """Steps (where the episode did not record them: it failed; ``recorded``: steps read per
    episode id) and tool calls per episode (``use``: a ``tool_use_of`` frame)."""
    made = use.groupby("episode_id").calls.sum()
    ids = episodes.episode_id
    return episodes.assign(
        steps=episodes.steps.fillna(ids.map(recorded)).fillna(0).astype(int),
        tool_calls=ids.map(made).fillna(0).astype(int))


def _with_repeat_keys(episodes: pd.DataFrame,
                      paths: dict[str, list[trajectory.Action]]) -> pd.DataFrame:
    """Each episode's fingerprint (its steps' outputs, outcome, answer): the estimates count
    byte-identical repeats of a task once."""
    text = operator.attrgetter("text")
    keys = [stats.repeat_key(list(map(text, paths.get(e, ()))), o, f) for e, o, f in
            zip(episodes.episode_id.tolist(), episodes.outcome.tolist(),
                episodes.final_answer.tolist(), strict=True)]
    return episodes.assign(**{stats.REPEAT_KEY: keys})


def _estimates(episodes: pd.DataFrame) -> pd.DataFrame:
    both = stats.estimates_of(episodes, ("success", "score"))
    success, score = both["success"], both["score"]
    # One grouping made both frames: the same systems in the same rows (what a merge on the
    # system keys gave, without its cost).
    keys = list(stats.SYSTEM_KEYS)
    if not success[keys].equals(score[keys]):
        raise RuntimeError("the metrics' estimates are not of the same systems")
    merged = success.assign(mean_score=score["mean"].to_numpy(), score_se=score["se"].to_numpy())
    merged.insert(0, "system", stats.system_column(merged))
    return merged.rename(columns={"mean": "success_rate", "se": "success_se"})


def _divergence(episodes: pd.DataFrame, paths: dict[str, list[trajectory.Action]], a: str,
                b: str) -> PairDivergence:
    pairs = trajectory.pair_episodes(episodes, a, b)
    table = trajectory.divergence_table(pairs, paths)
    return PairDivergence(a, b, table, trajectory.divergence_summary(table))


def shard_influence(ablation: pd.DataFrame,
                    paths: dict[str, list[trajectory.Action]]) -> pd.DataFrame:
    """Influence per suite x shard x model x scaffold x mode (each task's shards by name)."""
    return influence.shard_influence(influence.ablation_pairs(ablation, paths, trajectory.distance))


def influence_for(store: Store, selection: reads.Selection) -> pd.DataFrame:
    """Shard influence of the selection's ablation episodes against their baselines."""
    return ablation_detail(store, selection)[0]


def ablation_detail(store: Store, selection: reads.Selection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shard influence, and every ablated episode beside its baseline (for drilling down)."""
    with store.reader() as con:
        ablation = reads.ablation_episodes(con, selection)
        steps = reads.step_rows(con, list(ablation.episode_id)) if len(ablation) else None
    paths = trajectory.paths_of(steps) if steps is not None else {}
    pairs = influence.ablation_pairs(ablation, paths, trajectory.distance)
    return influence.shard_influence(pairs), pairs


def answer_clusters(episodes: pd.DataFrame, method: str = "auto") -> clustering.Clusters:
    """Clusters of the final answers (or, without one, the last step's output)."""
    frame = episodes.assign(model=episodes.system, text=episodes.final_answer.fillna(""))
    return clustering.cluster_texts(frame[["model", "episode_id", "task_id", "text"]], method=method)


def _notes(episodes: pd.DataFrame, comparisons: list[stats.PairedComparison]) -> tuple[str, ...]:
    notes = []
    tasks = episodes.groupby("system").task_id.nunique()
    if tasks.min() < stats.SMALL_SAMPLE:
        notes.append(
            f"{int(tasks.min())} tasks per system at the least: p-values come from a sign-flip "
            "permutation test and intervals from inverting it (normal theory needs "
            f"about {stats.SMALL_SAMPLE})")
    if any(c.tasks < 2 for c in comparisons):
        notes.append("some pairs share fewer than two tasks: no test for them")
    seeds = episodes.groupby(["system", "suite", "task_id"]).size()
    if seeds.max() > 1:
        notes.append("tasks repeated over seeds: each task's repeats are averaged before pairing, "
                     "and standard errors are clustered by task")
    if stats.REPEAT_KEY in episodes:
        same = int(episodes.duplicated(["system", "suite", "task_id", stats.REPEAT_KEY]).sum())
        if same:
            notes.append(f"{same} of {len(episodes)} episodes repeat another seed of their task "
                         "byte for byte (temperature 0?): the error bars count each such repeat "
                         "once, as it is no new evidence")
    return tuple(notes)
