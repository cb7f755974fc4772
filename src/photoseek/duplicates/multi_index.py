"""Exact near pairs by multi-index hashing (Norouzi et al., 2012), for libraries where it is fast.

Each hash is split into four 16-bit chunks. Two hashes at distance <= t = 4r + a (a < 4) differ
in at most r bits in one of the first a + 1 chunks, or in at most r - 1 bits in one of the others
(otherwise they would differ in more than t bits), so each query only needs the stored hashes whose
chunk lies in that small Hamming ball around its own chunk, found through one table per chunk. No
pair within the threshold is missed; the work grows as n times the bucket occupancy, i.e. as n².
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np

from photoseek.duplicates.candidates import close_in_runs, in_threads

CHUNKS = 4
CHUNK_BITS = 16
_BUCKETS = 1 << CHUNK_BITS
_QUERY_BLOCK = 1 << 16


def chunk_radii(threshold: int) -> list[int]:
    """The Hamming radius each chunk table is probed with (-1: not probed)."""
    r, a = divmod(threshold, CHUNKS)
    return [r if c <= a else r - 1 for c in range(CHUNKS)]


def candidate_work(count: int, threshold: int, variants: int) -> tuple[float, float]:
    """(probes, candidate checks) the search makes for `count` uniform hashes: the cost model."""
    balls = [sum(comb(CHUNK_BITS, k) for k in range(r + 1)) for r in chunk_radii(threshold)]
    probes = float(count) * variants * sum(balls)
    return probes, probes * count / _BUCKETS


def exact_pairs(hashes: np.ndarray, variants: list[np.ndarray], threshold: int) -> np.ndarray:
    """(k, 2) rows (query, stored) with a query variant within `threshold` bits of a stored hash."""
    radii = chunk_radii(threshold)
    tables = [_ChunkTable(hashes, chunk, radius) for chunk, radius in enumerate(radii) if radius >= 0]
    work = [
        (table, variant, first)
        for table in tables
        for variant in variants
        for first in range(0, len(hashes), _QUERY_BLOCK)
    ]

    def probe(number: int) -> np.ndarray:
        table, variant, first = work[number]
        return table.pairs(variant[first : first + _QUERY_BLOCK], first, threshold)

    return np.concatenate(in_threads(probe, range(len(work))))


class _ChunkTable:
    """The hashes sorted by one chunk's value: stored[start[v]:start[v + 1]] have chunk v."""

    def __init__(self, hashes: np.ndarray, chunk: int, radius: int) -> None:
        self.chunk = chunk
        self.masks = _ball(radius)
        keys = _chunk(hashes, chunk)
        self.rows = np.argsort(keys, kind="stable")
        self.stored = hashes[self.rows]
        self.start = np.zeros(_BUCKETS + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys, minlength=_BUCKETS), out=self.start[1:])

    def pairs(self, queries: np.ndarray, first_row: int, threshold: int) -> np.ndarray:
        """Pairs (query row, stored row) for queries whose chunk is within the radius of a stored one's."""
        keys = _chunk(queries, self.chunk)
        found = []
        for mask in self.masks:
            probe = keys ^ mask
            owner, position = close_in_runs(queries, self.start[probe], self.start[probe + 1], self.stored, threshold)
            found.append(np.stack([owner + first_row, self.rows[position]], axis=1))
        return np.concatenate(found)


def _chunk(hashes: np.ndarray, index: int) -> np.ndarray:
    return ((hashes >> np.uint64(index * CHUNK_BITS)) & np.uint64(_BUCKETS - 1)).astype(np.int64)


def _ball(radius: int) -> list[int]:
    """Every chunk mask with at most `radius` bits set."""
    return [sum(1 << b for b in bits) for r in range(radius + 1) for bits in combinations(range(CHUNK_BITS), r)]
