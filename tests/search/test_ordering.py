"""`--sort` / `sort=`: the best matches, shown newest first, oldest first or by name (CLI and Python API)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from photoseek import ImageIndex
from photoseek.errors import PhotoseekError
from tests.helpers import COLOURS, draw_photo, run_cli, run_json

DAY = 86_400


@pytest.fixture(scope="module")
def dated(tmp_path_factory, tiny_clip_dir) -> tuple[Path, Path, dict[str, int]]:
    """Six photos without EXIF, so their file times are their capture times: one day apart, in an
    order that is neither their names' nor (by chance) their scores'."""
    root = tmp_path_factory.mktemp("dated")
    days = {"red": 3, "green": 0, "blue": 5, "yellow": 1, "purple": 4, "orange": 2}
    for i, colour in enumerate(COLOURS):
        path = draw_photo(root / f"{colour}.jpg", colour, seed=i)
        os.utime(path, (1_600_000_000 + days[colour] * DAY,) * 2)
    db = root.parent / "dated.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    return root, db, days


def _names(payload: dict) -> list[str]:
    return [Path(r["path"]).stem for r in payload["results"]]


def test_cli_sorts_the_same_best_matches_by_date_oldest_and_name(dated):
    root, db, days = dated
    args = ("search", "a red circle", "--db", db, "-k", "4", "--mode", "clip")
    best = run_json(*args)
    assert len(best["results"]) == 4
    by_date = run_json(*args, "--sort", "date")
    assert set(_names(by_date)) == set(_names(best))  # the same four images...
    assert _names(by_date) == sorted(_names(best), key=lambda n: -days[n])  # ...newest first
    assert {r["rank"] for r in by_date["results"]} == {1, 2, 3, 4}  # each keeps its place by score
    assert _names(run_json(*args, "--sort", "oldest")) == _names(by_date)[::-1]
    assert _names(run_json(*args, "--sort", "name")) == sorted(_names(best))
    assert _names(run_json(*args, "--sort", "score")) == _names(best)
    similar = run_json("similar", root / "red.jpg", "--db", db, "-k", "5", "--sort", "date")
    assert _names(similar) == sorted((c for c in days if c != "red"), key=lambda n: -days[n])


def test_an_unknown_sort_is_one_line_that_names_the_choices(dated):
    _, db, _ = dated
    out = run_cli("search", "red", "--db", db, "--sort", "size", "--json", expect=2)
    assert "use one of score, date, oldest, name" in out
    with ImageIndex(db, create=False) as index, pytest.raises(PhotoseekError, match="use one of score"):
        index.search("red", sort="size")


def test_python_api_sorts_search_many_pages(dated):
    _, db, days = dated
    with ImageIndex(db, create=False) as index:
        pages = index.search_many(["a red thing", "a blue thing"], k=6, mode="clip", sort="oldest")
    for page in pages:
        assert [Path(r.path).stem for r in page] == sorted(days, key=days.get)
        assert sorted(r.rank for r in page) == list(range(1, 7))
