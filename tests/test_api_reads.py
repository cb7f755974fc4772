"""The reads `ImageIndex` offers its callers in place of its store: records by id or path, the
roots, counts, similar by id, notes in bulk. Driven through the Python API with a tiny random CLIP."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from photoseek import ImageIndex
from photoseek.errors import PhotoseekError
from tests.helpers import COLOURS, index_colour_photos


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, tiny_clip_dir) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("photos")
    return root, index_colour_photos(root, tiny_clip_dir)


def test_records_by_id_by_path_and_in_bulk(indexed, tmp_path):
    root, db = indexed
    link = tmp_path / "link.jpg"
    os.symlink(root / "red.jpg", link)
    with ImageIndex(db) as index:
        red = index.find(root / "red.jpg")
        assert red is not None and Path(red.path) == (root / "red.jpg").resolve()
        assert index.find(red.id) == red == index.find(link)  # any spelling of the path
        assert index.find(root / "nowhere.jpg") is None and index.find(10_000) is None
        assert index.records([red.id, 10_000]) == {red.id: red}
        assert index.count() == len(COLOURS) == len(index.records(range(1, 100)))
        assert index.roots() == [str(root.resolve())]
        assert index.model_id == index.model.model_id and index.db_path == db


def test_similar_by_id_leaves_the_image_out_and_ranks_as_by_its_file(indexed):
    root, db = indexed
    with ImageIndex(db) as index:
        blue = index.find(root / "blue.jpg")
        by_id = index.similar(blue.id, k=3)
        assert len(by_id) == 3 and blue.id not in {r.id for r in by_id}
        assert [r.rank for r in by_id] == [1, 2, 3]
        assert [r.id for r in by_id] == [r.id for r in index.similar(root / "blue.jpg", k=3)]
        everything = index.similar(blue.id, k=100)
        assert len(everything) == len(COLOURS) - 1
        assert [r.id for r in index.similar(blue.id, k=2, offset=1)] == [r.id for r in everything[1:3]]
        with pytest.raises(PhotoseekError, match="not in the catalog"):
            index.similar(10_000)


def test_describe_many_sets_every_note_or_none(indexed):
    root, db = indexed
    with ImageIndex(db) as index:
        index.describe_many([(root / "red.jpg", "a red square"), (index.find(root / "blue.jpg").id, "blue")])
        assert index.notes(root / "red.jpg")[0] == "a red square"
        assert index.notes(root / "blue.jpg")[0] == "blue"
        with pytest.raises(PhotoseekError, match="not in the catalog"):
            index.describe_many([(root / "red.jpg", "changed"), (root / "nowhere.jpg", "lost")])
        assert index.notes(root / "red.jpg")[0] == "a red square"
        index.describe_many([(root / "red.jpg", "")])  # an empty text removes the note
        assert index.notes(root / "red.jpg")[0] == ""


def test_image_vectors_as_searched_and_as_stored(indexed):
    root, db = indexed
    with ImageIndex(db) as index:
        ids = np.array([index.find(root / "red.jpg").id, 10_000], dtype=np.int64)
        searched, stored = index.image_vectors(ids), index.image_vectors(ids, exact=True)
        assert searched.shape == stored.shape == (2, index.model.dim)
        assert np.isnan(searched[1]).all() and np.isnan(stored[1]).all()
        assert stored[0].dtype == np.float32 and np.allclose(searched[0], stored[0], atol=1e-3)
        best = index.search(images=[root / "red.jpg"], k=1, mode="clip")[0]  # the stored vector, scored
        assert best.id == ids[0] and best.score == pytest.approx(float(stored[0] @ searched[0]), abs=1e-4)
