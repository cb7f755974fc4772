"""The web UI's topic facet in headless Chromium: topics with counts, and choosing one filters the grid."""

from __future__ import annotations

from pathlib import Path

import pytest

from photoseek import ImageIndex
from photoseek.server import ServerConfig
from tests.helpers import run_json
from tests.server.conftest import serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "topics-browser-token"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install playwright)")


def test_topic_facet_lists_counts_and_filters(library, tiny_clip_dir):
    root, db = library
    run_json("topics", "--db", db, "--weight", "clip=0")
    with ImageIndex(db) as index:
        dog = index.find(root / "dog.jpg").id
        pets = dict((t.name, n) for t, n in index.topics())["pets"]
    config = ServerConfig(db=db, model_path=tiny_clip_dir, token=TOKEN)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        errors: list[str] = []
        for url in serve_in_thread(config):
            page = browser.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/?token={TOKEN}")
            page.locator("#toggle-filters").click()
            topic = page.locator("#f-topic")
            sync_api.expect(topic.locator("option", has_text=f"pets ({pets})")).to_have_count(1)
            page.locator("#q").fill("a sleeping animal")
            tiles = page.locator("#grid .tile")
            sync_api.expect(tiles.first).to_be_visible()
            topic.select_option("pets")
            sync_api.expect(page.locator("#filter-count")).to_have_text("1")
            sync_api.expect(tiles).to_have_count(pets)
            dog_tile = page.locator(f'#grid .tile[data-id="{dog}"]')
            sync_api.expect(dog_tile).to_have_count(1)
            topic.select_option("food")  # the dog photo is not about food: it leaves the grid
            sync_api.expect(dog_tile).to_have_count(0)
            assert not errors, errors
        browser.close()
