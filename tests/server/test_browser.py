"""End to end in headless Chromium (Playwright): type, see thumbnails, open, find similar, upload.

Skips when /usr/bin/chromium is absent (CI installs it). Screenshots land in
$PHOTOSEEK_TEST_ARTIFACTS (default: a temp folder), never in the checkout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from photoseek.server import ServerConfig
from tests.helpers import artifacts_dir
from tests.server.conftest import Library, serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TOKEN = "browser-test-token"
VIEWPORTS = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium (apt-get install chromium)"
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install playwright)")


@pytest.fixture(scope="module")
def server_url(library: Library) -> Iterator[str]:
    config = ServerConfig(db=library.db, model_path=library.model_dir, roots=(library.root,), token=TOKEN)
    yield from serve_in_thread(config)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def shot(request) -> Callable[[object, str], None]:
    """Saves a screenshot; tests that run on several screens get the screen's name in the file name."""
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    screen = f"-{params['page']}" if "page" in params else ""

    def take(page, name: str) -> None:
        page.screenshot(path=str(artifacts_dir() / f"{name}{screen}.png"))

    return take


@pytest.fixture(params=sorted(VIEWPORTS))
def page(browser, request, shot):
    """A fresh page, once on a desktop screen and once on a phone's (390x844, touch)."""
    phone = request.param == "phone"
    context = browser.new_context(viewport=VIEWPORTS[request.param], has_touch=phone, is_mobile=phone,
                                  device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    shot(page, f"{request.node.name}-final")
    context.close()
    if "wrong_token" in request.node.name:  # the refused first request is the point of that test
        errors = [e for e in errors if "401 (Unauthorized)" not in e]
    assert not errors, errors


def test_search_open_similar_and_upload(page, shot, server_url: str, library: Library):
    expect = sync_api.expect
    page.goto(f"{server_url}/?token={TOKEN}")
    assert "token=" not in page.url, "the token must not stay in the address bar"
    expect(page.locator("#status-label")).to_have_text("12 photos")
    shot(page, "01-welcome")

    page.locator("#q").fill("a red circle")
    tiles = page.locator("#grid .tile")
    expect(tiles).to_have_count(12)
    expect(page.locator("#grid .tile img.loaded")).to_have_count(12)  # thumbnails load through the cookie
    expect(page.locator("#summary")).to_contain_text("a red circle")
    assert "q=a+red+circle" in page.url
    shot(page, "02-results")

    tiles.first.click()
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    name = page.locator("#detail-name").inner_text()
    expect(page.locator("#detail-meta")).to_contain_text("Score")
    expect(page.locator("#detail-meta")).to_contain_text("Folder")
    assert page.locator("#detail-img").evaluate("img => img.complete && img.naturalWidth > 0")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#detail-name")).not_to_have_text(name)
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#detail-name")).to_have_text(name)
    shot(page, "03-detail")

    page.locator("#detail-similar").click()
    expect(detail).to_be_hidden()
    expect(page.locator("#example-chip")).to_be_visible()
    expect(page.locator("#example-label")).to_have_text(name)
    expect(tiles).to_have_count(11)  # everything except the image itself
    expect(page.locator("#summary")).to_contain_text(f"like {name}")
    shot(page, "04-similar")

    upload = library.root / "blue.jpg"
    page.locator("#file-input").set_input_files(str(upload))
    expect(page.locator("#example-label")).to_have_text("blue.jpg")
    expect(page.locator("#grid .tile").first).to_have_attribute("data-id", str(library.ids["blue.jpg"]))
    shot(page, "05-upload")


def test_keyboard_filters_and_empty_state(page, shot, server_url: str):
    expect = sync_api.expect
    page.goto(f"{server_url}/?token={TOKEN}")
    page.keyboard.press("/")
    page.keyboard.type("green square")
    tiles = page.locator("#grid .tile")
    expect(tiles).to_have_count(12)
    page.wait_for_load_state("networkidle")  # the last keystroke's search has answered: no re-render to come
    page.keyboard.press("ArrowDown")
    expect(tiles.nth(0)).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(tiles.nth(1)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#detail")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()

    page.locator("#toggle-filters").click()
    page.locator("#f-format").select_option("png")
    expect(tiles).to_have_count(6)
    expect(page.locator("#filter-count")).to_have_text("1")
    page.locator("#f-before").fill("1990-01-01")
    page.locator("#f-before").dispatch_event("change")
    expect(page.locator("#state")).to_contain_text("No matches")
    shot(page, "06-no-matches")
    page.locator("#state button", has_text="Clear filters").click()
    expect(tiles).to_have_count(12)
    page.locator("#f-min-size").fill("150")  # the JPEGs are 160x120, the PNGs 120x160
    page.locator("#f-min-size").dispatch_event("change")
    expect(page.locator("#state")).to_contain_text("No matches")
    page.locator("#f-min-size").fill("120")
    page.locator("#f-min-size").dispatch_event("change")
    expect(tiles).to_have_count(12)
    page.locator("#f-camera").fill("Hasselblad")  # the test photos carry no EXIF camera
    page.locator("#f-camera").dispatch_event("change")
    expect(tiles).to_have_count(0)
    expect(page.locator("#filter-count")).to_have_text("2")
    page.locator("#clear-filters").click()
    expect(tiles).to_have_count(12)
    expect(page.locator("#f-camera")).to_have_value("")


def test_wrong_token_asks_for_one_and_indexing_view_reports(page, shot, server_url: str):
    expect = sync_api.expect
    page.goto(f"{server_url}/?token=wrong")
    expect(page.locator("#token-dialog")).to_be_visible()
    expect(page.locator("#token-error")).to_be_visible()
    expect(page.locator("#token-error")).to_contain_text("not accepted")
    page.locator("#token-input").fill("still-wrong")
    page.locator("#token-dialog button[type=submit]").click()
    expect(page.locator("#token-dialog")).to_be_visible()
    expect(page.locator("#token-error")).to_contain_text("not accepted")
    shot(page, "07-token")
    page.locator("#token-input").fill(TOKEN)
    page.locator("#token-dialog button[type=submit]").click()
    expect(page.locator("#status-label")).to_have_text("12 photos")

    page.locator("#open-indexing").click()
    page.locator("#indexing-start").click()
    expect(page.locator("#indexing-report")).to_contain_text("unchanged", timeout=30_000)
    expect(page.locator("#indexing-text")).to_contain_text("Done")
    shot(page, "08-indexing")



def test_infinite_scroll_loads_every_page(browser, shot, tmp_path_factory, library: Library):
    from photoseek import ImageIndex
    from tests.helpers import COLOURS, draw_photo

    root = tmp_path_factory.mktemp("many")
    colours = list(COLOURS)
    for i in range(60):
        draw_photo(root / f"p{i:02d}.png", colours[i % len(colours)], size=(64, 48), seed=100 + i)
    db = root.parent / "many.db"
    with ImageIndex(db, model_path=library.model_dir) as index:
        index.index([root])
    server = serve_in_thread(ServerConfig(db=db, model_path=library.model_dir))
    url = next(server)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        page = context.new_page()
        page.goto(f"{url}/?q=shapes")
        tiles = page.locator("#grid .tile")
        sync_api.expect(tiles).to_have_count(48)  # the first page
        page.mouse.wheel(0, 20_000)
        sync_api.expect(tiles).to_have_count(60)
        ids = page.locator("#grid .tile").evaluate_all("tiles => tiles.map(t => t.dataset.id)")
        assert len(set(ids)) == 60
        sync_api.expect(page.locator("#summary")).not_to_contain_text("scroll for more")
        shot(page, "09-scrolled")
    finally:
        context.close()
        next(server, None)


def test_duplicates_view_moves_checked_copies_after_confirming(browser, shot, tmp_path_factory, library: Library):
    import shutil

    from PIL import Image

    from photoseek import ImageIndex
    from tests.helpers import draw_scene

    root = tmp_path_factory.mktemp("dups") / "photos"
    draw_scene(root / "a.jpg", 1)
    shutil.copy(root / "a.jpg", root / "a-copy.jpg")
    draw_scene(root / "b.jpg", 2, size=(320, 240))
    with Image.open(root / "b.jpg") as image:
        image.resize((160, 120)).save(root / "b-small.png")
    draw_scene(root / "c.jpg", 3)
    db = root.parent / "dups.db"
    with ImageIndex(db, model_path=library.model_dir) as index:
        index.index([root])
    dupes = root.parent / "dupes"
    server = serve_in_thread(ServerConfig(db=db, model_path=library.model_dir, duplicates_dir=dupes))
    url = next(server)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        page = context.new_page()
        page.goto(url)
        page.locator("#open-duplicates").click()
        groups = page.locator("#dup-groups .dup-group")
        sync_api.expect(groups).to_have_count(2)
        sync_api.expect(page.locator(".dup-card.keeper")).to_have_count(2)
        sync_api.expect(page.locator(".dup-card.keeper .dup-keeper")).to_have_text(["Keep", "Keep"])
        b_group = groups.filter(has_text="b-small.png")
        sync_api.expect(b_group.locator(".dup-card").first).to_contain_text("320×240")
        sync_api.expect(b_group).to_contain_text("keeper: largest")
        sync_api.expect(page.locator("#dup-groups img")).to_have_count(4)
        shot(page, "10-duplicates")

        page.locator('.dup-pick[aria-label="Move a-copy.jpg"]').uncheck()  # only the b copy
        page.locator("#dup-move").click()
        sync_api.expect(page.locator("#dup-confirm")).to_contain_text("Move 1 file to")
        assert (root / "b-small.png").exists(), "nothing moves before the confirmation"
        shot(page, "11-duplicates-confirm")
        page.locator("#dup-confirm-move").click()
        sync_api.expect(page.locator("#dup-summary")).to_contain_text("Moved 1 file")
        sync_api.expect(groups).to_have_count(1)
        assert not (root / "b-small.png").exists() and (dupes / "photos" / "b-small.png").is_file()

        page.locator("#dup-undo").click()
        sync_api.expect(page.locator("#dup-summary")).to_contain_text("Moved 1 back")
        sync_api.expect(groups).to_have_count(2)
        assert (root / "b-small.png").is_file()
    finally:
        context.close()
        next(server, None)


def test_duplicates_view_leaves_similar_shots_unchecked(browser, tmp_path_factory, library: Library):
    """The same pixels as PNG: a near copy, and in the similar tier (identical embeddings) a similar
    shot. Near copies start checked; similar shots wait to be picked, as the CLI moves near by default."""
    from PIL import Image

    from photoseek import ImageIndex
    from tests.helpers import draw_scene

    root = tmp_path_factory.mktemp("similar") / "photos"
    with Image.open(draw_scene(root / "c.jpg", 3)) as image:
        image.convert("RGB").save(root / "c-again.png")
    draw_scene(root / "d.jpg", 4)
    db = root.parent / "similar.db"
    with ImageIndex(db, model_path=library.model_dir) as index:
        index.index([root])
    server = serve_in_thread(ServerConfig(db=db, model_path=library.model_dir, duplicates_dir=root.parent / "dupes"))
    url = next(server)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        page = context.new_page()
        page.goto(url)
        page.locator("#open-duplicates").click()
        copy = page.locator('.dup-card:not(.keeper) .dup-pick[aria-label^="Move c"]')
        sync_api.expect(copy).to_have_count(1)
        sync_api.expect(copy).to_be_checked()  # near tier (the view's default)
        page.locator("#dup-tier").select_option("similar")
        page.locator("#dup-find").click()
        sync_api.expect(page.locator(".dup-card:not(.keeper) .dup-tier").first).to_have_text("similar")
        sync_api.expect(page.locator(".dup-card:not(.keeper) .dup-pick:checked")).to_have_count(0)
        sync_api.expect(page.locator("#dup-move")).to_be_disabled()
    finally:
        context.close()
        next(server, None)
