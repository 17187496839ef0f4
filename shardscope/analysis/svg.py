"""Small self-contained SVG charts for the comparison report (no JavaScript, no network):
intervals around estimates (forest plots) and heatmaps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = "font-family='system-ui, sans-serif' font-size='12'"


@dataclass(frozen=True)
class Interval:
    label: str
    value: float
    low: float
    high: float
    highlight: bool = False  # drawn in the accent colour (e.g. significant)


def _fmt(x: float, percent: bool) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.0%}" if percent else f"{x:.3g}"


def forest(rows: Sequence[Interval], *, title: str, lo: float | None = None,
           hi: float | None = None, zero: float | None = None, percent: bool = True,
           width: int = 640) -> str:
    """One row per estimate: a dot and its interval on a shared axis (+ optional zero line)."""
    finite = [v for r in rows for v in (r.value, r.low, r.high) if math.isfinite(v)]
    lo = min([*finite, 0.0]) if lo is None else lo
    hi = max([*finite, 1.0 if percent else 0.0]) if hi is None else hi
    if hi <= lo:
        hi = lo + 1
    # Labels are shown whole ("qwen2.5-coder-0.5b-instruct · react-text" was cut, so two
    # scaffolds of one model could not be told apart): the label column fits the longest.
    label_w, pad, row_h = max(230, _text_width(max((r.label for r in rows), key=len, default=""))), 70, 26
    plot_w = width - 230 - pad
    width = label_w + plot_w + pad
    height = 40 + row_h * len(rows) + 24

    def x(v: float) -> float:
        return label_w + (min(max(v, lo), hi) - lo) / (hi - lo) * plot_w

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"viewBox='0 0 {width} {height}' role='img' aria-label='{escape(title)}'>",
             f"<text x='4' y='16' {FONT} font-weight='bold'>{escape(title)}</text>"]
    for tick in _ticks(lo, hi):
        parts.append(f"<line x1='{x(tick):.1f}' x2='{x(tick):.1f}' y1='28' y2='{height - 22}' "
                     "stroke='#e5e5e5'/>")
        parts.append(f"<text x='{x(tick):.1f}' y='{height - 8}' {FONT} text-anchor='middle' "
                     f"fill='#666'>{_fmt(tick, percent)}</text>")
    if zero is not None and lo <= zero <= hi:
        parts.append(f"<line x1='{x(zero):.1f}' x2='{x(zero):.1f}' y1='28' y2='{height - 22}' "
                     "stroke='#333' stroke-dasharray='4 3'/>")
    for i, row in enumerate(rows):
        y = 40 + i * row_h
        colour = "#c0392b" if row.highlight else "#2c6fbb"
        parts.append(f"<text x='4' y='{y + 4}' {FONT}>{escape(row.label)}</text>")
        if math.isfinite(row.low) and math.isfinite(row.high):
            parts.append(f"<line x1='{x(row.low):.1f}' x2='{x(row.high):.1f}' y1='{y}' y2='{y}' "
                         f"stroke='{colour}' stroke-width='2'/>")
        if math.isfinite(row.value):
            parts.append(f"<circle cx='{x(row.value):.1f}' cy='{y}' r='4' fill='{colour}'/>")
            parts.append(f"<text x='{width - pad + 6}' y='{y + 4}' {FONT}>"
                         f"{_fmt(row.value, percent)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _text_width(text: str) -> int:
    """Pixels a label needs at the charts' 12 px sans-serif (about 7 px a character)."""
    return 7 * len(text) + 12


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    step = (hi - lo) / (count - 1)
    return [lo + i * step for i in range(count)]


def heatmap(rows: Sequence[str], columns: Sequence[str], values: Sequence[Sequence[float]], *,
            title: str, lo: float = -1.0, hi: float = 1.0, percent: bool = False,
            labels: Sequence[Sequence[str]] | None = None) -> str:
    """Rows x columns of values coloured red (high) to blue (low) through white at 0;
    ``labels`` (same shape) replace the cells' printed values (e.g. with an interval)."""
    # Column headers are "model · scaffold": one line each, wide enough to read whole.
    heads = [str(c).split(" · ") for c in columns]
    lines = max((len(h) for h in heads), default=1)
    label_w = max(230, _text_width(max((str(r) for r in rows), key=len, default="")))
    texts = [p for h in heads for p in h] + [t for row in labels or () for t in row]
    cell_w = max(110, _text_width(max(texts, key=len, default="")))
    cell_h, top = 24, 44 + 14 * lines
    width = label_w + cell_w * len(columns) + 10
    height = top + cell_h * len(rows) + 10
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"viewBox='0 0 {width} {height}' role='img' aria-label='{escape(title)}'>",
             f"<text x='4' y='16' {FONT} font-weight='bold'>{escape(title)}</text>"]
    for j, head in enumerate(heads):
        cx = label_w + j * cell_w + cell_w / 2
        spans = "".join(f"<tspan x='{cx}' dy='{0 if k == 0 else 14}'>{escape(part)}</tspan>"
                        for k, part in enumerate(head))
        parts.append(f"<text x='{cx}' y='{top - 8 - 14 * (len(head) - 1)}' {FONT} "
                     f"text-anchor='middle'>{spans}</text>")
    for i, row in enumerate(rows):
        y = top + i * cell_h
        parts.append(f"<text x='4' y='{y + cell_h / 2 + 4}' {FONT}>{escape(str(row))}</text>")
        for j, value in enumerate(values[i]):
            fill = _colour(value, lo, hi)
            parts.append(f"<rect x='{label_w + j * cell_w}' y='{y}' width='{cell_w - 2}' "
                         f"height='{cell_h - 2}' fill='{fill}'/>")
            parts.append(f"<text x='{label_w + j * cell_w + cell_w / 2}' y='{y + cell_h / 2 + 4}' "
                         f"{FONT} text-anchor='middle'>"
                         f"{escape(labels[i][j]) if labels else _fmt(value, percent)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _colour(value: float, lo: float, hi: float) -> str:
    if not math.isfinite(value):
        return "#f0f0f0"
    t = max(-1.0, min(1.0, value / (hi if value >= 0 else -lo) if (hi and lo) else 0.0))
    if t >= 0:  # white -> red
        g = int(255 - 160 * t)
        return f"rgb(255,{g},{g})"
    b = int(255 + 160 * t)  # white -> blue
    return f"rgb({b},{b},255)"
