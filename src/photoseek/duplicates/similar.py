"""Pairs of images whose CLIP embeddings have a cosine above a threshold.

With the exact backend (the default below ~50k images) this is a blocked range search over
the float16 vector store: each block of rows is multiplied with the rows after it, so memory
stays at one block times n, and time grows as n^2 * dim (about a second per 10k images on
2 cores; minutes at 100k). With an approximate backend (faiss HNSW, Qdrant) each image asks
the catalog's vector index for its nearest neighbours instead, which grows as n log n.
"""

from __future__ import annotations

import numpy as np

from photoseek.store.backends import load_config, open_index, resolve
from photoseek.store.catalog import Catalog
from photoseek.store.vectors import VectorStore

_BLOCK_ROWS = 2048
NEIGHBOURS = 32
"""Neighbours asked for per image from an approximate index: larger bursts are still joined
through chains of matches, since groups are connected components."""


def similar_pairs(catalog: Catalog, ids: np.ndarray, cosine: float) -> np.ndarray:
    """(k, 2) catalog ids a < b among `ids` whose embeddings have a cosine >= `cosine`."""
    if len(ids) < 2:
        return np.empty((0, 2), dtype=np.int64)
    if resolve(load_config(catalog), catalog.count()) == "exact":
        return _blocked(VectorStore.sync(catalog), ids, cosine)
    return _neighbours(catalog, ids, cosine)


def _blocked(store: VectorStore, ids: np.ndarray, cosine: float) -> np.ndarray:
    rows = store.rows_of(ids)
    row_ids = store.ids[rows]
    matrix = np.asarray(store.matrix[rows], dtype=np.float32)
    found = []
    for start in range(0, len(rows), _BLOCK_ROWS):
        block = matrix[start : start + _BLOCK_ROWS]
        scores = block @ matrix[start:].T
        left, right = np.nonzero(scores >= cosine)
        later = right > left  # each pair once, never an image with itself
        found.append(np.stack([row_ids[start + left[later]], row_ids[start + right[later]]], axis=1))
    return _ordered(np.concatenate(found))


def _neighbours(catalog: Catalog, ids: np.ndarray, cosine: float) -> np.ndarray:
    index = open_index(catalog)
    try:
        found = []
        for image_id in ids:
            vector = catalog.embedding(int(image_id))
            if vector is None:  # deleted since the ids were read
                continue
            near, scores = index.search(vector, NEIGHBOURS + 1, allowed_ids=ids)
            # A vector database that filters by itself may ignore `allowed_ids`: check again.
            keep = (scores >= cosine) & (near != image_id) & np.isin(near, ids)
            found += [(int(image_id), int(other)) for other in near[keep]]
    finally:
        index.close()
    return _ordered(np.array(found, dtype=np.int64).reshape(-1, 2))


def _ordered(pairs: np.ndarray) -> np.ndarray:
    """Each pair once, smaller id first."""
    if len(pairs) == 0:
        return pairs.astype(np.int64).reshape(0, 2)
    return np.unique(np.sort(pairs, axis=1), axis=0)
