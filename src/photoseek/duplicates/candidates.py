"""What the near-pair searches share: the exact check of each query against a run of a sorted
table (multi-index hashing), and the threads their independent tables run on (both searches)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

T = TypeVar("T")
WORKERS = min(4, os.cpu_count() or 1)
"""Threads for the searches' independent tables: numpy sorts, gathers and compares without the GIL."""

_BLOCK_CANDIDATES = 1 << 22
"""Candidates listed together: bounds the temporaries however skewed the buckets are."""


def close_in_runs(
    queries: np.ndarray, lo: np.ndarray, hi: np.ndarray, stored: np.ndarray, threshold: int
) -> tuple[np.ndarray, np.ndarray]:
    """(query numbers, stored positions) of the pairs within `threshold` bits, where query q is
    checked against stored[lo[q]:hi[q]] (positions in a table sorted by bucket, so reads run along)."""
    counts = hi - lo
    ends = np.cumsum(counts)
    if len(ends) == 0 or ends[-1] <= _BLOCK_CANDIDATES:
        return _close(queries, np.arange(len(queries)), lo, counts, ends, stored, threshold)
    cuts = np.unique(np.searchsorted(ends, np.arange(_BLOCK_CANDIDATES, int(ends[-1]), _BLOCK_CANDIDATES)))
    found = [
        _close(queries, block, lo[block], counts[block], np.cumsum(counts[block]), stored, threshold)
        for block in np.split(np.arange(len(queries)), cuts)
    ]
    return np.concatenate([owner for owner, _ in found]), np.concatenate([position for _, position in found])


def _close(
    queries: np.ndarray,
    block: np.ndarray,
    lo: np.ndarray,
    counts: np.ndarray,
    ends: np.ndarray,
    stored: np.ndarray,
    threshold: int,
) -> tuple[np.ndarray, np.ndarray]:
    total = int(ends[-1]) if len(ends) else 0
    owner = np.repeat(block, counts)
    position = np.arange(total) + np.repeat(lo - (ends - counts), counts)
    close = np.flatnonzero(np.bitwise_count(queries[owner] ^ stored[position]) <= threshold)
    return owner[close], position[close]


def in_threads(work: Callable[[int], T], items: Iterable[int]) -> list[T]:
    """`work` applied to every item, on `WORKERS` threads, results in item order."""
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(work, items))
