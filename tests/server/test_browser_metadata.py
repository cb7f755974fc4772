"""The web UI's place, distance, rating and label filters and the detail view's place, rating and
label, in headless Chromium over photos whose GPS and ratings the test writes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PIL import Image

from photoseek import ImageIndex
from photoseek.server import ServerConfig
from tests.helpers import artifacts_dir, draw_scene
from tests.places.test_gps import located
from tests.server.conftest import serve_in_thread
from tests.server.test_browser import CHROMIUM, TOKEN, browser  # noqa: F401  (the shared Chromium)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install playwright)")
pytest.importorskip("reverse_geocode")

RATED = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="5" xmp:Label="Red"/>
</rdf:RDF></x:xmpmeta>"""


@pytest.fixture(scope="module")
def server_url(tmp_path_factory, tiny_clip_dir) -> Iterator[str]:
    root = tmp_path_factory.mktemp("ui-places") / "photos"
    root.mkdir()
    for seed, (name, where) in enumerate((("IMG_1.jpg", (41.1496, -8.6110)), ("IMG_2.jpg", (-33.8688, 151.2093)),
                                          ("IMG_3.jpg", None))):
        draw_scene(root / name, seed, size=(320, 240))
        if where:
            Image.open(root / name).save(root / name, exif=located(*where))
    (root / "IMG_1.jpg.xmp").write_text(RATED)
    db = root.parent / "c.db"
    with ImageIndex(db, model_path=tiny_clip_dir) as index:
        index.index([root])
        for name in ("IMG_1.jpg", "IMG_2.jpg", "IMG_3.jpg"):
            index.tag(root / name, ["harbour"])  # a word every photo has, so the query matches all three
    yield from serve_in_thread(ServerConfig(db=db, model_path=tiny_clip_dir, roots=(root,), token=TOKEN))


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 860}, {"width": 390, "height": 844}])
def test_place_rating_and_label_filters_and_detail(server_url: str, viewport: dict[str, int], browser):  # noqa: F811
    expect = sync_api.expect
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server_url}/?token={TOKEN}")
    page.locator("#q").fill("harbour")
    tiles = page.locator("#grid .tile")
    expect(tiles).to_have_count(3)
    page.locator("#toggle-filters").click()

    def apply(field: str, value: str) -> None:
        locator = page.locator(f"#{field}")
        if field == "f-min-rating":
            locator.select_option(value)
        else:
            locator.fill(value)
            locator.blur()  # the browser's own change event, as when the user tabs or clicks away

    apply("f-place", "portugal")
    expect(tiles).to_have_count(1)
    expect(page.locator("#filter-count")).to_have_text("1")
    apply("f-place", "")
    apply("f-near", "-33.87,151.21,5")
    expect(tiles).to_have_count(1)
    apply("f-near", "")
    apply("f-min-rating", "4")
    expect(tiles).to_have_count(1)
    apply("f-label", "green")
    expect(page.locator("#state")).to_contain_text("No matches")
    apply("f-label", "RED")
    expect(tiles).to_have_count(1)
    panel = page.locator("#filters")
    assert panel.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), "the filter row overflows"
    page.screenshot(path=str(artifacts_dir() / f"metadata-filters-{viewport['width']}.png"))
    tiles.first.click()
    meta = page.locator("#detail-meta")
    expect(meta).to_contain_text("Porto, Portugal")
    expect(meta).to_contain_text("★★★★★")
    expect(meta).to_contain_text("Red")
    page.screenshot(path=str(artifacts_dir() / f"metadata-detail-{viewport['width']}.png"))
    page.keyboard.press("Escape")
    page.locator("#clear-filters").click()
    expect(tiles).to_have_count(3)
    context.close()
    assert not errors, errors
