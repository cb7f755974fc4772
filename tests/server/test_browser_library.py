"""The library in headless Chromium: the timeline (months, lazy pages, sorting), the notes editor,
multi-select (copy paths, zip, tag, album) and the header on a phone-sized screen.

Runs its own server over a catalog of its own (tags and notes change it). Skips without
/usr/bin/chromium, like tests/server/test_browser.py.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from photoseek import ImageIndex
from photoseek.server import ServerConfig
from tests.helpers import COLOURS, draw_photo
from tests.server.conftest import serve_in_thread
from tests.server.test_browser import CHROMIUM, VIEWPORTS, browser  # noqa: F401  (the shared Chromium)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium (apt-get install chromium)"
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install playwright)")
expect = sync_api.expect

MONTHS = {"2024-03": 20, "2024-02": 25, "2023-12": 15}
"""Photos per month: 60 in all, more than the UI's first page of 48."""


@dataclass(frozen=True)
class Site:
    url: str
    root: Path
    albums: Path
    ids: dict[str, int]
    """Relative path -> id."""


@pytest.fixture(scope="module")
def site(tmp_path_factory, tiny_clip_dir) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("timeline") / "photos"
    colours = list(COLOURS)
    n = 0
    for month, count in MONTHS.items():
        for day in range(count):
            path = draw_photo(root / month / f"p{n:02d}.jpg", colours[n % len(colours)], size=(64, 48), seed=n)
            taken = _epoch(f"{month}-{1 + day % 28:02d}T12:00:00")
            os.utime(path, (taken, taken))
            n += 1
    db = root.parent / "timeline.db"
    with ImageIndex(db, model_path=tiny_clip_dir) as index:
        index.index([root])
        records = index.records(list(range(1, 99))).values()
        ids = {str(Path(r.path).relative_to(root.resolve())): r.id for r in records}
    albums = root.parent / "albums"
    server = serve_in_thread(ServerConfig(db=db, model_path=tiny_clip_dir, roots=(root,), album_dir=albums))
    yield Site(next(server), root.resolve(), albums, ids)
    next(server, None)


def _epoch(iso: str) -> float:
    from datetime import datetime, timezone

    return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()


@pytest.fixture
def page(browser, request, shot) -> Iterator[object]:  # noqa: F811  (browser: the imported fixture)
    screen = getattr(request, "param", "desktop")
    context = browser.new_context(viewport=VIEWPORTS[screen], is_mobile=screen == "phone",
                                  has_touch=screen == "phone", accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    shot(page, f"{request.node.name}-final")
    context.close()
    assert not errors, errors


@pytest.fixture
def shot():
    from tests.helpers import artifacts_dir

    return lambda page, name: page.screenshot(path=str(artifacts_dir() / f"{name}.png"))


def test_the_timeline_shows_months_newest_first_and_loads_as_it_scrolls(page, shot, site: Site):
    page.goto(site.url)
    tiles = page.locator("#grid .tile")
    expect(tiles).to_have_count(48)  # the first page
    expect(page.locator("#summary")).to_contain_text("60 photos · newest first")
    expect(page.locator("#grid .month")).to_have_text(["March 2024", "February 2024", "December 2023"][:3])
    shot(page, "20-timeline")
    page.mouse.wheel(0, 40_000)
    expect(tiles).to_have_count(60)
    expect(page.locator("#grid .month")).to_have_count(3)
    months = page.locator("#grid > li").evaluate_all(
        "items => items.map(i => i.classList.contains('month') ? i.textContent : i.dataset.id)")
    assert months[0] == "March 2024" and months[21] == "February 2024" and months[47] == "December 2023"
    first = [int(i) for i in months[1:21]]
    assert {site.ids[p] for p in site.ids if p.startswith("2024-03/")} == set(first)

    page.locator("#sort").select_option("name")
    expect(page.locator("#summary")).to_contain_text("by name")
    expect(page.locator("#grid .month")).to_have_count(0)
    page.mouse.wheel(0, 40_000)
    expect(tiles).to_have_count(60)
    shown = tiles.evaluate_all("tiles => tiles.map(t => Number(t.dataset.id))")
    assert shown == [site.ids[p] for p in sorted(site.ids)]
    expect(page.locator('#sort option[value="score"]')).to_be_hidden()  # no "best match" without a query


def test_a_search_can_be_sorted_by_date(page, site: Site):
    page.goto(f"{site.url}/?q=a+red+thing")
    expect(page.locator("#summary")).to_contain_text("a red thing")
    page.locator("#sort").select_option("oldest")
    expect(page.locator("#summary")).to_contain_text("oldest first")
    ids = page.locator("#grid .tile").evaluate_all("tiles => tiles.map(t => Number(t.dataset.id))")
    by_id = {i: p for p, i in site.ids.items()}
    months = [by_id[i][:7] for i in ids]
    assert len(ids) > 10 and months == sorted(months)
    expect(page.locator("#grid .month")).to_have_count(0)


def test_the_notes_editor_saves_a_description_and_tags_that_search_finds(page, shot, site: Site):
    page.goto(site.url)
    page.locator("#grid .tile").first.click()
    expect(page.locator("#detail")).to_be_visible()
    name = page.locator("#detail-name").inner_text()
    page.locator("#note-description").fill("Aunt Ilse's garden party")
    page.locator("#note-tag-input").fill("kohlrabi")
    page.keyboard.press("Enter")
    page.locator("#note-tag-input").fill("summer")
    page.keyboard.press("Enter")
    expect(page.locator("#note-tags li")).to_have_count(2)
    page.locator("#note-tags button[aria-label='Remove tag summer']").click()
    page.keyboard.press("s")  # typing in the editor never triggers the view's shortcuts
    expect(page.locator("#detail")).to_be_visible()
    page.locator("#note-save").click()
    expect(page.locator("#note-status")).to_have_text("Saved")
    expect(page.locator("#detail-signal-list")).to_contain_text("Aunt Ilse's garden party")
    shot(page, "21-notes")
    page.keyboard.press("Escape")

    page.locator("#q").fill("kohlrabi")
    expect(page.locator("#summary")).to_contain_text("kohlrabi")
    expect(page.locator("#grid .tile img").first).to_have_attribute("alt", name)
    page.locator("#grid .tile").first.click()
    expect(page.locator("#note-tags li")).to_have_text(["kohlrabi×"])
    expect(page.locator("#note-description")).to_have_value("Aunt Ilse's garden party")


def test_a_selection_is_copied_zipped_tagged_and_saved_as_an_album(page, shot, site: Site):
    page.goto(site.url)
    tiles = page.locator("#grid .tile")
    expect(tiles).to_have_count(48)
    tiles.nth(0).locator(".pick").click()
    expect(page.locator("#selection-bar")).to_be_visible()
    tiles.nth(2).click(modifiers=["Shift"])  # a range: tiles 0, 1 and 2
    expect(page.locator("#selection-count")).to_have_text("3 selected")
    tiles.nth(1).click()  # while selecting, a click toggles instead of opening
    expect(page.locator("#selection-count")).to_have_text("2 selected")
    expect(page.locator("#detail")).to_be_hidden()
    chosen = [int(tiles.nth(i).get_attribute("data-id")) for i in (0, 2)]
    by_id = {i: p for p, i in site.ids.items()}
    shot(page, "22-selection")

    page.locator("#sel-copy").click()
    expect(page.locator("#sel-message")).to_have_text("Copied 2 paths")
    assert page.evaluate("navigator.clipboard.readText()").split("\n") == [str(site.root / by_id[i]) for i in chosen]

    with page.expect_download() as download:
        page.locator("#sel-zip").click()
    with zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())) as archive:
        assert archive.namelist() == [Path(by_id[i]).name for i in chosen]
        assert archive.read(Path(by_id[chosen[0]]).name) == (site.root / by_id[chosen[0]]).read_bytes()

    page.locator("#sel-tag").click()
    page.locator("#sel-input").fill("picnic")
    page.keyboard.press("Enter")
    expect(page.locator("#sel-message")).to_have_text("Tagged 2 photos “picnic”")

    page.locator("#sel-album").click()
    page.locator("#sel-input").fill("Picnic 2024")
    page.locator("#sel-submit").click()
    expect(page.locator("#sel-message")).to_contain_text("Saved 2 photos to")
    album = site.albums / "Picnic 2024"
    assert sorted(os.readlink(link) for link in album.iterdir()) == sorted(str(site.root / by_id[i]) for i in chosen)
    shot(page, "23-album")

    page.keyboard.press("Escape")
    expect(page.locator("#selection-bar")).to_be_hidden()
    expect(page.locator("#grid .tile.selected")).to_have_count(0)
    page.locator("#q").fill("picnic")
    expect(page.locator("#summary")).to_contain_text("picnic")
    found = page.locator("#grid .tile").evaluate_all("tiles => tiles.map(t => Number(t.dataset.id))")
    assert sorted(found[:2]) == sorted(chosen)


@pytest.mark.parametrize("page", ["phone"], indirect=True)
def test_on_a_phone_the_header_is_one_row_and_nothing_overflows(page, shot, site: Site):
    page.goto(site.url)
    expect(page.locator("#grid .tile").first).to_be_visible()
    header = page.locator(".topbar").bounding_box()
    boxes = [page.locator(s).bounding_box() for s in
             (".brand", "#search-form", "#toggle-filters", "#open-duplicates", "#open-indexing")]
    middles = [box["y"] + box["height"] / 2 for box in boxes]
    assert header["height"] <= 64 and max(middles) - min(middles) <= 4, (header, boxes)  # one row
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS["phone"]["width"]
    search = page.locator("#search-form").bounding_box()
    assert search["width"] >= 150  # room to type
    for button in ("#toggle-filters", "#open-duplicates", "#open-indexing"):
        box = page.locator(button).bounding_box()
        assert box["x"] + box["width"] <= VIEWPORTS["phone"]["width"] and box["width"] >= 36, button
    shot(page, "24-phone-header")

    page.locator("#toggle-filters").click()
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS["phone"]["width"]
    page.locator("#toggle-filters").click()
    page.locator("#grid .tile").nth(0).locator(".pick").click()
    page.locator("#grid .tile").nth(1).locator(".pick").click()
    bar = page.locator("#selection-bar").bounding_box()
    assert bar["x"] >= 0 and bar["x"] + bar["width"] <= VIEWPORTS["phone"]["width"], bar
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS["phone"]["width"]
    shot(page, "25-phone-selection")
