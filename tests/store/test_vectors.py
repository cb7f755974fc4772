import numpy as np
import pytest

from photoseek.store import vectors as vectors_module
from photoseek.store.catalog import Catalog, NewImage
from photoseek.store.vectors import ExactIndex


def _fill(catalog: Catalog, vectors: np.ndarray) -> None:
    catalog.bind_model("m", vectors.shape[1])
    catalog.write_batch([
        NewImage(f"/p/{i}.jpg", 1, 1, f"h{i}", 1, 1, "png", None, None, v)
        for i, v in enumerate(vectors)
    ])


def test_exact_search_matches_brute_force_and_cache_tracks_changes(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with Catalog(tmp_path / "c.db") as catalog:
        _fill(catalog, vectors)
        query = vectors[7]
        ids, scores = ExactIndex.open(catalog).search(query, 5)
        expected = np.argsort(-(vectors @ query))[:5] + 1
        assert ids.tolist() == expected.tolist()
        assert scores[0] > 0.99 and all(np.diff(scores) <= 0)
        assert (tmp_path / "c.db.vectors.f16").exists()

        catalog.write_batch([], removed=["/p/7.jpg"])
        ids, _ = ExactIndex.open(catalog).search(query, 5)
        assert 8 not in ids.tolist()


def test_empty_index_returns_nothing(tmp_path):
    with Catalog(tmp_path / "c.db") as catalog:
        ids, scores = ExactIndex.open(catalog).search(np.ones(4, dtype=np.float32), 3)
        assert len(ids) == 0 and len(scores) == 0


def test_small_exact_search_never_imports_faiss(tmp_path):
    """A cold search over a small catalog must not pay for faiss's import and a copy of the rows."""
    import subprocess
    import sys

    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(500, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with Catalog(tmp_path / "c.db") as catalog:
        _fill(catalog, vectors)
    script = (
        "import sys, numpy as np\n"
        "from photoseek.store.catalog import Catalog\n"
        "from photoseek.store.backends import open_index\n"
        f"with Catalog({str(tmp_path / 'c.db')!r}) as c:\n"
        "    ids, _ = open_index(c).search(np.ones(16, dtype=np.float32) / 4, 5)\n"
        "print(len(ids), 'faiss' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["5", "False"]


@pytest.mark.parametrize("scorer", ["numpy", "faiss"])
def test_a_batch_of_queries_ranks_each_as_alone(tmp_path, monkeypatch, scorer):
    """`search_many` scores all queries in one call (one matrix product, or one faiss search) and
    must give every query exactly what `search` gives it alone: with dead rows, a filter, and k
    beyond the collection."""
    if scorer == "faiss":
        pytest.importorskip("faiss")
        monkeypatch.setattr(vectors_module, "NUMPY_EXACT_ROWS", 50)
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(400, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.normal(size=(70, 16)).astype(np.float32)  # more than one block of queries
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    with Catalog(tmp_path / "c.db") as catalog:
        _fill(catalog, vectors)
        catalog.write_batch([], removed=[f"/p/{i}.jpg" for i in range(0, 400, 7)])
        index = ExactIndex.open(catalog)
        assert (index._flat is not None) == (scorer == "faiss")
        stored = vectors.astype(np.float16).astype(np.float32)
        alive = np.array([i for i in range(400) if i % 7], dtype=np.int64)
        for allowed, k in ((None, 10), (np.arange(1, 401, 3), 24), (np.array([2, 3, 5, 8]), 10), (None, 1000)):
            batch = index.search_many(queries, k, allowed)
            assert len(batch) == len(queries)
            for query, (ids, scores) in zip(queries, batch):
                alone_ids, alone_scores = index.search(query, k, allowed)
                np.testing.assert_array_equal(ids, alone_ids)
                np.testing.assert_array_equal(scores, alone_scores)
                rows = alive if allowed is None else np.intersect1d(alive, allowed - 1)
                best = rows[np.argsort(-(stored[rows] @ query), kind="stable")][: min(k, len(rows))]
                assert ids.tolist() == (best + 1).tolist()
