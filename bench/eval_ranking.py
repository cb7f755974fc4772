"""How much the eval pays for ranking through the product's VectorIndex instead of one matrix product.

The eval ranks every caption with `VectorIndex.search(vector, k=len(index))`, the code path a
user's search takes, so that ANN indexes are measured as users get them. This script times
that path against a single batched matrix product + argsort on random unit vectors (a COCO-5K
sized gallery by default) and prints the ratio, plus the cost of the metric computation.

    PYTHONPATH=src python bench/eval_ranking.py --images 5000 --queries 1000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from photoseek.eval.metrics import query_metrics, ranked_grades
from photoseek.store.vectors import ExactIndex, VectorStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import measured_run, span  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=512)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    gallery = _unit(rng.standard_normal((args.images, args.dim)))
    queries = _unit(rng.standard_normal((args.queries, args.dim)))
    index = ExactIndex(VectorStore(np.arange(args.images), gallery.astype(np.float16), 0, "random", "random"))

    with span() as one_by_one:
        for vector in queries:
            index.search(vector, len(index))
    with span() as together:
        np.argsort(-(queries @ gallery.T), axis=1)
    per_query, batched = one_by_one.wall_s, together.wall_s

    grades = np.zeros((args.queries, args.images))
    grades[np.arange(args.queries), rng.integers(0, args.images, args.queries)] = 1
    with span() as metrics_span:
        query_metrics(ranked_grades(queries @ gallery.T, grades))
    metrics = metrics_span.wall_s

    print(f"gallery {args.images} x {args.dim}, {args.queries} queries")
    cpu_one, cpu_together, cpu_metrics = (1e3 * s.cpu_s / args.queries for s in (one_by_one, together, metrics_span))
    print(f"VectorIndex.search per query: {1e3 * per_query / args.queries:.2f} ms/query (CPU {cpu_one:.2f} ms)")
    print(f"one matrix product + argsort: {1e3 * batched / args.queries:.2f} ms/query "
          f"(CPU {cpu_together:.2f} ms; per-query path is {per_query / batched:.1f}x slower)")
    print(f"metrics (tie-aware sort + all metrics): {1e3 * metrics / args.queries:.2f} ms/query "
          f"(CPU {cpu_metrics:.2f} ms)")
    print(f"load average {' / '.join(map(str, metrics_span.load_after))}")


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
