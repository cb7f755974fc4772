"""The evaluation's only calls into the text-signal API: notes and the non-CLIP search modes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from photoseek.api import ImageIndex
from photoseek.search.modes import Mode

TEXT_MODES = tuple(m.value for m in Mode if m.fused)


def open_index(
    db: Path, *, model: str | None, model_path: Path | None, text_model: str | None, device: str | None = None
) -> ImageIndex:
    """An `ImageIndex` on `db` with the asked-for models (the default text model when none is given), on `device`."""
    return ImageIndex(db, model=model, model_path=model_path, text_model=text_model, device=device)


def describe_all(index: ImageIndex, notes: Mapping[Path, str]) -> None:
    """Give each image its note (the oracle captions) in one transaction, as `describe` would one
    by one; an empty note removes an earlier one."""
    index.describe_many(notes.items())


def score_gallery(
    index: ImageIndex, texts: list[str], mode: str, image_ids: np.ndarray, weights: dict[str, float] | None = None
) -> np.ndarray:
    """Scores (queries x gallery images) in a text-signal mode or clip-hybrid: the scores `search`
    ranks by, from the scorer it ranks with, for the whole gallery, without the calibrated cut-off
    (Recall@K needs every image)."""
    return index.score_matrix(texts, image_ids, mode=mode, weights=weights)

