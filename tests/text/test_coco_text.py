"""Text and hybrid search with the real all-MiniLM-L6-v2 on 239 COCO photos, through the Python API.

Caption 1 of each photo becomes its note; captions 2-5 are the queries. Text-mode recall must
match sentence-transformers measured directly on the same texts (within 1 point), and hybrid
(text + BM25) must not be worse than either signal alone.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from photoseek import ImageIndex
from tests.helpers import run_json, shared_data

COCO = shared_data("coco-mini")
pytestmark = pytest.mark.skipif(not (COCO / "captions_by_file.json").exists(), reason="needs shared COCO data")


@pytest.fixture(scope="module")
def coco(tmp_path_factory, tiny_clip_dir, text_model_cache):
    captions = json.loads((COCO / "captions_by_file.json").read_text())
    files = sorted(captions)
    work = tmp_path_factory.mktemp("coco")
    db = work / "coco.db"
    notes = work / "notes.csv"
    with notes.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "caption"])
        writer.writerows([(str(COCO / f), captions[f][0]) for f in files])
        writer.writerow(["missing/nowhere.jpg", "not indexed"])
    run_json("index", COCO, "--db", db, "--model-path", tiny_clip_dir)
    imported = run_json("import-captions", notes, "--db", db)
    assert imported == {
        "imported": len(files), "unknown": ["missing/nowhere.jpg"], "issues": [], "beside_descriptions": 0,
        "replaced": 0,
    }
    return db, files, captions


@pytest.fixture(scope="module")
def coco_index(coco):
    """One index for every measurement, so each query text is embedded once in this module."""
    with ImageIndex(coco[0]) as index:
        yield index


def _recall(index, files, captions, **options) -> tuple[float, float]:
    """R@1 and R@5 over all 956 queries, run as one batch through `search_many`."""
    truth = {str((COCO / f).resolve()): i for i, f in enumerate(files)}
    wanted = [i for i, f in enumerate(files) for _ in captions[f][1:5]]
    batches = index.search_many([q for f in files for q in captions[f][1:5]], k=5, min_score=0.0, **options)
    ranks = [[truth[r.path] for r in results] for results in batches]
    hits1 = sum(found[:1] == [i] for i, found in zip(wanted, ranks))
    hits5 = sum(i in found for i, found in zip(wanted, ranks))
    return hits1 / len(wanted), hits5 / len(wanted)


def test_search_many_matches_one_query_at_a_time(coco, coco_index):
    _, files, captions = coco
    queries = [captions[f][2] for f in files[:12]] + ["3:dog", "2:a red bus"]
    with ImageIndex(coco[0]) as index:  # a fresh one: nothing remembered from other tests
        for mode, weights in (("text", None), ("keyword", None), ("hybrid", None), ("clip", None)):
            batch = index.search_many(queries[:12], k=5, min_score=0.0, mode=mode, weights=weights)
            single = [index.search(q, k=5, min_score=0.0, mode=mode, weights=weights) for q in queries[:12]]
            assert [[r.id for r in rs] for rs in batch] == [[r.id for r in rs] for rs in single]
            # Batched encoding pads differently, which moves cosines in the 6th decimal at most.
            scores = [r.score for rs in single for r in rs]
            assert [r.score for rs in batch for r in rs] == pytest.approx(scores, abs=1e-5)
        assert len(index.search_many(queries, k=3, min_score=0.0)) == len(queries)


def _reference_recall(files, captions) -> tuple[float, float]:
    """The same measurement straight through sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    from photoseek.text.embedder import load_text_embedder

    model = SentenceTransformer(str(load_text_embedder().folder), device="cpu")
    gallery = model.encode([captions[f][0] for f in files], normalize_embeddings=True)
    truth = np.array([i for i, f in enumerate(files) for _ in captions[f][1:5]])
    queries = model.encode([q for f in files for q in captions[f][1:5]], normalize_embeddings=True)
    scores = queries @ gallery.T
    rank = (scores > scores[np.arange(len(truth)), truth][:, None]).sum(axis=1)
    return float((rank < 1).mean()), float((rank < 5).mean())


def test_text_mode_recall_matches_sentence_transformers(coco, coco_index):
    pytest.importorskip("sentence_transformers")
    _, files, captions = coco
    r1, r5 = _recall(coco_index, files, captions, mode="text")
    ref1, ref5 = _reference_recall(files, captions)
    assert ref1 == pytest.approx(0.66, abs=0.02) and ref5 == pytest.approx(0.91, abs=0.02)
    assert abs(r1 - ref1) <= 0.01 and abs(r5 - ref5) <= 0.01, (r1, r5, ref1, ref5)


def test_hybrid_with_bm25_beats_bm25_and_stays_within_a_point_of_text(coco, coco_index):
    """On paraphrased COCO captions BM25 adds no recall (docs/benchmarks.md): hybrid may not lose more
    than one point to text alone. The image side is the random tiny CLIP, so its weight is 0 here."""
    _, files, captions = coco
    text = _recall(coco_index, files, captions, mode="text")
    keyword = _recall(coco_index, files, captions, mode="keyword")
    hybrid = _recall(coco_index, files, captions, mode="hybrid", weights={"clip": 0.0})
    assert hybrid[0] > keyword[0] and hybrid[1] > keyword[1], (keyword, hybrid)
    assert hybrid[0] >= text[0] - 0.01 and hybrid[1] >= text[1] - 0.01, (text, hybrid)
