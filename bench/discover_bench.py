"""Discovery cost of content sniffing (issue 10): how much slower a walk gets when some names say nothing.

Builds a tree of --files small files in a temp folder, three ways, and times `discover` on each
(best of --repeat): every name has an image extension (never opened: the baseline), a tenth have
no extension (opened and sniffed), and a tenth have a known non-image extension (never opened).

    PYTHONPATH=src python bench/discover_bench.py [--files 20000] [--out results.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from photoseek.ingest.discover import discover

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import write_results  # noqa: E402
from measure import Span, measured_run, span  # noqa: E402

JPEG_HEAD = b"\xff\xd8\xff\xe0" + bytes(60)


def build(root: Path, files: int, odd_name: str | None) -> None:
    """`files` files in folders of 200; every tenth gets `odd_name` instead of an image name."""
    for i in range(files):
        folder = root / f"{i // 200:04d}"
        if i % 200 == 0:
            folder.mkdir(parents=True)
        name = f"IMG_{i:06d}.jpg"
        if odd_name is not None and i % 10 == 0:
            name = odd_name.format(i=i)
        (folder / name).write_bytes(JPEG_HEAD if name.endswith(".jpg") else b"just some text\n")


def best_walk(root: Path, repeat: int) -> tuple[Span, int]:
    """(the fastest of `repeat` walks, files found); warm file system cache."""
    timings, found = [], 0
    for _ in range(repeat):
        with span() as walk:
            found = sum(1 for _ in discover([root]))
        timings.append(walk)
    return min(timings, key=lambda walk: walk.wall_s), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, help="JSON results file (default: discover_bench.json in a per-user folder)."
    )
    args = parser.parse_args()
    results: dict[str, object] = {"files": args.files, "load_average": os.getloadavg()[0]}
    cases = {"image_names": None, "tenth_without_extension": "notes_{i}", "tenth_known_non_image": "notes_{i}.txt"}
    for case, odd_name in cases.items():
        with tempfile.TemporaryDirectory() as tmp:
            build(Path(tmp), args.files, odd_name)
            walk, found = best_walk(Path(tmp), args.repeat)
        results[f"{case}_ms"] = round(1000 * walk.wall_s, 1)
        results[f"{case}_cpu_ms"] = round(1000 * walk.cpu_s, 1)
        results[f"{case}_found"] = found
    baseline = results["image_names_ms"]
    for case in list(cases)[1:]:
        results[f"{case}_vs_baseline"] = round(results[f"{case}_ms"] / baseline, 2)
    write_results(results, args.out, "discover_bench.json")


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
