"""Indexing and cold-search benchmark (issue 2). Run by hand: python bench/index_bench.py

Uses a full-size ViT-B-32 with random weights (real compute cost, meaningless answers)
exported through `photoseek models export`, and the COCO photos of the shared data
($PHOTOSEEK_SHARED_DATA, else the shared folder beside the checkout). Results go to --out
(default: outside the checkout, printed).

Reports, all measured in the same run so that ratios survive a noisy machine:
  (a) model-only images/s on pre-decoded, pre-processed tensors;
  (b) whole-pipeline images/s (discover, read, hash, decode, preprocess, embed, commit);
  (c) decode + preprocess ms per 12-megapixel JPEG, full decode vs our draft-mode path;
  (d) cold `photoseek search` wall time (process start to results) on a 10k-image catalog.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from photoseek.ingest.decode import decode_image
from photoseek.models import load_clip
from photoseek.store.catalog import Catalog, NewImage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import random_model_dir, shared_data, write_results  # noqa: E402
from measure import measured_run  # noqa: E402

COCO = shared_data("coco-mini")


def coco_files() -> list[Path]:
    files = sorted(COCO.rglob("*.jpg"))
    if not files:
        sys.exit(f"No COCO photos under {COCO}: this benchmark needs the shared data (set $PHOTOSEEK_SHARED_DATA).")
    return files


def model_only(model_dir: Path, files: list[Path], batch: int) -> float:
    """Images/s of the visual tower alone, on tensors prepared beforehand."""
    model = load_clip(path=model_dir)
    pixels = np.stack([model.preprocess(decode_image(f).image) for f in files])
    model.encode_pixels(pixels[:batch])
    started = time.perf_counter()
    for i in range(0, len(pixels), batch):
        model.encode_pixels(pixels[i : i + batch])
    return len(pixels) / (time.perf_counter() - started)


def pipeline(model_dir: Path, batch: int) -> tuple[float, int]:
    """Images/s of a full first index of the COCO folder into a fresh catalog."""
    from photoseek.api import ImageIndex

    with tempfile.TemporaryDirectory() as tmp, ImageIndex(Path(tmp) / "c.db", model_path=model_dir) as index:
        index.model.encode_pixels(np.zeros((1, 3, 224, 224), dtype=np.float32))
        report = index.index([COCO], batch_size=batch)
    return report.images_per_second, report.embedded


def twelve_megapixel_jpeg(files: list[Path], out: Path) -> Path:
    """A 4032x3024 mosaic of real photos: real high-frequency content, unlike an upscale."""
    canvas = Image.new("RGB", (4032, 3024))
    tiles = iter(files)
    for top in range(0, 3024, 432):
        for left in range(0, 4032, 576):
            canvas.paste(Image.open(next(tiles)).convert("RGB").resize((576, 432)), (left, top))
    canvas.save(out, quality=92)
    return out


def decode_cost(jpeg: Path, model_dir: Path, repeats: int = 15) -> tuple[float, float]:
    """Median ms for full decode + preprocess vs draft decode + preprocess, one thread."""
    model = load_clip(path=model_dir)
    data = jpeg.read_bytes()

    def full() -> None:
        model.preprocess(decode_image(data).image)

    def draft() -> None:
        model.preprocess(decode_image(data, min_side=2 * model.image_size).image)

    return _median_ms(full, repeats), _median_ms(draft, repeats)


def cold_search(model_dir: Path, images: int = 10_000, repeats: int = 5) -> dict[str, float]:
    """Wall time of `photoseek search` in a new process against a catalog of random vectors."""
    model = load_clip(path=model_dir)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "c.db"
        with Catalog(db) as catalog:
            catalog.bind_model(model.model_id, model.dim, source=str(model_dir.resolve()))
            vectors = rng.normal(size=(images, model.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            catalog.write_batch([
                NewImage(f"/photos/{i:05d}.jpg", 1, 1, f"{i:032x}", 640, 480, "jpeg", None, None, v)
                for i, v in enumerate(vectors)
            ])
        command = [sys.executable, "-m", "photoseek", "search", "two dogs on a beach", "--db", str(db), "--json"]
        baseline = [sys.executable, "-c", "pass"]
        timings = {"python_start_ms": _median_ms(lambda: subprocess.run(baseline, check=True), repeats)}
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        timings["first_search_ms"] = (time.perf_counter() - started) * 1000
        timings["cold_search_ms"] = _median_ms(
            lambda: subprocess.run(command, check=True, capture_output=True), repeats
        )
    return timings


def _median_ms(action, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", type=Path, help="JSON results file (default: index_bench.json in a per-user folder).")
    args = parser.parse_args()

    model_dir = random_model_dir()
    files = coco_files()
    results: dict[str, object] = {"cores": os.cpu_count(), "images": len(files), "batch": args.batch}
    results["model_only_img_s"] = round(model_only(model_dir, files, args.batch), 2)
    pipeline_rate, embedded = pipeline(model_dir, args.batch)
    results["pipeline_img_s"] = round(pipeline_rate, 2)
    results["pipeline_embedded"] = embedded
    results["pipeline_vs_model"] = round(pipeline_rate / results["model_only_img_s"], 3)
    with tempfile.TemporaryDirectory() as tmp:
        full_ms, draft_ms = decode_cost(twelve_megapixel_jpeg(files, Path(tmp) / "12mp.jpg"), model_dir)
    results["12mp_full_decode_preprocess_ms"] = round(full_ms, 1)
    results["12mp_draft_decode_preprocess_ms"] = round(draft_ms, 1)
    results.update({k: round(v, 1) for k, v in cold_search(model_dir).items()})
    write_results(results, args.out, "index_bench.json")


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
