"""Browsing without a query: keyset pages in capture-time and name order, through the Python API."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from photoseek import ImageIndex
from photoseek.errors import PhotoseekError
from photoseek.store.catalog import SCHEMA_VERSION, Catalog, NewImage
from photoseek.store.filters import SearchFilters
from tests.helpers import catalog_of

DAY_NS = 86_400 * 10**9


def _image(path: str, taken_at: str | None, mtime_day: int = 0, fmt: str = "jpeg") -> NewImage:
    return NewImage(
        path=path, size=10, mtime_ns=mtime_day * DAY_NS, content_hash=os.fsencode(path).hex(), width=4, height=3,
        format=fmt, taken_at=taken_at, camera=None, embedding=np.ones(2, dtype=np.float32),
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.db"
    with Catalog(path) as catalog:
        catalog.bind_model("m", 2)
        catalog.write_batch([
            _image("/p/b.jpg", "2021-03-05T10:00:00"),
            _image("/p/a.png", "2021-03-05T10:00:00", fmt="png"),  # the same second as b: ids break the tie
            _image("/p/c.jpg", None, mtime_day=365 * 51),  # no EXIF: its file time, 2020-12-19
            _image("/p/sub/d.jpg", "2019-07-01T08:30:00"),
            _image("/p/e.jpg", "2022-01-01T00:00:00"),
            _image(os.fsdecode(b"/p/\xff-latin1.jpg"), "2018-01-01T00:00:00"),  # a name that is not UTF-8
        ])
    return path


def _walk(index: ImageIndex, sort: str, limit: int, **options: object) -> list[str]:
    names, cursor, pages = [], None, 0
    while True:
        page = index.browse(sort=sort, limit=limit, cursor=cursor, **options)
        names += [Path(e.record.path).name for e in page.entries]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            return names
        assert pages < 20


@pytest.mark.parametrize("limit", [1, 2, 4, 100])
def test_timeline_pages_newest_first_without_gaps_or_repeats(db: Path, limit: int):
    with ImageIndex(db, create=False) as index:
        names = _walk(index, "date", limit)
        # a.png and b.jpg were taken in the same second: the later id (a.png) first, newest first
        assert names == ["e.jpg", "a.png", "b.jpg", "c.jpg", "d.jpg", os.fsdecode(b"\xff-latin1.jpg")]
        assert _walk(index, "oldest", limit) == names[::-1]


def test_first_page_counts_and_says_when_each_was_captured(db: Path):
    with ImageIndex(db, create=False) as index:
        first = index.browse(limit=2)
        assert first.total == 6 and first.next_cursor
        assert [e.captured for e in first.entries][0] == "2022-01-01T00:00:00"
        assert index.browse(limit=2, cursor=first.next_cursor).total is None
        c = next(e for e in index.browse(limit=10).entries if e.record.path == "/p/c.jpg")
        assert c.captured == "2020-12-19T00:00:00" and c.record.taken_at is None
        filtered = index.browse(filters=SearchFilters(formats=("png",)))
        assert filtered.total == 1 and [e.record.path for e in filtered.entries] == ["/p/a.png"]


def test_name_order_walks_folders_and_odd_names(db: Path):
    with ImageIndex(db, create=False) as index:
        expected = sorted(["a.png", "b.jpg", "c.jpg", "e.jpg", os.fsdecode(b"\xff-latin1.jpg"), "d.jpg"],
                          key=lambda n: os.fsencode("/p/sub/d.jpg" if n == "d.jpg" else f"/p/{n}"))
        walked = _walk(index, "name", 2)
        assert sorted(walked) == sorted(expected)  # every image once, the undecodable name included
        assert walked[:5] == [n for n in expected if n != os.fsdecode(b"\xff-latin1.jpg")]


def test_folder_and_date_filters_narrow_the_timeline(db: Path):
    with ImageIndex(db, create=False) as index:
        assert _walk(index, "date", 1, filters=SearchFilters(folder="/p/sub")) == ["d.jpg"]
        assert _walk(index, "date", 1, filters=SearchFilters(after="2021-01-01")) == ["e.jpg", *_pair(index)]


def _pair(index: ImageIndex) -> list[str]:
    return [Path(e.record.path).name for e in index.browse(filters=SearchFilters(after="2021-03-05")).entries[1:]]


def test_a_foreign_cursor_or_sort_is_a_clear_error(db: Path):
    with ImageIndex(db, create=False) as index:
        with pytest.raises(PhotoseekError, match="Start again from the first page"):
            index.browse(cursor="not-a-cursor")
        with pytest.raises(PhotoseekError, match="use one of date, oldest, name"):
            index.browse(sort="score")


def test_the_timeline_reads_one_index_range_not_the_table(db: Path):
    with sqlite3.connect(db) as con:
        assert "images_captured" in {row[0] for row in con.execute("SELECT name FROM sqlite_master")}
    with ImageIndex(db, create=False) as index:
        cursor = index.browse(limit=1).next_cursor
        plans: list[str] = []
        catalog_of(index).db.set_trace_callback(lambda sql: plans.extend(
            row[3] for row in sqlite3.connect(db).execute(f"EXPLAIN QUERY PLAN {sql}")
        ) if sql.startswith("SELECT id, path") else None)
        index.browse(limit=1, cursor=cursor)
        assert any("USING INDEX images_captured (<expr><?)" in plan for plan in plans), plans


def test_a_catalog_from_before_the_timeline_gets_its_index_when_opened(db: Path):
    with sqlite3.connect(db) as con:
        con.execute("DROP INDEX images_captured")
        con.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    with ImageIndex(db, create=False) as index:
        assert [Path(e.record.path).name for e in index.browse(limit=1).entries] == ["e.jpg"]
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT 1 FROM sqlite_master WHERE name = 'images_captured'").fetchone()
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
