"""Statistics that hold up, after Miller (2024), "Adding Error Bars to Evals: A Statistical
Approach to Language Model Evaluations" (arXiv:2411.00640).

What the paper recommends, and where it is here:

- Report a standard error with every mean, and treat tasks (not episodes) as the unit that
  was sampled: episodes of one task repeated over seeds are not independent, so standard
  errors are clustered by task (:func:`estimate`, CR1 cluster-robust estimator).
- Compare two models on the *same* tasks with paired differences: average each task's
  repeats first (which removes within-task noise), then test the per-task differences
  (:func:`paired_comparison`). Pairing removes the variance the models share.
- Success rates: a t interval around a rate can leave [0, 1] (2/12 over 6 tasks gave
  [-26%, 60%]). :func:`rate_interval` is a Wilson interval on the effective sample size
  (episodes divided by the design effect that clustering by task causes), with the t
  quantile on clusters - 1 degrees of freedom (Korn and Graubard 1998): inside [0, 1], and
  as wide as the clustering demands.
- Small samples: the normal approximation is poor, so below ``SMALL_SAMPLE`` tasks the
  p-value comes from a sign-flip permutation test (exact up to 16 tasks) and the interval
  from inverting that same test (:func:`sign_flip_interval`): every difference the test does
  not reject, so interval and p-value always agree (a percentile bootstrap disagreed with the
  test in 10-18% of simulated comparisons and covered 0.905 at 8 tasks).
- Power: :func:`minimum_detectable_effect` says how large a difference the sample at hand
  can detect (80% power at alpha 0.05 by default); :func:`mde_for_rates` plans a sample.
- Many comparisons: :func:`adjust_pvalues` (Holm by default, Benjamini-Hochberg on request).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import pandas as pd
from scipy import stats as sps

SMALL_SAMPLE = 30  # below this many paired tasks: permutation p-value, bootstrap interval
EXACT_PERMUTATION = 16  # up to this many: enumerate every sign flip (2^16 = 65,536)
RESAMPLES = 20_000
METRICS = ("success", "score")
SYSTEM_KEYS = ("model", "scaffold")  # what is being compared
TASK_KEYS = ("suite", "task_id")  # the unit that was sampled


@dataclass(frozen=True)
class Estimate:
    """A mean with its standard error and interval; ``clusters`` tasks, ``n`` episodes."""

    mean: float
    se: float
    n: int
    clusters: int
    ci_low: float
    ci_high: float
    clustered: bool  # False when there were too few clusters to cluster by
    repeats: int = 0  # byte-identical repeats of a cluster's episodes among the values


def cr1_se(residual_sums: np.ndarray, n: float) -> float:
    """The CR1 cluster-robust standard error of a mean over ``n`` observations, from each
    cluster's sum of residuals (x - mean): sqrt(G/(G-1) * sum_g r_g^2) / n, G >= 2."""
    groups = len(residual_sums)
    return math.sqrt(groups / (groups - 1) * float(np.sum(np.square(residual_sums)))) / n


def clustered_se(values: np.ndarray, clusters: np.ndarray | None = None,
                 weights: np.ndarray | None = None) -> tuple[float, bool]:
    """Standard error of the mean of ``values``, cluster-robust (CR1) when ``clusters`` is
    given and has two or more groups; else the plain sample SE. ``weights`` are frequency
    weights (a value standing for that many observations). Returns (se, clustered)."""
    x = np.asarray(values, dtype=float)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    n = float(w.sum())
    if n < 2:
        return math.nan, False
    deviations = x - float(w @ x) / n
    if clusters is not None:
        labels = pd.factorize(np.asarray(clusters, dtype=object))[0]
        if labels.max() + 1 >= 2:
            return cr1_se(np.bincount(labels, weights=w * deviations), n), True
    return math.sqrt(float(w @ np.square(deviations)) / (n - 1) / n), False


def estimate(values: Sequence[float] | np.ndarray, clusters: Sequence[object] | None = None,
             confidence: float = 0.95, *, weights: Sequence[float] | np.ndarray | None = None,
             repeats: Sequence[object] | None = None) -> Estimate:
    """Mean, clustered SE and a t interval (degrees of freedom: clusters - 1).

    The one estimator of a mean with its error bars: the Overview, the CLI run summary,
    ``compare`` and the report all call it. ``weights`` are whole frequency weights (a row of
    aggregated counts stands for that many episodes); NaN values and zero weights are dropped.
    ``repeats`` fingerprints each value's episode (e.g. :func:`repeat_key`): rows of one
    cluster with the same fingerprint are byte-identical repeats (seeds at temperature 0),
    not independent evidence. With two or more clusters the CR1 SE already treats a cluster
    as one unit (duplicating a cluster's rows leaves it unchanged), so only the count of
    repeats is reported; with fewer, where the plain SE would count each repeat as a new
    observation, the repeats are counted once.
    """
    x = np.asarray(values, dtype=float)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    keep = ~np.isnan(x) & (w > 0)
    x, w = x[keep], w[keep]
    labels = None if clusters is None else np.asarray(clusters, dtype=object)[keep]
    collapsed = 0
    if repeats is not None:
        fingerprints = np.asarray(repeats, dtype=object)[keep]
        seen: set[tuple[object, object]] = set()
        firsts: list[bool] = []
        for key in zip(labels.tolist() if labels is not None else [None] * len(x),
                       fingerprints.tolist(), strict=True):
            firsts.append(key not in seen)
            seen.add(key)
        first = np.array(firsts, dtype=bool)
        collapsed = int(len(x) - first.sum())
        if labels is None or len(set(labels.tolist())) < 2:
            x, w = x[first], np.minimum(w[first], 1.0)
            labels = labels[first] if labels is not None else None
    n = round(float(w.sum()))
    if n == 0:
        return Estimate(math.nan, math.nan, 0, 0, math.nan, math.nan, False, collapsed)
    se, clustered = clustered_se(x, labels, w)
    groups = len(set(labels.tolist())) if labels is not None else n
    mean = float(w @ x) / float(w.sum())
    half = _t(confidence, (groups if clustered else n) - 1) * se if math.isfinite(se) else math.nan
    return Estimate(mean, se, n, groups, mean - half, mean + half, clustered, collapsed)


REPEAT_KEY = "repeat_key"  # an episodes column: what makes two repeats of a task the same work


def repeat_key(outputs: Sequence[str | None], outcome: object, answer: object) -> str:
    """An episode's fingerprint: every step's model output, its outcome and final answer.
    Equal fingerprints within a task are byte-identical repeats."""
    text = "\x1f".join([o or "" for o in outputs]) + f"\x1e{outcome}\x1e{answer}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rate_interval(est: Estimate, confidence: float = 0.95) -> tuple[float, float]:
    """A success rate's interval inside [0, 1] that accounts for clustering: Wilson's score
    interval on the effective sample size n / deff, where the design effect deff is the
    clustered variance over the binomial one (at least 1, at most n / clusters: no fewer
    effective observations than tasks), and the t quantile on clusters - 1 df. At a rate of
    0 or 1 the design effect cannot be estimated and the conservative n = clusters is used."""
    p, n = est.mean, est.n
    if n == 0 or not math.isfinite(p):
        return math.nan, math.nan
    groups = est.clusters if est.clustered else n
    binomial = p * (1 - p) / n
    if binomial <= 0:
        n_eff = float(groups)
    elif not math.isfinite(est.se):
        n_eff = float(n)
    else:
        deff = min(max(est.se**2 / binomial, 1.0), n / groups)
        n_eff = n / deff
    z = _t(confidence, groups - 1)
    return wilson(p, n_eff, z)


def wilson(p: float, n: float, z: float) -> tuple[float, float]:
    """Wilson's score interval for a proportion ``p`` of ``n`` (possibly effective) trials."""
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@functools.lru_cache(maxsize=1024)  # a handful of (confidence, df) per page: each ppf ~0.1 ms
def _t(confidence: float, df: int) -> float:
    return float(sps.t.ppf(0.5 + confidence / 2, max(df, 1)))


def metric_values(episodes: pd.DataFrame, metric: str) -> pd.Series:
    """Per episode: 1/0 for ``success``, the checker's score (missing = 0) for ``score``."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    if metric == "success":
        return (episodes["outcome"] == "success").astype(float)
    return pd.to_numeric(episodes["score"], errors="coerce").fillna(0.0).astype(float)


def finished(episodes: pd.DataFrame) -> pd.DataFrame:
    """Episodes with an outcome (a running episode has none yet): the frame itself when all
    have one (what a comparison reads: no copy of its ~20 columns per estimate)."""
    done = episodes["outcome"].notna()
    return episodes if bool(done.all()) else episodes[done]


MISSING_LABEL = "?"  # a label's part that is not recorded (an episode without a scaffold)


def system_label(row: pd.Series | dict[str, Any], keys: Sequence[str] = SYSTEM_KEYS) -> str:
    """The row's "model · scaffold" label (``keys`` joined by " · ")."""
    return " · ".join(MISSING_LABEL if pd.isna(row[k]) else str(row[k]) for k in keys)


def system_column(frame: pd.DataFrame, keys: Sequence[str] = SYSTEM_KEYS) -> pd.Series:
    """``system_label`` of every row, vectorized: the one place a "model · scaffold" label
    is built (the likelihood rows, follow rates and the demo use it too)."""
    if frame.empty:
        return pd.Series([], index=frame.index, dtype=object)
    parts = [frame[k].astype(object).where(frame[k].notna(), MISSING_LABEL).astype(str)
             for k in keys]
    out = parts[0]
    for part in parts[1:]:
        out = out + " · " + part
    return out


def estimates(episodes: pd.DataFrame, metric: str = "success",
              by: Sequence[str] = SYSTEM_KEYS, confidence: float = 0.95, *,
              weight: str | None = None) -> pd.DataFrame:
    """Per group in ``by``: episodes, tasks, mean of the metric, clustered SE, interval.

    ``weight`` names a column of counts when each row stands for that many episodes (the
    Overview's cube) instead of one."""
    return estimates_of(episodes, (metric,), by, confidence, weight=weight)[metric]


ESTIMATE_COLUMNS = ("episodes", "tasks", "mean", "se", "ci_low", "ci_high", "clustered",
                    "identical_repeats")


def estimates_of(episodes: pd.DataFrame, metrics: Sequence[str],
                 by: Sequence[str] = SYSTEM_KEYS, confidence: float = 0.95, *,
                 weight: str | None = None) -> dict[str, pd.DataFrame]:
    """:func:`estimates` of each metric, grouping the episodes and labelling their tasks
    once (the Compare page shows both metrics)."""
    data = finished(episodes)
    task = system_column(data, TASK_KEYS).to_numpy()
    counts = data[weight].to_numpy(dtype=float) if weight else np.ones(len(data))
    fingerprints = data[REPEAT_KEY].to_numpy() if REPEAT_KEY in data and not weight else None
    values = {m: metric_values(data, m).to_numpy() for m in metrics}
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in metrics}
    # One column: group by its name, as a list of one makes pandas change ``groups``' keys to
    # 1-tuples (Pandas4Warning); several: the keys are tuples already.
    grouper = by[0] if len(by) == 1 else list(by)
    for key, index in data.groupby(grouper, sort=True, dropna=False).groups.items():
        key = (key,) if len(by) == 1 else key
        at = _positions(data.index, index)
        for metric in metrics:
            est = estimate(values[metric][at], task[at], confidence, weights=counts[at],
                           repeats=None if fingerprints is None else fingerprints[at])
            low, high = (rate_interval(est, confidence) if metric == "success"
                         else (est.ci_low, est.ci_high))
            rows[metric].append({**dict(zip(by, key, strict=True)), "episodes": est.n,
                                 "tasks": est.clusters, "mean": est.mean, "se": est.se,
                                 "ci_low": low, "ci_high": high, "clustered": est.clustered,
                                 "identical_repeats": est.repeats})
    return {m: pd.DataFrame(rows[m], columns=[*by, *ESTIMATE_COLUMNS]) for m in metrics}


def _positions(labels: pd.Index, group: pd.Index) -> np.ndarray:
    """Where a group's rows are, for indexing numpy arrays as ``.loc[group]`` would (the
    labels themselves when they repeat: ``.loc`` then takes every row of a label)."""
    if labels.is_unique:
        return np.asarray(labels.get_indexer(group))
    return np.asarray(labels.get_indexer_for(group))


# --- paired comparison ------------------------------------------------------------------------
@dataclass(frozen=True)
class PairedComparison:
    """System ``a`` minus system ``b`` on the tasks both ran (each task's seeds averaged)."""

    a: str
    b: str
    metric: str
    tasks: int
    mean_a: float
    mean_b: float
    diff: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str
    correlation: float  # of the two systems' per-task means: what pairing gains
    mde: float  # smallest difference this sample detects with 80% power at alpha (inf: none)
    p_adjusted: float = math.nan
    alpha: float = 0.05

    @property
    def significant(self) -> bool:
        p = self.p_adjusted if math.isfinite(self.p_adjusted) else self.p_value
        return math.isfinite(p) and p < self.alpha


def task_means(episodes: pd.DataFrame, metric: str = "success",
               systems: Sequence[str] = SYSTEM_KEYS) -> pd.DataFrame:
    """Tasks x systems table of the metric averaged over each task's repeats (seeds)."""
    data = finished(episodes)
    frame = data[list(TASK_KEYS)].astype(str).assign(
        system=system_column(data, systems),
        value=metric_values(data, metric))
    return frame.groupby([*TASK_KEYS, "system"], sort=True)["value"].mean().unstack("system")


class _PairHead(TypedDict):
    """The fields of a PairedComparison known before the test runs."""

    a: str
    b: str
    metric: str
    tasks: int
    alpha: float
    mean_a: float
    mean_b: float


def paired_comparison(a: np.ndarray, b: np.ndarray, *, labels: tuple[str, str] = ("a", "b"),
                      metric: str = "success", alpha: float = 0.05, power: float = 0.8,
                      seed: int = 0) -> PairedComparison:
    """Paired test of per-task values ``a`` and ``b`` (same tasks, same order; NaN pairs dropped)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    d = a - b
    n = len(d)
    base: _PairHead = {"a": labels[0], "b": labels[1], "metric": metric, "tasks": n, "alpha": alpha,
                "mean_a": float(a.mean()) if n else math.nan, "mean_b": float(b.mean()) if n else math.nan}
    if n < 2:
        return PairedComparison(**base, diff=float(d.mean()) if n else math.nan, se=math.nan,
                                ci_low=math.nan, ci_high=math.nan, p_value=math.nan,
                                method="too few paired tasks", correlation=math.nan, mde=math.nan)
    diff, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    if n < SMALL_SAMPLE:
        p = sign_flip_pvalue(d, seed=seed)
        low, high = sign_flip_interval(d, 1 - alpha, seed=seed)
        if metric == "success":  # a difference of rates lies in [-1, 1]
            low, high = max(low, -1.0), min(high, 1.0)
        method = f"sign-flip permutation ({'exact' if n <= EXACT_PERMUTATION else 'Monte Carlo'}), inverted for the CI"
    else:
        p = _t_pvalue(diff, se, n - 1)
        half = _t(1 - alpha, n - 1) * se
        low, high, method = diff - half, diff + half, "paired t"
    corr = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else math.nan
    return PairedComparison(**base, diff=diff, se=se, ci_low=low, ci_high=high, p_value=p,
                            method=method, correlation=corr, mde=_mde(sd, n, alpha, power))


def _mde(sd: float, n: int, alpha: float, power: float) -> float:
    """MDE for the test actually used: infinite when an exact permutation test on ``n``
    tasks cannot reach ``alpha`` at all; undefined when the differences do not vary."""
    if n <= EXACT_PERMUTATION and 2 / 2**n > alpha:
        return math.inf
    if sd == 0:
        return math.nan
    return minimum_detectable_effect(sd, n, alpha, power)


def _t_pvalue(diff: float, se: float, df: int) -> float:
    if se == 0:
        return 1.0 if diff == 0 else 0.0
    return float(2 * sps.t.sf(abs(diff / se), df))


def sign_flips(n: int, *, seed: int = 0, resamples: int = RESAMPLES) -> tuple[np.ndarray, bool]:
    """The sign patterns of the test: all 2^n (up to negation) up to ``EXACT_PERMUTATION`` tasks (exact),
    else ``resamples`` random ones from ``seed``. Returns (signs, exact)."""
    if n <= EXACT_PERMUTATION:
        # Half the patterns (first sign +1): a pattern and its negation give the same |mean|.
        half = 2 ** max(n - 1, 0)
        return (1 - 2 * ((np.arange(half)[:, None] >> np.arange(n)) & 1)).astype(float), True
    return np.random.default_rng(seed).choice((-1.0, 1.0), size=(resamples, n)), False


def sign_flip_pvalues(d: np.ndarray, signs: np.ndarray, exact: bool) -> np.ndarray:
    """p-values of mean = 0 for each row of ``d`` (datasets x tasks), vectorized."""
    d = np.atleast_2d(np.asarray(d, dtype=float))
    n = d.shape[1]
    observed = np.abs(d.mean(axis=1))
    means = np.abs(signs @ d.T) / n  # flips x datasets
    # Ties within rounding count as ties (values of 0 flip to -0 +- rounding).
    tolerance = 1e-9 * (1 + np.max(np.abs(d), axis=1))
    count = np.sum(means >= observed - tolerance, axis=0)
    if exact:
        return np.asarray(count / len(signs), dtype=float)
    return np.asarray((1 + count) / (len(signs) + 1), dtype=float)


def sign_flip_pvalue(d: np.ndarray, *, seed: int = 0, resamples: int = RESAMPLES) -> float:
    """Two-sided permutation p-value for mean(d) = 0, flipping the sign of each difference
    (valid when, under the null, each task's difference is symmetric around 0)."""
    d = np.asarray(d, dtype=float)
    signs, exact = sign_flips(len(d), seed=seed, resamples=resamples)
    return float(sign_flip_pvalues(d, signs, exact)[0])


def sign_flip_interval(d: np.ndarray, confidence: float = 0.95, *, seed: int = 0,
                       resamples: int = RESAMPLES) -> tuple[float, float]:
    """The differences mu that the sign-flip test of mean(d - mu) = 0 does not reject at
    1 - ``confidence`` (same sign patterns as :func:`sign_flip_pvalue`), so the interval
    excludes 0 exactly when that p-value is below alpha."""
    d = np.asarray(d, dtype=float)
    signs, exact = sign_flips(len(d), seed=seed, resamples=resamples)
    low, high = sign_flip_intervals(d[None, :], signs, exact, 1 - confidence)
    return float(low[0]), float(high[0])


def sign_flip_intervals(d: np.ndarray, signs: np.ndarray, exact: bool, alpha: float,
                        steps: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sign_flip_interval` for each row of ``d`` at once: bisection on each side
    between the mean (never rejected) and a bound outside the data's range (always
    rejected; else the side is unbounded: the test cannot reject at ``alpha``). A discrete
    test's acceptance set can have gaps a bisection steps over; the interval is then trimmed
    or widened at 0 so that it holds 0 exactly when the test does not reject 0."""
    d = np.atleast_2d(np.asarray(d, dtype=float))
    centre = d.mean(axis=1)
    span = np.ptp(d, axis=1) + 1.0
    bounds = []
    for direction in (-1.0, 1.0):
        inside, outside = centre.copy(), centre + direction * 2 * span
        for _ in range(steps):
            middle = (inside + outside) / 2
            accepted = sign_flip_pvalues(d - middle[:, None], signs, exact) > alpha
            inside = np.where(accepted, middle, inside)
            outside = np.where(accepted, outside, middle)
        accepted = sign_flip_pvalues(d - outside[:, None], signs, exact) > alpha
        bounds.append(np.where(accepted, direction * math.inf, inside))
    low, high = bounds
    keeps_zero = sign_flip_pvalues(d, signs, exact) > alpha
    low = np.where(keeps_zero, np.minimum(low, 0.0), low)
    high = np.where(keeps_zero, np.maximum(high, 0.0), high)
    holds_zero = (low <= 0) & (high >= 0)
    tiny = np.finfo(float).tiny
    low = np.where(~keeps_zero & holds_zero & (centre > 0), tiny, low)
    high = np.where(~keeps_zero & holds_zero & (centre <= 0), -tiny, high)
    return low, high


def bootstrap_interval(d: np.ndarray, confidence: float = 0.95, *, seed: int = 0,
                       resamples: int = RESAMPLES) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(d), resampling tasks."""
    rng = np.random.default_rng(seed)
    means = rng.choice(d, size=(resamples, len(d)), replace=True).mean(axis=1)
    tail = (1 - confidence) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def minimum_detectable_effect(sd_diff: float, n: int, alpha: float = 0.05,
                              power: float = 0.8) -> float:
    """Smallest true mean difference a two-sided paired test on ``n`` tasks detects with
    probability ``power``, given the SD of per-task differences (Miller 2024, sec. 5)."""
    if n < 2 or not math.isfinite(sd_diff):
        return math.nan
    df = n - 1
    return float((sps.t.ppf(1 - alpha / 2, df) + sps.t.ppf(power, df)) * sd_diff / math.sqrt(n))


def mde_for_rates(n_tasks: int, base_rate: float, *, seeds: int = 1, correlation: float = 0.0,
                  alpha: float = 0.05, power: float = 0.8) -> float:
    """Plan a sample: the success-rate difference above ``base_rate`` detectable on
    ``n_tasks`` tasks run ``seeds`` times each, if every task succeeds with the same
    probability (between-task differences only add variance) and the two models' per-task
    results correlate by ``correlation``. Solved with the variance at the alternative."""
    delta = 0.1
    for _ in range(100):
        other = min(base_rate + delta, 1.0)
        var_a, var_b = base_rate * (1 - base_rate) / seeds, other * (1 - other) / seeds
        sd = math.sqrt(max(var_a + var_b - 2 * correlation * math.sqrt(var_a * var_b), 0.0))
        new = minimum_detectable_effect(sd, n_tasks, alpha, power)
        if abs(new - delta) < 1e-9:
            break
        delta = new
    return delta


def adjust_pvalues(p_values: Sequence[float], method: str = "holm") -> list[float]:
    """Adjust for many comparisons: ``holm`` (family-wise error), ``bh`` (false discovery
    rate, Benjamini-Hochberg) or ``none``. NaN stays NaN and does not count."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(len(p), math.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    if method == "none" or m == 0:
        out[valid] = p[valid]
        return out.tolist()
    order = valid[np.argsort(p[valid], kind="stable")]
    ranked = p[order]
    if method == "holm":
        adjusted = np.maximum.accumulate((m - np.arange(m)) * ranked)
    elif method == "bh":
        adjusted = np.minimum.accumulate(m / np.arange(m, 0, -1) * ranked[::-1])[::-1]
    else:
        raise ValueError(f"unknown correction {method!r}; choose holm, bh or none")
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def compare_systems(episodes: pd.DataFrame, metric: str = "success", *,
                    systems: Sequence[str] = SYSTEM_KEYS, alpha: float = 0.05,
                    correction: str = "holm", only: Sequence[str] | None = None
                    ) -> list[PairedComparison]:
    """Every pair of systems (model · scaffold by default) on their shared tasks, with
    p-values adjusted for the number of pairs. ``only`` restricts to these system labels."""
    table = task_means(episodes, metric, systems)
    labels = [c for c in table.columns if only is None or c in only]
    if only is not None:
        labels = [s for s in only if s in labels]
    pairs = [
        paired_comparison(table[x].to_numpy(), table[y].to_numpy(), labels=(x, y),
                          metric=metric, alpha=alpha)
        for x, y in itertools.combinations(labels, 2)
    ]
    adjusted = adjust_pvalues([c.p_value for c in pairs], correction)
    return [PairedComparison(**{**c.__dict__, "p_adjusted": q}) for c, q in zip(pairs, adjusted, strict=True)]


def comparisons_frame(comparisons: Sequence[PairedComparison]) -> pd.DataFrame:
    columns = ["a", "b", "metric", "tasks", "mean_a", "mean_b", "diff", "se", "ci_low", "ci_high",
               "p_value", "p_adjusted", "significant", "mde", "correlation", "method"]
    return pd.DataFrame([{**c.__dict__, "significant": c.significant} for c in comparisons],
                        columns=columns)
