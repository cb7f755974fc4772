"""The index view of a `serve --watch` server, in headless Chromium: watch activity shows and counts follow."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from photoseek import ImageIndex
from photoseek.server import ServerConfig
from photoseek.watch import WatchSettings
from tests.helpers import draw_photo
from tests.server.conftest import Library, serve_in_thread
from tests.server.test_browser import CHROMIUM, TOKEN, browser, page, pytestmark, shot, sync_api  # noqa: F401

pytest.importorskip("watchdog")


@pytest.fixture
def watched(library: Library, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "watched"
    shutil.copytree(library.root, root)
    db = tmp_path / "watched.db"
    with ImageIndex(db, model_path=library.model_dir) as index:
        index.index([root])
    config = ServerConfig(
        db=db, model_path=library.model_dir, roots=(root,), token=TOKEN,
        watch=WatchSettings(quiet=0.3, settle=0.3, retry=0.5),
    )
    for url in serve_in_thread(config):
        yield url, root


def test_the_index_view_shows_watch_activity_and_new_photos_are_counted(watched, page, shot):  # noqa: F811
    """`watched` first, so the page closes before its server stops (no refused requests at the end)."""
    expect = sync_api.expect
    url, root = watched
    page.goto(f"{url}/?token={TOKEN}")
    expect(page.locator("#status-label")).to_have_text("12 photos")
    page.locator("#open-indexing").click()
    watching = page.locator("#watching")
    expect(watching).to_contain_text("Watching 1 folder(s) for changes.", timeout=30_000)
    expect(watching).to_contain_text("Last batch at", timeout=30_000)

    draw_photo(root / "new.png", "green", seed=77)
    expect(watching).to_contain_text("1 added", timeout=60_000)
    expect(page.locator("#status-label")).to_have_text("13 photos", timeout=30_000)
    shot(page, "watch-index-view")
