"""Text tower cost per query, 77-token export against the dynamic-length one, in the same run.

The same random-weight ViT-B-32 exported both ways (cached in the benchmarks' per-user folder, see
benchpaths.py); distinct COCO captions (never repeated, so the query cache cannot help) encoded
through `ClipModel.encode_texts` at each batch size, the two models interleaved for --rounds rounds.
Also checks that both give the same embeddings (max abs difference). Records the load average.

    PYTHONPATH=src python bench/text_length_bench.py [--rounds 2] [--batches 1 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import random_model_dir, shared_data, write_results  # noqa: E402
from measure import measured_run  # noqa: E402

CAPTIONS = shared_data("coco-captions", "captions_val2017.json")
PER_BATCH_SIZE = 100
"""Captions encoded per (round, model, batch size)."""


def captions() -> list[str]:
    if not CAPTIONS.exists():
        sys.exit(f"No COCO captions at {CAPTIONS}: set PHOTOSEEK_SHARED_DATA.")
    texts = [a["caption"].strip() for a in json.loads(CAPTIONS.read_text())["annotations"]]
    random.Random(0).shuffle(texts)
    return list(dict.fromkeys(texts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 20], help="Batch sizes to time.")
    parser.add_argument("--out", type=Path, help="JSON results file (default: in the per-user folder).")
    args = parser.parse_args()
    from photoseek.models import load_clip

    models = {"77 tokens": random_model_dir(fixed_text_length=True), "dynamic": random_model_dir()}
    texts = iter(captions())
    check = [next(texts) for _ in range(400)]
    fixed, dynamic = (load_clip(path=path).encode_texts(check) for path in models.values())
    loaded = {name: load_clip(path=path) for name, path in models.items()}
    for model in loaded.values():
        model.encode_texts(["warm-up"])
    load_before = os.getloadavg()
    rows = []
    for round_ in range(args.rounds):
        for name, model in loaded.items():
            for size in args.batches:
                batch = [next(texts) for _ in range(PER_BATCH_SIZE)]
                wall, cpu = time.perf_counter(), time.process_time()
                for start in range(0, len(batch), size):
                    model.encode_texts(batch[start : start + size])
                rows.append({
                    "round": round_, "model": name, "batch": size,
                    "wall_ms_per_query": round(1000 * (time.perf_counter() - wall) / len(batch), 1),
                    "cpu_ms_per_query": round(1000 * (time.process_time() - cpu) / len(batch), 1),
                })
    write_results({
        "max_abs_difference": float(np.abs(fixed - dynamic).max()),
        "captions_checked": len(check), "timings": rows,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }, args.out, "text_length_bench.json")


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
