"""Text-side topic accuracy on coco-mini: MiniLM on one caption per photo against the default taxonomy.

The reference labels are tests/topics/coco_topics.json (keyword rules over all five captions,
bench/coco_topic_labels.py). The image's text is its first caption only. The text calibration's
centre (the cosine where confidence is 0.5) and slope are fitted on the even-numbered photos; the
precision/recall per topic are reported on the odd-numbered ones (held out) and on all.

    python bench/topics_text.py [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from photoseek.text.embedder import load_text_embedder
from photoseek.topics import default_taxonomy
from photoseek.topics.scoring import text_topic_scores

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import shared_data  # noqa: E402
from measure import measured_run, span  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def fit(cos: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(centre, scale) of a logistic curve: centre maximises micro-F1, scale minimises log loss."""
    def f1(t: float) -> float:
        pred = cos >= t
        tp = (pred & truth).sum()
        return 2 * tp / max(pred.sum() + truth.sum(), 1)

    centre = max(np.arange(0.10, 0.60, 0.005), key=f1)

    def loss(scale: float) -> float:
        p = np.clip(1 / (1 + np.exp(-(cos - centre) * scale)), 1e-6, 1 - 1e-6)
        return float(-(truth * np.log(p) + (~truth) * np.log(1 - p)).mean())

    scale = min(np.arange(2.0, 60.0, 1.0), key=loss)
    return float(centre), float(scale)


def report(cos: np.ndarray, truth: np.ndarray, centre: float, names: list[str]) -> dict[str, object]:
    pred = cos >= centre
    rows = {}
    for j, name in enumerate(names):
        tp, fp, fn = int((pred[:, j] & truth[:, j]).sum()), int((pred[:, j] & ~truth[:, j]).sum()), int(
            (~pred[:, j] & truth[:, j]).sum())
        if tp + fn or fp:
            rows[name] = {"labelled": tp + fn, "tagged": tp + fp,
                          "precision": round(tp / (tp + fp), 2) if tp + fp else None,
                          "recall": round(tp / (tp + fn), 2) if tp + fn else None}
    tp = int((pred & truth).sum())
    return {"micro_precision": round(tp / max(pred.sum(), 1), 3), "micro_recall": round(tp / max(truth.sum(), 1), 3),
            "topics": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = shared_data()
    parser.add_argument("--data", type=Path, default=shared / "coco-mini")
    args = parser.parse_args()
    captions = json.loads((args.data / "captions_by_file.json").read_text())
    labels = json.loads((ROOT / "tests/topics/coco_topics.json").read_text())
    files = sorted(labels)
    taxonomy = default_taxonomy()
    names = taxonomy.names
    truth = np.array([[n in labels[f] for n in names] for f in files])
    with span() as embedding:
        model = load_text_embedder()
        texts = model.embed_passages([captions[f][0] for f in files])
        cos = text_topic_scores(texts, taxonomy, model.embed_queries, model.model_id)
    even, odd = np.arange(0, len(files), 2), np.arange(1, len(files), 2)
    centre, scale = fit(cos[even], truth[even])
    print(json.dumps({
        "fitted_on_even": {"centre": round(centre, 3), "scale": scale},
        "held_out_odd": report(cos[odd], truth[odd], centre, names),
        "all": report(cos, truth, centre, names),
        "seconds_load_and_embed": round(embedding.wall_s, 1), "cpu_seconds_load_and_embed": round(embedding.cpu_s, 1),
        "load": os.getloadavg()[0],
    }, indent=1))


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
