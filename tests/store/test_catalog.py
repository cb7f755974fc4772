import sqlite3

import numpy as np
import pytest

from photoseek.errors import ModelMismatchError, PhotoseekError
from photoseek.store.catalog import Catalog, Failure, NewImage, TextSignal


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
    before = catalog.generation()
    with pytest.raises((sqlite3.Error, AttributeError)):  # a failure entry without a path is a bug, not bad input
        catalog.write_batch([_image("/p/b.jpg", [1, 0])], [Failure(None, 1, 1, "x")])
    assert catalog.count() == 1 and catalog.generation() == before


def test_missing_catalog_in_readonly_mode_says_how_to_start(tmp_path):
    with pytest.raises(PhotoseekError, match="photoseek index"):
        Catalog(tmp_path / "none.db", readonly=True)


ODD = "/photos/caf\udce9/\udcff.jpg"
"""A path whose bytes are not UTF-8 (b'/photos/caf\\xe9/\\xff.jpg'), as os.listdir returns it."""


def test_paths_that_are_not_utf8_round_trip_exactly(catalog):
    from pathlib import Path

    catalog.add_roots([Path("/photos/caf\udce9")])
    catalog.write_batch([_image(ODD, [1, 0]), _image("/photos/ok.jpg", [0, 1])])
    assert catalog.get_by_path(ODD).path == ODD
    assert {r.path for r in catalog.records(catalog.all_embeddings()[0].tolist()).values()} == {ODD, "/photos/ok.jpg"}
    assert set(catalog.file_states([Path("/photos/caf\udce9")])) == {ODD}
    assert set(catalog.file_states([Path("/photos")])) == {ODD, "/photos/ok.jpg"}
    assert catalog.roots() == ["/photos/caf\udce9"]
    catalog.write_batch([], [Failure(ODD, 1, 1, "bad \udce9")])
    assert catalog.failures() == [Failure(ODD, 1, 1, "bad \\xe9")]
    catalog.write_batch([], [], removed=[ODD])
    assert catalog.failures() == [] and catalog.get_by_path(ODD) is None


def test_a_record_that_cannot_be_stored_fails_alone_and_the_batch_commits(catalog):
    catalog.write_batch([_image("/p/old.jpg", [1, 0], "old"), _image("/p/gone.jpg", [1, 0], "gone")])
    bad_signal = (TextSignal("metadata", "m", "x\ud800"),)
    bad_text = NewImage(**{**_image("/p/bad.jpg", [1, 1], "hbad").__dict__, "texts": bad_signal})
    too_big = NewImage(**{**_image("/p/huge.jpg", [1, 1], "hhuge").__dict__, "width": 2**64})
    refused = catalog.write_batch(
        [_image("/p/a.jpg", [1, 0], "ha"), bad_text, too_big, _image("/p/b.jpg", [0, 1], "hb")],
        [Failure("/p/broken.jpg", 3, 1, "truncated image data")],
        removed=["/p/gone.jpg"],
    )
    assert {f.path for f in refused} == {"/p/bad.jpg", "/p/huge.jpg"}
    assert all("cannot be stored in the catalog" in f.reason for f in refused)
    stored = {r.path for r in catalog.records(catalog.all_embeddings()[0].tolist()).values()}
    assert stored == {"/p/old.jpg", "/p/a.jpg", "/p/b.jpg"}
    assert {f.path for f in catalog.failures()} == {"/p/broken.jpg", "/p/bad.jpg", "/p/huge.jpg"}
    assert catalog.db.execute("SELECT COUNT(*) FROM text_signals WHERE content_hash = 'hbad'").fetchone() == (0,)


def test_index_lock_is_exclusive_and_names_its_owner(tmp_path):
    import os

    from photoseek.store.catalog import CatalogBusyError

    with Catalog(tmp_path / "c.db") as one, Catalog(tmp_path / "c.db") as two:
        with one.index_lock():
            with pytest.raises(CatalogBusyError, match=f"another index run \\(pid {os.getpid()}\\)"):
                with two.index_lock():
                    pass
        with two.index_lock():  # released: the next run goes ahead
            pass
