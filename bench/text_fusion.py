"""Fusion benchmark: text, keyword, hybrid and clip-hybrid on three query sets, and the calibration fit.

Documents: the 239 coco-mini photos with caption 1 as note; for scale, captions of other COCO
val2017 images as notes on generated placeholder images, so the text side runs at 5,000 documents.
A quarter of all images also carry a made-up tag a person would give ("Grandma Rosa 12").
Query sets (all about the coco-mini photos, or, for names, every tagged image):
  paraphrase  captions 2-5;
  short       one to three content words of caption 2 ("dog sofa");
  names       the distinctive words of the tag ("Rosa 12").
CLIP is a tiny random-weight model (no real weights here), so "hybrid" is text + keyword
(clip weight 0) and clip-hybrid measures only the plumbing; see docs/benchmarks.md.

    PYTHONPATH=src python bench/text_fusion.py --work /tmp/fusion-bench            # recall tables
    PYTHONPATH=src python bench/text_fusion.py --work /tmp/fusion-bench --fit      # + the library's own fit
    PYTHONPATH=src python bench/text_fusion.py --work /tmp/fusion-bench --timing   # + 4,000-query speed
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from photoseek import ImageIndex
from photoseek.store.text import STOP_WORDS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import shared_data  # noqa: E402
from measure import measured_run  # noqa: E402

DATA = shared_data()
TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 48, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
MODES = {"text": None, "keyword": None, "hybrid": {"clip": 0.0}, "clip-hybrid": None}
GIVEN = "Rosa Miguel Ingrid Tomasz Aiko Kwame Lucia Henrik Priya Dmitri Amara Yusuf Sofia Bjorn Leila Mateo".split()
PLACES = "Porto Tromso Valparaiso Ljubljana Oaxaca Tbilisi Hobart Zanzibar Cusco Bergen Matera Hoi".split()
PATTERNS = ("Grandma {given} {n}", "trip to {place} day {n}", "{given} at {place} {n}", "{given} birthday {year}")
_PATTERN_WORDS = {"Grandma", "trip", "day", "birthday"}
"""Words every tag of a pattern shares; the queries use only the distinctive ones ("Rosa 12")."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="folder for models, images and catalogs")
    parser.add_argument("--sizes", type=int, nargs="*", default=[239, 5000], help="catalog sizes (none: only --timing)")
    parser.add_argument("--fit", action="store_true", help="fit the text and keyword calibrations (239 docs)")
    parser.add_argument("--timing", action="store_true", help="4,000 queries on 1,000 images: text vs hybrid")
    args = parser.parse_args()
    coco = json.loads((DATA / "coco-mini" / "captions_by_file.json").read_text())
    others = _other_captions(coco)
    model = _tiny_clip(args.work)
    for size in args.sizes:
        index, truth = _catalog(args.work, model, coco, others, size)
        with index:
            sets = _query_sets(index, coco, truth)
            if args.fit and size == min(args.sizes):
                _fit(index, sets)
            print(f"\n{size} documents (load average {os.getloadavg()[0]:.1f})")
            print("| set | queries | " + " | ".join(f"{m} R@1 | {m} R@10" for m in MODES) + " |")
            for name, (queries, wanted) in sets.items():
                cells = [_recall(index, queries, wanted, mode, weights) for mode, weights in MODES.items()]
                print(f"| {name} | {len(queries)} | " + " | ".join(f"{r1:.1f} | {r10:.1f}" for r1, r10 in cells) + " |")
    if args.timing:
        _timing(args.work, model, coco, others)


def _other_captions(coco: dict[str, list[str]]) -> list[list[str]]:
    """Captions of COCO val2017 images that are not coco-mini photos, grouped per image."""
    mini = {int(Path(f).stem) for f in coco}
    data = json.loads((DATA / "coco-captions" / "captions_val2017.json").read_text())
    grouped: dict[int, list[str]] = {}
    for row in data["annotations"]:
        if row["image_id"] not in mini:
            grouped.setdefault(row["image_id"], []).append(row["caption"].strip())
    return [grouped[i] for i in sorted(grouped)]


def _tiny_clip(work: Path) -> Path:
    out = work / "tiny-clip"
    if not out.exists():
        from photoseek.models.export import export_open_clip

        config = work / "photoseek-bench-clip.json"
        work.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps(TINY_CLIP))
        export_open_clip("photoseek-bench-clip", out, random_weights=True, arch_config=config, seed=0)
    return out


def _catalog(
    work: Path, model: Path, coco: dict[str, list[str]], others: list[list[str]], size: int
) -> tuple[ImageIndex, dict[int, int]]:
    """A catalog of coco-mini plus placeholders up to `size` images, with notes and tags; and
    image id -> position (coco-mini files first, then placeholders)."""
    db = work / f"fusion-{size}.db"
    placeholders = _placeholders(work, size - len(coco))
    fresh = not db.exists()
    index = ImageIndex(db, model_path=model)
    if fresh:
        index.index([DATA / "coco-mini", *([placeholders] if size > len(coco) else [])])
    files = [DATA / "coco-mini" / f for f in sorted(coco)] + sorted(placeholders.glob("*.png"))[: size - len(coco)]
    records = [index.find(f) for f in files]
    notes = [coco[f][0] for f in sorted(coco)]
    notes += [captions[0] for captions in others[: size - len(coco)]]
    if fresh:
        index.describe_many([(r.id, n) for r, n in zip(records, notes)])
        for i, r in enumerate(records):
            if i % 4 == 0:
                index.tag(r.id, [_tag(i)])
    return index, {r.id: i for i, r in enumerate(records)}


def _placeholders(work: Path, count: int) -> Path:
    """Distinct small noise images (distinct content, so each keeps its own note)."""
    folder = work / f"placeholders-{count}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(max(count, 0)):
        path = folder / f"placeholder-{i:05d}.png"
        pixels = rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
        if not path.exists():
            Image.fromarray(pixels).save(path)
    return folder


def _tag(position: int) -> str:
    rng = np.random.default_rng(position)
    pattern = PATTERNS[position // 4 % len(PATTERNS)]
    return pattern.format(given=rng.choice(GIVEN), place=rng.choice(PLACES), n=int(rng.integers(1, 60)),
                          year=int(rng.integers(1990, 2025)))


def _query_sets(index: ImageIndex, coco: dict[str, list[str]], truth: dict[int, int]) -> dict[str, tuple]:
    mini = len(coco)
    captions = [coco[f] for f in sorted(coco)]
    paraphrase = [(q, i) for i in range(mini) for q in captions[i][1:5]]
    rng = np.random.default_rng(1)
    short = []
    for i in range(mini):
        words = [w.strip(".,").lower() for w in captions[i][1].split()]
        content = list(dict.fromkeys(w for w in words if w.isalpha() and w not in STOP_WORDS and len(w) > 2))
        short.append((" ".join(content[: int(rng.integers(1, 4))]), i))
    names = []
    for position in sorted(p for p in truth.values() if p % 4 == 0):
        words = [w for w in _tag(position).split() if w.lower() not in STOP_WORDS and w not in _PATTERN_WORDS]
        names.append((" ".join(words), position))
    return {name: ([q for q, _ in rows], np.array([i for _, i in rows])) for name, rows in
            (("paraphrase", paraphrase), ("short", short), ("names", names))}


def _recall(index: ImageIndex, queries: list[str], wanted: np.ndarray, mode: str, weights) -> tuple[float, float]:
    truth = _positions(index)
    found = index.search_many(queries, k=10, min_score=0.0, mode=mode, weights=weights)
    ranks = [[truth.get(r.id, -1) for r in results] for results in found]
    r1 = np.mean([row[:1] == [w] for row, w in zip(ranks, wanted)])
    r10 = np.mean([w in row for row, w in zip(ranks, wanted)])
    return 100 * float(r1), 100 * float(r10)


_POSITIONS: dict[str, dict[int, int]] = {}


def _positions(index: ImageIndex) -> dict[int, int]:
    """image id -> position, as `_catalog` numbered them (coco-mini first, then placeholders)."""
    key = str(index.db_path)
    if key not in _POSITIONS:
        everything = index.browse(sort="name", limit=index.count()).entries
        paths = sorted(((e.record.id, e.record.path) for e in everything), key=_order)
        _POSITIONS[key] = {image_id: i for i, (image_id, _) in enumerate(paths)}
    return _POSITIONS[key]


def _order(row: tuple[int, str]) -> tuple[int, str]:
    path = Path(row[1])
    return (1, path.name) if path.name.startswith("placeholder-") else (0, f"{path.parent.name}/{path.name}")


def _fit(index: ImageIndex, sets: dict[str, tuple]) -> None:
    """The curves the library fits on itself (`photoseek calibrate`): nothing is copied into source files."""
    # White-box: the bench prints each curve's parameters, which `calibrate()` only puts in words.
    for name, curve in index._hybrid.curves(("clip", "text"), refit=True).items():
        print(f"calibration {name}: {curve.describe()}; centre={curve.centre:.3f} scale={curve.scale:.2f}")


def _timing(work: Path, model: Path, coco: dict[str, list[str]], others: list[list[str]]) -> None:
    """Text vs hybrid mode on 4,000 queries through `search_many`, alternated, best of two. Each round
    has captions of its own: the text model remembers recent queries, which would flatter a rerun."""
    index, _ = _catalog(work, model, coco, others, 1000)
    rounds = [[c[n] for c in others if len(c) > 4][:4000] for n in (1, 2, 3, 4)]
    with index:
        index.search_many([c[0] for c in others][:50], k=10, mode="hybrid")  # models loaded, matrix built
        seconds = {"text": np.inf, "hybrid": np.inf}
        for mode, queries in zip(("text", "hybrid") * 2, rounds):
            start = time.perf_counter()
            index.search_many(queries, k=10, mode=mode)
            seconds[mode] = min(seconds[mode], time.perf_counter() - start)
    print(f"\n4,000 queries on 1,000 images (load average {os.getloadavg()[0]:.1f}): "
          f"text {seconds['text']:.1f} s, hybrid {seconds['hybrid']:.1f} s, "
          f"ratio {seconds['hybrid'] / seconds['text']:.2f}")


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
