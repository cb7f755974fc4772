"""The faiss backend on a few thousand clustered random vectors written straight into the catalog:
the approximate path agrees with exact search, follows changes incrementally, and survives a
kill mid-update (detected and repaired, never trusted)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from photoseek.store.backends import IndexConfig, open_index, save_config
from photoseek.store.catalog import Catalog, NewImage
from photoseek.store.vectors import ExactIndex

faiss = pytest.importorskip("faiss")
DIM = 32


def _vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(99).standard_normal((20, DIM))
    v = (means[rng.integers(0, 20, n)] + 0.5 * rng.standard_normal((n, DIM))).astype(np.float32)
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
        _add(catalog, 0, _vectors(3000, 1))
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
    queries = _vectors(50, 2)
    assert _recall(catalog, queries) >= 0.95
    ids = np.arange(1, 3001)
    assert _recall(catalog, queries, ids[ids % 2 == 0]) >= 0.95  # graph search behind a selector
    assert _recall(catalog, queries, ids[:30]) == 1.0  # small set: scored exactly, never starved


def test_updates_are_incremental_and_deletions_never_come_back(catalog, tmp_path):
    open_index(catalog)
    stamp = json.loads((tmp_path / "c.db.faiss.json").read_text())
    _add(catalog, 3000, _vectors(200, 3))
    removed = [f"/p/{i}.jpg" for i in range(0, 3000, 10)]
    catalog.write_batch([], removed=removed)
    index = open_index(catalog)
    after = json.loads((tmp_path / "c.db.faiss.json").read_text())
    assert after["epoch"] == stamp["epoch"] and after["rows"] == 3200  # appended, not rebuilt
    assert len(index) == 3200 - len(removed)
    gone = {i + 1 for i in range(0, 3000, 10)}
    for q in _vectors(30, 4):
        assert not gone & set(index.search(q, 50)[0].tolist())
    assert _recall(catalog, _vectors(30, 5)) >= 0.95


def test_kill_between_writing_and_stamping_is_detected(catalog, tmp_path):
    open_index(catalog)
    stamp_path = tmp_path / "c.db.faiss.json"
    old_stamp = stamp_path.read_text()
    _add(catalog, 3000, _vectors(100, 6))
    open_index(catalog)
    stamp_path.write_text(old_stamp)  # the new index file landed, its stamp did not
    (tmp_path / "c.db.faiss.tmp").write_bytes(b"half-written")
    assert _recall(catalog, _vectors(30, 7)) >= 0.95
    assert json.loads(stamp_path.read_text())["rows"] == 3100


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
