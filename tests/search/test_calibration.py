"""CLIP calibration per model: the cut-off means the same for any model's score range."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from photoseek import ImageIndex
from photoseek.calibration import NEGATIVE_EVIDENCE
from photoseek.search.engine import Searcher
from photoseek.search.fusion import DEFAULT_MIN_SCORE, DEFAULT_WEIGHTS, PRIOR
from tests.helpers import COLOURS, draw_photo, run_json

SCALE_TOLERANCE = 1e-6
"""Halving every cosine leaves each query's standardised scores unchanged up to float rounding."""


def _library(root: Path, db: Path, model_dir: Path) -> None:
    for i in range(24):
        colour = list(COLOURS)[i % len(COLOURS)]
        draw_photo(root / f"{i:02d}-{colour}.png", colour, shape="circle" if i % 2 else "square", seed=i)
    run_json("index", root, "--db", db, "--model-path", model_dir)
    with ImageIndex(db) as index:
        for i, path in enumerate(sorted(root.iterdir())[:8]):
            index.tag(path, [f"{path.stem.split('-')[1]} shape number {i}"])


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_clip_dir) -> Path:
    root = tmp_path_factory.mktemp("photos")
    db = root.parent / "calibration.db"
    _library(root, db, tiny_clip_dir)
    return db


def _ranked(db: Path, query: str, mode: str, **options) -> list[tuple[int, float]]:
    with ImageIndex(db) as index:
        found = index.search(query, mode=mode, k=24, weights={"text": 0.0} if mode == "hybrid" else None, **options)
    return [(r.id, r.score) for r in found]


@pytest.mark.parametrize("query", ["red shape", "a purple circle", "number 3"])
def test_halving_every_clip_cosine_changes_neither_ranking_nor_what_the_cut_off_hides(
    library, text_model_cache, monkeypatch, query
):
    full = {cut: _ranked(library, query, "hybrid", min_score=cut) for cut in (None, 0.0, 0.1, 0.3)}
    original = Searcher.query_vectors
    monkeypatch.setattr(Searcher, "query_vectors", lambda self, queries: [0.5 * v for v in original(self, queries)])
    with ImageIndex(library) as index:  # the patch works: CLIP cosines are halved
        halved_cosines = [r.score for r in index.search(query, mode="clip", k=3)]
    monkeypatch.undo()
    with ImageIndex(library) as index:
        assert halved_cosines == pytest.approx([0.5 * r.score for r in index.search(query, mode="clip", k=3)], abs=1e-4)
    monkeypatch.setattr(Searcher, "query_vectors", lambda self, queries: [0.5 * v for v in original(self, queries)])
    for cut, expected in full.items():
        halved = _ranked(library, query, "hybrid", min_score=cut)
        assert [i for i, _ in halved] == [i for i, _ in expected], cut
        assert [s for _, s in halved] == pytest.approx([s for _, s in expected], abs=SCALE_TOLERANCE)


def test_a_sigmoid_trained_model_uses_its_own_logit_scale_and_bias(tmp_path, tiny_clip_dir, text_model_cache):
    model = tmp_path / "siglip-like"
    shutil.copytree(tiny_clip_dir, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "logit_scale": 12.0, "logit_bias": -4.0}))
    root, db = tmp_path / "photos", tmp_path / "c.db"
    _library(root, db, model)
    with ImageIndex(db, model_path=model) as index:
        cosines = {r.id: r.score for r in index.search("red shape", mode="clip", k=24)}
        fused = index.search("red shape", mode="hybrid", k=24, min_score=0.0, weights={"text": 0.0}, explain=True)
    for result in fused:  # evidence in log-odds: the model's own, never below -NEGATIVE_EVIDENCE
        expected = DEFAULT_WEIGHTS["clip"] * max(12.0 * cosines[result.id] - 4.0, -NEGATIVE_EVIDENCE)
        assert result.signals["clip"] == pytest.approx(expected, abs=1e-3)
        log_odds = np.log(PRIOR / (1 - PRIOR)) + sum(result.signals.values())
        assert result.score == pytest.approx(1 / (1 + np.exp(-log_odds)), abs=1e-5)


def test_clip_only_evidence_is_ranked_without_the_cut_off_but_other_evidence_is_cut(library):
    """A random model's cosines are noise; with nothing else to go on a search still shows its best
    pictures (as clip mode does), while a keyword match brings back the calibrated cut-off."""
    with ImageIndex(library) as index:
        clip_only = index.search("two dogs playing in the snow", mode="hybrid", weights={"text": 0.0}, k=5)
        tagged = index.search("purple shape number 3", mode="hybrid", weights={"text": 0.0}, k=24, explain=True)
        everything = index.search("purple shape number 3", mode="hybrid", weights={"text": 0.0}, k=24, min_score=0)
    assert len(clip_only) == 5
    assert tagged and all(r.score >= DEFAULT_MIN_SCORE for r in tagged) and len(tagged) < len(everything) == 24
    assert tagged[0].signals["keyword"] > 0
