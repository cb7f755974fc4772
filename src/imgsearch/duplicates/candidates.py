"""The exact Hamming check both near-pair searches end in: each query against a run of a sorted table."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

T = TypeVar("T")
WORKERS = min(2, os.cpu_count() or 1)
"""Threads for the searches' independent tables: numpy sorts, gathers and compares without the GIL."""

_FEW_QUERIES = 1024
"""Below this many queries still with candidates left, the rest are listed in one go instead."""
_BLOCK_CANDIDATES = 1 << 22
"""Candidates listed together: bounds the temporaries however skewed the buckets are."""


def close_in_runs(
    queries: np.ndarray, lo: np.ndarray, hi: np.ndarray, stored: np.ndarray, threshold: int
) -> tuple[np.ndarray, np.ndarray]:
    """(query numbers, stored positions) of the pairs within `threshold` bits, where query q is
    checked against stored[lo[q]:hi[q]] (positions in a table sorted by bucket, so reads run along).

    Buckets hold a handful of hashes, so the candidates are taken one step at a time (the first of
    every query's run, then the second of the longer runs, ...), with no per-candidate index lists;
    the few long runs that remain are listed in blocks."""
    counts = hi - lo
    active = np.flatnonzero(counts > 0)
    owners, positions = [], []
    step = 0
    while len(active) >= _FEW_QUERIES:
        position = lo[active] + step
        close = np.flatnonzero(np.bitwise_count(queries[active] ^ stored[position]) <= threshold)
        owners.append(active[close])
        positions.append(position[close])
        step += 1
        active = active[counts[active] > step]
    if len(active):
        owner, position = _listed(queries, active, lo[active] + step, counts[active] - step, stored, threshold)
        owners.append(owner)
        positions.append(position)
    if not owners:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(owners), np.concatenate(positions)


def _listed(
    queries: np.ndarray, active: np.ndarray, lo: np.ndarray, counts: np.ndarray, stored: np.ndarray, threshold: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate listed explicitly, a block of queries at a time."""
    ends = np.cumsum(counts)
    cuts = np.unique(np.searchsorted(ends, np.arange(_BLOCK_CANDIDATES, int(ends[-1]), _BLOCK_CANDIDATES)))
    owners, positions = [], []
    for block in np.split(np.arange(len(active)), cuts):
        if len(block) == 0:
            continue
        block_counts = counts[block]
        block_ends = np.cumsum(block_counts)
        owner = np.repeat(active[block], block_counts)
        position = np.arange(int(block_ends[-1])) + np.repeat(lo[block] - (block_ends - block_counts), block_counts)
        close = np.flatnonzero(np.bitwise_count(queries[owner] ^ stored[position]) <= threshold)
        owners.append(owner[close])
        positions.append(position[close])
    return np.concatenate(owners), np.concatenate(positions)


def in_threads(work: Callable[[int], T], items: Iterable[int]) -> list[T]:
    """`work` applied to every item, on `WORKERS` threads, results in item order."""
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(work, items))
