"""How long `photoseek eval` takes at 1,000 images x 4,000 captions, before and after batching (issue 15).

    python bench/eval_bench.py --images 1000 --sample 200 --out /tmp/eval_bench.json

The gallery: `--images` COCO val2017 caption sets (coco-captions/ of the shared data,
$PHOTOSEEK_SHARED_DATA) on generated placeholder pictures (the CLIP model has random weights,
so pixels do not matter); caption 1 of each is its note, captions 2-5 its queries. A full-size
random-weight ViT-B-32 and the packaged all-MiniLM-L6-v2 (text extra) do the encoding. For each
mode (text, keyword, hybrid, clip):

- after: one evaluation of the four modes, as `photoseek eval --mode text --mode keyword --mode hybrid
  --mode clip` runs it (score matrices per batch of queries; the modes share the loaded models);
- before: the previous per-query path (one `ImageIndex.search` with k = the gallery per query),
  timed on `--sample` queries and scaled to all of them; its metrics on that sample are compared
  with the new path's on the same queries (they must be identical).

The images are embedded once before timing (the evaluation caches them per model). Everything is
written under --work, outside the checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import results_dir, shared_data  # noqa: E402
from measure import measured_run  # noqa: E402

MODES = ("text", "keyword", "hybrid", "clip")


def build_dataset(work: Path, count: int) -> tuple[Path, Path]:
    """A {file: [captions]} JSON and a folder of placeholder pictures, one per caption set."""
    folder = work / f"eval-gallery-{count}"
    dataset = folder / "captions.json"
    if dataset.exists():
        return dataset, folder
    coco = json.loads((shared_data() / "coco-captions" / "captions_val2017.json").read_text())
    by_image: dict[int, list[str]] = {}
    for note in coco["annotations"]:
        by_image.setdefault(note["image_id"], []).append(note["caption"].strip())
    chosen = [i for i in sorted(by_image) if len(by_image[i]) >= 5][:count]
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    captions = {}
    for image_id in chosen:
        name = f"{image_id:012d}.png"
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / name)
        captions[name] = by_image[image_id][:5]
    dataset.write_text(json.dumps(captions))
    return dataset, folder


def clip_model(work: Path) -> Path:
    path = work / "vit-b-32-random"
    if not (path / "config.json").exists():
        from photoseek.models.export import export_open_clip

        export_open_clip("ViT-B-32", path, random_weights=True)
    return path


def per_query_rows(index, queries: list[str], mode: str, image_ids: np.ndarray) -> np.ndarray:
    """The previous evaluation path: one search per query over the whole gallery (clip: the texts
    encoded in one call, then one vector-index search per query, as it was)."""
    column = {int(i): c for c, i in enumerate(image_ids)}
    rows = np.full((len(queries), len(image_ids)), -np.inf)
    if mode == "clip":
        vector_index = index._searcher.index  # white-box: the old path, one vector-index search per query
        ranked = (vector_index.search(v, len(vector_index)) for v in index.model.encode_texts(queries))
    else:
        ranked = (
            ([h.id for h in hits], [h.score for h in hits])
            for hits in (index.search(text, k=len(image_ids), mode=mode, min_score=0.0) for text in queries)
        )
    for r, (ids, scores) in enumerate(ranked):
        for i, s in zip(np.asarray(ids).tolist(), np.asarray(scores).tolist()):
            rows[r, column[i]] = s
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=200, help="Queries timed on the old per-query path.")
    parser.add_argument("--work", type=Path, default=None, help="Models and gallery (default: a per-user folder).")
    parser.add_argument("--out", type=Path, help="JSON file for the results (default: print only).")
    args = parser.parse_args()
    args.work = args.work or results_dir()

    from photoseek.eval import runner, signals
    from photoseek.eval.metrics import query_metrics, ranked_grades, summarize
    from photoseek.text.caption_files import load_dataset

    dataset_path, folder = build_dataset(args.work, args.images)
    dataset = load_dataset(dataset_path)
    model = clip_model(args.work)
    cache = args.work / "eval-cache"
    specs = [runner.RunSpec(mode=m, model_path=model) for m in MODES]
    runner.evaluate(dataset, folder, specs[:1], oracle_captions=1, cache_dir=cache)  # embed once, untimed

    results: dict[str, dict] = {"images": args.images, "load_avg_start": os.getloadavg()[0], "modes": {}}
    started = time.perf_counter()  # all four modes in one evaluation, as `photoseek eval --mode ...` runs them
    evaluation = runner.evaluate(dataset, folder, specs, oracle_captions=1, cache_dir=cache)
    results["one_eval_all_modes_s"] = round(time.perf_counter() - started, 1)
    for run in evaluation.runs:
        direction = run.directions[runner.TEXT_TO_IMAGE]
        results["modes"][run.spec.mode] = {"after_s": round(run.seconds, 1), "queries": len(direction.queries),
                                           "R@1": direction.summary["R@1"], "R@10": direction.summary["R@10"]}
        print(run.spec.mode, results["modes"][run.spec.mode], flush=True)

    # The old path on a sample of queries, against the new path's rows for the same queries.
    present, _ = runner.locate_images(dataset, folder)
    gallery = runner.build_gallery(dataset, present, 1)
    sample = list(gallery.queries[: args.sample])
    grades = np.zeros((len(sample), len(gallery.names)))
    for r, judged in enumerate(gallery.relevance[: args.sample]):
        grades[r, list(judged)] = list(judged.values())
    db = runner._catalog_path(specs[0], cache, present)
    with signals.open_index(db, model=None, model_path=model, text_model=None) as index:
        image_ids = np.array([index.find(p).id for p in gallery.paths], dtype=np.int64)
        for mode in MODES:
            started = time.perf_counter()
            old = per_query_rows(index, sample, mode, image_ids)
            before_s = (time.perf_counter() - started) * len(gallery.queries) / len(sample)
            if mode == "clip":
                new = index.model.encode_texts(sample) @ index.image_vectors(image_ids).T
            else:
                new = signals.score_gallery(index, sample, mode, image_ids)
            if mode != "clip":  # the per-query path reports fused scores rounded to 6 decimals
                new = np.round(new, 6)
            same = summarize(query_metrics(ranked_grades(old, grades))) == summarize(
                query_metrics(ranked_grades(new, grades))
            )
            entry = results["modes"][mode]
            entry.update({"before_s_estimated": round(before_s, 1), "speedup": round(before_s / entry["after_s"], 1),
                          "sample_metrics_identical": same})
            print(mode, entry, flush=True)
    results["after_total_s"] = round(sum(m["after_s"] for m in results["modes"].values()), 1)
    results["before_total_s_estimated"] = round(sum(m["before_s_estimated"] for m in results["modes"].values()), 1)
    results["load_avg_end"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    if not all(m["sample_metrics_identical"] for m in results["modes"].values()):
        sys.exit("The batched path ranked the sample differently from the per-query path.")


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
