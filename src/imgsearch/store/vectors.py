"""Vector search over the catalog's embeddings.

`VectorIndex` is the seam where approximate indexes and vector databases plug in; the
exact index here scores every image with one matrix product. It keeps a float16 copy
of the embeddings next to the catalog, memory-mapped, so a cold search does not have
to read every embedding out of SQLite.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from imgsearch.store.catalog import Catalog

_SCORE_CHUNK_ROWS = 65536


class VectorIndex(Protocol):
    """Finds the stored vectors closest to a query (cosine similarity, unit vectors)."""

    def __len__(self) -> int: ...

    def search(
        self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (ids, scores), best first, among `allowed_ids` (sorted) when given."""
        ...


class ExactIndex:
    """Brute-force cosine search: exact, and fast enough for hundreds of thousands of images."""

    def __init__(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        self.ids = ids
        self.matrix = matrix

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def open(cls, catalog: Catalog) -> ExactIndex:
        """Use the cached matrix if it matches the catalog, else rebuild the cache."""
        cache = _MatrixCache(catalog.path)
        generation = catalog.generation()
        loaded = cache.load(generation)
        if loaded is None:
            ids, matrix = catalog.all_embeddings()
            cache.save(generation, ids, matrix.astype(np.float16))
            loaded = cache.load(generation) or (ids, matrix.astype(np.float16))
        return cls(*loaded)

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine score of every stored vector, computed chunk-wise in float32."""
        query = np.asarray(query, dtype=np.float32)
        out = np.empty(len(self.ids), dtype=np.float32)
        for start in range(0, len(self.ids), _SCORE_CHUNK_ROWS):
            block = np.asarray(self.matrix[start : start + _SCORE_CHUNK_ROWS], dtype=np.float32)
            out[start : start + len(block)] = block @ query
        return out

    def search(
        self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = self.scores(query)
        candidates = np.arange(len(self.ids))
        if allowed_ids is not None:
            candidates = candidates[np.isin(self.ids, allowed_ids, assume_unique=True)]
        k = min(k, len(candidates))
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        top = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        top = top[np.lexsort((self.ids[top], -scores[top]))]
        return self.ids[top], scores[top]


class _MatrixCache:
    """Three files beside the catalog; written to temporary names, then renamed into place."""

    def __init__(self, db_path: Path) -> None:
        self.ids_path = db_path.with_name(db_path.name + ".ids.npy")
        self.matrix_path = db_path.with_name(db_path.name + ".vectors.npy")
        self.stamp_path = db_path.with_name(db_path.name + ".vectors.json")

    def load(self, generation: int) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            stamp = json.loads(self.stamp_path.read_text())
            if stamp.get("generation") != generation:
                return None
            ids = np.load(self.ids_path)
            matrix = np.load(self.matrix_path, mmap_mode="r")
        except (OSError, ValueError):
            return None
        return (ids, matrix) if len(ids) == len(matrix) else None

    def save(self, generation: int, ids: np.ndarray, matrix: np.ndarray) -> None:
        """Best effort: a read-only folder just means no cache."""
        try:
            for path, array in ((self.ids_path, ids), (self.matrix_path, matrix)):
                tmp = path.with_name(path.name + ".tmp.npy")
                np.save(tmp, array)
                os.replace(tmp, path)
            tmp_stamp = self.stamp_path.with_name(self.stamp_path.name + ".tmp")
            tmp_stamp.write_text(json.dumps({"generation": generation}))
            os.replace(tmp_stamp, self.stamp_path)
        except OSError:
            return
