"""Near-duplicate recall per transformation on photos with plain skies (run by hand).

    python bench/near_sky_bench.py                 # 239 COCO photos + 239 synthetic plain-sky photos
    python bench/near_sky_bench.py --limit 60      # a quicker look

Two sets of originals: the shared COCO photos, and as many synthetic plain-sky photos (a COCO
photo mirrored, its top 25-50% replaced by a smooth, lightly noisy sky of one of six colours, and
two in five with a flat ground band at the bottom: the pictures a frame trimmer mistakes for
framed). Each original gets nine copies: 90-degree turn, 50% resize, JPEG q40, 5% crop (2.5% per
side), brightness +20% and -20%, grayscale, a watermark, and an 8-px white border. Every file goes
through the indexer's path (encoded, `decode_image` at a ViT-B/32 draft size, `perceptual_hash`),
then the near tier's grouping at the default threshold. Recall: the share of copies grouped with
their original, per transformation and set. Precision: of all pairs put in one group, the share
from one original (one wrong link merges two groups of ten: 100 wrong pairs). The same files are
hashed with the hash as it was before (version 1: every flat edge band trimmed, up to a fifth of
the side, no window) as the baseline, in the same run; each version at 9 and 10 bits (10 was
the default before, 9 is now).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

from photoseek.duplicates.components import component_labels
from photoseek.duplicates.finder import DEFAULT_NEAR_BITS
from photoseek.duplicates.near import near_pairs
from photoseek.imaging import hashing
from photoseek.ingest.decode import decode_image
from photoseek.ingest.indexer import DRAFT_FACTOR

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import coco_photos  # noqa: E402
from measure import measured_run  # noqa: E402

VIT_B32_SIDE = 224
SKIES = [((110, 160, 230), (175, 210, 245)), ((200, 200, 205), (206, 206, 210)), ((236, 238, 241), (242, 243, 245)),
         ((120, 130, 190), (250, 185, 125)), ((60, 90, 160), (120, 160, 215)), ((150, 155, 160), (175, 178, 182))]
GROUNDS = [(200, 185, 150), (236, 236, 240), (90, 90, 95), (80, 120, 60)]


def _crop(image: Image.Image, share: float) -> Image.Image:
    w, h = image.size
    dx, dy = round(w * share / 2), round(h * share / 2)
    return image.crop((dx, dy, w - dx, h - dy))


def _watermark(image: Image.Image) -> Image.Image:
    """A semi-transparent copyright line in the lower right corner, as photo sites stamp them."""
    marked = image.convert("RGBA")
    layer = Image.new("RGBA", marked.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = ImageFont.load_default(size=max(12, image.height // 16))
    text = "(c) 2024 photoseek"
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    at = (image.width - (right - left) - image.width // 30, image.height - (bottom - top) - image.height // 20)
    draw.text(at, text, font=font, fill=(255, 255, 255, 140))
    return Image.alpha_composite(marked, layer).convert("RGB")


TRANSFORMS: dict[str, Callable[[Image.Image], tuple[Image.Image, dict]]] = {
    "rotate 90": lambda im: (im.transpose(Image.Transpose.ROTATE_270), {"quality": 90}),
    "resize 50%": lambda im: (im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS), {"quality": 90}),
    "JPEG q40": lambda im: (im, {"quality": 40}),
    "crop 5%": lambda im: (_crop(im, 0.05), {"quality": 90}),
    "brightness +20%": lambda im: (ImageEnhance.Brightness(im).enhance(1.2), {"quality": 90}),
    "brightness -20%": lambda im: (ImageEnhance.Brightness(im).enhance(0.8), {"quality": 90}),
    "grayscale": lambda im: (ImageOps.grayscale(im), {"quality": 90}),
    "watermark": lambda im: (_watermark(im), {"quality": 90}),
    "border 8 px": lambda im: (ImageOps.expand(im, 8, fill=(255, 255, 255)), {"quality": 90}),
}


def plain_sky(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A mirrored photo under a plain sky (and sometimes over a flat ground)."""
    pixels = np.asarray(ImageOps.mirror(photo), dtype=np.float32).copy()
    height, width, _ = pixels.shape
    horizon = int(height * rng.uniform(0.25, 0.5))
    high, low = (np.array(c, dtype=np.float32) for c in SKIES[rng.integers(len(SKIES))])
    blend = np.linspace(0, 1, horizon, dtype=np.float32)[:, None, None]
    pixels[:horizon] = high * (1 - blend) + low * blend + rng.normal(0, 1.0, (horizon, width, 3))
    if rng.random() < 0.4:
        ground = int(height * rng.uniform(0.12, 0.22))
        colour = np.array(GROUNDS[rng.integers(len(GROUNDS))], dtype=np.float32)
        pixels[height - ground:] = colour + rng.normal(0, 1.5, (ground, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _jpeg(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def build(limit: int | None, seed: int) -> list[tuple[bytes, int, str, str]]:
    """(encoded file, original number, set, transformation or 'original') for every file."""
    rng = np.random.default_rng(seed)
    photos = coco_photos()[:limit]
    files = []
    for number, path in enumerate(photos):
        with Image.open(path) as opened:
            photo = ImageOps.exif_transpose(opened).convert("RGB")
        photo.thumbnail((640, 640))
        for offset, (kind, original) in enumerate((("COCO", photo), ("plain sky", plain_sky(photo, rng)))):
            source = 2 * number + offset
            encoded = _jpeg(original, quality=95)
            files.append((encoded, source, kind, "original"))
            with Image.open(io.BytesIO(encoded)) as saved:
                saved = saved.convert("RGB")
            for name, make in TRANSFORMS.items():
                copy, options = make(saved)
                files.append((_jpeg(copy, **options), source, kind, name))
    return files


def _old_frame_widths(values: np.ndarray) -> tuple[int, int, int, int]:
    """The trimmer before: every flat band along an edge, up to a fifth of the side."""
    def flat(rows: np.ndarray) -> int:
        reference, limit = float(rows[0].mean()), len(rows) // 5
        for count, row in enumerate(rows[:limit]):
            if row.std() >= 4.0 or abs(float(row.mean()) - reference) >= 6.0:
                return count
        return limit
    return flat(values), flat(values[::-1]), flat(values.T), flat(values.T[::-1])


def old_hash(image: Image.Image) -> int:
    """The hash before (version 1): that trimmer, then the plain 8x8 low DCT signs of 32x32 grey."""
    grey = image.convert("L")
    grey.thumbnail((256, 256), Image.Resampling.BILINEAR, reducing_gap=2.0)
    top, bottom, left, right = _old_frame_widths(np.asarray(grey, dtype=np.float32))
    small = grey.crop((left, top, grey.width - right, grey.height - bottom)).resize((32, 32), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.float64)
    bits = hashing._DCT_LOW @ pixels @ hashing._DCT_LOW.T > 0
    bits[0, 0] = pixels.mean() > 127.5
    return int(hashing._pack(bits[None])[0])


def evaluate(hashes: np.ndarray, files: list[tuple[bytes, int, str, str]], threshold: int) -> dict[str, object]:
    pairs = near_pairs(hashes, threshold)
    labels = component_labels(len(files), pairs)
    sources = np.array([f[1] for f in files])
    wrong = [(files[a][2:], files[b][2:]) for a, b in pairs.tolist() if sources[a] != sources[b]]
    same_group = labels[:, None] == labels[None, :]
    np.fill_diagonal(same_group, False)
    predicted = int(same_group.sum()) // 2
    correct = int((same_group & (sources[:, None] == sources[None, :])).sum()) // 2
    original_at = {f[1]: i for i, f in enumerate(files) if f[3] == "original"}
    recall = {}
    for kind in ("COCO", "plain sky"):
        for name in TRANSFORMS:
            rows = [i for i, f in enumerate(files) if f[2] == kind and f[3] == name]
            recall[f"{kind}: {name}"] = float(np.mean([labels[i] == labels[original_at[files[i][1]]] for i in rows]))
    return {"precision": correct / predicted if predicted else 1.0, "pairs_in_groups": predicted,
            "false_pairs": predicted - correct, "false_links": wrong, "recall": recall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="Use only the first N COCO photos.")
    parser.add_argument("--threshold", type=int, default=DEFAULT_NEAR_BITS, help="For version 2 (the default's).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    load_before, started, cpu = os.getloadavg(), time.perf_counter(), time.process_time()
    files = build(args.limit, args.seed)
    images = [decode_image(data, min_side=DRAFT_FACTOR * VIT_B32_SIDE).image for data, *_ in files]
    rows = {}
    methods = [("version 1 (before), 10 bits", old_hash, 10), ("version 1 (before), 9 bits", old_hash, 9),
               (f"version 2 (now), {args.threshold} bits", hashing.perceptual_hash, args.threshold),
               ("version 2 (now), 10 bits", hashing.perceptual_hash, 10)]
    by_function = {}
    for method, hash_of, threshold in methods:
        if hash_of not in by_function:
            by_function[hash_of] = np.array([hash_of(im) for im in images], dtype=np.uint64)
        rows[method] = evaluate(by_function[hash_of], files, threshold)
    print(json.dumps({"files": len(files), "threshold": args.threshold, "seconds": round(time.perf_counter() - started),
                      "cpu_seconds": round(time.process_time() - cpu), "load_avg_before": load_before,
                      "load_avg_after": os.getloadavg()}))
    methods = list(rows)
    print("| transformation | " + " | ".join(methods) + " |")
    print("|---|" + "---:|" * len(methods))
    for key in rows[methods[0]]["recall"]:
        print(f"| {key} | " + " | ".join(f"{rows[m]['recall'][key]:.3f}" for m in methods) + " |")
    print("| precision (false pairs) | " + " | ".join(
        f"{rows[m]['precision']:.4f} ({rows[m]['false_pairs']})" for m in methods) + " |")
    for method in methods:
        print(f"{method}: {len(rows[method]['false_links'])} links between different photos "
              f"(set, transformation): {rows[method]['false_links'][:12]}")


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
