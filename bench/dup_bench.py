"""Near-duplicate benchmark (run by hand): precision and recall per transformation, and speed.

    python bench/dup_bench.py                       # transformed COCO copies + 100k/250k synthetic
    python bench/dup_bench.py --skip-quality --synthetic 1000000   # the 1M timing
    python bench/dup_bench.py --skip-quality --search exact         # force one near-pair search

Builds a duplicate set in a temporary folder (outside the checkout) from the shared COCO photos:
the first --with-copies photos each get ten copies (50% resize, JPEG q40, PNG, WebP, HEIC, 5% crop,
10% brighter, 8-px white border, 90-degree turn written as pixels, and the same turn stored as an
EXIF orientation flag over sideways pixels), the rest stay single as distractors; two harder crops
(5% off one corner, 5% off every side) are reported apart, outside the goal. Every file is hashed
through the indexer's own path (`decode_image` at the draft size a ViT-B/32 index uses, then
`perceptual_hash`), grouped by the near tier (`near_pairs` + connected components), and compared
with imagehash's pHash and dHash on the same decoded upright pictures at the same thresholds.
Precision: of all pairs of images put in one group, the share that come from one photo. Recall per
transformation: the share of copies grouped with their original.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from photoseek.duplicates.components import component_labels
from photoseek.duplicates.near import near_pairs
from photoseek.imaging.hashing import perceptual_hash
from photoseek.ingest.decode import decode_image
from photoseek.ingest.indexer import DRAFT_FACTOR

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import shared_data  # noqa: E402
from measure import measured_run  # noqa: E402

VIT_B32_SIDE = 224


def _crop(image: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    w, h = image.size
    return image.crop((round(w * left), round(h * top), w - round(w * right), h - round(h * bottom)))


def _exif_turned(image: Image.Image) -> tuple[Image.Image, str, dict]:
    """Sideways pixels plus the orientation flag that shows them upright (a phone photo)."""
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    return image.transpose(Image.Transpose.ROTATE_90), "JPEG", {"quality": 90, "exif": exif.tobytes()}


TRANSFORMS: dict[str, Callable[[Image.Image], tuple[Image.Image, str, dict]]] = {
    "resize 50%": lambda im: (
        im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS), "JPEG", {"quality": 90}
    ),
    "JPEG q40": lambda im: (im, "JPEG", {"quality": 40}),
    "PNG": lambda im: (im, "PNG", {}),
    "WebP": lambda im: (im, "WEBP", {"quality": 80}),
    "HEIC": lambda im: (im, "HEIF", {"quality": 80}),
    "crop 5%": lambda im: (_crop(im, 0.025, 0.025, 0.025, 0.025), "JPEG", {"quality": 90}),
    "brightness +10%": lambda im: (ImageEnhance.Brightness(im).enhance(1.1), "JPEG", {"quality": 90}),
    "border 8 px": lambda im: (ImageOps.expand(im, 8, fill=(255, 255, 255)), "JPEG", {"quality": 90}),
    "rotate 90 (pixels)": lambda im: (im.transpose(Image.Transpose.ROTATE_270), "JPEG", {"quality": 90}),
    "rotate 90 (EXIF flag)": _exif_turned,
}
HARDER = {
    "crop 5% one corner*": lambda im: (_crop(im, 0, 0, 0.05, 0.05), "JPEG", {"quality": 90}),
    "crop 5% every side*": lambda im: (_crop(im, 0.05, 0.05, 0.05, 0.05), "JPEG", {"quality": 90}),
}
SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "HEIF": ".heic"}


def build_set(photos: list[Path], with_copies: int, out: Path) -> list[tuple[Path, int, str]]:
    """(file, source photo number, transformation or 'original') for every file written."""
    files = []
    for number, photo in enumerate(photos):
        with Image.open(photo) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
        original = out / f"{number:04d}-original.jpg"
        image.save(original, quality=95)
        files.append((original, number, "original"))
        if number >= with_copies:
            continue
        for name, make in {**TRANSFORMS, **HARDER}.items():
            copy, fmt, options = make(image)
            path = out / f"{number:04d}-{name.replace(' ', '_').replace('%', 'pc').replace('*', '')}{SUFFIX[fmt]}"
            copy.save(path, fmt, **options)
            files.append((path, number, name))
    return files


def upright(path: Path) -> Image.Image:
    """The picture the indexer hashes: decoded at the draft size a ViT-B/32 index asks for."""
    return decode_image(path.read_bytes(), min_side=DRAFT_FACTOR * VIT_B32_SIDE).image


def evaluate(hashes: np.ndarray, files: list[tuple[Path, int, str]], threshold: int, rotated: bool,
             transforms: list[str]) -> dict[str, object]:
    if rotated:
        pairs = near_pairs(hashes, threshold)
    else:  # baselines: all pairs (fine at this size), no rotation handling
        upper = np.triu(np.bitwise_count(hashes[:, None] ^ hashes[None, :]) <= threshold, 1)
        pairs = np.argwhere(upper)
    labels = component_labels(len(files), pairs)
    sources = np.array([f[1] for f in files])
    same_group = labels[:, None] == labels[None, :]
    np.fill_diagonal(same_group, False)
    predicted = int(same_group.sum()) // 2
    correct = int((same_group & (sources[:, None] == sources[None, :])).sum()) // 2
    original_at = {f[1]: i for i, f in enumerate(files) if f[2] == "original"}
    recall = {}
    for name in transforms:
        rows = [i for i, f in enumerate(files) if f[2] == name]
        recall[name] = float(np.mean([labels[i] == labels[original_at[files[i][1]]] for i in rows]))
    return {"precision": correct / predicted if predicted else 1.0, "pairs_in_groups": predicted, "recall": recall}


def quality(args: argparse.Namespace) -> list[dict[str, object]]:
    import imagehash

    photos = sorted(shared_data("coco-mini").rglob("*.jpg"))
    with tempfile.TemporaryDirectory(prefix="dup-bench-") as tmp:
        started = time.perf_counter()
        files = build_set(photos, args.with_copies, Path(tmp))
        seconds = time.perf_counter() - started
        print(f"built {len(files)} files from {len(photos)} photos in {seconds:.0f} s", file=sys.stderr)
        images = [upright(path) for path, _, _ in files]
    started = time.perf_counter()
    ours = np.array([perceptual_hash(im) for im in images], dtype=np.uint64)
    per_image_ms = (time.perf_counter() - started) / len(images) * 1000
    baselines = {
        "imagehash pHash": np.array([int(str(imagehash.phash(im)), 16) for im in images], dtype=np.uint64),
        "imagehash dHash": np.array([int(str(imagehash.dhash(im)), 16) for im in images], dtype=np.uint64),
    }
    transforms = [*TRANSFORMS, *HARDER]
    rows = []
    for threshold in args.thresholds:
        rows.append({"method": "photoseek near", "threshold": threshold,
                     **evaluate(ours, files, threshold, True, transforms)})
        for name, hashes in baselines.items():
            scores = evaluate(hashes, files, threshold, False, transforms)
            rows.append({"method": name, "threshold": threshold, **scores})
    print(json.dumps({"files": len(files), "hash_ms_per_image": round(per_image_ms, 2)}))
    return rows


def synthetic(n: int, threshold: int, search: str = "auto", seed: int = 0) -> dict[str, object]:
    """Random hashes with 1% planted copies, spread evenly over 0..threshold bits from their original
    and a quarter of them turned (90, 180 or 270 degrees); recall is reported per planted distance."""
    from photoseek.duplicates.bit_sampling import plan
    from photoseek.duplicates.near import use_exact
    from photoseek.imaging.hashing import rotations

    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    planted = n // 100
    rows = rng.permutation(n)
    sources, targets = rows[:planted], rows[planted : 2 * planted]
    distances = np.arange(planted) % (threshold + 1)
    flips = np.zeros(planted, dtype=np.uint64)
    for row in range(planted):
        flips[row] = sum(1 << int(bit) for bit in rng.choice(64, distances[row], replace=False))
    turns = np.where(rng.random(planted) < 0.25, rng.integers(1, 4, planted), 0)
    turned = rotations(hashes[sources])
    copies = np.choose(turns, turned) ^ flips
    hashes[targets] = copies
    exact = {"auto": None, "exact": True, "sampled": False}[search]
    chose_exact = use_exact(n, threshold) if exact is None else exact
    load_before = os.getloadavg()
    started, cpu = time.perf_counter(), time.process_time()
    pairs = near_pairs(hashes, threshold, exact=exact)
    labels = component_labels(n, pairs)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    low, high = np.minimum(sources, targets), np.maximum(sources, targets)
    found_pairs = set((pairs[:, 0] * n + pairs[:, 1]).tolist())
    pair_found = np.array([int(a) * n + int(b) in found_pairs for a, b in zip(low, high)])
    by_distance = {int(d): round(float(pair_found[distances == d].mean()), 4) for d in range(threshold + 1)}
    return {
        "n": n,
        "threshold": threshold,
        "search": "exact" if chose_exact else f"sampled {plan(n, threshold, 3)}",
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "pairs": len(pairs),
        "planted_found": float(np.mean(labels[sources] == labels[targets])),
        "planted_pair_recall_by_distance": by_distance,
        "load_avg_before": load_before,
        "load_avg": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--with-copies", type=int, default=120, help="Photos given copies; others are distractors.")
    parser.add_argument("--thresholds", type=int, nargs="+", default=[6, 8, 10, 12])
    parser.add_argument("--synthetic", type=int, nargs="*", default=[100_000, 250_000])
    parser.add_argument("--synthetic-threshold", type=int, default=10)
    parser.add_argument("--search", choices=["auto", "exact", "sampled"], default="auto",
                        help="Near-pair search for the synthetic timing: picked by size (auto) or forced.")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    print(json.dumps({"event": "start", "load_avg": os.getloadavg()}))
    if not args.skip_quality:
        for row in quality(args):
            print(json.dumps(row))
    for n in args.synthetic:
        print(json.dumps(synthetic(n, args.synthetic_threshold, args.search)), flush=True)
    print(json.dumps({"event": "end", "load_avg": os.getloadavg()}))


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
