"""How much the eval pays for ranking through the product's VectorIndex instead of one matrix product.

The eval ranks every caption with `VectorIndex.search(vector, k=len(index))`, the code path a
user's search takes, so that ANN indexes are measured as users get them. This script times
that path against a single batched matrix product + argsort on random unit vectors (a COCO-5K
sized gallery by default) and prints the ratio, plus the cost of the metric computation.

    PYTHONPATH=src python bench/eval_ranking.py --images 5000 --queries 1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from photoseek.eval.metrics import query_metrics, ranked_grades
from photoseek.store.vectors import ExactIndex


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=512)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    gallery = _unit(rng.standard_normal((args.images, args.dim)))
    queries = _unit(rng.standard_normal((args.queries, args.dim)))
    index = ExactIndex(np.arange(args.images), gallery.astype(np.float16))

    started = time.perf_counter()
    for vector in queries:
        index.search(vector, len(index))
    per_query = time.perf_counter() - started

    started = time.perf_counter()
    np.argsort(-(queries @ gallery.T), axis=1)
    batched = time.perf_counter() - started

    grades = np.zeros((args.queries, args.images))
    grades[np.arange(args.queries), rng.integers(0, args.images, args.queries)] = 1
    started = time.perf_counter()
    query_metrics(ranked_grades(queries @ gallery.T, grades))
    metrics = time.perf_counter() - started

    print(f"gallery {args.images} x {args.dim}, {args.queries} queries")
    print(f"VectorIndex.search per query: {1e3 * per_query / args.queries:.2f} ms/query")
    print(f"one matrix product + argsort: {1e3 * batched / args.queries:.2f} ms/query "
          f"(per-query path is {per_query / batched:.1f}x slower)")
    print(f"metrics (tie-aware sort + all metrics): {1e3 * metrics / args.queries:.2f} ms/query")


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


if __name__ == "__main__":
    main()
