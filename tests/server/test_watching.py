"""`serve --watch`: the server keeps its index current and reports what the watcher did."""

from __future__ import annotations

import shutil

import pytest

from photoseek import ImageIndex
from photoseek.watch import WatchSettings
from tests.helpers import draw_photo, wait_until
from tests.server.conftest import Library, make_client

pytest.importorskip("watchdog")


def test_the_server_indexes_new_photos_and_shows_watch_activity(library: Library, tmp_path):
    root = tmp_path / "watched"
    shutil.copytree(library.root, root)
    db = tmp_path / "watched.db"
    ImageIndex(db, model_path=library.model_dir).close()
    lib = Library(root, db, library.model_dir, {})
    settings = WatchSettings(quiet=0.3, settle=0.3, retry=0.5)
    with make_client(lib, roots=(root,), watch=settings) as client:
        assert client.get("/api/status").json()["watching"] is True
        first = wait_until(lambda: (w := client.get("/api/watch").json())["batches"] >= 1 and w, "the catch-up")
        assert first["last_batch"]["kind"] == "catch-up" and first["totals"]["embedded"] == 12
        assert first["roots"] == [{"path": str(root.resolve()), "online": True}]

        draw_photo(root / "new" / "lime.png", "green", seed=42)
        watch = wait_until(lambda: (w := client.get("/api/watch").json())["totals"]["embedded"] == 13 and w,
                           "the change batch")
        assert watch["last_batch"]["kind"] == "changes" and watch["batches"] >= 2
        hits = client.get("/api/search", params={"q": "x", "k": 50, "mode": "clip"}).json()["results"]
        assert str(root.resolve() / "new" / "lime.png") in {h["path"] for h in hits}


def test_without_watch_the_endpoint_says_so(client):
    assert client.get("/api/watch").json() == {
        "enabled": False, "running": False, "indexing": False, "roots": [], "pending": 0, "batches": 0,
        "last_batch": None, "totals": {}, "error": None,
    }
    assert client.get("/api/status").json()["watching"] is False


def test_a_single_indexed_file_is_not_watched_as_a_missing_folder(library: Library, tmp_path):
    """`index ~/Desktop/one.jpg` records the file as a root; the watcher follows folders only."""
    root = tmp_path / "watched"
    draw_photo(root / "a.png", "red")
    single = draw_photo(tmp_path / "desktop" / "one.png", "blue")
    db = tmp_path / "watched.db"
    with ImageIndex(db, model_path=library.model_dir) as index:
        index.index([root, single])
        assert str(single.resolve()) in index.roots()
    settings = WatchSettings(quiet=0.3, settle=0.3, retry=0.5)
    with make_client(Library(root, db, library.model_dir, {}), roots=(root,), watch=settings) as client:
        watch = wait_until(lambda: (w := client.get("/api/watch").json())["batches"] >= 1 and w, "the catch-up")
        assert watch["roots"] == [{"path": str(root.resolve()), "online": True}] and watch["error"] is None
