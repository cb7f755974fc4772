"""Rendered training data with a learnable signal: counted coloured shapes and their captions."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (30, 60, 220)}
SHAPES = ("circle", "square")
COUNTS = {1: "one", 2: "two", 3: "three"}


def draw_shapes(path: Path, count: int, colour: str, shape: str, rng: np.random.Generator, side: int = 64) -> None:
    """``count`` shapes of one colour at random, non-overlapping places on a grey noisy background."""
    image = Image.fromarray(rng.integers(100, 156, size=(side, side, 3), dtype=np.uint8))
    draw = ImageDraw.Draw(image)
    cell = side // 3
    cells = rng.permutation(9)[:count]
    for c in cells:
        top, left = divmod(int(c), 3)
        x, y = left * cell + 2, top * cell + 2
        box = (x, y, x + cell - 4, y + cell - 4)
        (draw.ellipse if shape == "circle" else draw.rectangle)(box, fill=COLOURS[colour])
    image.save(path)


def write_shape_pairs(folder: Path, per_class: int, seed: int = 0) -> Path:
    """``per_class`` images of each (count, colour, shape), and ``pairs.csv`` naming them relative to ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for (count, word), colour, shape in itertools.product(COUNTS.items(), COLOURS, SHAPES):
        for i in range(per_class):
            name = f"img/{word}-{colour}-{shape}-{i}.png"
            (folder / name).parent.mkdir(exist_ok=True)
            draw_shapes(folder / name, count, colour, shape, rng)
            rows.append((name, f"{word} {colour} {shape}{'s' if count > 1 else ''}"))
    csv_path = folder / "pairs.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fp:
        writer = csv.writer(fp)
        writer.writerow(["file", "caption"])
        writer.writerows(rows)
    return csv_path
