"""The evaluation's only calls into the text-signal API: notes and the non-CLIP search modes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from photoseek.api import ImageIndex
from photoseek.errors import NotFound
from photoseek.search.blend import MODE as BLEND_MODE
from photoseek.search.query import Query
from photoseek.store.text import USER_MODEL

TEXT_MODES = ("text", "keyword", "hybrid")


def open_index(
    db: Path, *, model: str | None, model_path: Path | None, text_model: str | None
) -> ImageIndex:
    """An `ImageIndex` on `db` with the asked-for models (the default text model when none is given)."""
    return ImageIndex(db, model=model, model_path=model_path, text_model=text_model)


def describe_all(index: ImageIndex, notes: Mapping[Path, str]) -> None:
    """Give each image its note (the oracle captions) in one transaction, as `describe` would one
    by one; an empty note removes an earlier one."""
    rows = []
    for path, text in notes.items():
        record = index.catalog.get_by_path(str(path))
        if record is None:
            raise NotFound(f"{path} is not in the evaluation's catalog; run the evaluation again.")
        rows.append((record.content_hash, "note", USER_MODEL, text))
    index.texts.put_many(rows)
    index.texts.sync()


def score_gallery(
    index: ImageIndex, texts: list[str], mode: str, image_ids: np.ndarray, weights: dict[str, float] | None = None
) -> np.ndarray:
    """Scores (queries x gallery images) in a text-signal mode or clip-hybrid: the scores `search`
    ranks by, for the whole gallery, without the calibrated cut-off (Recall@K needs every image)."""
    queries = [Query.build([t]) for t in texts]
    if mode == BLEND_MODE:
        ids, blended = index.blend.matrix()
        rows = np.searchsorted(ids, image_ids)
        return np.stack(index.searcher.query_vectors(queries)) @ blended[rows].T
    return index.hybrid.score_matrix(queries, mode=mode, ids=image_ids, weights=weights)
