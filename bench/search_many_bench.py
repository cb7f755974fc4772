"""Batch search vs one query at a time, on the COCO notes catalog (docs/benchmarks.md, issue 4).

Runs the 956 COCO caption queries through `ImageIndex.search` one by one and through
`ImageIndex.search_many`, each with a fresh `ImageIndex` (no remembered query vectors), and
reports the ratio measured in the same run, plus the R@1 of both (they must agree).

    PYTHONPATH=src python bench/search_many_bench.py --db /tmp/coco.db   # coco-mini indexed, caption 1 as note
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from photoseek import ImageIndex

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import shared_data  # noqa: E402
from measure import measured_run, span  # noqa: E402

COCO = shared_data("coco-mini")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--coco", type=Path, default=COCO)
    parser.add_argument("--mode", default="text")
    args = parser.parse_args()
    captions = json.loads((args.coco / "captions_by_file.json").read_text())
    files = sorted(captions)
    queries = [q for f in files for q in captions[f][1:5]]
    truth = [str((args.coco / f).resolve()) for f in files for _ in captions[f][1:5]]
    with ImageIndex(args.db) as index:
        index.search_many(queries[:2], mode=args.mode, min_score=0.0)  # load the models
    timings = {}
    for name in ("one at a time", "search_many"):
        with ImageIndex(args.db) as index:
            index.search_many(["warm-up"], mode=args.mode, min_score=0.0)
            with span() as timing:
                if name == "search_many":
                    results = index.search_many(queries, k=1, mode=args.mode, min_score=0.0)
                else:
                    results = [index.search(q, k=1, mode=args.mode, min_score=0.0) for q in queries]
            timings[name] = timing.wall_s
        r1 = sum(bool(r) and r[0].path == t for r, t in zip(results, truth)) / len(queries)
        print(f"{name:>14}: {timing.wall_s:6.2f} s (CPU {timing.cpu_s:6.2f} s) for {len(queries)} queries, "
              f"R@1 {r1:.3f}, load average {timing.load_after[0]}")
    print(f"speed-up: {timings['one at a time'] / timings['search_many']:.2f}x")


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
