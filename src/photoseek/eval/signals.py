"""The evaluation's only calls into the text-signal API: notes and the non-CLIP search modes.

Kept in one place so that the harness works with the CLIP-only core and picks up
`ImageIndex.describe` and `ImageIndex.search(..., mode=...)` where they exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from photoseek.api import ImageIndex
from photoseek.errors import PhotoseekError
from photoseek.search.modes import Mode

TEXT_MODES = tuple(m.value for m in Mode if m.fused)


def open_index(
    db: Path, *, model: str | None, model_path: Path | None, text_model: str | None, device: str | None = None
) -> ImageIndex:
    """An `ImageIndex` on `db`, its models on `device`; the text model is passed only when one was asked for."""
    if not text_model:
        return ImageIndex(db, model=model, model_path=model_path, device=device)
    _require_text_signals()
    return ImageIndex(db, model=model, model_path=model_path, text_model=text_model, device=device)


def has_text_signals() -> bool:
    return hasattr(ImageIndex, "describe")


def describe_all(index: ImageIndex, notes: Mapping[Path, str]) -> None:
    """Give each image its note (the oracle captions) in one transaction, as `describe` would one
    by one; an empty note removes an earlier one."""
    _require_text_signals()
    index.describe_many(notes.items())


def score_gallery(
    index: ImageIndex, texts: list[str], mode: str, image_ids: np.ndarray, weights: dict[str, float] | None = None
) -> np.ndarray:
    """Scores (queries x gallery images) in a text-signal mode or clip-hybrid: the scores `search`
    ranks by, from the scorer it ranks with, for the whole gallery, without the calibrated cut-off
    (Recall@K needs every image)."""
    _require_text_signals()
    return index.score_matrix(texts, image_ids, mode=mode, weights=weights)


def _require_text_signals() -> None:
    if not has_text_signals():
        raise PhotoseekError(
            "Modes text, keyword and hybrid and --text-model need text signals "
            "(ImageIndex.describe), which this installation lacks. Use --mode clip, or upgrade photoseek."
        )
