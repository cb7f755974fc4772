"""Calibrated scores: curves from a raw similarity to evidence that an image is the one asked for.

`Calibration` is the logistic map topic tagging uses (`photoseek.topics`). `SignalCurve` is what
search fusion uses: a per-signal, per-model curve from a raw score to log-odds evidence, fitted on
the library itself (`photoseek.search.calibrate`) and stored in the catalog, so a signal whose
matches and non-matches score alike gets a flat curve and adds nothing to the fused score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Calibration:
    """Logistic map from a raw score to [0, 1]: 0.5 at `centre`, steeper with `scale`."""

    centre: float | np.ndarray
    scale: float | np.ndarray
    """Arrays (broadcast against the raw scores) give each query its own curve."""

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(np.asarray(raw, dtype=np.float64) - self.centre) * self.scale))


MIN_AUC = 0.6
"""A fitted signal that tells its matches from other images less well than this is uninformative:
its weight is 0, whatever its curve says (a random or blind model scores about 0.5)."""
NEGATIVE_EVIDENCE = 3.0
"""The most one signal can count against an image (log-odds): it can make a match unlikely but never
veto it (a name CLIP cannot read); above, evidence is unbounded, so rankings never tie."""


@dataclass(frozen=True)
class SignalCurve:
    """Raw score -> log-odds evidence `scale * (raw - centre)`, at least -NEGATIVE_EVIDENCE.

    `scale` 0 is a flat curve. `source` says where the curve comes from: "fitted" on this library,
    "prior" (a known model's or a model-free default), or "per-query" (no fit possible).
    """

    signal: str
    model: str
    centre: float
    scale: float
    source: str
    auc: float | None = None
    texted: int = 0
    """Images with text the fit used."""
    pairs: int = 0
    """Positive pairs (a text with its own image) behind the fit."""

    @property
    def informative(self) -> bool:
        return self.scale > 0 and (self.auc is None or self.auc >= MIN_AUC)

    def evidence(self, raw: np.ndarray) -> np.ndarray:
        """Log-odds evidence per raw score; NaN (nothing to say: no text, no keyword match) is 0."""
        if not self.informative:
            return np.zeros(np.shape(raw))
        values = self.scale * (np.asarray(raw, dtype=np.float64) - self.centre)
        floor = 0.0 if self.source == "per-query" else -NEGATIVE_EVIDENCE  # an unfitted guess only adds
        return np.nan_to_num(np.maximum(values, floor), nan=0.0)

    def describe(self, noun: str = "photos") -> str:
        """'informative, AUC 0.91 on 812 texted photos' / 'uninformative here, weight 0'."""
        if self.source == "fitted":
            verdict = "informative" if self.informative else "uninformative here, weight 0"
            return f"{verdict}, AUC {self.auc:.2f} on {self.texted} texted {noun}"
        if self.source == "prior":
            return f"prior curve for {self.model}" if self.model else "model-free curve, the same in every library"
        if self.source == "model":
            return "model's own calibrated score"
        return "per-query curve (each query's scores against the collection's spread)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignalCurve:
        """A curve as `to_dict` stored it (JSON); fields a later version added keep their defaults."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class LibraryCalibration:
    """Every signal's curve for one library, and the library state they were fitted on."""

    curves: dict[str, SignalCurve]
    """Keys: clip, text (queries of more than SHORT_QUERY_WORDS words), text-short, text-relative,
    text-relative-short."""
    state: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per signal: images and texted images at fitting time, and the curves' version: a refit is due
    when they move (the model each curve was fitted for is in the curve)."""

    def to_dict(self) -> dict[str, Any]:
        return {"curves": {k: c.to_dict() for k, c in self.curves.items()}, "state": self.state}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LibraryCalibration:
        """The calibration as `to_dict` stored it (JSON read back)."""
        curves = {str(k): SignalCurve.from_dict(v) for k, v in (data.get("curves") or {}).items()}
        state = {str(k): {str(n): int(c) for n, c in v.items()} for k, v in (data.get("state") or {}).items()}
        return cls(curves, state)


def fit_logistic(scores: np.ndarray, labels: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """(centre, scale) of the class-balanced logistic fit of labels on scores, by Newton's method.

    Balanced, so `scale * (x - centre)` is the log-likelihood ratio of a match at score x: 0 where a
    match and a non-match are equally likely, whatever the share of matches in the sample.
    """
    x = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    weights = np.where(y > 0, 0.5 / max(y.sum(), 1.0), 0.5 / max((1 - y).sum(), 1.0))
    spread = float(x.std()) or 1.0
    z = (x - x.mean()) / spread
    a, b = 0.0, 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a + b * z)))
        g = np.array([np.sum(weights * (p - y)), np.sum(weights * (p - y) * z)])
        w = weights * p * (1 - p) + 1e-12
        hessian = np.array([[w.sum(), (w * z).sum()], [(w * z).sum(), (w * z * z).sum()]]) + 1e-6 * np.eye(2)
        step = np.linalg.solve(hessian, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-8:
            break
    scale = max(b / spread, 0.0)
    centre = float(x.mean() - a * spread / b) if b > 0 else float(x.max())
    return centre, float(scale)


def auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Chance that a random positive scores above a random negative (ties count half)."""
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.sort(np.asarray(negatives, dtype=np.float64))
    if not len(pos) or not len(neg):
        return 0.5
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(pos) * len(neg)))
