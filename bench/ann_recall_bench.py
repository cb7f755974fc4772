"""The recall check a faiss graph gets when it is built (issue 24.4), on clustered and uniform vectors.

    PYTHONPATH=src python bench/ann_recall_bench.py --sizes 10000 20000 --dims 64 256

For each data set (clustered: 200 Gaussian centres; uniform: random directions, HNSW's worst case)
it builds the graph as the product does (`faiss_index.build`), runs the recall check
(`faiss_index.measure`: 200 stored vectors as queries against exact search, efSearch raised until
recall@10 >= 0.95, exact search when no depth cheaper than a scan gets there), then times 300
other stored vectors as single queries through the graph at the default depth (40) and at the
chosen one (and at any --depths), and through exact search: recall@10 of each and CPU (process time) and wall ms per
query, with the load average. Faiss and BLAS run on one thread, as a lone query does. `--indexes scan`
(or `graph scan`) does the same for the scan of 4-bit codes that replaces a graph that misses, and also
times 300 fresh vectors (not stored ones) through it.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from photoseek.store import faiss_index
from photoseek.store.vectors import ExactIndex, VectorIndex, VectorStore
from photoseek.threads import load_faiss


def data(kind: str, n: int, dim: int) -> np.ndarray:
    rng = np.random.default_rng(n + dim)
    v = rng.standard_normal((n, dim))
    if kind == "clustered":
        v = np.random.default_rng(99).standard_normal((200, dim))[rng.integers(0, 200, n)] + 0.5 * v
    v = v.astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float16)


def timed(index: VectorIndex, queries: np.ndarray, truth: list[set[int]]) -> tuple[float, float, float]:
    """(recall@10, CPU ms, wall ms) per query."""
    cpu, wall = time.process_time(), time.perf_counter()
    found = [index.search(q, 10)[0] for q in queries]
    cpu, wall = (time.process_time() - cpu) / len(queries) * 1e3, (time.perf_counter() - wall) / len(queries) * 1e3
    return sum(len(want & set(f.tolist())) for f, want in zip(found, truth)) / (10 * len(queries)), cpu, wall


def built_and_checked(store: VectorStore, kind: str | None) -> tuple[object, faiss_index.Tuning, float, float]:
    """An index of `kind` (None: the graph) as the product builds it, its recall check, and the CPU
    seconds of each."""
    params = faiss_index.FaissParams()
    started = time.process_time()
    index = faiss_index.build(store.matrix, params, kind)
    built = time.process_time() - started
    started = time.process_time()
    tuning = faiss_index.measure(index, store, params)
    return index, tuning, built, time.process_time() - started


def one(kind: str, n: int, dim: int, extra_depths: list[int], indexes: list[str]) -> None:
    matrix = data(kind, n, dim)
    store = VectorStore(np.arange(n, dtype=np.int64), matrix, 0, "bench", "bench")
    params = faiss_index.FaissParams()
    queries = np.asarray(matrix[3::max(1, n // 300)][:300], dtype=np.float32)
    fresh = np.asarray(data(kind, 300, dim), dtype=np.float32)  # other draws (same centres): not stored vectors
    exact = ExactIndex(store)
    truth = [set(exact.search(q, 10)[0].tolist()) for q in queries]
    rows = {"exact": timed(exact, queries, truth)}
    print(f"\n{kind} {n:,} x {dim}; load {os.getloadavg()[0]:.1f}")
    if "graph" in indexes:
        graph, tuning, built, checked = built_and_checked(store, None)
        rows["graph ef=40"] = timed(faiss_index.FaissIndex(store, graph, params, 40), queries, truth)
        for depth in sorted({tuning.depth or 40, *extra_depths} - {40}):
            rows[f"graph ef={depth}"] = timed(faiss_index.FaissIndex(store, graph, params, depth), queries, truth)
        chosen = f"efSearch {tuning.depth}" if tuning.depth else f"exact (tried up to {tuning.tried})"
        print(f"  graph: build {built:.1f} s CPU, check {checked:.1f} s CPU; "
              f"check recall@10 {tuning.recall:.3f} -> {chosen}")
    if "scan" in indexes:
        scan, tuning, built, checked = built_and_checked(store, faiss_index.SCAN)
        chosen = f"{tuning.depth} candidates" if tuning.depth else f"exact (tried up to {tuning.tried})"
        print(f"  scan: build {built:.1f} s CPU, check {checked:.1f} s CPU, codes {scan.codes.size() / 1e6:.1f} MB; "
              f"check recall@10 {tuning.recall:.3f} at {tuning.tried} -> {chosen}")
        fresh_truth = [set(exact.search(q, 10)[0].tolist()) for q in fresh]
        for depth in sorted({tuning.depth or faiss_index.SCAN_LADDER[0], *extra_depths}):
            searched = faiss_index.FaissIndex(store, scan, params, depth)
            rows[f"scan {depth}"] = timed(searched, queries, truth)
            rows[f"scan {depth} fresh"] = timed(searched, fresh, fresh_truth)
    for name, (recall, cpu, wall) in rows.items():
        print(f"  {name:>17}: recall@10 {recall:.4f}, CPU {cpu:.3f} ms/query, wall {wall:.3f} ms/query")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--kinds", nargs="+", default=["clustered", "uniform"])
    parser.add_argument("--depths", type=int, nargs="*", default=[],
                        help="more depths (efSearch, scan candidates) to time: where does each cost as much as a scan")
    parser.add_argument("--indexes", nargs="+", default=["graph"], choices=["graph", "scan"],
                        help="graph: HNSW as built for the catalog; scan: the 4-bit scan a graph that misses becomes")
    args = parser.parse_args()
    load_faiss().omp_set_num_threads(1)
    print(f"load average at start {os.getloadavg()[0]:.1f}, cpus {os.cpu_count()}")
    for dim in args.dims:
        for n in args.sizes:
            for kind in args.kinds:
                one(kind, n, dim, args.depths, args.indexes)


if __name__ == "__main__":
    from measure import measured_run  # bench/ is on sys.path when run as a script

    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
