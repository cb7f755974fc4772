"""The pairs file: images and their captions, and the seeded held-out split.

Any caption file `import-captions` and `eval` read (`photoseek.text.caption_files`, one reader, so
formats and errors are the same): most often CSV or TSV rows with a header naming the columns
``file,caption`` (what ``photoseek caption DIR --out pairs.csv`` writes) or ``image,caption``. An
image may have several captions. Image names are relative to ``--images DIR`` when given, else to
the file's folder; absolute paths are taken as they are.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from photoseek.errors import BadInput
from photoseek.text.caption_files import load_dataset

MIN_PAIRS = 8
"""Fewer rows than this cannot fill a training batch and a held-out split."""


class PairsError(BadInput):
    """The pairs file cannot be used for training; the message says why and what to do."""


@dataclass(frozen=True)
class Pair:
    name: str
    """The image as the CSV names it (the key for evaluation and the split)."""
    path: Path
    caption: str


def read_pairs(csv_path: str | Path, images_dir: str | Path | None = None, *, min_pairs: int = MIN_PAIRS) -> list[Pair]:
    """Every (image, caption) of the file ``csv_path``; raises ``PairsError`` naming missing images or
    when there are too few pairs (and the caption reader's errors for a file it cannot read)."""
    csv_path = Path(csv_path).expanduser()
    root = Path(images_dir).expanduser() if images_dir else csv_path.parent
    dataset = load_dataset(csv_path, flag="--pairs")
    pairs = [
        Pair(name, root / Path(name).expanduser(), caption)
        for name, captions in zip(dataset.images, dataset.captions, strict=True)
        for caption in captions
    ]
    missing = sorted({str(p.path) for p in pairs if not p.path.is_file()})
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        header = str(pairs[0].path) in missing and " If the first row is a header, name its columns file,caption."
        raise PairsError(
            f"{len(missing)} image(s) named in {csv_path} do not exist: {shown}. "
            f"Paths are relative to {root}; fix the paths, pass --images DIR, or remove those rows.{header or ''}"
        )
    if len(pairs) < min_pairs:
        raise PairsError(
            f"{csv_path} has {len(pairs)} usable row(s); fine-tuning needs at least {min_pairs} "
            "image-caption pairs (a few hundred or more to learn anything useful)."
        )
    return pairs


def split_pairs(pairs: list[Pair], holdout: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(train, held-out), split by image so no held-out image is ever trained on; seeded."""
    if not 0 <= holdout < 1:
        raise PairsError(f"--holdout must be in [0, 1), got {holdout}.")
    names = sorted({p.name for p in pairs})
    random.Random(seed).shuffle(names)
    count = round(len(names) * holdout)
    if holdout > 0 and (count < 2 or count >= len(names)):
        raise PairsError(
            f"A held-out share of {holdout} of {len(names)} images leaves {count} for evaluation and "
            f"{len(names) - count} for training; both need at least 2. Add pairs or change --holdout."
        )
    held = set(names[:count])
    return [p for p in pairs if p.name not in held], [p for p in pairs if p.name in held]
