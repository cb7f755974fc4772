"""Approximate search with FAISS: HNSW (or IVF-PQ) over the store's rows, exact re-ranking.

The graph holds 8-bit scalar-quantised vectors (about half the memory of float16); the
top candidates it finds are re-scored from the float16 store, so scores and order are
those of the exact index. Row numbers are the faiss labels: new and changed embeddings
are appended to the graph, dead rows (deleted or superseded) are masked out with a
selector, and the store's compaction (a new epoch) triggers a rebuild. The index file
and its stamp are written to temporary names and renamed, stamp last, and the stamp
names the epoch and row count the file reflects, so a killed update is detected and
repaired, never trusted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photoseek.errors import PhotoseekError
from photoseek.store.catalog import Catalog
from photoseek.store.filters import SearchFilters
from photoseek.store.vectors import VectorStore, bitmap_selector, rank, score_rows
from photoseek.threads import load_faiss

EF_SEARCH_BY_SIZE: tuple[tuple[int, int], ...] = (
    (10_000, 24),
    (30_000, 24),
    (100_000, 24),
    (300_000, 64),
    (1_000_000, 384),
)
"""(collection size, efSearch): the smallest efSearch that gave recall@10 >= 0.95 at that size in
bench/search_bench.py (clustered 512-d vectors, M=16, docs/benchmarks.md "ANN settings that follow
the collection"). Harder to search as it grows: 24 suffices up to 100k, 300k needs 64, 1M 384."""


def ef_search_for(count: int) -> int:
    """efSearch for a graph of `count` vectors: the setting of the next measured size up, so a
    collection between two measured sizes gets at least the recall measured at the larger."""
    for size, ef in EF_SEARCH_BY_SIZE:
        if count <= size:
            return ef
    return EF_SEARCH_BY_SIZE[-1][1]


@dataclass(frozen=True)
class FaissParams:
    """Knobs measured in bench/search_bench.py (docs/benchmarks.md). efSearch follows the collection's
    size (`ef_search_for`) unless set. Re-ranking more than the top 40 graph candidates changed no
    result: the 8-bit codes already order them well."""

    kind: str = "hnsw"
    m: int = 16
    ef_construction: int = 80
    ef_search: int | None = None
    rerank: int = 40
    nprobe: int = 24
    exact_below: int = 4_000
    """Filtered sets this small are scored exactly (cheaper than walking the graph)."""


def import_faiss() -> object:
    try:
        faiss = load_faiss()
    except ImportError:
        raise PhotoseekError(
            "The faiss index needs the faiss extra: pip install 'photoseek[faiss]' "
            "(or index with --index exact)."
        ) from None
    return faiss


def new_index(dim: int, count: int, params: FaissParams) -> object:
    """An empty, untrained index of the chosen kind sized for `count` vectors."""
    faiss = import_faiss()
    if params.kind == "ivfpq" and count >= 10_000:
        nlist = int(np.clip(4 * np.sqrt(count), 64, 65536))
        return faiss.index_factory(dim, f"IVF{nlist},PQ{dim // 8}x8", faiss.METRIC_INNER_PRODUCT)
    index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, params.m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = params.ef_construction
    return index


def build(matrix: np.ndarray, params: FaissParams) -> object:
    """Train on a sample and add every row, in float32 chunks to bound memory."""
    index = new_index(matrix.shape[1], len(matrix), params)
    sample = np.random.default_rng(0).choice(len(matrix), min(len(matrix), 100_000), replace=False)
    index.train(np.asarray(matrix[np.sort(sample)], dtype=np.float32))
    add_rows(index, matrix, 0)
    return index


def add_rows(index: object, matrix: np.ndarray, start: int) -> None:
    for begin in range(start, len(matrix), 65536):
        index.add(np.asarray(matrix[begin : begin + 65536], dtype=np.float32))


def candidates(index: object, query: np.ndarray, k: int, params: FaissParams, selector: object | None) -> np.ndarray:
    """Row numbers of the approximate top-`k`, best first."""
    faiss = import_faiss()
    if isinstance(index, faiss.IndexHNSW):
        ef_search = params.ef_search or ef_search_for(index.ntotal)
        search_params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(ef_search, k))
    else:
        search_params = faiss.SearchParametersIVF(sel=selector, nprobe=params.nprobe)
    _, rows = index.search(np.asarray(query, dtype=np.float32)[None], k, params=search_params)
    return rows[0][rows[0] >= 0]


class FaissIndex:
    """The faiss graph plus the store it was built over."""

    filters_inside = False

    def __init__(self, store: VectorStore, index: object | None, params: FaissParams) -> None:
        self.store = store
        self.index = index
        self.params = params
        self._alive = np.flatnonzero(store.ids >= 0)
        has_dead = len(self._alive) < len(store.ids)
        self._alive_selector = bitmap_selector(self._alive, len(store.ids)) if has_dead else None

    def __len__(self) -> int:
        return len(self._alive)

    @classmethod
    def open(cls, catalog: Catalog, params: FaissParams | None = None) -> FaissIndex:
        """Bring the index file up to date with the catalog (incrementally when it can)."""
        params = params or FaissParams()
        import_faiss()
        store = VectorStore.sync(catalog)
        files = _IndexFiles(catalog.path)
        index = files.load(store, params)
        if len(store.ids) == 0:
            return cls(store, None, params)
        if index is None:
            index = build(store.matrix, params)
            files.save(index, store, params, trained_rows=len(store.ids))
        elif index.ntotal < len(store.ids):
            add_rows(index, store.matrix, index.ntotal)
            files.save(index, store, params, trained_rows=files.trained_rows)
        return cls(store, index, params)

    def close(self) -> None:
        """Nothing to release: the graph is an in-memory copy."""

    def search(
        self,
        query: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | None = None,
        filters: SearchFilters | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        rows, selector = self._alive, self._alive_selector
        if allowed_ids is not None:
            rows = self.store.rows_of(allowed_ids)
            if len(rows) <= self.params.exact_below:
                return self._exact(query, k, rows)
            selector = bitmap_selector(rows, len(self.store.ids))
        if self.index is None or k <= 0:
            return self._exact(query, 0, rows)
        found = candidates(self.index, query, max(k, self.params.rerank), self.params, selector)
        if len(found) < min(k, len(rows)):
            # The graph ran dry inside a narrow filter: score the filtered set exactly, never return fewer.
            return self._exact(query, k, rows)
        return self._exact(query, k, found)

    def _exact(self, query: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The k best of these rows by their float16 vectors, as every backend ranks them."""
        return rank(self.store.ids[rows], score_rows(self.store.matrix, query, rows), k)


class _IndexFiles:
    def __init__(self, db_path: Path) -> None:
        self.index_path = db_path.with_name(db_path.name + ".faiss")
        self.stamp_path = db_path.with_name(db_path.name + ".faiss.json")
        self.trained_rows = 0

    def load(self, store: VectorStore, params: FaissParams) -> object | None:
        """The saved index if it was built over this store's epoch and is not outgrown."""
        faiss = import_faiss()
        try:
            stamp = json.loads(self.stamp_path.read_text())
            if (stamp["epoch"], stamp["kind"]) != (store.epoch, params.kind):
                return None
            if not stamp["rows"] <= len(store.ids) <= 2 * max(stamp["trained_rows"], 1000):
                return None  # quantiser ranges and IVF centroids were fitted to far fewer rows
            index = faiss.read_index(str(self.index_path))
        except (OSError, ValueError, KeyError, RuntimeError):
            return None
        if index.ntotal != stamp["rows"] or index.d != store.matrix.shape[1]:
            return None
        self.trained_rows = stamp["trained_rows"]
        return index

    def save(self, index: object, store: VectorStore, params: FaissParams, trained_rows: int) -> None:
        faiss = import_faiss()
        stamp = {"epoch": store.epoch, "kind": params.kind, "rows": int(index.ntotal), "trained_rows": trained_rows}
        tmp = self.index_path.with_name(self.index_path.name + ".tmp")
        try:
            faiss.write_index(index, str(tmp))
            os.replace(tmp, self.index_path)
            tmp_stamp = self.stamp_path.with_name(self.stamp_path.name + ".tmp")
            tmp_stamp.write_text(json.dumps(stamp))
            os.replace(tmp_stamp, self.stamp_path)
        except (OSError, RuntimeError):
            return  # read-only folder: the index lives in memory for this process
