"""A sparse linear surrogate of log p over shard masks (ContextCite, Cohen-Wang et al. 2024),
for tasks with many shards: score the recorded output under random inputs with each shard
kept or removed (a mask), fit ``log p ≈ b + Σ_j w_j · kept_j`` with a Lasso, and report how
well it predicts held-out masks (R²). ``w_j`` is shard j's attribution; a good fit means the
shards act roughly additively on this output.

Needs scikit-learn (the ``embeddings`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shardscope.analysis.attribution import (
    AttributionError,
    Scorer,
    ShardText,
    Span,
    ablate,
    ablated_input,
    action_span,
)


@dataclass(frozen=True)
class Surrogate:
    shards: tuple[str, ...]
    weights: tuple[float, ...]  # per shard: log p gained by keeping it
    intercept: float
    r2_train: float
    r2_heldout: float
    masks: int  # forward passes spent
    spread: float = 0.0  # SD of log p over the masks: near 0, the shards move nothing to explain


def masked_input(prompt: str, shards: Sequence[ShardText], keep: np.ndarray,
                 guarded: Sequence[Span] = ()) -> str:
    """``prompt`` with every shard whose mask entry is False removed, each as single-shard
    attribution removes it (:func:`ablated_input`: its removed form, every part and every
    occurrence), one after another. A fact stands first for the whole prompt: the first
    removed fact gives the prompt its ablated episode is sent, and the next ones are no
    longer the whole prompt, so their own sentences are removed from it. ``guarded``: where
    the model's own earlier outputs stand in ``prompt`` (:func:`output_spans`), kept as
    recorded while the edits move them."""
    spans = list(guarded)
    for shard, kept in zip(shards, keep, strict=True):
        if not kept:
            ablated, _, _, moved = ablate(prompt, shard, "removed", spans)
            if ablated is not None:
                prompt, spans = ablated, moved
    return prompt


def located_in(prompt: str, shard: ShardText, guarded: Sequence[Span] = ()) -> bool:
    """Whether ``shard`` can be removed from ``prompt`` (it is there, in a form it has, outside
    the ``guarded`` earlier outputs)."""
    return ablated_input(prompt, shard, "removed", guarded)[2] == "scored"


def fit_surrogate(prompt: str, output: str, shards: Sequence[ShardText], score: Scorer, *,
                  masks: int = 32, heldout: float = 0.25, alpha: float = 0.01,
                  keep_probability: float = 0.5, seed: int = 0,
                  on_action: bool = False, guarded: Sequence[Span] = ()) -> Surrogate:
    """Fit the surrogate for one call from ``masks`` random masks, of the whole output's log p, or of the action's
    (:func:`action_span`: the tool call or final answer) when ``on_action``. The weights come
    from a fit on every mask; ``r2_heldout`` is cross-validated, each mask predicted by a fit
    without its fold (``heldout``: a fold's share of the masks). ``guarded``: where the
    episode's earlier outputs stand in ``prompt``, kept as recorded (:func:`ablated_input`)."""
    try:
        from sklearn.linear_model import Lasso
        from sklearn.metrics import r2_score
        from sklearn.model_selection import KFold, cross_val_predict
    except ImportError as exc:
        raise AttributionError("the surrogate needs scikit-learn: pip install 'shardscope[embeddings]'") from exc
    located = [s for s in shards if located_in(prompt, s, guarded)]
    if not located:
        raise AttributionError("no shard of this call is in its input: nothing to attribute")
    rng = np.random.default_rng(seed)
    x = rng.random((masks, len(located))) < keep_probability
    action = action_span(output) if on_action else None
    scored = (score(masked_input(prompt, located, row, guarded), output) for row in x)
    y = np.array([s.total if action is None else s.over_bytes(*action) for s in scored])
    features = x.astype(float)
    # Held out: each mask predicted by a fit on the other folds (a quarter each), so the R²
    # is over all the masks, not over the few of one split (4 of 16 can all keep a shard).
    folds = KFold(n_splits=max(2, min(round(1 / heldout), masks)))
    heldout_pred = cross_val_predict(Lasso(alpha=alpha, max_iter=10_000), features, y, cv=folds)
    model = Lasso(alpha=alpha, max_iter=10_000).fit(features, y)
    return Surrogate(
        shards=tuple(s.shard for s in located),
        weights=tuple(float(w) for w in model.coef_),
        intercept=float(model.intercept_),
        r2_train=float(r2_score(y, model.predict(features))),
        r2_heldout=float(r2_score(y, heldout_pred)),
        masks=masks,
        spread=float(np.std(y)),
    )
