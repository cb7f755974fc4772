"""Vector search over the catalog's embeddings.

`VectorIndex` is the seam where approximate indexes and vector databases plug in (see
`photoseek.store.backends`). Every local backend reads the same `VectorStore`: a float16
copy of the embeddings beside the catalog, memory-mapped, updated from the catalog's
change log instead of being rebuilt on every run. The exact index scores all of it.
"""

from __future__ import annotations

import json
import os
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from photoseek.durable import remove_stale_temps, replacing, write_atomically
from photoseek.store.catalog import Catalog
from photoseek.store.filters import SearchFilters
from photoseek.threads import blas_threads, load_faiss

COMPACT_DEAD_FRACTION = 0.25
"""Rewrite the store (and rebuild indexes over it) once this share of its rows is dead."""

_NUMPY_CHUNK_ROWS = 16384

FaissObject = Any
"""An object of faiss's SWIG bindings (an index, a selector): faiss ships no type information."""


@dataclass(frozen=True)
class IndexInfo:
    """What answers a catalog's searches, for `status`: the backend chosen, the index that really
    searches (exact, hnsw, ivfpq, scan, qdrant) and why, and for a graph or scan its depth and measured
    recall."""

    backend: str
    kind: str
    reason: str
    depth: int | None = None
    depth_setting: str | None = None
    """What `depth` sets: efSearch (HNSW), nprobe (IVF-PQ) or candidates (re-ranked after a scan)."""
    recall_at_10: float | None = None


class VectorIndex(Protocol):
    """Finds the stored vectors closest to a query (cosine similarity, unit vectors).

    Local backends rank within `allowed_ids` (the catalog's filter result); backends with
    `filters_inside` (a vector database holding the metadata) take `filters` instead.
    """

    filters_inside: bool

    def __len__(self) -> int: ...

    def close(self) -> None: ...

    def search(
        self,
        query: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | None = None,
        filters: SearchFilters | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (ids, scores), best first, ties broken by id."""
        ...


@dataclass
class VectorStore:
    """Rows of float16 vectors; `ids[row]` is the catalog id, -1 for a dead row.

    Rows are only ever appended or marked dead, so indexes built over row numbers stay
    valid until a compaction, which starts a new `epoch`.
    """

    ids: np.ndarray
    matrix: np.ndarray
    generation: int
    epoch: str
    model_id: str

    @property
    def live_count(self) -> int:
        return int(np.count_nonzero(self.ids >= 0))

    @property
    def dead_fraction(self) -> float:
        return 1 - self.live_count / len(self.ids) if len(self.ids) else 0.0

    @classmethod
    def sync(cls, catalog: Catalog, compact_above: float = COMPACT_DEAD_FRACTION) -> VectorStore:
        """The store brought up to date with the catalog, rewritten (a new epoch) once more than
        `compact_above` of its rows are dead; persisted when the folder allows."""
        files = _StoreFiles(catalog.path)
        generation = catalog.generation()
        store = files.load(catalog.model_id or "", catalog.dim or 0)
        if store is not None and store.generation != generation:
            store = store._updated(catalog, files, generation)
        if store is None or len(store.ids) > 64 and store.dead_fraction > compact_above:
            ids, matrix = catalog.all_embeddings()
            store = files.write_full(ids, matrix.astype(np.float16), generation, catalog.model_id or "")
        return store

    def _updated(self, catalog: Catalog, files: _StoreFiles, generation: int) -> VectorStore | None:
        changes = catalog.changes_since(self.generation)
        ids = self.ids.copy()
        stale = np.isin(ids, np.concatenate([changes.removed, changes.ids]))
        ids[stale] = -1
        ids = np.concatenate([ids, changes.ids])
        return files.append(self, ids, changes.embeddings.astype(np.float16), generation)

    def rows_of(self, wanted_ids: np.ndarray) -> np.ndarray:
        """Row numbers of these catalog ids (those present), in row order."""
        return np.flatnonzero(np.isin(self.ids, wanted_ids)) if len(wanted_ids) else np.empty(0, np.int64)

    def vectors_of(self, wanted_ids: np.ndarray) -> np.ndarray:
        """float32 vectors of these catalog ids in the order given; NaN rows for ids not stored.

        The same float16 rows every index scores, so scores computed from them match a search's.
        """
        out = np.full((len(wanted_ids), self.matrix.shape[1]), np.nan, dtype=np.float32)
        alive = np.flatnonzero(self.ids >= 0)
        found, where = locate(self.ids[alive], wanted_ids)
        out[found] = self.matrix[alive[where]]
        return out

    def sample(self, count: int) -> np.ndarray:
        """Up to `count` stored vectors spread evenly over the collection (float32), for statistics
        of a query's scores over the whole collection."""
        alive = np.flatnonzero(self.ids >= 0)
        picked = alive[np.linspace(0, len(alive) - 1, min(count, len(alive))).astype(np.int64)] if len(alive) else alive
        return self.matrix[picked].astype(np.float32)


class _StoreFiles:
    """The store's three files. Rows are appended, then the ids and last the stamp are
    renamed into place, so a run killed half-way leaves a stamp that still describes
    valid files (the appended tail is cut off on the next write) or a mismatch that
    forces a rebuild; never a stamp over the wrong rows."""

    def __init__(self, db_path: Path) -> None:
        self.matrix_path = db_path.with_name(db_path.name + ".vectors.f16")
        self.ids_path = db_path.with_name(db_path.name + ".vectors.ids.npy")
        self.stamp_path = db_path.with_name(db_path.name + ".vectors.json")

    def load(self, model_id: str, dim: int) -> VectorStore | None:
        try:
            stamp = json.loads(self.stamp_path.read_text())
            ids = np.load(self.ids_path)
            if (stamp["model_id"], stamp["dim"], stamp["rows"]) != (model_id, dim, len(ids)):
                return None
            if stamp["ids_crc"] != zlib.crc32(ids.tobytes()):
                return None
            matrix = _map_rows(self.matrix_path, len(ids), dim)
        except (OSError, ValueError, KeyError):
            return None
        return VectorStore(ids, matrix, stamp["generation"], stamp["epoch"], model_id)

    def write_full(self, ids: np.ndarray, matrix: np.ndarray, generation: int, model_id: str) -> VectorStore:
        store = VectorStore(ids, matrix, generation, uuid.uuid4().hex, model_id)
        try:
            remove_stale_temps(self.matrix_path)  # what a run killed while writing left (as big as the store)
            with replacing(self.matrix_path) as out:
                matrix.tofile(out)
            self._commit(store)
            store.matrix = _map_rows(self.matrix_path, len(ids), matrix.shape[1])
        except OSError:
            pass  # a read-only folder just means the store lives in memory for this process
        return store

    def append(self, old: VectorStore, ids: np.ndarray, rows: np.ndarray, generation: int) -> VectorStore:
        dim = old.matrix.shape[1]
        try:
            with open(self.matrix_path, "r+b") as f:
                f.truncate(len(old.ids) * dim * 2)
                f.seek(0, os.SEEK_END)
                f.write(rows.tobytes())
                f.flush()
                os.fsync(f.fileno())  # the rows are on disk before the ids and stamp that count them
            store = VectorStore(ids, _map_rows(self.matrix_path, len(ids), dim), generation, old.epoch, old.model_id)
            self._commit(store)
        except OSError:
            matrix = np.concatenate([np.asarray(old.matrix), rows]) if len(rows) else old.matrix
            store = VectorStore(ids, matrix, generation, old.epoch, old.model_id)
        return store

    def _commit(self, store: VectorStore) -> None:
        with replacing(self.ids_path) as out:
            np.save(out, store.ids)
        stamp = {
            "generation": store.generation, "epoch": store.epoch, "model_id": store.model_id,
            "dim": int(store.matrix.shape[1]), "rows": len(store.ids), "ids_crc": zlib.crc32(store.ids.tobytes()),
        }
        write_atomically(self.stamp_path, json.dumps(stamp).encode())


def _map_rows(path: Path, rows: int, dim: int) -> np.ndarray:
    if rows == 0 or dim == 0:
        return np.empty((rows, dim), dtype=np.float16)
    return np.memmap(path, dtype=np.float16, mode="r", shape=(rows, dim))


def locate(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each wanted id sits in `ids` (unsorted, unique): a mask of the wanted ids present, and
    their positions in `ids`, in wanted order. One sort, no per-id look-ups."""
    wanted = np.asarray(wanted, dtype=np.int64)
    if len(ids) == 0 or len(wanted) == 0:
        return np.zeros(len(wanted), dtype=bool), np.empty(0, dtype=np.int64)
    order = np.argsort(ids)
    positions = np.minimum(np.searchsorted(ids[order], wanted), len(ids) - 1)
    found = ids[order][positions] == wanted
    return found, order[positions[found]]


_QUERY_BLOCK = 64
"""Queries scored together by the exact index (a 64 x rows float32 score matrix at most)."""
_RESCORE_MARGIN = 8
"""Candidates beyond k that the exact index rescores, so rounding in a matrix product cannot
change which images make the top k."""

NUMPY_EXACT_ROWS = 20_000
"""Up to this many rows the exact index scores with numpy on a float32 copy (at most 40 MB at
512 dimensions), without importing faiss."""


def rank(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (ids, scores): score descending, then id ascending, so pages are stable."""
    k = min(k, len(ids))
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    top = np.argpartition(-scores, k - 1)[:k] if k < len(ids) else np.arange(len(ids))
    top = top[np.lexsort((ids[top], -scores[top]))]
    return ids[top], scores[top]


def score_rows(matrix: np.ndarray, query: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Cosine scores of the chosen rows (all rows when None), computed in float32."""
    query = np.asarray(query, dtype=np.float32)
    if rows is not None:
        return np.asarray(matrix[rows], dtype=np.float32) @ query
    out = np.empty(len(matrix), dtype=np.float32)
    for start in range(0, len(matrix), _NUMPY_CHUNK_ROWS):
        block = np.asarray(matrix[start : start + _NUMPY_CHUNK_ROWS], dtype=np.float32)
        out[start : start + len(block)] = block @ query
    return out


class ExactIndex:
    """Brute-force cosine search over the store: exact, fine up to a few hundred thousand images.

    Small collections are converted once to float32 and scored by numpy: that costs at most
    `NUMPY_EXACT_ROWS` x 2 KB of RAM and spares a cold query faiss's import and copy. Larger
    ones are scored from the float16 rows by faiss's SIMD kernels when faiss is installed (numpy
    would have to convert float16 first, several times slower), else converted once as well.
    """

    filters_inside = False

    def __init__(self, store: VectorStore) -> None:
        self.store = store
        self._alive = np.flatnonzero(store.ids >= 0)
        self._flat = _faiss_flat_fp16(store.matrix) if len(store.ids) > NUMPY_EXACT_ROWS else None
        self._f32: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._alive)

    @classmethod
    def open(cls, catalog: Catalog) -> ExactIndex:
        return cls(VectorStore.sync(catalog))

    def close(self) -> None:
        """Nothing to release: the store is memory-mapped."""

    def search(
        self,
        query: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | None = None,
        filters: SearchFilters | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.search_many(np.asarray(query, dtype=np.float32)[None], k, allowed_ids, filters)[0]

    def search_many(
        self,
        queries: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | None = None,
        filters: SearchFilters | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """`search` for each row of `queries`, with the same results: the rows are scored in one
        faiss call or one matrix product per block of queries, which costs a fraction per query of
        one call each (faiss spreads the queries over its threads; a matrix product reads the
        collection once per block instead of once per query). The winners are rescored one query
        at a time, as every backend does, so a query ranks the same alone or in a batch."""
        queries = np.asarray(queries, dtype=np.float32)
        rows = self._alive if allowed_ids is None else self.store.rows_of(allowed_ids)
        k = min(k, len(rows))
        if k <= 0:
            return [(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)) for _ in queries]
        with blas_threads(single=len(queries) == 1):
            return self._search_rows(queries, k, rows)

    def _search_rows(self, queries: np.ndarray, k: int, rows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        found: list[np.ndarray] = []
        flat = self._flat
        for start in range(0, len(queries), _QUERY_BLOCK):
            block = queries[start : start + _QUERY_BLOCK]
            found.extend(self._numpy_rows(block, k, rows) if flat is None else self._faiss_rows(flat, block, k, rows))
        # Rescore the few winners the same way every backend does, for identical rankings.
        return [rank(self.store.ids[f], score_rows(self.store.matrix, q, f), k) for q, f in zip(queries, found)]

    def _numpy_rows(self, queries: np.ndarray, k: int, rows: np.ndarray) -> list[np.ndarray]:
        """The rows of about the best `k` for each query (a few more, so rescoring decides ties)."""
        if len(rows) * 8 < len(self.store.ids):
            scores = queries @ np.asarray(self.store.matrix[rows], dtype=np.float32).T
        else:
            if self._f32 is None:
                self._f32 = np.asarray(self.store.matrix, dtype=np.float32)
            scores = queries @ self._f32.T
            scores = scores if len(rows) == len(self.store.ids) else scores[:, rows]
        depth = k + _RESCORE_MARGIN
        if depth >= len(rows):
            return [rows] * len(queries)
        return list(rows[np.argpartition(-scores, depth - 1, axis=1)[:, :depth]])

    def _faiss_rows(self, flat: FaissObject, queries: np.ndarray, k: int, rows: np.ndarray) -> list[np.ndarray]:
        faiss = load_faiss()
        params = None
        if len(rows) < len(self.store.ids):
            params = faiss.SearchParameters(sel=bitmap_selector(rows, len(self.store.ids)))
        _, found = flat.search(np.ascontiguousarray(queries), k, params=params)
        return [f[f >= 0] for f in found]


def top_many(
    index: VectorIndex,
    queries: Sequence[np.ndarray],
    k: int,
    allowed_ids: np.ndarray | None = None,
    filters: SearchFilters | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`index.search` for each query: in one call where the index batches (`search_many`, the exact
    index: a batch costs far less than its queries one by one), else one query at a time."""
    search_many = getattr(index, "search_many", None)
    if search_many is not None and len(queries):
        return list(search_many(np.stack(queries), k, allowed_ids, filters))
    return [index.search(query, k, allowed_ids, filters) for query in queries]


def bitmap_selector(rows: np.ndarray, total: int) -> FaissObject:
    """A faiss selector that lets only these row numbers through."""
    faiss = load_faiss()
    mask = np.zeros(total, dtype=bool)
    mask[rows] = True
    bits = np.packbits(mask, bitorder="little")
    selector = faiss.IDSelectorBitmap(total, faiss.swig_ptr(bits))
    selector.referenced_bits = bits  # keep the buffer alive as long as the selector
    return selector


def _faiss_flat_fp16(matrix: np.ndarray) -> FaissObject | None:
    """A faiss flat float16 index sharing the store's bytes layout, or None without faiss."""
    try:
        faiss = load_faiss()
    except ImportError:
        return None
    if matrix.size == 0:
        return None
    index = faiss.IndexScalarQuantizer(matrix.shape[1], faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    index.is_trained = True
    faiss.copy_array_to_vector(np.ascontiguousarray(matrix).view(np.uint8).ravel(), index.codes)
    index.ntotal = len(matrix)
    return index
