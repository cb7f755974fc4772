"""CPU per query of exact single-query search, BLAS on its default threads vs bounded (issue 24.3).

    PYTHONPATH=src python bench/blas_bench.py --vectors 5000 --dim 512 --queries 2000 --rounds 3

"before" bypasses `photoseek.threads.blas_threads`, so the matrix-vector product runs on
OpenBLAS's default threads (one per core of the machine); "after" is the product as shipped
(one thread per single query, the budget for batches). The two run interleaved in one process,
`--rounds` times, so a busy machine hurts both alike; the table gives the median CPU (process
time, all threads) and wall time per query and the load average before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from collections.abc import Iterator

import numpy as np
from threadpoolctl import threadpool_info

from photoseek.store import vectors


@contextlib.contextmanager
def _unbounded(single: bool) -> Iterator[None]:
    yield


def run(index: vectors.ExactIndex, queries: np.ndarray, bounded: bool) -> tuple[float, float]:
    """(CPU ms, wall ms) per query."""
    shipped = vectors.blas_threads
    vectors.blas_threads = shipped if bounded else _unbounded
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        for q in queries:
            index.search(q, 10)
        n = len(queries)
        return (time.process_time() - cpu) / n * 1e3, (time.perf_counter() - wall) / n * 1e3
    finally:
        vectors.blas_threads = shipped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vectors", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((args.vectors, args.dim)).astype(np.float16)
    index = vectors.ExactIndex(vectors.VectorStore(np.arange(args.vectors), matrix, 0, "bench", "bench"))
    queries = rng.standard_normal((args.queries, args.dim)).astype(np.float32)
    index.search(queries[0], 10)  # the float32 copy and the BLAS cap, outside the timing
    blas = [(lib["internal_api"], lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"]
    print(f"{args.vectors} x {args.dim} float16, {args.queries} single queries, BLAS {blas}, cpus {os.cpu_count()}")
    load_before = os.getloadavg()
    results: dict[str, list[tuple[float, float]]] = {"before (default threads)": [], "after (bounded)": []}
    for _ in range(args.rounds):
        for name, bounded in zip(results, (False, True)):
            results[name].append(run(index, queries, bounded))
    load_after = os.getloadavg()
    cpu = {name: statistics.median(c for c, _ in runs) for name, runs in results.items()}
    for name, runs in results.items():
        wall = statistics.median(w for _, w in runs)
        print(f"{name:>25}: CPU {cpu[name]:.3f} ms/query, wall {wall:.3f} ms/query (median of {args.rounds})")
    before, after = cpu.values()
    print(f"CPU after/before: {after / before:.2f}; load average {load_before[0]:.1f} -> {load_after[0]:.1f}")


if __name__ == "__main__":
    from measure import measured_run  # bench/ is on sys.path when run as a script

    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
