"""All pairs of 64-bit hashes within a Hamming distance, without comparing every pair.

Multi-index hashing (Norouzi et al., 2012): split each hash into four 16-bit chunks. Two
hashes at distance <= t differ in at most t // 4 bits in at least one chunk (pigeonhole),
so each hash only needs comparing with the hashes whose chunk lies in that small Hamming
ball around its own, found through one bucket table per chunk. Exact (no pair within the
threshold is missed); the work grows with n times the bucket occupancy, not n squared.
Numpy only: faiss is an optional extra and not needed here.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from imgsearch.duplicates.hashing import hamming, rotations

_CHUNKS = 4
_CHUNK_BITS = 16
_BUCKETS = 1 << _CHUNK_BITS
_QUERY_BLOCK = 1 << 16
"""Queries handled together; bounds memory to a few hundred MB at a million hashes."""


def near_pairs(hashes: np.ndarray, threshold: int, *, rotated: bool = True) -> np.ndarray:
    """(k, 2) row numbers i < j whose hashes are within `threshold` bits; with `rotated`, also
    pairs where one picture is the other turned by a quarter or half turn."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    if not 0 <= threshold < 64:
        raise ValueError(f"threshold must be 0..63 bits, got {threshold}")
    if len(hashes) < 2:
        return np.empty((0, 2), dtype=np.int64)
    tables = [_BucketTable(_chunk(hashes, c)) for c in range(_CHUNKS)]
    masks = _ball(threshold // _CHUNKS)
    # A 270-degree match is the 90-degree match seen from the other picture, so three suffice.
    variants = rotations(hashes)[:3] if rotated else [hashes]
    found = [
        _pairs_for(variant[start : start + _QUERY_BLOCK], start, hashes, tables, masks, threshold)
        for variant in variants
        for start in range(0, len(hashes), _QUERY_BLOCK)
    ]
    pairs = np.concatenate(found)
    return np.unique(pairs, axis=0) if len(pairs) else pairs


class _BucketTable:
    """Row numbers grouped by one chunk's value: rows[start[v]:start[v + 1]] have chunk v."""

    def __init__(self, keys: np.ndarray) -> None:
        self.rows = np.argsort(keys, kind="stable")
        self.start = np.zeros(_BUCKETS + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys, minlength=_BUCKETS), out=self.start[1:])


def _chunk(hashes: np.ndarray, index: int) -> np.ndarray:
    return ((hashes >> np.uint64(index * _CHUNK_BITS)) & np.uint64(_BUCKETS - 1)).astype(np.int64)


def _ball(radius: int) -> np.ndarray:
    """Every 16-bit mask with at most `radius` bits set."""
    masks = [sum(1 << b for b in bits) for r in range(radius + 1) for bits in combinations(range(_CHUNK_BITS), r)]
    return np.array(masks, dtype=np.int64)


def _pairs_for(
    queries: np.ndarray, first_row: int, hashes: np.ndarray, tables: list[_BucketTable],
    masks: np.ndarray, threshold: int,
) -> np.ndarray:
    """Pairs (query row, stored row) within the threshold, for one block of queries."""
    query_rows = np.arange(first_row, first_row + len(queries), dtype=np.int64)
    found = []
    for index, table in enumerate(tables):
        keys = _chunk(queries, index)
        for mask in masks:
            probe = keys ^ mask
            lo, hi = table.start[probe], table.start[probe + 1]
            counts = hi - lo
            total = int(counts.sum())
            if total == 0:
                continue
            owner = np.repeat(np.arange(len(queries)), counts)
            offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            candidates = table.rows[np.repeat(lo, counts) + offsets]
            close = hamming(queries[owner], hashes[candidates]) <= threshold
            mine, theirs = query_rows[owner[close]], candidates[close]
            keep = mine != theirs
            found.append(np.stack([np.minimum(mine, theirs)[keep], np.maximum(mine, theirs)[keep]], axis=1))
    return np.concatenate(found) if found else np.empty((0, 2), dtype=np.int64)
