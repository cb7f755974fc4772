"""Side-by-side vector search benchmark (run by hand, not in CI): pip install -e '.[bench]'.

    python bench/search_bench.py --n 100000 --queries 1000 --out bench/results-100k.json

Clustered synthetic 512-d unit vectors (a mixture of Gaussians, so neighbours mean something);
queries are drawn from the same mixture. For each engine: build time, resident memory added
per vector (RSS delta, graph included), single-query p50/p99 latency with 2 threads, and
recall@10 against exact float32 search. An engine whose build passes --build-limit seconds
is stopped and reported as such.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil

DIM = 512
K = 10


def clustered(n: int, seed: int, centres: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(12345).standard_normal((centres, DIM)).astype(np.float32)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        noise = rng.standard_normal((m, DIM), dtype=np.float32)
        out[start : start + m] = means[rng.integers(0, centres, m)] + 0.9 * noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def ground_truth(data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    best = np.empty((len(queries), K), dtype=np.int64)
    for start in range(0, len(queries), 100):
        scores = queries[start : start + 100] @ data.T
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
        best[start : start + 100] = np.take_along_axis(top, order, 1)
    return best


def rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


# Each engine: build(data, workdir) -> searcher(query) -> ids (top 10 row numbers).
Engine = Callable[[np.ndarray, Path], Callable[[np.ndarray], np.ndarray]]


def exact_float32(data: np.ndarray, _: Path):
    matrix = data.copy()
    return lambda q: np.argpartition(-(matrix @ q), K)[:K]


def exact_numpy_float16(data: np.ndarray, _: Path):
    matrix = data.astype(np.float16)
    from imgsearch.store.vectors import score_rows

    return lambda q: np.argpartition(-score_rows(matrix, q), K)[:K]


def exact_ours_float16(data: np.ndarray, _: Path):
    from imgsearch.store.vectors import ExactIndex, VectorStore

    ids = np.arange(len(data), dtype=np.int64)
    index = ExactIndex(VectorStore(ids, data.astype(np.float16), 0, "bench", "bench"))
    return lambda q: index.search(q, K)[0]


def ours_faiss(data: np.ndarray, _: Path, **overrides):
    from imgsearch.store.faiss_index import FaissIndex, FaissParams, build
    from imgsearch.store.vectors import VectorStore

    params = FaissParams(**overrides)
    matrix = data.astype(np.float16)
    store = VectorStore(np.arange(len(data), dtype=np.int64), matrix, 0, "bench", "bench")
    index = FaissIndex(store, build(matrix, params), params)
    return lambda q: index.search(q, K)[0]


def hnswlib_engine(data: np.ndarray, _: Path, ef: int = 64):
    import hnswlib

    index = hnswlib.Index(space="ip", dim=DIM)
    index.init_index(max_elements=len(data), M=16, ef_construction=80)
    index.add_items(data, num_threads=2)
    index.set_ef(ef)
    return lambda q: index.knn_query(q, k=K)[0][0]


def annoy_engine(data: np.ndarray, _: Path, trees: int = 50, search_k: int = 20000):
    from annoy import AnnoyIndex

    index = AnnoyIndex(DIM, "angular")
    for i, v in enumerate(data):
        index.add_item(i, v)
    index.build(trees, n_jobs=2)
    return lambda q: np.array(index.get_nns_by_vector(q, K, search_k=search_k))


def usearch_engine(data: np.ndarray, _: Path, dtype: str = "i8", ef: int = 64):
    from usearch.index import Index

    index = Index(ndim=DIM, metric="ip", dtype=dtype, connectivity=16, expansion_add=80, expansion_search=ef)
    index.add(np.arange(len(data)), data, threads=2)
    return lambda q: index.search(q, K).keys


def qdrant_local(data: np.ndarray, workdir: Path):
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")  # local mode; on-disk local mode (path=...) is slower still
    client.create_collection("bench", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
    for start in range(0, len(data), 2048):
        block = data[start : start + 2048]
        client.upload_collection("bench", vectors=block, ids=list(range(start, start + len(block))))
    return lambda q: np.array([p.id for p in client.query_points("bench", query=q, limit=K).points])


ENGINES: dict[str, Engine] = {
    "exact numpy float32": exact_float32,
    "exact numpy float16 (chunked cast)": exact_numpy_float16,
    "imgsearch exact float16": exact_ours_float16,
    "imgsearch faiss HNSW-SQ8 ef=32": lambda d, w: ours_faiss(d, w, ef_search=32, rerank=32),
    "imgsearch faiss HNSW-SQ8 ef=64": lambda d, w: ours_faiss(d, w),
    "imgsearch faiss HNSW-SQ8 ef=128": lambda d, w: ours_faiss(d, w, ef_search=128, rerank=64),
    "imgsearch faiss IVF-PQ": lambda d, w: ours_faiss(d, w, kind="ivfpq"),
    "hnswlib M=16 ef=64": hnswlib_engine,
    "hnswlib M=16 ef=128": lambda d, w: hnswlib_engine(d, w, ef=128),
    "annoy 50 trees": annoy_engine,
    "usearch i8 ef=64": usearch_engine,
    "usearch f16 ef=64": lambda d, w: usearch_engine(d, w, dtype="f16"),
    "qdrant local mode": qdrant_local,
}


def measure(name: str, engine: Engine, data: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="imgsearch-bench-"))
    before = rss()
    start = time.perf_counter()
    search = engine(data, workdir)
    build_s = time.perf_counter() - start
    added = rss() - before
    for q in queries[:20]:
        search(q)
    latencies, hits = [], 0
    for q, t in zip(queries, truth):
        tick = time.perf_counter()
        found = search(q)
        latencies.append(time.perf_counter() - tick)
        hits += len(set(np.asarray(found).tolist()) & set(t.tolist()))
    del search
    shutil.rmtree(workdir, ignore_errors=True)
    lat = np.array(latencies) * 1000
    return {
        "engine": name, "n": len(data), "build_s": round(build_s, 2),
        "bytes_per_vector": round(added / len(data), 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 3), "p99_ms": round(float(np.percentile(lat, 99)), 3),
        "recall_at_10": round(hits / (K * len(queries)), 4),
    }


def measure_in_child(name: str, engine: Engine, data, queries, truth, limit_s: float) -> dict:
    """Each engine in a fresh forked process: clean RSS accounting, and a hard time limit."""
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=lambda: results.put(measure(name, engine, data, queries, truth)))
    child.start()
    child.join(limit_s)
    if child.is_alive():
        child.kill()
        child.join()
        return {"engine": name, "n": len(data), "error": f"did not finish within {limit_s:.0f} s"}
    return results.get() if not results.empty() else {"engine": name, "n": len(data), "error": "crashed"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--engines", nargs="*", help="Substrings of engine names to run (default: all).")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--limit", type=float, default=1800, help="Seconds allowed per engine (build + queries).")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    import annoy  # noqa: F401,E401  (loaded before RSS baselines)
    data = clustered(args.n, seed=1)
    queries = clustered(args.queries, seed=2)
    truth = ground_truth(data, queries)
    results = []
    for name, engine in ENGINES.items():
        if args.engines and not any(s.lower() in name.lower() for s in args.engines):
            continue
        row = measure_in_child(name, engine, data, queries, truth, args.limit)
        results.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
