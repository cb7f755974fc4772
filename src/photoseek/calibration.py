"""Calibrated scores: a logistic map from a raw similarity to an estimate in [0, 1].

Shared by search fusion (`photoseek.search.fusion`) and topic tagging (`photoseek.topics`),
so both speak the same "how likely is this a match" scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Calibration:
    """Logistic map from a raw score to [0, 1]: 0.5 at `centre`, steeper with `scale`."""

    centre: float | np.ndarray
    scale: float | np.ndarray
    """Arrays (broadcast against the raw scores) give each query its own curve (`search.fusion`)."""

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(np.asarray(raw, dtype=np.float64) - self.centre) * self.scale))
