"""The faiss backend on clustered and uniform random vectors written straight into the catalog:
the approximate path agrees with exact search, follows changes incrementally, survives a kill
mid-update (detected and repaired, never trusted), checks its own recall (raising the search
depth or falling back to exact search, as `status` says), and leaves small catalogs to exact
search."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from photoseek.store.backends import IndexConfig, describe_index, open_index, save_config
from photoseek.store.catalog import Catalog, NewImage
from photoseek.store.faiss_index import SCAN, FaissIndex, FaissParams, build, describe
from photoseek.store.vectors import ExactIndex, VectorStore
from tests.helpers import run_cli, run_json

faiss = pytest.importorskip("faiss")
DIM = 32
N = 10_500
"""Just above `FaissParams.graph_from`: the smallest catalog that gets a graph."""


def _vectors(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(99).standard_normal((20, dim))
    v = (means[rng.integers(0, 20, n)] + 0.5 * rng.standard_normal((n, dim))).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _uniform(n: int, seed: int, dim: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _add(catalog: Catalog, start: int, vectors: np.ndarray) -> None:
    catalog.write_batch([
        NewImage(f"/p/{start + i}.jpg", 1, 1, f"h{start + i}", 10 + (start + i) % 7, 10, "jpeg", None, None, v)
        for i, v in enumerate(vectors)
    ])


@pytest.fixture
def catalog(tmp_path):
    with Catalog(tmp_path / "c.db") as catalog:
        catalog.bind_model("m", DIM)
        save_config(catalog, IndexConfig(backend="faiss"))
        _add(catalog, 0, _vectors(N, 1))
        yield catalog


def _recall(catalog: Catalog, queries: np.ndarray, allowed: np.ndarray | None = None) -> float:
    ann, exact = open_index(catalog), ExactIndex.open(catalog)
    hits = 0
    for q in queries:
        got, scores = ann.search(q, 10, allowed)
        want, _ = exact.search(q, 10, allowed)
        assert len(got) == len(want) and all(np.diff(scores) <= 0)
        if allowed is not None:
            assert np.isin(got, allowed).all()
        hits += len(set(got.tolist()) & set(want.tolist()))
    return hits / (10 * len(queries))


def test_ann_agrees_with_exact_with_and_without_filters(catalog):
    assert isinstance(open_index(catalog), FaissIndex)
    queries = _vectors(50, 2)
    assert _recall(catalog, queries) >= 0.95
    ids = np.arange(1, N + 1)
    assert _recall(catalog, queries, ids[ids % 2 == 0]) >= 0.95  # graph search behind a selector
    assert _recall(catalog, queries, ids[:30]) == 1.0  # small set: scored exactly, never starved


def test_updates_are_incremental_and_deletions_never_come_back(catalog, tmp_path):
    open_index(catalog)
    stamp = json.loads((tmp_path / "c.db.faiss.json").read_text())
    _add(catalog, N, _vectors(200, 3))
    removed = [f"/p/{i}.jpg" for i in range(0, N, 20)]  # 5% dead: masked, below the share that rebuilds
    catalog.write_batch([], removed=removed)
    index = open_index(catalog)
    after = json.loads((tmp_path / "c.db.faiss.json").read_text())
    assert after["epoch"] == stamp["epoch"] and after["rows"] == N + 200  # appended, not rebuilt
    assert after["tuning"] == stamp["tuning"]  # within 5% of the last recall check: not measured again
    assert len(index) == N + 200 - len(removed)
    gone = {i + 1 for i in range(0, N, 20)}
    for q in _vectors(30, 4):
        assert not gone & set(index.search(q, 50)[0].tolist())
    assert _recall(catalog, _vectors(30, 5)) >= 0.95
    _add(catalog, N + 200, _vectors(400, 15))  # 5.7% more rows than measured: checked again
    open_index(catalog)
    tuning = json.loads((tmp_path / "c.db.faiss.json").read_text())["tuning"]
    assert tuning["rows"] == N + 600 and tuning["alive"] == N + 600 - len(removed) and tuning["recall"] >= 0.95


def test_kill_between_writing_and_stamping_is_detected(catalog, tmp_path):
    open_index(catalog)
    stamp_path = tmp_path / "c.db.faiss.json"
    old_stamp = stamp_path.read_text()
    _add(catalog, N, _vectors(100, 6))
    open_index(catalog)
    stamp_path.write_text(old_stamp)  # the new index file landed, its stamp did not
    killed = tmp_path / ".c.db.faiss.0a1b2c3d4e5f.tmp"  # and a later write was killed half-way
    killed.write_bytes(b"half-written")
    os.utime(killed, (time.time() - 3600, time.time() - 3600))  # an hour ago: not a write in progress
    assert _recall(catalog, _vectors(30, 7)) >= 0.95
    assert json.loads(stamp_path.read_text())["rows"] == N + 100
    assert not killed.exists()


def test_stale_or_corrupt_files_are_rebuilt(catalog, tmp_path):
    open_index(catalog)
    (tmp_path / "c.db.faiss").write_bytes(b"garbage")
    assert _recall(catalog, _vectors(20, 8)) >= 0.95
    ids_path = tmp_path / "c.db.vectors.ids.npy"
    ids = np.load(ids_path)
    np.save(ids_path, ids[::-1].copy())  # a store whose ids no longer match its stamp
    with open(tmp_path / "c.db.vectors.f16", "ab") as f:
        f.write(b"\0" * 1000)  # and a torn append
    assert _recall(catalog, _vectors(20, 9)) >= 0.95


def test_ef_search_follows_collection_size():
    from photoseek.store.faiss_index import EF_SEARCH_BY_SIZE, ef_search_for

    efs = [ef for _, ef in EF_SEARCH_BY_SIZE]
    assert efs == sorted(efs), "a larger collection never gets a smaller efSearch"
    assert ef_search_for(5_000) == EF_SEARCH_BY_SIZE[0][1]
    assert ef_search_for(1_000_000) == 384
    assert ef_search_for(50_000_000) == EF_SEARCH_BY_SIZE[-1][1]
    assert ef_search_for(30_000) < ef_search_for(1_000_000)


def _catalog(path, vectors: np.ndarray, kind: str = "hnsw") -> Catalog:
    catalog = Catalog(path)
    catalog.bind_model("m", vectors.shape[1])
    save_config(catalog, IndexConfig(backend="faiss", faiss_kind=kind))
    _add(catalog, 0, vectors)
    return catalog


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_a_small_catalog_grown_with_deletions_ranks_as_a_clean_rebuild(tmp_path, kind):
    """Issue 21.22: 330 vectors, 50 deleted, grown over several runs. Below `graph_from` faiss is
    not worth it and the catalog is searched exactly, so it ranks exactly as a fresh build."""
    vectors = _vectors(380, 11)
    with _catalog(tmp_path / "grown.db", vectors[:200], kind) as grown:
        open_index(grown)
        for start in (200, 290):
            _add(grown, start, vectors[start : start + 90])
            grown.write_batch([], removed=[f"/p/{i}.jpg" for i in range(start - 190, start - 165)])
            open_index(grown)
        index = open_index(grown)
        assert len(index) == 330 and not (tmp_path / "grown.db.faiss").exists()
        alive = sorted(set(range(380)) - set(range(10, 35)) - set(range(100, 125)))
        with _catalog(tmp_path / "clean.db", vectors[alive], kind) as clean:
            rebuilt = open_index(clean)
            for q in _vectors(20, 12):
                got, got_scores = index.search(q, 10)
                want, want_scores = rebuilt.search(q, 10)
                assert [alive[i - 1] for i in want] == [i - 1 for i in got]
                assert np.array_equal(got_scores, want_scores)
        info = describe_index(grown)
        assert (info.backend, info.kind) == ("faiss", "exact") and "below 10,000" in info.reason


def test_dead_rows_past_the_share_rebuild_the_graph(catalog, tmp_path):
    _add(catalog, N, _vectors(1500, 14))
    open_index(catalog)
    stamp = json.loads((tmp_path / "c.db.faiss.json").read_text())
    removed = list(range(0, N + 1500, 8))  # 12.5% dead: past the share
    catalog.write_batch([], removed=[f"/p/{i}.jpg" for i in removed])
    index = open_index(catalog)
    after = json.loads((tmp_path / "c.db.faiss.json").read_text())
    assert after["epoch"] != stamp["epoch"] and after["rows"] == N + 1500 - len(removed) == len(index)
    assert after["tuning"]["alive"] == len(index) and after["tuning"]["recall"] >= 0.95
    assert _recall(catalog, _vectors(30, 13)) >= 0.95


def test_recall_is_checked_and_the_depth_raised_on_uniform_vectors(tmp_path):
    """Uniform random vectors are HNSW's worst case: at the default depth (40) it finds ~0.91 of
    the true top 10 here; the check raises efSearch until the sample reaches 0.95."""
    with _catalog(tmp_path / "c.db", _uniform(20_000, 21, 64)) as catalog:
        index = open_index(catalog)
        assert isinstance(index, FaissIndex) and index.depth > FaissParams().rerank
        tuning = json.loads((tmp_path / "c.db.faiss.json").read_text())["tuning"]
        assert tuning["depth"] == index.depth and tuning["recall"] >= 0.95 and tuning["queries"] == 200
        shallow = FaissIndex(index.store, index.index, index.params, FaissParams().rerank)
        exact = ExactIndex(index.store)
        queries = _uniform(20_000, 21, 64)[1::97]  # other stored vectors than the check's sample
        hits = {"chosen": 0, "shallow": 0}
        for q in queries:
            want = set(exact.search(q, 10)[0].tolist())
            hits["chosen"] += len(want & set(index.search(q, 10)[0].tolist()))
            hits["shallow"] += len(want & set(shallow.search(q, 10)[0].tolist()))
        assert hits["chosen"] / (10 * len(queries)) >= 0.93 > hits["shallow"] / (10 * len(queries))
        status = run_json("status", "--db", tmp_path / "c.db")["vector_search"]
        assert status["kind"] == "hnsw" and status["depth"] == index.depth
        assert status["depth_setting"] == "efSearch" and status["recall_at_10"] == tuning["recall"]


def _brute_force(vectors: np.ndarray, q: np.ndarray, k: int = 10) -> list[int]:
    """Catalog ids of the k best by numpy over the float16 vectors the store keeps (ties by id)."""
    scores = vectors.astype(np.float16).astype(np.float32) @ q
    return (np.lexsort((np.arange(len(scores)), -scores))[:k] + 1).tolist()


def test_a_graph_that_misses_becomes_a_checked_scan_and_says_so(tmp_path):
    """256-d uniform vectors: no efSearch cheaper than a scan reaches 0.95, so the graph is replaced
    by a scan of 4-bit codes re-ranked exactly, whose own check reached recall@10 0.999; it ranks
    as brute force does, for stored and fresh queries, with and without a filter and dead rows."""
    vectors = _uniform(10_600, 31, 256)
    with _catalog(tmp_path / "c.db", vectors) as catalog:
        index = open_index(catalog)
        assert isinstance(index, FaissIndex) and index.depth >= 256
        stamp = json.loads((tmp_path / "c.db.faiss.json").read_text())
        assert stamp["built"] == "scan" and stamp["tuning"]["recall"] >= 0.999
        assert stamp["missed"]["built"] == "hnsw" and stamp["missed"]["recall"] < 0.95
        queries = np.concatenate([_uniform(40, 32, 256), vectors[5::250]])
        hits = sum(len(set(index.search(q, 10)[0].tolist()) & set(_brute_force(vectors, q))) for q in queries)
        assert hits / (10 * len(queries)) >= 0.999
        allowed = np.arange(1, 10_601, 3)  # a third of the images: the scan asks three times as deep
        for q in queries[:10]:
            got, scores = index.search(q, 10, allowed)
            assert np.isin(got, allowed).all() and all(np.diff(scores) <= 0)
            want = allowed[np.argsort(-(vectors[allowed - 1].astype(np.float16).astype(np.float32) @ q))[:10]]
            assert len(set(got.tolist()) & set(want.tolist())) >= 9
        written = (tmp_path / "c.db.faiss").stat().st_mtime_ns
        assert isinstance(open_index(catalog), FaissIndex)  # remembered, not built or measured again
        assert (tmp_path / "c.db.faiss").stat().st_mtime_ns == written
        status = run_json("status", "--db", tmp_path / "c.db")["vector_search"]
        assert status["kind"] == "scan" and status["depth"] == index.depth and status["recall_at_10"] >= 0.999
        assert status["depth_setting"] == "candidates" and "missed" in status["reason"]
        text = " ".join(run_cli("status", "--db", tmp_path / "c.db").split())
        assert "Index: faiss: scan (the hnsw index missed (recall@10 0." in text
        assert "scanning 4-bit codes of every image and re-ranking the best" in text
        catalog.write_batch([], removed=[f"/p/{i}.jpg" for i in range(0, 10_600, 20)])  # 5% dead: kept
        index = open_index(catalog)
        assert isinstance(index, FaissIndex) and index._scan and len(index) == 10_070
        for q in queries[:10]:
            got = index.search(q, 10)[0]
            assert not np.isin(got, np.arange(1, 10_601, 20)).any() and len(got) == 10


def test_a_filter_the_query_mostly_misses_still_gets_a_full_re_rank_from_the_scan():
    """A filter on one part of the library and a query about another: the scan's best codes lie mostly
    outside the filter, so it is asked again, deeper, instead of re-ranking the few that remain."""
    rng = np.random.default_rng(0)
    dim, n = 64, 30_000
    centres = rng.normal(size=(2, dim))
    inside = np.zeros(n, dtype=bool)
    inside[rng.choice(n, n // 5, replace=False)] = True
    vectors = rng.normal(size=(n, dim)) + 0.6 * np.where(inside[:, None], centres[1], centres[0])
    matrix = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float16)
    ids = np.arange(1, n + 1)
    store = VectorStore(ids, matrix, 1, "e", "m")
    index = FaissIndex(store, build(matrix, FaissParams(), SCAN), FaissParams(), 256)
    allowed = ids[inside]
    hits = 0
    for _ in range(10):
        q = rng.normal(size=dim) + 0.6 * (0.3 * centres[1] + 0.7 * centres[0])  # mostly outside
        q = (q / np.linalg.norm(q)).astype(np.float32)
        got = index.search(q, 10, allowed)[0]
        want = allowed[np.argsort(-(matrix[inside].astype(np.float32) @ q))[:10]]
        hits += len(set(got.tolist()) & set(want.tolist()))
    assert hits / 100 >= 0.99, hits


def test_a_scan_that_misses_too_falls_back_to_exact_search_and_says_so(tmp_path):
    """With too few rows for a scan to pay off (a depth past rows / 10), the catalog is searched exactly."""
    vectors = _uniform(2_000, 33, 256)
    params = FaissParams(m=4, ef_search=8, graph_from=1_000)  # a graph too sparse to reach 0.95
    with _catalog(tmp_path / "c.db", vectors) as catalog:
        index = FaissIndex.open(catalog, params)
        assert isinstance(index, ExactIndex)
        q = _uniform(1, 34, 256)[0]
        assert index.search(q, 10)[0].tolist() == _brute_force(vectors, q)
        stamp = json.loads((tmp_path / "c.db.faiss.json").read_text())
        assert stamp["built"] == "scan" and stamp["tuning"]["depth"] is None
        info = describe(tmp_path / "c.db", 2_000, params)
        assert (info.kind, info.depth_setting) == ("exact", "candidates")
        assert "and so did a scan of 4-bit codes" in info.reason and info.reason.endswith("searching exactly")
        assert isinstance(FaissIndex.open(catalog, params), ExactIndex)  # remembered, not measured again
