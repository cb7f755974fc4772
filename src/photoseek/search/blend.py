"""The hybrid-embedding vector set: each image as the normalised mean of its CLIP image embedding
and the CLIP text embedding of its own text (note, caption, object counts...).

One vector then carries both what the picture looks like and what was said about it, and a plain
CLIP query ranks against it (`--mode clip-hybrid`). It is a search mode rather than an index
option because the text side changes whenever a note or caption does: the CLIP text embeddings
are stored per document (cached by text hash, like the sentence embeddings) and the means are
taken in memory at search time, so an edited note counts at once, without re-indexing, and the
same catalog answers plain `clip` queries too. The scan is exact (numpy), which stays fast up to
about a million images (docs/benchmarks.md); images without text keep their image embedding.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from photoseek.models.runtime import many_runs
from photoseek.store.catalog import Catalog
from photoseek.store.filters import SearchFilters
from photoseek.store.text import TextStore
from photoseek.threads import blas_threads

MODE = "clip-hybrid"


class BlendedVectors:
    """The blended matrix of one catalog, rebuilt when images or texts change."""

    def __init__(self, catalog: Catalog, texts: TextStore, encode_texts: Callable[[], Callable]) -> None:
        self.catalog = catalog
        self.texts = texts
        self._encode_texts = encode_texts
        self._cached: tuple[tuple[int, int], np.ndarray, np.ndarray] | None = None

    def search(
        self, vector: np.ndarray, k: int, filters: SearchFilters | None, exclude_ids: frozenset[int] = frozenset()
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, cosines) of the best `k` images, among those matching `filters`."""
        ids, matrix = self.matrix()
        with blas_threads(single=True):
            scores = matrix @ vector.astype(np.float32)
        keep = ~np.isin(ids, list(exclude_ids))
        if filters:
            keep &= np.isin(ids, self.catalog.filter_ids(filters))
        ids, scores = ids[keep], scores[keep]
        top = np.lexsort((ids, -scores))[:k]
        return ids[top], scores[top]

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        self._embed_pending()
        key = (self.catalog.generation(), self.texts.version())
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, *self._build())
        return self._cached[1], self._cached[2]

    def _model_key(self) -> str:
        return f"clip:{self.catalog.model_id}"

    def _embed_pending(self) -> None:
        """CLIP text embeddings for documents that lack an up-to-date one (truncated to CLIP's 77 tokens)."""
        pending = self.texts.pending_embeddings(self._model_key())
        if pending:
            with many_runs():
                vectors = self._encode_texts()([p.body for p in pending])
            self.texts.put_embeddings(self._model_key(), pending, vectors)

    def _build(self) -> tuple[np.ndarray, np.ndarray]:
        ids, images = self.catalog.all_embeddings()
        text_ids, text_vectors = self.texts.embeddings(self._model_key())
        blended = np.array(images, dtype=np.float32, copy=True)
        if len(text_ids):
            rows = np.searchsorted(ids, text_ids)
            valid = (rows < len(ids)) & (ids[np.minimum(rows, len(ids) - 1)] == text_ids)
            blended[rows[valid]] += text_vectors[valid]
        blended /= np.clip(np.linalg.norm(blended, axis=1, keepdims=True), 1e-12, None)
        return ids, blended
