"""Hostile metadata (issue 21, items 9 and 10): XMP parse times and what a huge sidecar costs.

1. `read_facts` on 10 MB blocks built against the parser (the test's adversarial set, each
   read embedded in a JPEG and as a sidecar), best of 3; and the issue's 230 KB JPEG with
   `<x:xmpmeta ` 20,000 times. The old lazy regex is timed on the same shape at 1,250 to 5,000
   repeats in the same run, to show its quadratic growth (20,000 took 49 s in the issue).
2. Peak RSS of `photoseek index` (a process of its own, the tiny test model) on one photo, then
   the same with a 3 GB sparse `photo.xmp` beside it, then with a FIFO `photo.xmp` (wall time).

Prints JSON, writes it to --out (default: xmp_limits_bench.json in the per-user bench folder).

    PYTHONPATH=src python bench/xmp_limits_bench.py [--out FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchpaths import REPO, results_dir, write_results  # noqa: E402
from measure import measured_run, photoseek_peak  # noqa: E402

from photoseek.text.metadata import read_facts  # noqa: E402
from tests.text.test_metadata_limits import ADVERSARIAL  # noqa: E402

OLD_PACKET = re.compile(rb"<x:xmpmeta\b.*?</x:xmpmeta>", re.S)
"""The regex before this change."""
def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 140, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def best_of(count: int, work) -> float:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return round(min(times), 4)


def parse_times() -> dict[str, object]:
    head = jpeg()
    blocks = {name: {"mb": round(len(data) / 2**20, 1),
                     "embedded_s": best_of(3, lambda d=data: read_facts(head + d)),
                     "sidecar_s": best_of(3, lambda d=data: read_facts(b"", [d]))}
              for name, data in ADVERSARIAL.items()}
    issue = head + b"<x:xmpmeta " * 20_000
    old = {n: best_of(1, lambda n=n: OLD_PACKET.search(b"<x:xmpmeta " * n)) for n in (1250, 2500, 5000)}
    return {"10 MB blocks": blocks, "issue JPEG (20,000 open tags, 230 KB)": best_of(3, lambda: read_facts(issue)),
            "old regex, seconds by repeats": old}


def index_peak(folder: Path, model: Path) -> dict[str, float]:
    db = folder.parent / "c.db"
    for leftover in folder.parent.glob("c.db*"):
        leftover.unlink()
    stats, stdout = photoseek_peak(REPO / "src", "index", folder, "--db", db, "--model-path", model, "--json",
                                   timeout=300)
    return {**stats, "failed": [f["reason"] for f in json.loads(stdout)["failed"]]}


def sidecar_costs() -> dict[str, object]:
    model = results_dir() / "tiny-clip"
    if not (model / "textual").exists():
        return {"skipped": f"no tiny model at {model} (run another benchmark that makes it, or the tests)"}
    with tempfile.TemporaryDirectory(prefix="metadata-bench-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        Image.new("RGB", (640, 480), (120, 80, 40)).save(folder / "photo.jpg")
        plain = index_peak(folder, model)
        with open(folder / "photo.xmp", "wb") as huge:
            huge.truncate(3 * 2**30)
        huge_sidecar = index_peak(folder, model)
        (folder / "photo.xmp").unlink()
        os.mkfifo(folder / "photo.xmp")
        fifo = index_peak(folder, model)
    return {"photo alone": plain, "with a 3 GB photo.xmp": huge_sidecar, "with a FIFO photo.xmp": fifo}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = {"parse": parse_times(), "sidecars": sidecar_costs(),
               "load_average": {"before": load_before, "after": os.getloadavg()}}
    write_results(results, args.out, "xmp_limits_bench.json")


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
