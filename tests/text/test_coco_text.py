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

from imgsearch import ImageIndex
from tests.helpers import SHARED_DATA, run_json

COCO = SHARED_DATA / "coco-mini"
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
    assert imported == {"imported": len(files), "unknown": ["missing/nowhere.jpg"]}
    return db, files, captions


def _recall(db, files, captions, **options) -> tuple[float, float]:
    truth = {str((COCO / f).resolve()): i for i, f in enumerate(files)}
    hits1 = hits5 = total = 0
    with ImageIndex(db) as index:
        for i, f in enumerate(files):
            for query in captions[f][1:5]:
                paths = [r.path for r in index.search(query, k=5, min_score=0.0, **options)]
                ranks = [truth[p] for p in paths]
                hits1 += ranks[:1] == [i]
                hits5 += i in ranks
                total += 1
    return hits1 / total, hits5 / total


def _reference_recall(files, captions) -> tuple[float, float]:
    """The same measurement straight through sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    from imgsearch.text.embedder import load_text_embedder

    model = SentenceTransformer(str(load_text_embedder().folder), device="cpu")
    gallery = model.encode([captions[f][0] for f in files], normalize_embeddings=True)
    truth = np.array([i for i, f in enumerate(files) for _ in captions[f][1:5]])
    queries = model.encode([q for f in files for q in captions[f][1:5]], normalize_embeddings=True)
    scores = queries @ gallery.T
    rank = (scores > scores[np.arange(len(truth)), truth][:, None]).sum(axis=1)
    return float((rank < 1).mean()), float((rank < 5).mean())


def test_text_mode_recall_matches_sentence_transformers(coco):
    pytest.importorskip("sentence_transformers")
    db, files, captions = coco
    r1, r5 = _recall(db, files, captions, mode="text")
    ref1, ref5 = _reference_recall(files, captions)
    assert ref1 == pytest.approx(0.66, abs=0.02) and ref5 == pytest.approx(0.91, abs=0.02)
    assert abs(r1 - ref1) <= 0.01 and abs(r5 - ref5) <= 0.01, (r1, r5, ref1, ref5)


def test_hybrid_with_bm25_beats_bm25_and_stays_within_a_point_of_text(coco):
    """On paraphrased COCO captions BM25 adds no recall (docs/benchmarks.md): hybrid may not lose more
    than one point to text alone. The image side is the random tiny CLIP, so its weight is 0 here."""
    db, files, captions = coco
    text = _recall(db, files, captions, mode="text")
    keyword = _recall(db, files, captions, mode="keyword")
    hybrid = _recall(db, files, captions, mode="hybrid", weights={"clip": 0.0})
    assert hybrid[0] > keyword[0] and hybrid[1] > keyword[1], (keyword, hybrid)
    assert hybrid[0] >= text[0] - 0.01 and hybrid[1] >= text[1] - 0.01, (text, hybrid)
