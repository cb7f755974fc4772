"""One search policy and one scorer (issue 20, item 5): every front end searches by the same mode,
weights and cut-off, and the evaluation's score matrix is what `search_many` ranks by."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from photoseek import ImageIndex
from photoseek.eval.signals import score_gallery
from photoseek.search.modes import MODE_NAMES, Mode
from tests.helpers import catalog_of, run_cli, run_json
from tests.search.coco import AVAILABLE, COCO

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="needs shared COCO data")
QUERIES = [
    "a man riding a wave on top of a surfboard", "two giraffes standing next to a tree", "pizza", "man",
    "a plate of food with broccoli", "kitchen sink", "a red double decker bus driving down a street",
    "dog on a couch", "quarterly tax spreadsheet", "a train on the tracks 2",
]


def _agree(index: ImageIndex, mode: str | None, weights: dict[str, float] | None = None, k: int = 10) -> int:
    """Checks that each query's top `k` from `search_many` (no cut-off) are the top `k` scores of the
    evaluation's row for it, image by image; returns how many results were compared."""
    ids = np.sort(catalog_of(index).all_embeddings()[0])
    matrix = score_gallery(index, QUERIES, mode, ids, weights) if mode else index.score_matrix(QUERIES, ids)
    found = index.search_many(QUERIES, k=k, min_score=-1.0 if mode in ("clip", "clip-hybrid") else 0.0,
                              mode=mode, weights=weights)
    compared = 0
    for query, row, results in zip(QUERIES, matrix, found):
        assert [r.score for r in results] == pytest.approx(np.sort(row)[::-1][: len(results)], abs=1e-6), query
        columns = np.searchsorted(ids, [r.id for r in results])
        assert row[columns] == pytest.approx([r.score for r in results], abs=1e-6), query
        compared += len(results)
    return compared


@pytest.mark.parametrize(("mode", "weights"), [
    ("text", None), ("keyword", None), ("hybrid", None), ("hybrid", {"keyword": 1.0}), ("clip", None),
    ("clip-hybrid", None), (None, None),
])
def test_search_many_and_the_eval_score_matrix_rank_alike(coco, mode, weights):
    """239 photos, more than the 200 candidates each signal brings: the candidates are a real cut."""
    with ImageIndex(coco[0]) as index:
        assert _agree(index, mode, weights) >= 5 * len(QUERIES)


def test_clip_evidence_is_scored_alike_where_clip_counts(coco, tmp_path):
    """With too few notes to fit on, CLIP keeps its per-query curve and counts in hybrid: its evidence
    too comes from the one scorer."""
    db = tmp_path / "few.db"
    shutil.copy(coco[0].with_name("bare.db"), db)
    _, files, captions = coco
    with ImageIndex(db) as index:
        for name in files[:10]:
            index.describe(COCO / name, captions[name][0])
        assert index.search_policy("hybrid").weights.keys() == {"clip", "text", "keyword"}
        assert _agree(index, "hybrid") == 10 * len(QUERIES)
        explained = index.search(QUERIES[0], mode="hybrid", k=3, explain=True, min_score=0)
        assert all("clip" in r.signals for r in explained)


def test_a_picture_only_query_ranks_by_looks_unless_a_mode_is_asked(coco):
    db, files, _ = coco
    picture = COCO / files[3]
    with ImageIndex(db) as index:
        assert index.search_policy(None, queries=[]).mode is Mode.HYBRID  # the library has text
        by_looks = index.search([], images=[picture], k=3)
        assert by_looks[0].path == str(picture.resolve()) and by_looks[0].score == pytest.approx(1.0, abs=1e-3)
        mixed = index.search_many(["a man riding a wave"], k=3)[0] + index.search([], images=[picture], k=1)
        assert mixed[-1].score == pytest.approx(1.0, abs=1e-3)
        fused = index.search([], images=[picture], k=3, mode="hybrid", min_score=0)
        assert fused[0].path == str(picture.resolve()) and fused[0].score < 0.5  # asked: fused, not a cosine
    payload = run_json("search", "--image", picture, "--db", db, "-k", "1")
    assert payload["results"][0]["score"] == pytest.approx(1.0, abs=1e-3)


def test_a_batch_of_pictures_and_texts_ranks_each_by_its_own_policy(coco):
    db, files, _ = coco
    from photoseek.search.query import Query

    picture = COCO / files[7]
    queries = [Query.build(["pizza"]), Query.build(images=[str(picture)]), Query.build(["qwzxv"])]
    with ImageIndex(db) as index:
        batch = index.search_many(queries, k=2)
        alone = [index.search(q, k=2) for q in queries]
    assert [[(r.id, round(r.score, 6)) for r in rs] for rs in batch] == [
        [(r.id, round(r.score, 6)) for r in rs] for rs in alone]
    assert batch[1][0].path == str(picture.resolve()) and batch[2] == []


def test_a_bad_mode_or_weight_is_one_line_that_names_the_choices(coco):
    db = coco[0]
    message = run_cli("search", "pizza", "--mode", "semantic", "--db", db, expect=2)
    assert all(name in message for name in MODE_NAMES) and len(message.strip().splitlines()) == 1
    assert "unknown signal" in run_cli("search", "pizza", "-w", "colour=2", "--db", db, expect=2)
    with ImageIndex(db) as index, pytest.raises(Exception, match="Unknown search mode 'semantic'"):
        index.search("pizza", mode="semantic")


def test_explain_shows_each_signals_curve_and_its_weight_in_this_search(coco):
    db = coco[0]
    lines = run_json("search", "pizza", "--db", db, "--explain", "-w", "text=2")["calibration"]
    assert any(line.startswith("Text, 1-3 words") and line.endswith("weight 2") for line in lines), lines
    assert any(line.startswith("CLIP") and "uninformative here, weight 0" in line for line in lines), lines
    lines = run_json("search", "pizza", "--db", db, "--explain", "--mode", "keyword")["calibration"]
    assert any(line.startswith("Text, 1-3 words") and line.endswith("weight 0") for line in lines), lines
    shown = run_cli("search", "pizza", "--db", db, "--explain", "-k", "1")  # stderr too: the curves, one a line
    assert "AUC" in shown and "weight 1" in shown


def test_a_score_matrix_of_text_and_picture_queries_together_scores_each_as_alone(coco):
    """Rows of one batch are scored independently: a picture-only query beside text queries keeps its own
    signals (CLIP alone) and gets none of another query's text evidence."""
    from photoseek.search.query import Query, QueryTerm

    with ImageIndex(coco[0]) as index:
        ids = np.sort(catalog_of(index).all_embeddings()[0])
        picture = Query((QueryTerm("image_id", str(int(ids[3]))),))
        texts = [Query.build([q]) for q in QUERIES[:3]]
        together = index.score_matrix([texts[0], picture, *texts[1:]], ids, mode="hybrid")
        alone = np.vstack([index.score_matrix([q], ids, mode="hybrid") for q in (texts[0], picture, *texts[1:])])
    np.testing.assert_allclose(together, alone, atol=1e-6)
