"""Peak memory of pictures with extreme aspect ratios (issue 21, item 8), against normal photos.

Each run is `photoseek index` (or `search --image`) in a process of its own, with a fresh
catalog and the full-size random-weight ViT-B-32 (224 px input), over 8 COCO photos plus one
generated PNG; its peak RSS (VmHWM, read in the child), wall and CPU seconds are recorded. The
baseline is the 8 photos alone, in the same run; "extra" is the peak above it. The 200 MP
strip is compared with a 200 MP square of the same content, which any decoder must hold whole.
Also times `ImagePreprocessor` alone on each strip (and the old resize-whole-then-crop on milder
ones), and `search --image` with the 100000x1 strip against a photo that is not in the catalog.
With --ocr, the peak of RapidOCR per picture shape, read in pieces (now) and whole (before).
Prints JSON, writes it to --out (default: aspect_bench.json in the per-user bench folder).
Records the load average.

    PYTHONPATH=src python bench/aspect_bench.py [--photos 8] [--skip-200mp] [--ocr] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import REPO, coco_photos, random_model_dir, write_results  # noqa: E402
from measure import measured_run, photoseek_peak  # noqa: E402

STRIPS = {
    "100000x1": (100_000, 1), "1x100000": (1, 100_000), "10000x1": (10_000, 1), "20000x30": (20_000, 30),
}
BIG = {"200 MP strip 100000x2000": (100_000, 2_000), "200 MP square 14142x14142": (14_142, 14_142)}
def gradient_png(path: Path, size: tuple[int, int]) -> Path:
    """A colour ramp along the long side, the same on every row or column: compresses to almost nothing."""
    width, height = size
    long = max(size)
    ramp = np.linspace(0, 255, long, dtype=np.float32).astype(np.uint8)
    line = np.stack([ramp, 255 - ramp, np.full_like(ramp, 90)], axis=-1)
    line = line.reshape(1, long, 3) if width >= height else line.reshape(long, 1, 3)
    Image.fromarray(np.ascontiguousarray(np.broadcast_to(line, (height, width, 3)))).save(path, compress_level=9)
    return path


def run(*args: object) -> dict[str, float]:
    return photoseek_peak(REPO / "src", *args)[0]


def index_with(extra: Path | None, photos: list[Path], model: Path, work: Path) -> dict[str, float]:
    folder = work / "photos"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for photo in photos:
        os.symlink(photo, folder / photo.name)
    if extra is not None:
        os.symlink(extra, folder / extra.name)
    db = work / "catalog.db"
    for leftover in work.glob("catalog.db*"):
        leftover.unlink()
    return run("index", folder, "--db", db, "--model-path", model)


def preprocess_alone() -> dict[str, dict[str, float]]:
    from photoseek.models.preprocess import ImagePreprocessor

    preprocess = ImagePreprocessor({"size": 224})
    found = {}
    for name, size in STRIPS.items():
        image = Image.new("RGB", size, (200, 40, 40))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        preprocess(image)
        found[name] = {
            "ms": round(1000 * (time.perf_counter() - started), 2),
            "peak_growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, 1),
        }
    for long in (1000, 2000):  # the old way, resize whole then crop, on milder strips (10000x1 took 2 GB)
        image = Image.new("RGB", (long, 1), (200, 40, 40))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        image.resize((224 * long, 224), Image.Resampling.BICUBIC).crop((0, 0, 224, 224))
        found[f"{long}x1, resized whole (before)"] = {
            "ms": round(1000 * (time.perf_counter() - started), 2),
            "peak_growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, 1),
        }
    return found


OCR_CHILD = (
    "import json, sys, time\n"
    "from PIL import Image\n"
    "from photoseek.text.ocr import OcrReader, _engine_class\n"
    "width, height, whole = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == 'whole'\n"
    "image = Image.new('RGB', (width, height), (250, 250, 250))\n"
    "started = time.perf_counter()\n"
    "try:\n"
    "    _engine_class()()(image) if whole else OcrReader().describe([image])\n"
    "    outcome = 'read'\n"
    "except Exception as exc:\n"
    "    outcome = type(exc).__name__\n"
    "peak = next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM'))\n"
    "print(json.dumps({'peak_mb': round(peak / 1024, 1), 'wall_s': round(time.perf_counter() - started, 2),\n"
    "                  'outcome': outcome}))\n"
)
OCR_SHAPES = {"640x480": (640, 480), "4000x3000": (4000, 3000), "1080x20000": (1080, 20_000),
              "2000x3": (2000, 3), "10000x1": (10_000, 1)}


OCR_ADDRESS_SPACE = 6 * 2**30
"""Each OCR child's address-space cap: a 2000x3 strip read whole took 13.6 GB and 465 s unbounded."""


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (OCR_ADDRESS_SPACE, OCR_ADDRESS_SPACE))


def ocr_peaks() -> dict[str, object]:
    """OcrReader (pieces) on blank pictures of each shape, and RapidOCR on the whole picture (before)."""
    found: dict[str, object] = {}
    for name, (width, height) in OCR_SHAPES.items():
        for how in ("pieces", "whole"):
            done = subprocess.run(
                [sys.executable, "-c", OCR_CHILD, str(width), str(height), how], capture_output=True, text=True,
                timeout=600, env={**os.environ, "PYTHONPATH": str(REPO / "src")}, preexec_fn=_cap_memory,
            )
            lines = done.stdout.strip().splitlines()
            found[f"{name} {how}"] = json.loads(lines[-1]) if done.returncode == 0 and lines else {
                "outcome": f"process died (exit {done.returncode})"}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--skip-200mp", action="store_true", help="Leave out the two 200 MP pictures.")
    parser.add_argument("--ocr", action="store_true", help="Also measure OCR (RapidOCR) per shape: minutes.")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    model = random_model_dir()
    photos = coco_photos()[: args.photos]
    load_before = os.getloadavg()
    results: dict[str, object] = {"preprocess_alone": preprocess_alone()}
    with tempfile.TemporaryDirectory(prefix="aspect-bench-") as tmp:
        work = Path(tmp)
        files = work / "files"
        files.mkdir()
        shapes = {**STRIPS, **({} if args.skip_200mp else BIG)}
        made = {name: gradient_png(files / f"{name.split()[-1]}.png", size) for name, size in shapes.items()}
        baseline = index_with(None, photos, model, work)
        runs: dict[str, object] = {"baseline (photos only)": baseline}
        for name, path in made.items():
            measured = index_with(path, photos, model, work)
            measured["extra_peak_mb"] = round(measured["peak_mb"] - baseline["peak_mb"], 1)
            measured["file_bytes"] = path.stat().st_size
            runs[f"photos + {name}"] = measured
        results["index"] = runs
        db = work / "catalog.db"
        query = run("search", "--image", made["100000x1"], "--db", db, "--json")
        unindexed = coco_photos()[args.photos]  # encoded like the strip, not read from the catalog
        photo_query = run("search", "--image", unindexed, "--db", db, "--json")
        results["search_image"] = {"photo": photo_query, "100000x1": query,
                                   "extra_peak_mb": round(query["peak_mb"] - photo_query["peak_mb"], 1)}
    if args.ocr:
        results["ocr"] = ocr_peaks()
    results["load_average"] = {"before": load_before, "after": os.getloadavg()}
    write_results(results, args.out, "aspect_bench.json")


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
