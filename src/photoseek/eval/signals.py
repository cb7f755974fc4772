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
from photoseek.store.text import USER_MODEL

TEXT_MODES = tuple(m.value for m in Mode if m.fused)


def open_index(
    db: Path, *, model: str | None, model_path: Path | None, text_model: str | None
) -> ImageIndex:
    """An `ImageIndex` on `db`; the text model is passed only when one was asked for."""
    if not text_model:
        return ImageIndex(db, model=model, model_path=model_path)
    _require_text_signals()
    return ImageIndex(db, model=model, model_path=model_path, text_model=text_model)  # type: ignore[call-arg]


def has_text_signals() -> bool:
    return hasattr(ImageIndex, "describe")


def describe_all(index: ImageIndex, notes: Mapping[Path, str]) -> None:
    """Give each image its note (the oracle captions) in one transaction, as `describe` would one
    by one; an empty note removes an earlier one."""
    _require_text_signals()
    rows = []
    for path, text in notes.items():
        record = index.catalog.get_by_path(str(path))
        if record is None:
            raise PhotoseekError(f"{path} is not in the evaluation's catalog; run the evaluation again.")
        rows.append((record.content_hash, "note", USER_MODEL, text))
    index.texts.put_many(rows)
    index.texts.sync()


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
