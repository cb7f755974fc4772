"""`TextStore.put_many` on a batch that updates signals a catalog already holds (what enrich, tagging
and import-captions write): wall and CPU seconds, with the load average.

    PYTHONPATH=src python bench/text_store_bench.py --rows 20000
    PYTHONPATH=/path/to/other/checkout/src python bench/text_store_bench.py --rows 20000   # the baseline

Run it against two checkouts in a row to compare (the numbers are only comparable on the same
machine at about the same load). Each image carries five signals; the batch writes captions: half
change (so those images' topics go stale), half are the text already stored.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import photoseek
from photoseek.store.catalog import Catalog
from photoseek.store.text import TextStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, Catalog(Path(folder) / "c.db") as catalog:
        texts = TextStore(catalog)
        stored = [(f"{i:032x}", "caption", "blip", f"a photo number {i}") for i in range(args.rows)]
        texts.put_many(stored)
        for source in ("metadata", "ocr", "objects", "topics"):  # the other signals an image carries
            texts.put_many([(h, source, "m", f"{source} of {h}") for h, *_ in stored])
        best = (float("inf"), 0.0)
        for repeat in range(args.repeats):
            batch = [(h, s, m, t + f" again {repeat}" if i % 2 else t) for i, (h, s, m, t) in enumerate(stored)]
            wall, cpu = time.perf_counter(), time.process_time()
            texts.put_many(batch)
            best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    print(f"photoseek from {Path(photoseek.__file__).parent}")
    print(f"put_many of {args.rows} rows: best of {args.repeats} {best[0]:.3f} s wall, {best[1]:.3f} s CPU "
          f"({args.rows / best[0]:,.0f} rows/s); load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
