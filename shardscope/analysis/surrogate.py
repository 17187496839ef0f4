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

from shardscope.analysis.attribution import AttributionError, Scorer, ShardText, locate


@dataclass(frozen=True)
class Surrogate:
    shards: tuple[str, ...]
    weights: tuple[float, ...]  # per shard: log p gained by keeping it
    intercept: float
    r2_train: float
    r2_heldout: float
    masks: int  # forward passes spent (train + held out)


def masked_input(prompt: str, shards: Sequence[ShardText], keep: np.ndarray) -> str:
    """``prompt`` with every shard whose mask entry is False removed (all occurrences)."""
    for shard, kept in zip(shards, keep, strict=True):
        if not kept:
            for text in shard.texts:
                if locate(prompt, text):
                    prompt = prompt.replace(text, "")
                    break
    return prompt


def fit_surrogate(prompt: str, output: str, shards: Sequence[ShardText], score: Scorer, *,
                  masks: int = 32, heldout: float = 0.25, alpha: float = 0.01,
                  keep_probability: float = 0.5, seed: int = 0) -> Surrogate:
    """Fit the surrogate for one call from ``masks`` random masks (``heldout`` share kept
    out of the fit to measure R²)."""
    try:
        from sklearn.linear_model import Lasso
        from sklearn.metrics import r2_score
    except ImportError as exc:
        raise AttributionError("the surrogate needs scikit-learn: pip install 'shardscope[embeddings]'") from exc
    located = [s for s in shards if any(locate(prompt, t) for t in s.texts)]
    if not located:
        raise AttributionError("no shard of this call is in its input: nothing to attribute")
    rng = np.random.default_rng(seed)
    x = rng.random((masks, len(located))) < keep_probability
    y = np.array([score(masked_input(prompt, located, row), output).total for row in x])
    n_test = max(1, round(masks * heldout))
    train, test = slice(n_test, None), slice(0, n_test)
    model = Lasso(alpha=alpha, max_iter=10_000).fit(x[train].astype(float), y[train])
    predict = model.predict
    return Surrogate(
        shards=tuple(s.shard for s in located),
        weights=tuple(float(w) for w in model.coef_),
        intercept=float(model.intercept_),
        r2_train=float(r2_score(y[train], predict(x[train].astype(float)))),
        r2_heldout=float(r2_score(y[test], predict(x[test].astype(float)))),
        masks=masks,
    )
