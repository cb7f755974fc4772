"""INT8 vs FP32 image tower, in one run (issue 15). Run by hand:

    python bench/quantize_bench.py --images 96 --rounds 3 --out /tmp/quantize.json

Exports a full-size random-weight ViT-B-32 (or takes --model), writes its INT8 copy with
`photoseek models quantize`'s code, and then, interleaving the two so load hurts both alike:
model-only images/s on the COCO photos (pre-decoded tensors, batch 32), and the cosine between
the FP32 and INT8 embedding of every photo. Random weights make the cosine a weak proxy for
retrieval quality: real weights may be more or less sensitive to 8-bit rounding.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import coco_photos, results_dir  # noqa: E402
from measure import measured_run  # noqa: E402


def models(work: Path, given: Path | None) -> tuple[Path, Path]:
    from photoseek.models.quantize import quantize_model

    fp32 = given or work / "vit-b-32-random"
    if not (fp32 / "config.json").exists():
        from photoseek.models.export import export_open_clip

        export_open_clip("ViT-B-32", fp32, random_weights=True)
    int8 = work / f"{fp32.name}-int8"
    if not (int8 / "config.json").exists():
        quantize_model(fp32, int8)
    return fp32, int8


def rate(model, pixels: np.ndarray, batch: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(pixels), batch):
        model.encode_pixels(pixels[i : i + batch])
    return len(pixels) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=96, help="Photos timed per round.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--model", type=Path, help="FP32 model directory (default: a random ViT-B-32).")
    parser.add_argument("--work", type=Path, default=None, help="Models and photos (default: a per-user folder).")
    parser.add_argument("--out", type=Path, help="JSON file for the results (default: print only).")
    args = parser.parse_args()
    args.work = args.work or results_dir()

    from photoseek.ingest.decode import decode_image
    from photoseek.models import load_clip

    fp32_dir, int8_dir = models(args.work, args.model)
    fp32, int8 = load_clip(path=fp32_dir), load_clip(path=int8_dir)
    pixels = np.stack([fp32.preprocess(decode_image(f.read_bytes()).image) for f in coco_photos()])
    cosines = np.concatenate([
        np.sum(fp32.encode_pixels(pixels[i : i + 32]) * int8.encode_pixels(pixels[i : i + 32]), axis=1)
        for i in range(0, len(pixels), 32)
    ])
    timed = pixels[: args.images]
    rates: dict[str, list[float]] = {"fp32": [], "int8": []}
    load = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for name, model in (("fp32", fp32), ("int8", int8)):
            rates[name].append(rate(model, timed, args.batch))
            load.append(os.getloadavg()[0])
    fp32_rate, int8_rate = statistics.median(rates["fp32"]), statistics.median(rates["int8"])
    result = {
        "photos": len(pixels), "timed": len(timed),
        "fp32_images_per_s": round(fp32_rate, 2), "int8_images_per_s": round(int8_rate, 2),
        "speedup": round(int8_rate / fp32_rate, 3),
        "runs": {k: [round(v, 2) for v in vs] for k, vs in rates.items()},
        "cosine_min": round(float(cosines.min()), 5), "cosine_mean": round(float(cosines.mean()), 5),
        "visual_mb": {
            "fp32": round((fp32_dir / "visual/model.onnx").stat().st_size / 1e6, 1),
            "int8": round((int8_dir / "visual/model.onnx").stat().st_size / 1e6, 1),
        },
        "load_avg": [round(x, 2) for x in load],
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
