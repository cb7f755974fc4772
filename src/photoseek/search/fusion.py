"""Fusing the CLIP, text-embedding and keyword (BM25) signals into one score.

Each raw score is first calibrated to an estimate of "this image is what was asked for"
(a logistic curve per signal), then the calibrated scores are averaged with per-signal
weights. Unlike reciprocal rank fusion, the fused score keeps an absolute meaning, so one
`--min-score` works for every query and a query with no good match can say so. The constants
and the comparison with RRF on COCO are in docs/benchmarks.md (bench/text_fusion.py).
"""

from __future__ import annotations

import numpy as np

from photoseek.calibration import Calibration

SIGNALS = ("clip", "text", "keyword")
MODES = ("clip", "text", "keyword", "hybrid")
DEFAULT_WEIGHTS = {"clip": 1.0, "text": 1.0, "keyword": 0.5}
DEFAULT_MIN_SCORE = 0.02
"""Fused scores below this are noise (text mode: MiniLM cosine under about 0.39; keyword mode: under
about half of the query's distinctive words); see docs/benchmarks.md."""


CALIBRATIONS = {
    # Softmax CLIP, per query: how far the cosine stands above the query's typical cosine over the
    # collection, in units of its spread (`clip_standout`), so any model's score range means the same.
    # Published ViT-B-32 ranges (matches 0.28-0.35 over a typical 0.15 +- 0.035) put a real match at
    # 4-5 spreads; the best of 1,000 pure-noise scores lands near 3. No real CLIP weights here to fit it.
    "clip": Calibration(centre=3.5, scale=2.0),
    # all-MiniLM-L6-v2 cosine of queries longer than SHORT_QUERY_WORDS, fitted on COCO paraphrases
    # (bench/text_fusion.py --fit, docs/benchmarks.md); shorter ones use SHORT_TEXT.
    "text": Calibration(centre=0.677, scale=14.95),
    # Share of the query's distinctive words an image's text contains (IDF-weighted, store/text.py):
    # 0.92 with every word, 0.03 with half of them; chosen with the keyword weight on a sweep of the
    # benchmark's three query sets at 239 and 5,000 documents (docs/benchmarks.md).
    "keyword": Calibration(centre=0.8, scale=12.0),
}


SHORT_QUERY_WORDS = 3
SHORT_TEXT = Calibration(centre=0.625, scale=12.64)
"""Text curve of queries of at most SHORT_QUERY_WORDS words ("dog", "red bus", "Rosa 12"), fitted on
the benchmark's short and tag-name queries: one or two words score lower cosines against a sentence."""

STANDOUT_SAMPLE = 2048
"""Images whose scores estimate a query's typical CLIP cosine and spread (evenly spread over the collection)."""


def clip_standout(cosines: np.ndarray, sample_cosines: np.ndarray) -> np.ndarray:
    """Cosines as spreads above the query's typical cosine: `sample_cosines` are the query's cosines
    with a sample of the collection (last axis). Unchanged when every cosine is scaled or shifted."""
    sample = np.asarray(sample_cosines, dtype=np.float64)
    typical = sample.mean(axis=-1, keepdims=True)
    spread = np.maximum(sample.std(axis=-1, keepdims=True), 1e-9)
    return (np.asarray(cosines, dtype=np.float64) - typical) / spread


def text_calibration(word_counts: int | np.ndarray) -> Calibration:
    """The text curve for queries of these lengths in words (an array gives one curve per query)."""
    short = np.asarray(word_counts) <= SHORT_QUERY_WORDS
    long = CALIBRATIONS["text"]
    return Calibration(np.where(short, SHORT_TEXT.centre, long.centre), np.where(short, SHORT_TEXT.scale, long.scale))


def sigmoid_calibration(logit_scale: float, logit_bias: float) -> Calibration:
    """A SigLIP model's own match probability, sigmoid(logit_scale * cosine + logit_bias)."""
    return Calibration(centre=-logit_bias / logit_scale, scale=logit_scale)


def weights_for(mode: str, overrides: dict[str, float] | None) -> dict[str, float]:
    """The signals a mode uses, with the caller's weights in place of the defaults.

    A signal weighted 0 is left out, so its model is never loaded (`--weight text=0` needs no text model).
    """
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}")
    unknown = set(overrides or {}) - set(SIGNALS)
    if unknown:
        raise ValueError(f"unknown signal(s) {', '.join(sorted(unknown))}; use {', '.join(SIGNALS)}")
    used = SIGNALS if mode == "hybrid" else (mode,)
    weights = {s: float((overrides or {}).get(s, DEFAULT_WEIGHTS[s])) for s in used}
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError("signal weights must be >= 0 and not all zero")
    return {s: w for s, w in weights.items() if w > 0}


def fuse(
    raw: dict[str, np.ndarray], weights: dict[str, float], calibrations: dict[str, Calibration] | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Fused scores and each signal's share of them (the shares add up to the fused score).

    `raw[s]` holds signal s's raw score per candidate, NaN where the signal has nothing to say
    (no text for the image, no keyword match); that counts as calibrated 0. `calibrations` replace
    the default ones (a SigLIP model's own).
    """
    total = sum(weights.values())
    curves = {**CALIBRATIONS, **(calibrations or {})}
    shares = {
        s: weights[s] / total * np.nan_to_num(curves[s](raw[s]), nan=0.0) for s in weights
    }
    return sum(shares.values()), shares


def reciprocal_rank_fusion(rankings: list[np.ndarray], k: int = 60) -> dict[int, float]:
    """RRF (Cormack et al. 2009) over ranked id lists, the baseline fusion the benchmark compares to."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, image_id in enumerate(ranking.tolist(), start=1):
            fused[image_id] = fused.get(image_id, 0.0) + 1.0 / (k + rank)
    return fused
