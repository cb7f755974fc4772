"""The pairs file: one image and one caption per row, and the seeded held-out split.

Format (what ``photoseek caption DIR --out pairs.csv`` writes): a CSV with a header naming the
columns ``file`` and ``caption`` (other columns are ignored). An image may appear on several rows
with different captions. ``file`` is relative to ``--images DIR`` when given, else to the CSV's
folder; absolute paths are taken as they are.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from photoseek.errors import BadInput

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
    """All rows of ``csv_path``; raises ``PairsError`` naming missing images or when there are too few rows."""
    csv_path = Path(csv_path).expanduser()
    root = Path(images_dir).expanduser() if images_dir else csv_path.parent
    rows = _rows(csv_path)
    pairs = [Pair(name, root / Path(name).expanduser(), caption) for name, caption in rows]
    missing = sorted({str(p.path) for p in pairs if not p.path.is_file()})
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise PairsError(
            f"{len(missing)} image(s) named in {csv_path} do not exist: {shown}. "
            f"Paths are relative to {root}; fix the paths, pass --images DIR, or remove those rows."
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


def _rows(csv_path: Path) -> list[tuple[str, str]]:
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fp:
            reader = csv.DictReader(fp)
            columns = reader.fieldnames or []
            if not {"file", "caption"} <= set(columns):
                raise PairsError(
                    f"{csv_path} needs a header with the columns file,caption (found: {', '.join(columns) or 'none'})."
                )
            rows = [((r["file"] or "").strip(), " ".join((r["caption"] or "").split())) for r in reader]
    except OSError as exc:
        raise PairsError(f"Cannot read the pairs file {csv_path}: {exc}. Check the --pairs path.") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise PairsError(f"{csv_path} is not a UTF-8 CSV file: {exc}.") from exc
    return [(name, caption) for name, caption in rows if name and caption]
