"""Browsing the catalog without a query: pages in capture-time or name order.

Pages are found by keyset (the last row's sort key and id, in an opaque cursor), not by
offset, so page 2,000 of a timeline costs one index seek like page 1 (the `images_captured`
index, schema 6; names use the unique index on `path`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass

from photoseek.errors import BadInput
from photoseek.store.catalog import (
    _CAPTURE_TIME_SQL,
    _RECORD_COLUMNS,
    Catalog,
    ImageRecord,
    _filter_sql,
    _record,
    path_from_db,
    path_to_db,
)
from photoseek.store.filters import SearchFilters

BROWSE_SORTS = ("date", "oldest", "name")
"""date: newest first; oldest: oldest first; name: by path (folder, then file name)."""

_ORDER = {
    # sort -> (sort key, keyset condition after the cursor's key and id, ORDER BY)
    "date": (_CAPTURE_TIME_SQL, f"{_CAPTURE_TIME_SQL} <= ? AND ({_CAPTURE_TIME_SQL} < ? OR id < ?)",
             f"{_CAPTURE_TIME_SQL} DESC, id DESC"),
    "oldest": (_CAPTURE_TIME_SQL, f"{_CAPTURE_TIME_SQL} >= ? AND ({_CAPTURE_TIME_SQL} > ? OR id > ?)",
               f"{_CAPTURE_TIME_SQL}, id"),
    "name": ("path", "path > ?", "path"),
}


@dataclass(frozen=True)
class BrowseEntry:
    record: ImageRecord
    captured: str
    """The time it is ordered by: the EXIF capture time, else the file's modification time (UTC)."""


@dataclass(frozen=True)
class BrowsePage:
    entries: list[BrowseEntry]
    next_cursor: str | None
    """Give it back for the next page; None after the last one."""
    total: int | None = None
    """How many images pass the filters (first page only: counting costs a scan with filters)."""


def check_sort(sort: str, allowed: Sequence[str] = BROWSE_SORTS) -> str:
    if sort not in allowed:
        raise BadInput(f"Unknown sort {sort!r}: use one of {', '.join(allowed)}.")
    return sort


def browse(
    catalog: Catalog, *, filters: SearchFilters | None = None, sort: str = "date", limit: int = 100,
    cursor: str | None = None,
) -> BrowsePage:
    """One page of the images that pass `filters`, in `sort` order, after `cursor`."""
    key_sql, after_sql, order_sql = _ORDER[check_sort(sort)]
    clauses, params = _filter_sql(filters or SearchFilters())
    if cursor is not None:
        key, last_id = _decode(cursor, sort)
        clauses.append(after_sql)
        params += [path_to_db(key)] if sort == "name" else [key, key, last_id]
    where = " AND ".join(clauses) or "1"
    rows = catalog.db.execute(
        f"SELECT {_RECORD_COLUMNS}, {_CAPTURE_TIME_SQL}, {key_sql} FROM images WHERE {where} "
        f"ORDER BY {order_sql} LIMIT ?",
        [*params, limit + 1],
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    entries = [BrowseEntry(_record(row[:-2]), row[-2]) for row in rows]
    next_cursor = _encode(rows[-1][-1], rows[-1][0]) if more else None
    return BrowsePage(entries, next_cursor, _count(catalog, filters) if cursor is None else None)


def capture_times(catalog: Catalog, ids: Sequence[int]) -> dict[int, str]:
    """id -> the time `browse` orders it by, for sorting search results alike."""
    found: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        found.update(catalog.db.execute(
            f"SELECT id, {_CAPTURE_TIME_SQL} FROM images WHERE id IN ({','.join('?' * len(chunk))})", chunk
        ).fetchall())
    return found


def _count(catalog: Catalog, filters: SearchFilters | None) -> int:
    if not filters:
        return catalog.count()
    clauses, params = _filter_sql(filters)
    return catalog.db.execute(f"SELECT COUNT(*) FROM images WHERE {' AND '.join(clauses)}", params).fetchone()[0]


def _encode(key: str | bytes, last_id: int) -> str:
    text = json.dumps([path_from_db(key) if isinstance(key, bytes) else key, last_id])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str, sort: str) -> tuple[str, int]:
    """The cursor's key and id, or a clear error for one that this code did not make."""
    try:
        key, last_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(key, str) and isinstance(last_id, int):
            return key, last_id
    except (ValueError, TypeError, binascii.Error):
        pass
    raise BadInput(
        f"The cursor {cursor[:40]!r} is not one this catalog gave for sort {sort!r}. Start again from the first page."
    )
