"""Showing a page of ranked results in another order: by capture time or by name.

Only the order changes: which images make the page is still decided by score, and each
result keeps its `rank` (its place by score), so "the 20 best matches, newest first" reads
as such.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from photoseek.search.engine import SearchResult
from photoseek.store.browsing import check_sort

RESULT_SORTS = ("score", "date", "oldest", "name")
"""score: best first; date: newest first; oldest: oldest first; name: by path (folder, then file name)."""


def check_result_sort(sort: str) -> str:
    """`sort` if it is one of RESULT_SORTS, else a BadInput that lists them (CLI, REST and API alike)."""
    return check_sort(sort, RESULT_SORTS)


def sort_results(results: list[SearchResult], sort: str, captured: Mapping[int, str]) -> list[SearchResult]:
    """`results` in `sort` order; `captured` maps ids to capture times (`store.browsing.capture_times`)."""
    if sort == "score":
        return results
    if sort == "name":
        return sorted(results, key=lambda r: (os.fsencode(r.path), r.id))
    newest = sort == "date"
    return sorted(results, key=lambda r: (captured.get(r.id, ""), r.id), reverse=newest)
