"""Side-by-side vector search benchmark (run by hand, not in CI): pip install -e '.[bench]'.

    python bench/search_bench.py --n 100000 --queries 1000 --out /tmp/bench/100k.jsonl

Clustered synthetic 512-d unit vectors (a mixture of Gaussians, so neighbours mean something);
queries are drawn from the same mixture. Each engine is built once in a forked child process
and then measured at each of its search settings (efSearch, search_k, nprobe...), so engines
can be compared at matched recall. Per row: build time, memory per vector two ways (the
index's own size as the library reports or serialises it, and the child's RSS growth during
the build), single-query p50/p99 latency, recall@10 against exact float32 search. Rows are
appended to --out as JSON lines as soon as they are measured; an engine whose build passes
--build-limit, or whose build and sweep pass --limit, is stopped and reported as such.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import queue
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import psutil

if TYPE_CHECKING:
    from photoseek.store.vectors import VectorStore

DIM = 512
K = 10
THREADS = 2

Searcher = Callable[[np.ndarray], np.ndarray]


@dataclass
class Built:
    """A built index: its own size in bytes (None where unknown) and its search settings,
    each configured only when the sweep reaches it."""

    index_bytes: int | None
    settings: Iterable[tuple[str, Searcher]]


Engine = Callable[[np.ndarray, Path], Built]


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


def exact_float32(data: np.ndarray, _: Path) -> Built:
    matrix = data.copy()
    return Built(matrix.nbytes, [("", lambda q: np.argpartition(-(matrix @ q), K)[:K])])


def ours_exact(data: np.ndarray, _: Path) -> Built:
    from photoseek.store.vectors import ExactIndex

    index = ExactIndex(_store(data))
    return Built(index.store.matrix.nbytes, [("", lambda q: index.search(q, K)[0])])


def ours_faiss(data: np.ndarray, _: Path, sweep: dict[str, dict], **build_params) -> Built:
    """Our FaissIndex over an in-RAM float16 store; the sweep varies only search-time knobs."""
    import faiss

    from photoseek.store.faiss_index import FaissIndex, FaissParams, build

    store = _store(data)
    params = FaissParams(**build_params)
    graph = build(store.matrix, params)
    size = faiss.serialize_index(graph).nbytes

    def settings() -> Iterator[tuple[str, Searcher]]:
        for label, search_params in sweep.items():
            index = FaissIndex(store, graph, replace(params, **search_params))
            yield label, lambda q, index=index: index.search(q, K)[0]

    return Built(size, settings())


def _store(data: np.ndarray) -> VectorStore:
    from photoseek.store.vectors import VectorStore

    return VectorStore(np.arange(len(data), dtype=np.int64), data.astype(np.float16), 0, "bench", "bench")


def hnswlib_engine(data: np.ndarray, _: Path, efs: Iterable[int]) -> Built:
    import hnswlib

    index = hnswlib.Index(space="ip", dim=DIM)
    index.init_index(max_elements=len(data), M=16, ef_construction=80)
    index.add_items(data, num_threads=THREADS)

    def settings() -> Iterator[tuple[str, Searcher]]:
        for ef in efs:
            index.set_ef(ef)
            yield f"ef={ef}", lambda q: index.knn_query(q, k=K, num_threads=1)[0][0]

    return Built(index.index_file_size(), settings())


def annoy_engine(data: np.ndarray, workdir: Path, trees: int, search_ks: Iterable[int]) -> Built:
    from annoy import AnnoyIndex

    index = AnnoyIndex(DIM, "angular")
    for i, v in enumerate(data):
        index.add_item(i, v)
    index.build(trees, n_jobs=THREADS)
    index.save(str(workdir / "annoy.ann"))  # the saved file is what a real deployment memory-maps
    size = (workdir / "annoy.ann").stat().st_size

    def settings() -> Iterator[tuple[str, Searcher]]:
        for search_k in search_ks:
            yield f"search_k={search_k}", lambda q, s=search_k: np.array(index.get_nns_by_vector(q, K, search_k=s))

    return Built(size, settings())


def usearch_engine(data: np.ndarray, _: Path, dtype: str, efs: Iterable[int]) -> Built:
    from usearch.index import Index

    index = Index(ndim=DIM, metric="cos", dtype=dtype, connectivity=16, expansion_add=80)
    index.add(np.arange(len(data)), data, threads=THREADS)

    def settings() -> Iterator[tuple[str, Searcher]]:
        for ef in efs:
            index.expansion_search = ef
            yield f"ef={ef}", lambda q: index.search(q, K, threads=1).keys

    return Built(index.serialized_length, settings())


def qdrant_local(data: np.ndarray, _: Path) -> Built:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")  # local mode; on-disk local mode (path=...) is slower still
    client.create_collection("bench", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
    for start in range(0, len(data), 2048):
        block = data[start : start + 2048]
        client.upload_collection("bench", vectors=block, ids=list(range(start, start + len(block))))
    search = lambda q: np.array([p.id for p in client.query_points("bench", query=q, limit=K).points])  # noqa: E731
    return Built(None, [("", search)])


HNSW_EFS = (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
OURS_HNSW_SWEEP = [(ef, max(ef, K)) for ef in HNSW_EFS]  # (efSearch, re-rank depth)
OURS_HNSW_SWEEP += [(ef, rerank) for ef in (256, 384, 512, 768) for rerank in (40, 64, 128)]
IVF_SWEEP = ((8, 40), (16, 100), (32, 200), (64, 400))  # (nprobe, re-rank depth)
ENGINES: dict[str, Engine] = {
    "exact numpy float32": exact_float32,
    "photoseek exact float16": ours_exact,
    "photoseek faiss HNSW-SQ8 M=16": lambda d, w: ours_faiss(
        d, w, {f"ef={ef} rerank={r}": {"ef_search": ef, "rerank": r} for ef, r in OURS_HNSW_SWEEP}
    ),
    "photoseek faiss IVF-PQ": lambda d, w: ours_faiss(
        d, w, {f"nprobe={p} rerank={r}": {"nprobe": p, "rerank": r} for p, r in IVF_SWEEP}, kind="ivfpq"
    ),
    "hnswlib M=16": lambda d, w: hnswlib_engine(d, w, HNSW_EFS),
    "annoy 50 trees": lambda d, w: annoy_engine(d, w, 50, (1000, 3000, 10000, 30000, 100000)),
    "usearch f16 M=16": lambda d, w: usearch_engine(d, w, "f16", HNSW_EFS),
    "usearch i8 M=16": lambda d, w: usearch_engine(d, w, "i8", HNSW_EFS),
    "qdrant local mode (in-memory)": qdrant_local,
}


def run_engine(name: str, engine: Engine, data, queries, truth, report: Callable[[dict], None]) -> None:
    """Build, report the build, then measure each search setting and report it."""
    workdir = Path(tempfile.mkdtemp(prefix="photoseek-bench-"))
    try:
        before = rss()
        start = time.perf_counter()
        built = engine(data, workdir)
        build = {
            "build_s": round(time.perf_counter() - start, 2),
            "index_bytes_per_vector": None if built.index_bytes is None else round(built.index_bytes / len(data), 1),
            "rss_bytes_per_vector": round((rss() - before) / len(data), 1),
        }
        report({"event": "built"})
        for label, search in built.settings:
            report({"engine": name, "setting": label, "n": len(data), **build, **measure(search, queries, truth)})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def measure(search: Searcher, queries: np.ndarray, truth: np.ndarray) -> dict:
    for q in queries[:20]:
        search(q)
    latencies, hits = [], 0
    for q, t in zip(queries, truth):
        tick = time.perf_counter()
        found = search(q)
        latencies.append(time.perf_counter() - tick)
        hits += len(set(np.asarray(found).tolist()) & set(t.tolist()))
    lat = np.array(latencies) * 1000
    return {
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p99_ms": round(float(np.percentile(lat, 99)), 3),
        "recall_at_10": round(hits / (K * len(queries)), 4),
    }


def measure_in_child(name, engine, data, queries, truth, build_limit: float, limit: float) -> Iterator[dict]:
    """Each engine in a fresh forked process: clean RSS accounting and hard time limits.
    Yields the rows it measured, then an error row if it was stopped or crashed."""
    ctx = multiprocessing.get_context("fork")
    events = ctx.Queue()
    child = ctx.Process(target=lambda: (run_engine(name, engine, data, queries, truth, events.put), events.put(None)))
    start = time.monotonic()
    child.start()
    deadline, error = start + build_limit, None
    while error is None:
        try:
            event = events.get(timeout=1)
        except queue.Empty:
            if not child.is_alive() and events.empty():
                error = f"crashed (exit code {child.exitcode})"
            elif time.monotonic() > deadline:
                spent = time.monotonic() - start
                error = f"stopped after {spent:.0f} s (limits {build_limit:.0f} s build, {limit:.0f} s in all)"
            continue
        if event is None:
            break
        if event.get("event") == "built":
            deadline = start + limit
        else:
            yield event
    child.kill()
    child.join()
    if error:
        yield {"engine": name, "n": len(data), "error": error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--engines", nargs="*", help="Substrings of engine names to run, in this order (default: all).")
    parser.add_argument("--out", type=Path, help="JSON lines file the rows are appended to.")
    parser.add_argument("--build-limit", type=float, default=900, help="Seconds allowed for one engine's build.")
    parser.add_argument("--limit", type=float, default=1800, help="Seconds allowed per engine (build + sweep).")
    parser.add_argument("--table", type=Path, help="Print a JSON lines file of results as a Markdown table and exit.")
    args = parser.parse_args()
    if args.table:
        print(markdown([json.loads(line) for line in args.table.read_text().splitlines()]))
        return
    import faiss

    faiss.omp_set_num_threads(THREADS)
    data = clustered(args.n, seed=1)
    queries = clustered(args.queries, seed=2)
    truth = ground_truth(data, queries)
    emit({"event": "start", "n": args.n, "queries": args.queries, "load_avg": os.getloadavg()}, args.out)
    for name in selected(args.engines):
        for row in measure_in_child(name, ENGINES[name], data, queries, truth, args.build_limit, args.limit):
            emit({**row, "load_avg": os.getloadavg()[0]}, args.out)


def selected(patterns: list[str] | None) -> list[str]:
    if not patterns:
        return list(ENGINES)
    chosen = [name for pattern in patterns for name in ENGINES if pattern.lower() in name.lower()]
    return list(dict.fromkeys(chosen))


def markdown(rows: list[dict]) -> str:
    lines = [
        "| engine | setting | build s | index B/vector | RSS B/vector | p50 ms | p99 ms | recall@10 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['engine']} | {r['error']} | | | | | | |")
        elif "engine" in r:
            cells = [r["engine"], r["setting"], r["build_s"], r["index_bytes_per_vector"], r["rss_bytes_per_vector"]]
            cells += [r["p50_ms"], r["p99_ms"], f"{r['recall_at_10']:.3f}"]
            lines.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines)


def emit(row: dict, out: Path | None) -> None:
    print(json.dumps(row), flush=True)
    if out:
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    from measure import measured_run  # bench/ is on sys.path when run as a script

    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
