"""The evaluation's only calls into the text-signal API: notes and the non-CLIP search modes.

Kept in one place so that the harness works with the CLIP-only core and picks up
`ImageIndex.describe` and `ImageIndex.search(..., mode=...)` where they exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from imgsearch.api import ImageIndex
from imgsearch.errors import ImgsearchError

TEXT_MODES = ("text", "keyword", "hybrid")


def open_index(
    db: Path, *, model: str | None, model_path: Path | None, text_model: str | None
) -> ImageIndex:
    """An `ImageIndex` on `db`; the text model is passed only when one was asked for."""
    extra = {"text_model": text_model} if text_model else {}
    return ImageIndex(db, model=model, model_path=model_path, **extra)


def has_text_signals() -> bool:
    return hasattr(ImageIndex, "describe")


def describe_all(index: ImageIndex, notes: Mapping[Path, str]) -> None:
    """Give each image its note (the oracle captions)."""
    _require_text_signals()
    for path, text in notes.items():
        index.describe(path, text)  # type: ignore[attr-defined]


def search_all(index: ImageIndex, text: str, mode: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, scores) of the top `k` images for `text` in a text-signal mode, best first."""
    _require_text_signals()
    hits = index.search(text, k=k, mode=mode)  # type: ignore[call-arg]
    ids = np.fromiter((h.id for h in hits), dtype=np.int64, count=len(hits))
    scores = np.fromiter((h.score for h in hits), dtype=np.float64, count=len(hits))
    return ids, scores


def _require_text_signals() -> None:
    if not has_text_signals():
        raise ImgsearchError(
            "Modes text, keyword and hybrid and --oracle-captions need text signals "
            "(ImageIndex.describe), which this installation lacks. Use --mode clip, or upgrade imgsearch."
        )
