"""Near pairs by bit sampling (locality-sensitive hashing), for libraries too big for the exact search.

Each of L tables buckets the hashes by b bits picked at random. Two hashes d bits apart land in
one bucket of a table when none of their d differing bits was picked, which happens with
probability C(64 - d, b) / C(64, b); over L independent tables they meet at least once with
probability 1 - (1 - that)^L. Unrelated hashes (about 32 bits apart) almost never meet, so each
hash is checked against a few stored hashes per table instead of a fraction of the library. Every
candidate still gets the exact Hamming check, so nothing farther than the threshold is reported;
what can happen is that a pair within it never shares a bucket and is missed (see `SamplingPlan`).
The tables come from a fixed seed, so a run is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, comb, log, log1p

import numpy as np

from photoseek.duplicates.candidates import in_threads
from photoseek.imaging.hashing import HASH_BITS

MISS_AT_THRESHOLD = 0.05
"""Designed chance that a pair exactly `threshold` bits apart is missed; closer pairs are missed far less."""
SEED = 13
_NS_PER_ENTRY = 24.0
_NS_PER_CANDIDATE = 20.0
"""Cost model of one table on one core, measured at a million hashes (docs/benchmarks.md): per hash
and turned hash sorted into it, and per candidate pair checked."""


def meet_chance(key_bits: int, distance: int) -> float:
    """Chance that two hashes `distance` bits apart share the bucket of one table."""
    return comb(HASH_BITS - distance, key_bits) / comb(HASH_BITS, key_bits)


@dataclass(frozen=True)
class SamplingPlan:
    """How many sampled bits key a table, and how many tables."""

    key_bits: int
    tables: int

    def recall(self, distance: int) -> float:
        """Chance that a pair `distance` bits apart is found (meets in at least one table)."""
        return 1.0 - (1.0 - meet_chance(self.key_bits, distance)) ** self.tables

    def seconds(self, count: int, variants: int) -> float:
        """Estimated time on one core for `count` uniform hashes, from the cost model."""
        candidates = count * count * (variants - 0.5) * 2.0**-self.key_bits
        return self.tables * (variants * count * _NS_PER_ENTRY + candidates * _NS_PER_CANDIDATE) * 1e-9


def plan(count: int, threshold: int, variants: int) -> SamplingPlan:
    """The cheapest plan (by the cost model) that misses pairs `threshold` bits apart at most
    `MISS_AT_THRESHOLD` of the time."""
    options = []
    for key_bits in range(1, HASH_BITS - threshold + 1):
        chance = meet_chance(key_bits, threshold)
        options.append(SamplingPlan(key_bits, 1 if chance == 1.0 else ceil(log(MISS_AT_THRESHOLD) / log1p(-chance))))
    return min(options, key=lambda option: option.seconds(count, variants))


def sampled_pairs(hashes: np.ndarray, variants: list[np.ndarray], threshold: int, chosen: SamplingPlan) -> np.ndarray:
    """(k, 2) rows (query, stored) with a query variant within `threshold` bits of a stored hash,
    each found in the first table where it meets (no pair is listed once per table)."""
    count = len(hashes)
    entries = np.concatenate(variants)
    id_bits = max(1, (len(entries) - 1).bit_length())
    ids = np.arange(len(entries), dtype=np.uint64)
    rng = np.random.default_rng(SEED)
    keys = [_TableKey.random(rng, chosen.key_bits, HASH_BITS - id_bits) for _ in range(chosen.tables)]
    found = in_threads(
        lambda t: _table_pairs(entries, ids, id_bits, count, threshold, keys[: t + 1]), range(chosen.tables)
    )
    return np.concatenate(found) % count


@dataclass(frozen=True)
class _TableKey:
    """A table's bucket: the sampled bits (mask), hashed to `bits` bits by a multiplication."""

    mask: np.uint64
    multiplier: np.uint64
    shift: np.uint64

    @classmethod
    def random(cls, rng: np.random.Generator, key_bits: int, bucket_bits: int) -> _TableKey:
        """`key_bits` bits picked at random; the masked hash is multiplied by a random odd number and
        its top `bucket_bits` kept, so that it packs with an entry id into one sortable uint64."""
        picked = rng.choice(HASH_BITS, key_bits, replace=False)
        mask = sum(1 << int(bit) for bit in picked)
        multiplier = int(rng.integers(0, 1 << 63, dtype=np.uint64)) * 2 + 1
        return cls(np.uint64(mask), np.uint64(multiplier), np.uint64(HASH_BITS - bucket_bits))

    def __call__(self, hashes: np.ndarray) -> np.ndarray:
        return ((hashes & self.mask) * self.multiplier) >> self.shift


def _table_pairs(
    entries: np.ndarray, ids: np.ndarray, id_bits: int, count: int, threshold: int, keys: list[_TableKey]
) -> np.ndarray:
    """Pairs (entry ids) found in the last table of `keys` and in none before it.

    `entries` holds every hash as stored (ids below `count`) and then turned; sorted by bucket and
    then id, each stored hash is checked against the entries after it in its bucket, so every
    stored-stored and turned-stored pair is checked once and turned-turned pairs never."""
    key, earlier = keys[-1], keys[:-1]
    size, low = len(entries), np.uint64((1 << id_bits) - 1)
    # Bucket in the top bits, entry id in the low ones: one in-place sort groups the buckets. A last
    # value that is no bucket (low bits set) ends every run, so runs are followed without bounds checks.
    bucket = np.empty(size + 1, dtype=np.uint64)
    bucket[size] = 1
    packed = bucket[:size]
    np.bitwise_and(entries, key.mask, out=packed)
    np.multiply(packed, key.multiplier, out=packed)
    np.bitwise_and(packed, ~low, out=packed)
    np.bitwise_or(packed, ids, out=packed)
    packed.sort()
    order = (packed & low).view(np.int64)
    np.bitwise_and(packed, ~low, out=packed)
    sorted_hashes = entries[order]
    active = np.flatnonzero((order[:-1] < count) & (bucket[: size - 1] == bucket[1:size]))
    found = []
    step = 1
    while len(active):
        other = active + step
        first, second = sorted_hashes[active], sorted_hashes[other]
        close = np.flatnonzero(np.bitwise_count(first ^ second) <= threshold)
        found.append(_first_meeting(order[active[close]], order[other[close]], first[close], second[close], earlier))
        step += 1
        active = active[bucket[active + step] == bucket[active]]
    return np.concatenate(found) if found else np.empty((0, 2), dtype=np.intp)


def _first_meeting(
    first: np.ndarray,
    second: np.ndarray,
    first_hashes: np.ndarray,
    second_hashes: np.ndarray,
    earlier: list[_TableKey],
) -> np.ndarray:
    """The pairs that share no bucket in an earlier table (those were listed there already)."""
    for key in earlier:
        if len(first) == 0:
            break
        new = np.flatnonzero(key(first_hashes) != key(second_hashes))
        first, second, first_hashes, second_hashes = first[new], second[new], first_hashes[new], second_hashes[new]
    return np.stack([first, second], axis=1)
