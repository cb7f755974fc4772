"""`photoseek.durable`: a replaced file is whole (old or new), synced with its folder, and leaves no temp file."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest

from photoseek import durable
from photoseek.store.backends import remove_catalog
from photoseek.store.catalog import Catalog, NewImage
from photoseek.store.vectors import VectorStore


def _synced(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """What os.fsync is called on from now: (name or folder, is a folder), in order."""
    calls: list[tuple[str, bool]] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        folder = stat.S_ISDIR(os.fstat(fd).st_mode)
        calls.append((os.readlink(f"/proc/self/fd/{fd}"), folder))
        real(fd)

    monkeypatch.setattr(durable.os, "fsync", fsync)
    return calls


def test_a_write_replaces_the_file_syncing_it_then_its_folder(tmp_path, monkeypatch):
    target = tmp_path / "stamp.json"
    target.write_bytes(b"old")
    calls = _synced(monkeypatch)
    durable.write_atomically(target, b"new")
    assert target.read_bytes() == b"new"
    assert [folder for _, folder in calls] == [False, True]
    assert calls[1][0] == str(tmp_path)
    assert os.listdir(tmp_path) == ["stamp.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temp(tmp_path):
    target = tmp_path / "stamp.json"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), durable.replacing(target) as out:
        out.write(b"half")
        raise RuntimeError("disk gone")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["stamp.json"]


def test_a_new_file_gets_a_new_files_mode_or_the_one_asked_for(tmp_path):
    mask = os.umask(0o027)
    try:
        durable.write_atomically(tmp_path / "page.html", b"<p>")
        durable.write_atomically(tmp_path / "graph.onnx", b"x", mode=0o644)
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "page.html").stat().st_mode) == 0o640  # not mkstemp's 0600
    assert stat.S_IMODE((tmp_path / "graph.onnx").stat().st_mode) == 0o644


def test_only_the_stale_temps_of_that_file_go(tmp_path):
    """A killed write's temp goes; another writer's (young) one, another file's (the stamp beside
    an index: `.c.db.faiss.json.<hex>.tmp`) and anything not ours stay."""
    target = tmp_path / "c.db.faiss"
    left = [tmp_path / ".c.db.faiss.0a1b2c3d4e5f.tmp"]
    kept = [tmp_path / ".c.db.faiss.json.0a1b2c3d4e5f.tmp", tmp_path / ".c.db.faissx.0a1b2c3d4e5f.tmp",
            tmp_path / ".other.0a1b2c3d4e5f.tmp", tmp_path / "c.db.faiss.1.tmp", tmp_path / ".c.db.faiss.tmp",
            tmp_path / ".c.db.faiss.a.b.tmp"]
    old = time.time() - durable.STALE_AFTER_S - 60
    for path in [*left, *kept]:
        path.write_bytes(b"")
        os.utime(path, (old, old))
    young = tmp_path / ".c.db.faiss.ffffffffffff.tmp"  # a write in progress in another process
    young.write_bytes(b"")
    durable.remove_stale_temps(target)
    assert sorted(tmp_path.iterdir()) == sorted([*kept, young])


def _catalog_with_rows(db: Path, count: int) -> Catalog:
    catalog = Catalog(db)
    catalog.bind_model("m", 4)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((count, 4)).astype(np.float32)
    catalog.write_batch(
        [NewImage(f"/p/{i}.jpg", 1, 1, f"h{i}", 1, 1, "png", None, None, v) for i, v in enumerate(vectors)]
    )
    return catalog


def test_the_vector_store_is_durable_and_clears_what_a_killed_write_left(tmp_path, monkeypatch):
    db = tmp_path / "c.db"
    killed = tmp_path / ".c.db.vectors.f16.0a1b2c3d4e5f.tmp"
    killed.write_bytes(b"\0" * 1024)  # a write_full that was killed half-way, an hour ago
    os.utime(killed, (time.time() - 3600, time.time() - 3600))
    with _catalog_with_rows(db, 5) as catalog:
        calls = _synced(monkeypatch)
        store = VectorStore.sync(catalog)
        assert store.live_count == 5
    files = [Path(name).name for name, folder in calls if not folder]
    assert [name.split(".tmp")[0].split(".", 1)[1].rsplit(".", 1)[0] for name in files] == [
        "c.db.vectors.f16", "c.db.vectors.ids.npy", "c.db.vectors.json"
    ]
    assert [folder for _, folder in calls] == [False, True] * 3, "each rename is followed by its folder's fsync"
    assert not killed.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.db", "c.db.vectors.f16", "c.db.vectors.ids.npy",
                                                          "c.db.vectors.json"]


def test_removing_a_catalog_removes_the_temps_beside_it_and_nothing_else(tmp_path):
    with _catalog_with_rows(tmp_path / "c.db", 3) as catalog:
        VectorStore.sync(catalog)
    (tmp_path / ".c.db.vectors.json.0a1b2c3d4e5f.tmp").write_bytes(b"{")
    keep = [tmp_path / ".c.db.notes.1.tmp", tmp_path / "c.dbx", tmp_path / "photo.jpg"]
    for path in keep:
        path.write_bytes(b"")
    remove_catalog(tmp_path / "c.db")
    assert sorted(tmp_path.iterdir()) == sorted(keep)
