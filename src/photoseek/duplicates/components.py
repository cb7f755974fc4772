"""Connected components of a graph given as an edge list, vectorised (no Python loop per edge)."""

from __future__ import annotations

import numpy as np


def component_labels(count: int, edges: np.ndarray) -> np.ndarray:
    """For nodes 0..count-1, the smallest node number of each one's component.

    Min-label propagation along the edges with pointer jumping; it settles in a few
    rounds for the small, shallow groups duplicates form.
    """
    labels = np.arange(count, dtype=np.int64)
    if len(edges) == 0:
        return labels
    left, right = edges[:, 0], edges[:, 1]
    while True:
        low = np.minimum(labels[left], labels[right])
        before = labels.copy()
        np.minimum.at(labels, left, low)
        np.minimum.at(labels, right, low)
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(labels, before):
            return labels


def components(count: int, edges: np.ndarray) -> list[np.ndarray]:
    """The components with two or more nodes, each as sorted node numbers."""
    labels = component_labels(count, edges)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    cuts = np.flatnonzero(np.diff(sorted_labels)) + 1
    return [group for group in np.split(order, cuts) if len(group) > 1]
