"""Retrieval metrics in plain numpy, computed from scores and relevance grades.

Conventions (the ones retrieval papers use, made explicit):
- Ties count against the query: among items with equal scores, the less relevant come first,
  so a model that scores everything alike cannot look good by luck of ordering.
- R@K is the share of queries with at least one relevant item in the top K (the "Recall@K"
  of image-text retrieval papers); `rank` is the 1-based rank of the best-placed relevant item.
- P@K divides by K even when the gallery is smaller than K (as trec_eval does).
- nDCG@K uses linear gains (grade / log2(rank + 1)); AP@K divides by min(#relevant, K).
"""

from __future__ import annotations

import numpy as np

RECALL_KS = (1, 5, 10, 20)
CUTOFF = 10


def ranking_order(scores: np.ndarray, grades: np.ndarray) -> np.ndarray:
    """Per row, item indices best first; among equal scores the less relevant come first."""
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    grades = np.atleast_2d(np.asarray(grades, dtype=np.float64))
    return np.lexsort((grades, -scores), axis=-1)


def ranked_grades(scores: np.ndarray, grades: np.ndarray) -> np.ndarray:
    """Each row's grades reordered by score, best first, ties broken against the query."""
    grades = np.atleast_2d(np.asarray(grades, dtype=np.float64))
    return np.take_along_axis(grades, ranking_order(scores, grades), axis=-1)


def query_metrics(
    ranked: np.ndarray, ks: tuple[int, ...] = RECALL_KS, cutoff: int = CUTOFF
) -> dict[str, np.ndarray]:
    """Per-query metrics (one value per row of `ranked_grades` output); every row needs a relevant item."""
    ranked = np.atleast_2d(ranked)
    relevant = ranked > 0
    if not relevant.any(axis=1).all():
        raise ValueError("every query needs at least one relevant item")
    rank = relevant.argmax(axis=1) + 1
    metrics: dict[str, np.ndarray] = {"rank": rank}
    for k in ks:
        metrics[f"R@{k}"] = (rank <= k).astype(np.float64)
    for k in ks:
        metrics[f"P@{k}"] = relevant[:, :k].sum(axis=1) / k
    metrics[f"nDCG@{cutoff}"] = ndcg(ranked, cutoff)
    metrics[f"AP@{cutoff}"] = average_precision(relevant, cutoff)
    return metrics


def ndcg(ranked: np.ndarray, k: int) -> np.ndarray:
    """Normalised discounted cumulative gain of the top k, per row."""
    top = ranked[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    ideal = -np.sort(-ranked, axis=1)[:, :k]
    return (top @ discounts) / (ideal @ discounts)


def average_precision(relevant: np.ndarray, k: int) -> np.ndarray:
    """Average of P@i over the relevant positions i <= k, divided by min(#relevant, k)."""
    top = relevant[:, :k].astype(np.float64)
    precision = np.cumsum(top, axis=1) / np.arange(1, top.shape[1] + 1)
    return (precision * top).sum(axis=1) / np.minimum(relevant.sum(axis=1), k)


def summarize(per_query: dict[str, np.ndarray]) -> dict[str, float]:
    """Means over queries, plus median and mean rank; AP@K averages to mAP@K."""
    summary = {
        (f"mAP@{name[3:]}" if name.startswith("AP@") else name): float(np.mean(values))
        for name, values in per_query.items()
        if name != "rank"
    }
    summary["median_rank"] = float(np.median(per_query["rank"]))
    summary["mean_rank"] = float(np.mean(per_query["rank"]))
    return summary
