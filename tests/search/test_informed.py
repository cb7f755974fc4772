"""With an informative image signal, the default hybrid is at least as good as its best single signal
(issue 20): 239 COCO photos with caption 1 as note, a CLIP that knows each photo by caption 2
(tests/search/informed_clip.py), and captions 3-5 as queries, which neither signal has seen.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from photoseek import ImageIndex
from tests.helpers import run_json
from tests.search import coco as coco_library

pytestmark = pytest.mark.skipif(not coco_library.AVAILABLE, reason="needs shared COCO data")

MODES = {"clip": "clip", "text": "text", "keyword": "keyword", "default": None}


@pytest.fixture(scope="module")
def informed(tmp_path_factory, tiny_clip_dir, text_model_cache):
    """(catalog, files, captions): the COCO library indexed with the CLIP that knows it."""
    pytest.importorskip("onnx")  # builds the towers (the torch extra has it; the base install does not)
    from tests.search import informed_clip

    captions = coco_library.captions()
    files = sorted(captions)
    work = tmp_path_factory.mktemp("informed")
    model = informed_clip.build(
        tiny_clip_dir, work / "informed-clip", [coco_library.COCO / f for f in files],
        seen=[c for f in files for c in captions[f][:2]], remembered=[captions[f][1] for f in files],
    )
    return coco_library.build(work, model)


@pytest.fixture(scope="module")
def recall(informed):
    """R@1 and R@5 per mode on captions 3-5, with no cut-off (a ranking measure)."""
    db, files, captions = informed
    truth = {str((coco_library.COCO / f).resolve()): i for i, f in enumerate(files)}
    queries = [q for f in files for q in captions[f][2:5]]
    wanted = np.repeat(np.arange(len(files)), 3)
    measured = {}
    with ImageIndex(db) as index:
        for name, mode in MODES.items():
            found = index.search_many(queries, k=5, min_score=0.0, mode=mode)
            ranks = [[truth[r.path] for r in results] for results in found]
            measured[name] = (float(np.mean([row[:1] == [w] for row, w in zip(ranks, wanted)])),
                              float(np.mean([w in row for row, w in zip(ranks, wanted)])))
    return measured


def test_the_calibration_finds_the_clip_informative(informed):
    lines = run_json("calibrate", "--db", informed[0])["calibration"]
    clip = next(line for line in lines if line.startswith("CLIP"))
    auc = float(re.search(r"AUC (\d\.\d+)", clip).group(1))
    assert "uninformative" not in clip and clip.endswith("weight 1") and auc >= 0.8, lines
    longer = next(line for line in lines if line.startswith("Text, queries of 4+ words"))
    assert "fewer than 30 photos have two descriptions" in longer and "prior curve" in longer, lines
    assert run_json("status", "--db", informed[0])["calibration"] == lines


def test_both_signals_know_the_library(recall):
    # Neither signal is a formality: the image signal alone finds a photo by a caption it never saw.
    assert recall["clip"][0] >= 0.25 and recall["text"][0] >= 0.55, recall


def test_default_hybrid_is_at_least_as_good_as_its_best_signal(recall):
    singles = {name: recall[name] for name in ("clip", "text", "keyword")}
    # 717 queries, one is 0.14 points: R@1 may trail the best signal by 3 (the 0.5-point tolerance the
    # issue's goals use); measured +0.1 over text (docs/benchmarks.md, informed). R@5 has no tolerance.
    assert recall["default"][0] >= max(r1 for r1, _ in singles.values()) - 0.005, recall
    assert recall["default"][1] >= max(r5 for _, r5 in singles.values()), recall


def test_clip_hybrid_encodes_each_query_once_and_answers_what_hybrid_answers(informed, monkeypatch):
    """clip-hybrid ranks by blended vectors but answers only queries the fused signals find evidence for:
    the CLIP vectors it ranks by are the ones that decision uses (one encoding per query)."""
    from photoseek.search.engine import Searcher

    queries = ["a giraffe standing next to a tall tree", "two people on a beach with surfboards", "qwzxv",
               "quarterly tax spreadsheet"]
    with ImageIndex(informed[0]) as index:
        hybrid = index.search_many(queries, k=1)
        encoded: list[int] = []
        original = Searcher.query_vectors
        monkeypatch.setattr(Searcher, "query_vectors", lambda self, q: encoded.append(len(q)) or original(self, q))
        blended = index.search_many(queries, k=3, mode="clip-hybrid")
    assert encoded == [len(queries)]
    assert [bool(r) for r in blended] == [bool(r) for r in hybrid] == [True, True, False, False]
