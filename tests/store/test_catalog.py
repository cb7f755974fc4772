import sqlite3

import numpy as np
import pytest

from imgsearch.errors import ImgsearchError, ModelMismatchError
from imgsearch.store.catalog import Catalog, Failure, NewImage


def _image(path: str, vector: list[float], content_hash: str = "h") -> NewImage:
    return NewImage(
        path=path, size=10, mtime_ns=1, content_hash=content_hash, width=4, height=3,
        format="jpeg", taken_at=None, camera=None, embedding=np.array(vector, dtype=np.float32),
    )


@pytest.fixture
def catalog(tmp_path):
    with Catalog(tmp_path / "c.db") as cat:
        cat.bind_model("m1", 2)
        yield cat


def test_batch_write_then_read_back(catalog):
    catalog.write_batch([_image("/p/a.jpg", [1, 0], "ha"), _image("/p/b.jpg", [0, 1], "hb")])
    assert catalog.count() == 2
    record, vector, _phash = catalog.embedding_for_hash("hb")
    assert record.path == "/p/b.jpg"
    np.testing.assert_array_equal(vector, [0, 1])
    ids, matrix = catalog.all_embeddings()
    assert matrix.shape == (2, 2)


def test_failure_replaces_image_and_success_clears_failure(catalog):
    catalog.write_batch([_image("/p/a.jpg", [1, 0])])
    catalog.write_batch([], [Failure("/p/a.jpg", 5, 2, "truncated image data")])
    assert catalog.count() == 0
    assert [f.reason for f in catalog.failures()] == ["truncated image data"]
    catalog.write_batch([_image("/p/a.jpg", [1, 0])])
    assert catalog.failures() == []


def test_file_states_are_limited_to_roots_and_escape_wildcards(catalog, tmp_path):
    catalog.write_batch([
        _image("/photos/a_b/x.jpg", [1, 0]),
        _image("/photos/aXb/y.jpg", [1, 0]),
        _image("/photos/a_b2/z.jpg", [1, 0]),
    ])
    from pathlib import Path

    assert set(catalog.file_states([Path("/photos/a_b")])) == {"/photos/a_b/x.jpg"}


def test_other_model_is_refused_with_reindex_hint(catalog):
    catalog.write_batch([_image("/p/a.jpg", [1, 0])])
    with pytest.raises(ModelMismatchError, match="--rebuild"):
        catalog.bind_model("m2", 2)
    catalog.drop_embeddings()
    catalog.bind_model("m2", 2)
    assert catalog.model_id == "m2"


def test_generation_changes_with_every_write(catalog):
    before = catalog.generation()
    catalog.write_batch([_image("/p/a.jpg", [1, 0])])
    assert catalog.generation() == before + 1


def test_failed_transaction_leaves_catalog_unchanged(catalog):
    catalog.write_batch([_image("/p/a.jpg", [1, 0])])
    with pytest.raises(sqlite3.Error):
        catalog.write_batch([_image("/p/b.jpg", [1, 0]), _image(None, [1, 0])])
    assert catalog.count() == 1


def test_missing_catalog_in_readonly_mode_says_how_to_start(tmp_path):
    with pytest.raises(ImgsearchError, match="imgsearch index"):
        Catalog(tmp_path / "none.db", readonly=True)
