"""The comparison as a self-contained report: HTML (inline CSS and SVG charts, nothing
fetched) or Markdown (charts written as SVG files beside it). Both come from one list of
blocks, so they always say the same thing."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from shardscope.analysis import svg
from shardscope.analysis.compare import Comparison
from shardscope.analysis.influence import excluded_note
from shardscope.config.errors import ShardscopeError

PERCENT = {"success_rate", "success_se", "ci_low", "ci_high", "mean_a", "mean_b", "diff", "se",
           "mde", "share", "error_rate", "loop_share", "rejoin_rate", "success_drop",
           "success_drop_se"}


@dataclass(frozen=True)
class Block:
    kind: str  # h2 | h3 | p | table | figure | fold (text: its summary line) | end_fold
    #            | row (what follows sits side by side, each h3 starting a cell) | end_row
    text: str = ""
    table: pd.DataFrame | None = None
    svg: str = ""
    percent: frozenset[str] = frozenset()


def blocks(comparison: Comparison) -> list[Block]:
    """The report's content, in order."""
    out = [_header(comparison)]
    out += _summary(comparison)
    out += _outcomes(comparison)
    out += _differences(comparison)
    out += _trajectories(comparison)
    out += _tools(comparison)
    out += _shards(comparison)
    out += _clusters(comparison)
    return out


def _header(c: Comparison) -> Block:
    sel = c.selection
    scope = ", ".join(f"{name}: {', '.join(values)}" for name, values in (
        ("suites", sel.suites), ("models", sel.models), ("scaffolds", sel.scaffolds),
        ("runs", sel.run_ids), ("tasks", sel.tasks)) if values) or "the whole store"
    tasks = c.episodes.groupby(["suite", "task_id"]).ngroups
    return Block("p", f"{len(c.episodes)} episodes on {tasks} tasks, {len(c.systems)} systems "
                      f"(model · scaffold); selection: {scope}. Metric: {c.metric}; pairs "
                      f"tested at alpha {c.alpha} with {c.correction} correction.")


def _summary(c: Comparison) -> list[Block]:
    """The findings in a few lines; the sections below hold the detail (long tables folded)."""
    lines = []
    for r in c.estimates.sort_values("success_rate", ascending=False).itertuples():
        lines.append(f"{r.system}: success {format_value(r.success_rate, True)} (95% "
                     f"{format_value(r.ci_low, True)} to {format_value(r.ci_high, True)}, "
                     f"{r.tasks} tasks)")
    if not c.comparisons.empty:
        significant = int(c.comparisons.significant.sum())
        lines.append(f"{significant} of {len(c.comparisons)} pairs differ significantly "
                     f"(alpha {c.alpha}, {c.correction})")
    for d in c.divergences:
        pairs = d.summary.get("pairs", 0)
        if pairs:
            lines.append(f"{d.a} vs {d.b}: {d.summary.get('identical', 0)} of {pairs} paired "
                         f"episodes identical, {d.summary.get('at_first_step', 0)} part at step 0")
    if c.has_ablations and not c.influence.empty:
        top = c.influence.sort_values("success_drop", ascending=False).iloc[0]
        lines.append(f"largest shard influence: {top.task_id} · {top.shard} ({top['mode']}) on "
                     f"{top.model} · {top.scaffold}: success drop "
                     f"{format_value(top.success_drop, True)}")
    return [Block("h2", "Summary"), *[Block("p", line) for line in lines]]


def _outcomes(c: Comparison) -> list[Block]:
    rows = [svg.Interval(r.system, r.success_rate, r.ci_low, r.ci_high)
            for r in c.estimates.itertuples()]
    table = c.estimates[["system", "episodes", "tasks", "success_rate", "success_se", "ci_low",
                         "ci_high", "mean_score", "score_se"]]
    return [Block("h2", "Outcomes"),
            Block("p", "Success rate with its standard error clustered by task and a 95% "
                       "interval (t with tasks - 1 degrees of freedom)."),
            Block("figure", "success", svg=svg.forest(rows, title="success rate (95% interval)",
                                                      lo=0, hi=1)),
            Block("table", table=table, percent=frozenset(PERCENT))]


def _differences(c: Comparison) -> list[Block]:
    frame = c.comparisons
    if frame.empty:
        return []
    rows = [svg.Interval(f"{r.a} − {r.b}", r.diff, r.ci_low, r.ci_high, bool(r.significant))
            for r in frame.itertuples()]
    percent = c.metric == "success"
    width = max([abs(v) for v in (*frame.ci_low, *frame.ci_high) if math.isfinite(v)] + [0.1])
    return [Block("h2", "Paired differences"),
            Block("p", "Each task's repeats are averaged, then the two systems are compared on "
                       "the tasks both ran. Red: significant after correction. MDE: the smallest "
                       "difference this sample detects with 80% power."),
            Block("figure", "differences", svg=svg.forest(
                rows, title=f"difference in {c.metric} (95% interval)", lo=-width, hi=width,
                zero=0.0, percent=percent)),
            Block("table", table=frame.drop(columns=["metric"]),
                  percent=frozenset(PERCENT if percent else ()))]


def _trajectories(c: Comparison) -> list[Block]:
    if not c.divergences:
        return []
    summary = pd.DataFrame([{
        "a": d.a, "b": d.b, "pairs": d.summary.get("pairs", 0),
        "identical": d.summary.get("identical", 0),
        "median first divergence (step)": d.summary.get("median_first_divergence", math.nan),
        "part at step 0": d.summary.get("at_first_step", 0),
        "rejoin_rate": d.summary.get("rejoin_rate", math.nan),
        "mean distance": d.summary.get("mean_distance", math.nan),
        "same outcome": d.summary.get("same_outcome", 0),
    } for d in c.divergences])
    out = [Block("h2", "Where trajectories part"),
           Block("p", "Episodes of the same task and seed, aligned action by action (tool + "
                      "normalized arguments, final answer). Distance: normalized edit distance, "
                      "0 identical, 1 nothing in common."),
           Block("table", table=summary, percent=frozenset(PERCENT))]
    for d in c.divergences:
        parted = d.table[d.table.diverged]
        if parted.empty:
            continue
        out.append(Block("fold", f"{d.a} vs {d.b}: {len(parted)} pairs that part, where and how"))
        out.append(Block("h3", f"{d.a} vs {d.b}"))
        top = d.summary.get("top_divergences", [])
        if top:
            out.append(Block("p", "Most frequent first divergences: " + "; ".join(
                f"{t['a']} vs {t['b']} ({t['pairs']})" for t in top)))
        out.append(Block("table", table=parted[["suite", "task_id", "seed", "position", "action_a",
                                                "action_b", "rejoined", "outcome_a",
                                                "outcome_b"]].head(15)))
        out.append(Block("end_fold"))
    return out


def _tools(c: Comparison) -> list[Block]:
    out = [Block("h2", "Tool use"),
           Block("table", table=c.behaviour, percent=frozenset(PERCENT))]
    if not c.tool_profile.empty:
        out += [Block("fold", f"calls per tool and system ({len(c.tool_profile)} rows)"),
                Block("table", table=c.tool_profile, percent=frozenset(PERCENT)),
                Block("end_fold")]
    return out


def _shards(c: Comparison) -> list[Block]:
    """Three views side by side: likelihood influence, outcome influence, follow rates; then
    each view's table."""
    out = [Block("h2", "Shard influence"),
           Block("p", "Three measures of how each system depends on a task's shards: the "
                      "likelihood of its own recorded action with the shard ablated "
                      "(`shardscope attribute`), the outcome of episodes re-run with the shard "
                      "removed or replaced (`shardscope ablate`), and whether its answer "
                      "follows a replaced shard (`ablate --mode replaced`, shards declaring "
                      "implied_answer)."),
           Block("row")]
    views = [_likelihood_view(c), _outcome_view(c), _follow_view(c)]
    for figure, _ in views:
        out += figure
    out.append(Block("end_row"))
    for _, tables in views:
        out += tables
    return out


View = tuple[list[Block], list[Block]]  # (its cell in the row of figures, its tables below)


def _likelihood_view(c: Comparison) -> View:
    from shardscope.analysis import attribution as attr

    head = Block("h3", "Likelihood influence")
    rows = c.likelihood
    if rows.empty or not (rows.status == "scored").any():
        return [head, Block("p", "No likelihood attribution for these episodes: run "
                                 "`shardscope attribute -s SUITE` (one forward pass per shard, "
                                 "local models).")], []
    cells = attr.attribution_summary(
        rows.assign(model=rows.system, shard=rows.task_id + " · " + rows["shard"]))
    cells = cells[cells.episodes > 0].assign(row=lambda f: f["shard"] + " (" + f["mode"] + ")")
    grid = cells.pivot_table(index="row", columns="model", values="mean", aggfunc="mean")
    labels = cells.assign(label=[f"{m:.1f}" if pd.isna(lo) else f"{m:.1f} [{lo:.1f}, {hi:.1f}]"
                                 for m, lo, hi in zip(cells["mean"], cells.ci_low, cells.ci_high,
                                                      strict=True)])
    text = labels.pivot_table(index="row", columns="model", values="label", aggfunc="first")
    text = text.reindex(index=grid.index, columns=grid.columns).fillna("–")
    reach = float(cells["mean"].abs().max() or 1.0)
    chart = svg.heatmap(list(grid.index), list(grid.columns), grid.to_numpy().tolist(),
                        title="Δ log p of the recorded action (nats)", lo=-reach, hi=reach,
                        labels=text.to_numpy().tolist())
    profiles = attr.model_profiles(rows, by="system")
    difference = attr.clearest_difference(profiles, by="system")
    figure = [head, Block("p", "Mean Δ log p per episode when the shard is ablated, the same "
                               "output scored teacher-forced (positive: the shard supported "
                               "what the model did), 95% interval clustered by task."),
              Block("figure", "likelihood", svg=chart)]
    tables = [Block("h3", "Likelihood profile per system"),
              Block("table", table=profiles)]
    if difference:
        tables.append(Block("p", f"Clearest difference: {difference}."))
    return figure, tables


def _outcome_view(c: Comparison) -> View:
    head = Block("h3", "Outcome influence")
    if not c.has_ablations:
        return [head, Block("p", "No ablation episodes in the selection: run `shardscope "
                                 "ablate` to measure which shards each model depends on.")], []
    frame = c.influence.assign(row=c.influence.task_id + " · " + c.influence.shard + " ("
                               + c.influence["mode"] + ")",
                               column=c.influence.model + " · " + c.influence.scaffold)
    grid = frame.pivot_table(index="row", columns="column", values="success_drop", aggfunc="mean")
    chart = svg.heatmap(list(grid.index), list(grid.columns), grid.to_numpy().tolist(),
                        title="success drop when the shard is ablated", percent=True)
    table = c.influence[["suite", "task_id", "shard", "mode", "model", "scaffold", "n",
                         "success_drop", "ci_low", "ci_high", "score_drop", "trajectory_change",
                         *(["excluded_errors"] if "excluded_errors" in c.influence else [])]]
    figure = [head, Block("p", "Baseline minus ablated outcome, per shard (removed or replaced "
                               "by a plausible wrong value), with 95% intervals in the table; "
                               "trajectory change is the edit distance between the baseline's "
                               "and the ablated episode's actions."),
              Block("figure", "influence", svg=chart)]
    note = excluded_note(c.influence)
    if note:
        figure.append(Block("p", note + "."))
    return figure, [Block("fold", f"every shard, mode and system ({len(table)} rows)"),
                    Block("table", table=table, percent=frozenset(PERCENT | {"ci_low", "ci_high"})),
                    Block("end_fold")]


FOLLOW_PERCENT = frozenset({"follow_rate", "follow_low", "follow_high",
                            "follow_rate_prior_right", "follow_rate_prior_wrong"})


def _follow_view(c: Comparison) -> View:
    head = Block("h3", "Follow rates")
    rates = c.follows
    if rates.empty:
        return [head, Block("p", "No replaced shard here declares the answer it implies: run "
                                 "`shardscope ablate --mode replaced` on a suite whose shards "
                                 "declare implied_answer (arithmetic, village).")], []
    chart = svg.forest([svg.Interval(r.model, r.follow_rate, r.follow_low, r.follow_high)
                        for r in rates.itertuples()],
                       title="answers that follow the replaced shard", lo=0.0, hi=1.0,
                       width=520)
    figure = [head, Block("p", "Share of answers under a replaced shard that give the answer "
                               "the replacement implies, 95% interval clustered by task."),
              Block("figure", "follows", svg=chart)]
    table = rates.rename(columns={"model": "system"})[
        ["system", "episodes", "tasks", "follow", "keep", "other", "follow_rate", "follow_low",
         "follow_high", "prior_right", "follow_rate_prior_right", "prior_wrong",
         "follow_rate_prior_wrong"]]
    return figure, [Block("h3", "Follow rate and the model's prior"),
                    Block("p", "keep: the original answer; other: neither. Prior: the same "
                               "episode with the shard removed (right: it still answered "
                               "correctly, so the model knew the fact)."),
                    Block("table", table=table, percent=FOLLOW_PERCENT)]


def _clusters(c: Comparison) -> list[Block]:
    if c.clusters is None or c.clusters.summary.empty:
        return []
    summary = c.clusters.summary.assign(
        representatives=c.clusters.summary.representatives.map(lambda r: " | ".join(r)))
    occupancy = c.clusters.occupancy.reset_index().rename(columns={"model": "system"})
    occupancy.columns = [str(col) for col in occupancy.columns]
    return [Block("h2", "Behaviour clusters (final answers)"),
            Block("p", f"Embedding: {c.clusters.method}; k = {c.clusters.k}. Share of each "
                       "system's answers in each cluster, then each cluster's nearest members."),
            Block("table", table=occupancy, percent=frozenset(occupancy.columns[1:])),
            Block("fold", "each cluster's label and nearest members"),
            Block("table", table=summary), Block("end_fold")]


# --- rendering --------------------------------------------------------------------------------
def format_value(value: Any, percent: bool = False, digits: int = 1) -> str:
    """How the report and the terminal show one value (– missing, ∞ undetectable)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    if isinstance(value, float):
        return f"{value:.{digits}%}" if percent else f"{value:.3g}"
    return str(value)


def _cell(value: Any, column: str, percent: frozenset[str]) -> str:
    return format_value(value, column in percent)


def _rows(block: Block) -> tuple[list[str], list[list[str]]]:
    table = block.table if block.table is not None else pd.DataFrame()
    header = [str(c) for c in table.columns]
    body = [[_cell(v, str(col), block.percent) for col, v in zip(table.columns, row, strict=True)]
            for row in table.itertuples(index=False)]
    return header, body


def to_markdown(comparison: Comparison, figures: Path | None = None) -> str:
    """Markdown; charts are written as SVG files under ``figures`` (skipped when None)."""
    lines = ["# shardscope comparison", "", f"_{_stamp()}_", ""]
    for note in comparison.notes:
        lines.append(f"> {note}")
    for block in blocks(comparison):
        if block.kind in ("h2", "h3"):
            lines += ["", f"{'#' * int(block.kind[1])} {block.text}", ""]
        elif block.kind == "p":
            lines += [block.text, ""]
        elif block.kind == "fold":
            lines += ["<details>", f"<summary>{escape(block.text)}</summary>", ""]
        elif block.kind == "end_fold":
            lines += ["</details>", ""]
        elif block.kind == "figure" and figures is not None:
            figures.mkdir(parents=True, exist_ok=True)
            (figures / f"{block.text}.svg").write_text(block.svg, encoding="utf-8")
            lines += [f"![{block.text}]({figures.name}/{block.text}.svg)", ""]
        elif block.kind == "table":
            header, body = _rows(block)
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |"
                      for row in body]
            lines.append("")
    return "\n".join(lines) + "\n"


CSS = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.85rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}blockquote{color:#555;border-left:3px solid #ccc;margin:0;padding-left:1rem}
figure{margin:1rem 0}details{margin:.5rem 0 1rem}summary{cursor:pointer;color:#1565c0}
.views{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}
.views>section{flex:1 1 20rem;min-width:0}.views svg{max-width:100%;height:auto}"""


def to_html(comparison: Comparison) -> str:
    """One HTML file with everything inline: opens offline, can be mailed as is."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>shardscope comparison"
             f"</title><style>{CSS}</style></head><body><h1>shardscope comparison</h1>"
             f"<p><em>{escape(_stamp())}</em></p>"]
    parts += [f"<blockquote>{escape(n)}</blockquote>" for n in comparison.notes]
    in_row = in_cell = False
    for block in blocks(comparison):
        if block.kind == "row":
            parts.append("<div class='views'>")
            in_row = True
        elif block.kind == "end_row":
            parts.append("</section></div>" if in_cell else "</div>")
            in_row = in_cell = False
        elif block.kind == "h3" and in_row:
            parts.append(("</section>" if in_cell else "") + f"<section><h3>{escape(block.text)}</h3>")
            in_cell = True
        elif block.kind in ("h2", "h3"):
            parts.append(f"<{block.kind}>{escape(block.text)}</{block.kind}>")
        elif block.kind == "p":
            parts.append(f"<p>{escape(block.text)}</p>")
        elif block.kind == "fold":
            parts.append(f"<details><summary>{escape(block.text)}</summary>")
        elif block.kind == "end_fold":
            parts.append("</details>")
        elif block.kind == "figure":
            parts.append(f"<figure>{block.svg}</figure>")
        elif block.kind == "table":
            header, body = _rows(block)
            parts.append("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                                   for row in body) + "</table>")
    parts.append("</body></html>")
    return "".join(parts)


def write_report(comparison: Comparison, path: Path) -> Path:
    """Write the report; the format follows the suffix (.html, .htm or .md)."""
    suffix = path.suffix.lower()
    if suffix not in (".html", ".htm", ".md"):
        raise ShardscopeError(f"report {path}: name it .html or .md (got {suffix or 'no suffix'!r})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".md":
            text = to_markdown(comparison, path.with_name(f"{path.stem}_files"))
        else:
            text = to_html(comparison)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ShardscopeError(f"cannot write the report to {path}: {exc.strerror}") from None
    return path


def _stamp() -> str:
    return f"written {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} by shardscope"
