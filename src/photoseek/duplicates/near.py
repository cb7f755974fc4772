"""All pairs of 64-bit hashes within a Hamming distance, without comparing every pair.

Two searches; `near_pairs(exact=None)` picks by their estimated time:

- Exact, by multi-index hashing (`multi_index`): finds every pair, but its work grows as n². At
  10 bits each hash (and each turn of it) is checked against ~6,500 others in a million, about
  2·10¹⁰ checks: minutes of numpy time. It is used while it is estimated to take at most
  `EXACT_BUDGET_SECONDS` on one core, or when it is the cheaper one: at 10 bits that
  is libraries up to about 200,000 photos (~330,000 at 8 bits), which get every pair.
- Sampled, by bit-sampling locality-sensitive hashing (`bit_sampling`): some hundred tables, each
  grouping the hashes by ~20 bits picked at random; only hashes that share a group somewhere are
  compared, so the work grows far slower than n² (a million hashes: ~25 s of one core). Every pair
  it reports is within the threshold, because each is checked exactly like in the exact search.
  The price is recall: a pair is missed when, by chance, every table picked one of the bits it
  differs in. At 10 bits it is designed to find 95% of the pairs exactly 10 bits apart, 98.8% of
  those 9 apart and over 99.8% of those 8 or closer (measured: docs/benchmarks.md); the re-saved
  copies the near tier is for mostly differ by fewer bits, and a copy missed that way still joins
  its group through any other copy it is found with. The tables come from a fixed seed, so the
  same library gives the same groups on every run.

Grouping needs links, not every pair: `near_edges` searches the distinct hashes only and ties
identical ones to their first row, so thousands of blank frames cost one edge each.

Both run their independent tables on up to four threads. Numpy only: faiss is an optional
extra, and its binary indexes were no faster here (docs/benchmarks.md).
"""

from __future__ import annotations

import numpy as np

from photoseek.duplicates.bit_sampling import plan, sampled_pairs
from photoseek.duplicates.multi_index import candidate_work, exact_pairs
from photoseek.imaging.hashing import rotations

EXACT_BUDGET_SECONDS = 10.0
"""The exact search is used while it is estimated to take at most this long on one core."""
_EXACT_NS_PER_PROBE = 18.0
_EXACT_NS_PER_CANDIDATE = 7.0
"""Cost model of the exact search on one core, fitted at 50,000 to 250,000 hashes (docs/benchmarks.md)."""


def near_pairs(hashes: np.ndarray, threshold: int, *, rotated: bool = True, exact: bool | None = None) -> np.ndarray:
    """(k, 2) row numbers i < j whose hashes are within `threshold` bits; with `rotated`, also
    pairs where one picture is the other turned by a quarter or half turn. `exact`: True finds
    every pair, False samples (see the module notes), None picks by the estimated time."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    if not 0 <= threshold < 64:
        raise ValueError(f"threshold must be 0..63 bits, got {threshold}")
    if len(hashes) < 2:
        return np.empty((0, 2), dtype=np.int64)
    # A 270-degree match is the 90-degree match seen from the other picture, so three suffice.
    variants = rotations(hashes)[:3] if rotated else [hashes]
    if exact is None:
        exact = use_exact(len(hashes), threshold, len(variants))
    if exact:
        found = exact_pairs(hashes, variants, threshold)
    else:
        found = sampled_pairs(hashes, variants, threshold, plan(len(hashes), threshold, len(variants)))
    pairs = np.sort(found, axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs, axis=0) if len(pairs) else pairs.astype(np.int64)


def near_edges(hashes: np.ndarray, threshold: int, *, rotated: bool = True) -> np.ndarray:
    """(k, 2) row numbers linking the same groups (connected components) as `near_pairs`, with
    identical hashes tied to their first row instead of to each other: a clump of n identical
    hashes (blank frames, shots of a lens cap) then costs n - 1 edges, not n²/2 pairs."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    distinct, first_row, which = np.unique(hashes, return_index=True, return_inverse=True)
    rows = np.arange(len(hashes), dtype=np.int64)
    same = first_row[which.ravel()] != rows
    ties = np.stack([first_row[which.ravel()][same], rows[same]], axis=1)
    near = first_row[near_pairs(distinct, threshold, rotated=rotated)]
    return np.concatenate([ties, near.reshape(-1, 2)]).astype(np.int64)


def exact_seconds(count: int, threshold: int, variants: int) -> float:
    """Estimated time of the exact search on one core, for `count` uniform hashes."""
    probes, candidates = candidate_work(count, threshold, variants)
    return (probes * _EXACT_NS_PER_PROBE + candidates * _EXACT_NS_PER_CANDIDATE) * 1e-9


def use_exact(count: int, threshold: int, variants: int = 3) -> bool:
    """Whether the exact search is affordable: within the budget, or no slower than sampling."""
    exact = exact_seconds(count, threshold, variants)
    return exact <= max(EXACT_BUDGET_SECONDS, plan(count, threshold, variants).seconds(count, variants))
