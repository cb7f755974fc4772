"""The curve fit itself: an informative signal gets a steep curve and its weight, a blind one a flat curve."""

from __future__ import annotations

import numpy as np
import pytest

from photoseek.calibration import NEGATIVE_EVIDENCE, SignalCurve, auc, fit_logistic
from photoseek.search.calibrate import MIN_TEXTED, NULL_ANSWERED, fit_clip, fit_text
from photoseek.search.fusion import CUT_EVIDENCE, DEFAULT_MIN_SCORE, PRIORS, fuse


def _library(noise: float, count: int = 120, dim: int = 32, seed: int = 0):
    """Image vectors, and a text encoder whose vector for image i's text is image i's vector plus noise."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(count, dim))
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    texts = {i: [f"text of image {i}"] for i in range(count)}

    def encode(batch: list[str]) -> np.ndarray:
        rows = [int(t.split()[-1]) for t in batch]
        vectors = images[rows] + noise * rng.normal(size=(len(rows), dim))
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    return texts, encode, lambda queries, ids: queries @ images[ids].T


def test_a_signal_that_knows_the_library_gets_a_steep_curve_and_one_that_does_not_a_flat_one():
    knows = fit_clip(*_library(noise=0.3), model="sees")
    blind = fit_clip(*_library(noise=1e3), model="blind")
    assert knows.source == blind.source == "fitted" and knows.pairs == 120
    assert knows.auc > 0.95 and knows.informative and knows.scale > 5
    assert blind.auc == pytest.approx(0.5, abs=0.08) and not blind.informative
    scores = np.array([-0.2, 0.0, 0.5, 0.9])
    assert np.all(blind.evidence(scores) == 0)  # a flat signal adds nothing
    evidence = knows.evidence(scores)
    assert evidence[0] == -NEGATIVE_EVIDENCE and evidence[3] > evidence[2] > 0  # against, but never a veto


def test_evidence_adds_up_and_a_flat_signal_changes_no_probability():
    text = PRIORS["text"]
    raw = {"text": np.array([0.1, 0.5, 0.8]), "clip": np.array([5.0, -2.0, 0.0])}
    flat = SignalCurve("clip", "m", 0.0, 0.0, "fitted", auc=0.5)
    alone, _ = fuse({"text": raw["text"]}, {"text": 1.0}, {"text": text, "text-short": text})
    with_flat, evidence = fuse(raw, {"text": 1.0, "clip": 1.0}, {"text": text, "text-short": text, "clip": flat})
    assert with_flat == pytest.approx(alone) and np.all(evidence["clip"] == 0)
    assert alone[0] < DEFAULT_MIN_SCORE < alone[2]


def test_too_few_pairs_give_no_fit():
    texts, encode, score = _library(noise=0.3, count=MIN_TEXTED - 1)
    assert fit_clip(texts, encode, score, "m").source == "prior"


def test_the_balanced_fit_finds_where_matches_and_non_matches_are_equally_likely():
    rng = np.random.default_rng(1)
    positives, negatives = rng.normal(1.0, 0.5, 500), rng.normal(0.0, 0.5, 50_000)
    centre, scale = fit_logistic(np.concatenate([positives, negatives]), np.r_[np.ones(500), np.zeros(50_000)])
    assert centre == pytest.approx(0.5, abs=0.05) and scale == pytest.approx(4.0, rel=0.15)
    assert auc(positives, negatives) == pytest.approx(0.92, abs=0.02)


def _lifting_model(count: int = 120, dim: int = 48, seed: int = 0):
    """Texts of three made-up words each, and an embedder that, like max pooling, maps words it does not
    know near what every text has in common: gibberish scores about alike against every text, and its
    best among many texts stands out by chance further than a pair's curve expects."""
    rng = np.random.default_rng(seed)
    vocabulary = [f"{a}{b}{c}{d}" for a, b, c, d in rng.choice(list("bcdfghklmnprstvz"), size=(3 * count, 4))]
    vectors = {w: v / np.linalg.norm(v) for w, v in zip(vocabulary, rng.normal(size=(len(vocabulary), dim)))}
    texts = {i: [" ".join(vocabulary[3 * i : 3 * i + 3])] for i in range(count)}
    common = np.mean(list(vectors.values()), axis=0)

    def embed(batch: list[str]) -> np.ndarray:
        rows = []
        for text in batch:
            words = [vectors.get(w, 6 * common + 0.15 * rng.normal(size=dim)) for w in text.split()]
            rows.append(np.mean(words, axis=0))
        out = np.array(rows)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    passages = embed([texts[i][0] for i in range(count)])

    def score(queries: np.ndarray, ids: np.ndarray):
        every = queries @ passages.T
        typical, spread = every.mean(axis=1, keepdims=True), every.std(axis=1, keepdims=True)
        return every[:, ids], typical, spread, every.max(axis=1, keepdims=True)

    return texts, embed, score


def test_a_short_query_must_stand_out_further_than_the_best_of_nothing_does():
    texts, embed, score = _lifting_model()
    _, _, relative, short = fit_text(texts, {}, embed, embed, score, "lifts", CUT_EVIDENCE)
    assert relative.source == short.source == "fitted" and short.scale == relative.scale
    assert short.centre > relative.centre  # moved up by what the library's own nonsense reaches
    gibberish = embed(["qxqx wvwv", "zzkq", "plvrt xxqz jjwq"] * 10)
    scores, typical, spread, best = score(gibberish, np.arange(len(texts)))
    standing = (best - typical) / spread
    passed = [float(np.mean(curve.evidence(standing) >= CUT_EVIDENCE)) for curve in (relative, short)]
    assert passed[1] <= NULL_ANSWERED + 0.05 and passed[0] >= passed[1] + 0.1, passed  # a pair's curve: more
    words = embed([t[0].split()[0] for t in texts.values()])  # one real word: its own text still passes
    scores, typical, spread, best = score(words, np.arange(len(texts)))
    own = ((scores - typical) / spread)[np.arange(len(texts)), np.arange(len(texts))]
    assert np.mean(short.evidence(own) >= CUT_EVIDENCE) > 0.7
