"""Fit the text/keyword calibrations and compare fusion methods on COCO (docs/benchmarks.md).

Caption 1 of each of the 239 coco-mini photos is its note; captions 2-5 are queries. For every
query we take the raw text-embedding cosine and SQLite BM25 of every image, then compare
R@1/R@5 of: each signal alone, reciprocal rank fusion, and the calibrated weighted sum
(logistic calibration fitted on the queries of even-numbered images, reported on all).

    PYTHONPATH=src python bench/text_fusion.py --db /tmp/coco.db   # an indexed coco-mini catalog
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from imgsearch import ImageIndex
from imgsearch.search.fusion import CALIBRATIONS, fuse, reciprocal_rank_fusion

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import shared_data  # noqa: E402

COCO = shared_data("coco-mini")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--coco", type=Path, default=COCO)
    args = parser.parse_args()
    captions = json.loads((args.coco / "captions_by_file.json").read_text())
    files = sorted(captions)
    with ImageIndex(args.db) as index:
        ids = [index.catalog.get_by_path(str((args.coco / f).resolve())).id for f in files]
        position = {image_id: i for i, image_id in enumerate(ids)}
        index.texts.put_many([(index.catalog.get(i).content_hash, "note", "user", captions[f][0])
                              for i, f in zip(ids, files)])
        index.texts.sync()
        queries = [(i, q) for i, f in enumerate(files) for q in captions[f][1:5]]
        embedder = index.text_model
        index.hybrid._text_matrix(embedder)
        text_ids, matrix = index.texts.embeddings(embedder.model_id)
        order = np.array([position[int(i)] for i in text_ids])
        text = np.empty((len(queries), len(files)))
        text[:, order] = embedder.embed_queries([q for _, q in queries]) @ matrix.T
        keyword = np.full((len(queries), len(files)), np.nan)
        for row, (_, q) in enumerate(queries):
            for hit in index.texts.keyword_search([q], [], len(files)):
                keyword[row, position[hit.image_id]] = hit.score
    truth = np.array([i for i, _ in queries])
    labels = np.zeros_like(text, dtype=bool)
    labels[np.arange(len(truth)), truth] = True
    fit_rows = truth % 2 == 0
    for name, raw in (("text", text), ("keyword", keyword)):
        x, y = raw[fit_rows].ravel(), labels[fit_rows].ravel()
        keep = ~np.isnan(x)
        model = LogisticRegression(C=1e4).fit(x[keep, None], y[keep])
        scale = float(model.coef_[0, 0])
        print(f"calibration {name}: centre={-model.intercept_[0] / scale:.3f} scale={scale:.3f}"
              f"  (in use: {CALIBRATIONS[name]})")

    def recall(scores: np.ndarray) -> str:
        rank = (scores > scores[np.arange(len(truth)), truth][:, None]).sum(axis=1)
        return f"R@1 {100 * (rank < 1).mean():.1f}  R@5 {100 * (rank < 5).mean():.1f}"

    print("text only      ", recall(text))
    print("keyword only   ", recall(np.nan_to_num(keyword, nan=-1.0)))
    rrf = np.zeros_like(text)
    for row in range(len(truth)):
        rankings = [np.argsort(-text[row]), np.argsort(-np.nan_to_num(keyword[row], nan=-1.0))]
        rankings[1] = rankings[1][: int((~np.isnan(keyword[row])).sum())]
        for col, value in reciprocal_rank_fusion(rankings).items():
            rrf[row, col] = value
    print("RRF (k=60)     ", recall(rrf))
    for weight in (0.02, 0.05, 0.1, 0.2, 0.5, 1.0):
        fused, _ = fuse({"text": text, "keyword": keyword}, {"text": 1.0, "keyword": weight})
        print(f"weighted sum kw={weight:<4}", recall(fused))
    fused, _ = fuse({"text": text, "keyword": keyword}, {"text": 1.0, "keyword": 0.5})
    right = fused[np.arange(len(truth)), truth]
    wrong = np.where(labels, np.nan, fused)
    print(f"fused score of the right image: 5th percentile {np.percentile(right, 5):.3f}; "
          f"best wrong image per query: median {np.nanmedian(np.nanmax(wrong, axis=1)):.3f}")


if __name__ == "__main__":
    main()
