"""Thread settings for indexing 12-megapixel JPEGs, compared in one run (issue 15). Run by hand:

    python bench/threads_bench.py --images 48 --rounds 3 --out /tmp/threads.json

Builds a folder of 4032x3024 JPEG mosaics of the COCO photos (real high-frequency content) and a
full-size random-weight ViT-B-32, then indexes the folder into a fresh catalog once per setting:
ONNX Runtime's thread spinning on/off times decode-pool sizes. Settings run interleaved, each in
its own process, `--rounds` times, so a noisy machine hurts every setting alike; the table gives
the median images/s per setting and its ratio to the default. Everything is written under --work
(default: a folder in the user's cache, outside the checkout).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import coco_photos, results_dir  # noqa: E402
from measure import measured_run  # noqa: E402


def mosaic_folder(work: Path, count: int) -> Path:
    """`count` distinct 12 MP JPEG mosaics (each starts at another photo)."""
    folder = work / f"mosaics-{count}"
    if len(list(folder.glob("*.jpg"))) == count:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    photos = coco_photos()
    tiles = [Image.open(p).convert("RGB").resize((576, 432)) for p in photos[:49]]
    for n in range(count):
        canvas = Image.new("RGB", (4032, 3024))
        for i in range(49):
            canvas.paste(tiles[(i + n) % len(tiles)], ((i % 7) * 576, (i // 7) * 432))
        canvas.save(folder / f"mosaic-{n:03d}.jpg", quality=92)
    return folder


def model_dir(work: Path) -> Path:
    path = work / "vit-b-32-random"
    if not (path / "config.json").exists():
        from photoseek.models.export import export_open_clip

        export_open_clip("ViT-B-32", path, random_weights=True)
    return path


def index_once(folder: Path, model: Path, workers: int) -> float:
    """Images/s of a first index of `folder` into a fresh catalog (model loaded beforehand)."""
    from photoseek.ingest.indexer import index_folders
    from photoseek.models import load_clip
    from photoseek.store.catalog import Catalog

    clip = load_clip(path=model)
    clip.encode_pixels(clip.preprocess(Image.new("RGB", (224, 224)))[None])
    with tempfile.TemporaryDirectory() as tmp, Catalog(Path(tmp) / "c.db") as catalog:
        started = time.perf_counter()
        report = index_folders(catalog, clip, [folder], workers=workers)
        return report.embedded / (time.perf_counter() - started)


def run_setting(folder: Path, model: Path, workers: int, spin: bool) -> float:
    env = {**os.environ, "PHOTOSEEK_ORT_SPIN": "1" if spin else "0"}
    command = [sys.executable, __file__, "--one", str(workers), "--folder", str(folder), "--model", str(model)]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--work", type=Path, default=None, help="Models and photos (default: a per-user folder).")
    parser.add_argument("--out", type=Path, help="JSON file for the results (default: print only).")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work = args.work or results_dir()
    if args.one is not None:
        print(index_once(args.folder, args.model, args.one))
        return

    from photoseek.threads import usable_cpus

    folder, model = mosaic_folder(args.work, args.images), model_dir(args.work)
    settings = [(w, spin) for spin in (False, True) for w in args.workers]
    rates: dict[tuple[int, bool], list[float]] = {s: [] for s in settings}
    load = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for workers, spin in settings:
            rates[(workers, spin)].append(run_setting(folder, model, workers, spin))
            load.append(os.getloadavg()[0])
    default = statistics.median(rates[(usable_cpus(), False)]) if (usable_cpus(), False) in rates else None
    rows = []
    for (workers, spin), values in rates.items():
        median = statistics.median(values)
        rows.append({
            "decode_workers": workers, "ort_spinning": spin, "images_per_s": round(median, 2),
            "runs": [round(v, 2) for v in values],
            "vs_default": round(median / default, 3) if default else None,
        })
        print(f"workers={workers} spin={'on ' if spin else 'off'} {median:6.2f} img/s  runs={rows[-1]['runs']}")
    result = {"cpus": usable_cpus(), "images": args.images, "load_avg": [round(x, 2) for x in load], "rows": rows}
    print(f"usable cpus {usable_cpus()}, load average {min(load):.1f}-{max(load):.1f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
