"""Fusing the CLIP, text-embedding and keyword (BM25) signals into one probability.

Each raw score goes through its signal's curve (`photoseek.calibration.SignalCurve`, fitted on the
library by `photoseek.search.calibrate`, else a prior) to log-odds evidence that the image is the one
asked for; the weighted evidence of all signals is added to the prior odds of a match and mapped back
to a probability. A flat curve gives 0 evidence, so an uninformative signal changes nothing; a query
with no evidence anywhere stays at the prior, below the cut-off, and is refused in every mode.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from photoseek.calibration import SignalCurve
from photoseek.search.calibrate import SHORT_QUERY_WORDS

_NUMBER = re.compile(r"\d")
SIGNALS = ("clip", "text", "keyword")
MODES = ("clip", "text", "keyword", "hybrid")
DEFAULT_WEIGHTS = {"clip": 1.0, "text": 1.0, "keyword": 0.5}
"""Hybrid's weights on each signal's evidence: keyword evidence mostly repeats what the text
embedder already saw in the same text, so it counts half. A mode of one signal weighs it 1."""
KEYWORD_BESIDE_TEXT_LONG = 0.2
"""Beside the text signal, keyword evidence of a query longer than SHORT_QUERY_WORDS counts this much:
its words mostly repeat what the embedder read, and similar texts share them by chance (counted fully,
it costs a point of R@1 on paraphrased captions). Short queries (names, tags) and queries with a number
(which embedders barely read: "Lake Bled day 37") keep it all. It counts only for a text with every
distinctive word of the query (LITERAL_MATCH), since a text that shares some words adds nothing the
embedder did not read (docs/benchmarks.md, nonsense); a query with a number keeps every keyword hit,
as the keyword index cannot yet tell which hits hold the number."""
PRIOR = 0.01
"""The odds of a match before any evidence: the fused probability of an image nothing speaks for."""
DEFAULT_MIN_SCORE = 0.1
"""The cut-off, a fused probability: below it a result is noise (docs/benchmarks.md, calibration)."""
CUT_EVIDENCE = float(np.log(DEFAULT_MIN_SCORE / (1 - DEFAULT_MIN_SCORE)) - np.log(PRIOR / (1 - PRIOR)))
"""The evidence that lifts an image from the prior to the cut-off."""
LITERAL_QUERY_WORDS = 2
"""Queries of at most this many words always show images whose text has every one of them."""
LITERAL_MATCH = 0.9
"""A keyword score this high means the image's text has every distinctive word of the query."""

PRIORS = {
    # Softmax CLIP, per query: how far the cosine stands above the query's typical cosine over the
    # collection, in units of its spread (`clip_standout`). Published ViT-B-32 ranges put a real match
    # at 4-5 spreads; the best of 1,000 noise scores lands near 3. Used until the library is fitted.
    "clip": SignalCurve("clip", "", centre=3.5, scale=2.0, source="per-query"),
    # all-MiniLM-L6-v2 cosines, fitted by `photoseek calibrate` on the coco-mini photos with a caption each
    # as note (docs/benchmarks.md, calibration): for other text models too until their own fit. Longer
    # queries: that centre, and the slope of one description against another (caption 2 against the
    # note: 19.3 per unit cosine, centre 0.345), since a sentence's cosine separates matches faster than
    # a word's; a fitted library without such pairs keeps this curve for this model (docs/benchmarks.md,
    # informed: the pairs' own centre would hide 2% of true rank-1 answers behind the cut-off).
    "text": SignalCurve("text", "sentence-transformers/all-MiniLM-L6-v2", centre=0.259, scale=19.3, source="prior"),
    "text-short": SignalCurve(
        "text", "sentence-transformers/all-MiniLM-L6-v2", centre=0.259, scale=15.1, source="prior"
    ),
    # Share of the query's distinctive words an image's text contains (IDF-weighted, store/text.py):
    # model-free, so one curve serves every library. Every word: +8 (probability 0.97 alone); a miss
    # (a paraphrase shares no word) is no evidence against, so the curve starts at 0.
    "keyword": SignalCurve("keyword", "", centre=0.0, scale=8.0, source="prior"),
}

STANDOUT_SAMPLE = 2048
"""Images whose scores estimate a query's typical CLIP cosine and spread (evenly spread over the collection)."""


def clip_standout(cosines: np.ndarray, sample_cosines: np.ndarray) -> np.ndarray:
    """Cosines as spreads above the query's typical cosine: `sample_cosines` are the query's cosines
    with a sample of the collection (last axis). Unchanged when every cosine is scaled or shifted."""
    sample = np.asarray(sample_cosines, dtype=np.float64)
    typical = sample.mean(axis=-1, keepdims=True)
    spread = np.maximum(sample.std(axis=-1, keepdims=True), 1e-9)
    return (np.asarray(cosines, dtype=np.float64) - typical) / spread


def text_typical(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's typical text score and spread over every described image (rows: queries), for the
    relative curve: a query every text half-matches (gibberish under some models) stands out nowhere."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape[-1] < 2:
        return np.zeros(len(scores)), np.ones(len(scores))
    return scores.mean(axis=-1), np.maximum(scores.std(axis=-1), 1e-9)


def sigmoid_curve(logit_scale: float, logit_bias: float) -> SignalCurve:
    """A SigLIP model's own match log-odds, logit_scale * cosine + logit_bias, until the library is fitted."""
    return SignalCurve("clip", "", centre=-logit_bias / logit_scale, scale=logit_scale, source="model")


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
    defaults = DEFAULT_WEIGHTS if mode == "hybrid" else {mode: 1.0}
    weights = {s: float((overrides or {}).get(s, defaults[s])) for s in used}
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError("signal weights must be >= 0 and not all zero")
    return {s: w for s, w in weights.items() if w > 0}


def fuse(
    raw: dict[str, np.ndarray],
    weights: dict[str, float],
    curves: dict[str, SignalCurve],
    short: bool | np.ndarray = False,
    exact: bool | np.ndarray | None = None,
    numbered: bool | np.ndarray = False,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Fused probabilities and each signal's weighted evidence (log-odds; 0 says nothing).

    `raw[s]` holds signal s's raw score per candidate, NaN where the signal has nothing to say (no
    text for the image, no keyword match). `short` (per query, broadcast against the scores) picks
    the short-query text curve; `exact` (likewise; default `short`) keeps keyword evidence whole beside
    text; `numbered` (likewise) says the query names a number.
    """
    exact = short if exact is None else exact
    evidence = {}
    for s in weights:
        if s == "text":
            value = np.where(short, curves["text-short"].evidence(raw[s]), curves["text"].evidence(raw[s]))
            if "text-relative" in raw and "text-relative" in curves:  # both the cosine and its standing must speak
                # A longer query's text that stands out enough to pass the cut-off on its own is ranked by
                # its cosine: the relative curve, fitted on words, would cap a paraphrase at what a word
                # or two can earn (docs/benchmarks.md, informed).
                relative = curves["text-relative"].evidence(raw["text-relative"])
                if "text-relative-short" in curves:  # a short query's best must beat the best of nothing
                    relative = np.where(short, curves["text-relative-short"].evidence(raw["text-relative"]), relative)
                value = np.where(short | (relative < CUT_EVIDENCE), np.minimum(value, relative), value)
        elif s == "keyword" and "text" in weights:
            # Beside the embedder, which read the same words, a text with some of the query's words adds
            # nothing it did not see; that the text has every one of them it cannot see. A query with a
            # number keeps every hit (see KEYWORD_BESIDE_TEXT_LONG).
            counts = numbered | (np.nan_to_num(raw[s], nan=0.0) >= LITERAL_MATCH)
            value = np.where(exact, 1.0, KEYWORD_BESIDE_TEXT_LONG) * np.where(counts, curves[s].evidence(raw[s]), 0.0)
        else:
            value = curves[s].evidence(raw[s])
        evidence[s] = weights[s] * value
    log_odds = np.log(PRIOR / (1 - PRIOR)) + sum(evidence.values())
    return 1.0 / (1.0 + np.exp(-log_odds)), evidence


def is_short(word_count: int | np.ndarray) -> bool | np.ndarray:
    return np.asarray(word_count) <= SHORT_QUERY_WORDS


def is_exact(word_count: int, texts: Sequence[str]) -> bool:
    """Whether a query's keyword evidence counts whole beside text: short, or naming a number."""
    return bool(is_short(word_count)) or is_numbered(texts)


def is_numbered(texts: Sequence[str]) -> bool:
    """Whether a query names a number, which embedders barely read: a text with it counts beside theirs."""
    return any(_NUMBER.search(t) for t in texts)
