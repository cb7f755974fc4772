"""The near-pair searches against brute force: the exact one finds every pair, the sampled one
reports only true pairs and finds them as often as its plan says."""

from __future__ import annotations

import numpy as np
import pytest

from photoseek.duplicates.bit_sampling import plan
from photoseek.duplicates.components import component_labels
from photoseek.duplicates.near import near_edges, near_pairs, use_exact
from photoseek.imaging.hashing import rotations

THRESHOLD = 10
PER_DISTANCE = 40


def _flip(rng: np.random.Generator, value: np.uint64, bits: int) -> np.uint64:
    positions = rng.choice(64, bits, replace=False)
    return value ^ np.uint64(sum(1 << int(p) for p in positions))


def _library(seed: int, count: int = 3000) -> tuple[np.ndarray, dict[int, list[tuple[int, int]]]]:
    """Random hashes with copies planted 0..12 bits from their original, a quarter of them turned
    (90, 180 or 270 degrees), and a clump of 150 identical and near-identical hashes (a skewed bucket)."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, count, dtype=np.uint64, endpoint=False)
    rows = iter(rng.permutation(count - 150).tolist())
    planted: dict[int, list[tuple[int, int]]] = {}
    for distance in range(13):
        for copy in range(PER_DISTANCE):
            original, target = next(rows), next(rows)
            turn = copy % 4
            turned = rotations(hashes[original : original + 1])[turn][0]
            hashes[target] = _flip(rng, turned, distance)
            planted.setdefault(distance, []).append((min(original, target), max(original, target)))
    clump = hashes[count - 150]
    hashes[count - 150 :] = [clump if i < 100 else _flip(rng, clump, i % 3) for i in range(150)]
    return hashes, planted


def _brute_force(hashes: np.ndarray, threshold: int, rotated: bool = True) -> set[tuple[int, int]]:
    turns = rotations(hashes) if rotated else [hashes]
    closest = np.min([np.bitwise_count(hashes[:, None] ^ turn[None, :]) for turn in turns], axis=0)
    closest = np.minimum(closest, closest.T)
    return {tuple(pair) for pair in np.argwhere(np.triu(closest <= threshold, 1)).tolist()}


def _found(pairs: np.ndarray) -> set[tuple[int, int]]:
    assert pairs.dtype == np.int64 and (len(pairs) == 0 or (pairs[:, 0] < pairs[:, 1]).all())
    assert len(np.unique(pairs, axis=0)) == len(pairs)  # each pair once
    return {tuple(pair) for pair in pairs.tolist()}


@pytest.mark.parametrize("threshold", [0, 3, 6, THRESHOLD, 12])
def test_exact_search_finds_exactly_the_brute_force_pairs(threshold):
    hashes, _ = _library(seed=threshold)
    expected = _brute_force(hashes, threshold)
    assert _found(near_pairs(hashes, threshold, exact=True)) == expected
    assert _found(near_pairs(hashes, threshold, exact=True, rotated=False)) == _brute_force(hashes, threshold, False)


@pytest.mark.parametrize("seed", [1, 2])
def test_sampled_search_reports_only_true_pairs_and_finds_them_as_planned(seed):
    hashes, planted = _library(seed)
    expected = _brute_force(hashes, THRESHOLD)
    found = _found(near_pairs(hashes, THRESHOLD, exact=False))
    assert found <= expected  # every candidate got the exact check
    chosen = plan(len(hashes), THRESHOLD, 3)
    assert chosen.recall(THRESHOLD) >= 0.95 and chosen.recall(8) >= 0.99
    for distance, pairs in planted.items():
        recall = np.mean([pair in found for pair in pairs])
        if distance > THRESHOLD:
            assert recall == 0.0
        elif distance <= 6:
            assert recall == 1.0, distance
        else:  # 40 pairs each: allow for chance, at a fixed seed
            assert recall >= 0.9, (distance, recall)
    clump = {pair for pair in expected if pair[0] >= len(hashes) - 150}
    assert clump <= found  # pairs 0-2 bits apart meet in nearly every table


def test_sampled_search_is_reproducible_and_keeps_the_rotation_switch():
    hashes, _ = _library(seed=3)
    first = near_pairs(hashes, THRESHOLD, exact=False)
    assert np.array_equal(first, near_pairs(hashes, THRESHOLD, exact=False))
    plain = _found(near_pairs(hashes, THRESHOLD, exact=False, rotated=False))
    assert plain <= _brute_force(hashes, THRESHOLD, rotated=False) and plain < _found(first)


def test_the_exact_search_is_kept_for_small_and_mid_size_libraries():
    assert use_exact(1_000, THRESHOLD) and use_exact(150_000, THRESHOLD)
    assert not use_exact(1_000_000, THRESHOLD)
    for count in (250_000, 1_000_000):  # sizes that sample: the figures docs/benchmarks.md gives
        chosen = plan(count, THRESHOLD, 3)
        assert chosen.recall(THRESHOLD) >= 0.95 and chosen.recall(8) >= 0.998
    assert use_exact(1_000_000, 3)  # tiny thresholds stay exact at any size: the balls are small
    hashes, _ = _library(seed=4, count=2000)
    assert _found(near_pairs(hashes, THRESHOLD)) == _brute_force(hashes, THRESHOLD)


def test_identical_hashes_are_tied_in_a_star_and_the_groups_stay_the_same():
    hashes, _ = _library(seed=5)
    expected = component_labels(len(hashes), near_pairs(hashes, THRESHOLD, exact=True))
    assert np.array_equal(component_labels(len(hashes), near_edges(hashes, THRESHOLD)), expected)
    # 30,000 blank frames with one hash: all pairs would be 4.5e8 rows; the star is 29,999 edges.
    blank = np.full(30_000, hashes[0], dtype=np.uint64)
    edges = near_edges(np.concatenate([hashes, blank]), THRESHOLD)
    assert len(edges) < len(hashes) + len(blank)
    labels = component_labels(len(hashes) + len(blank), edges)
    assert (labels[len(hashes):] == labels[0]).all()
