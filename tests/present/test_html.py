"""`search --html`: a self-contained results page, checked as text and as rendered by headless Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.helpers import run_cli
from tests.present.conftest import AWKWARD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
QUERY = '<script>alert("q")</script> & a "red" <i>thing</i>'


@pytest.fixture(scope="module")
def page_file(library, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html") / "sub" / "results.html"
    output = run_cli("search", QUERY, "--db", library.db, "--mode", "clip", "--min-score", "-1", "--html", out)
    assert f"Wrote 6 results to {out}" in output
    return out


def test_page_is_self_contained_and_escapes_everything(page_file, library):
    html = page_file.read_text(encoding="utf-8")
    assert "<script" not in html and "<i>thing" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;q&quot;)&lt;/script&gt; &amp; a &quot;red&quot;" in html
    assert not re.search(r"""(src|href)=["'](https?:|//)""", html)  # nothing fetched from anywhere
    assert html.count('src="data:image/jpeg;base64,') == 5  # six results, one file deleted since indexing
    assert "no preview: file not found" in html
    assert "Content-Security-Policy" in html


def test_json_output_and_html_page_together(library, tmp_path):
    out = tmp_path / "r.html"
    output = run_cli(
        "similar", library.root / "red.png", "--db", library.db, "--min-score", "-1", "--html", out, "--json"
    )
    note, _, rest = output.partition("\n")  # the note is on stderr, which the test runner mixes in
    assert note == f"Wrote 5 results to {out}"
    results = json.loads(rest)["results"]
    assert len(results) == 5 and out.read_text().count("<li ") == 5


def test_html_into_a_folder_says_to_name_a_file(library, tmp_path):
    output = run_cli("search", "x", "--db", library.db, "--mode", "clip", "--min-score", "-1", "--html", tmp_path,
                     expect=2)
    assert "directory" in output.lower() or "folder" in output.lower()


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)")
def test_page_renders_in_chromium_with_thumbnails_links_and_scores(page_file, library):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda msg: problems.append(msg.text))
        page.on("dialog", lambda dialog: (problems.append("dialog " + dialog.message), dialog.dismiss()))
        page.on("request", lambda req: None if req.url.startswith(("file:", "data:")) else problems.append(req.url))
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        assert page.title() == f"photoseek: {QUERY}"
        assert page.locator("#query").text_content() == QUERY
        assert page.locator("script").count() == 0
        items = page.locator("ol > li")
        assert items.count() == 6
        widths = page.eval_on_selector_all("li img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
        assert len(widths) == 5 and all(w and w > 0 for w in widths)
        assert page.eval_on_selector_all("li img", "imgs => imgs.map(i => i.getBoundingClientRect().height)")[0] > 50
        hrefs = page.eval_on_selector_all("a.path", "links => links.map(a => a.href)")
        paths = [Path(unquote(urlsplit(h).path)) for h in hrefs]
        assert {p.name for p in paths} == {"red.png", "blue.jpg", "gone.png", *AWKWARD}
        assert all(p.parent == library.root.resolve() for p in paths)
        names = page.eval_on_selector_all("a.path", "links => links.map(a => a.textContent)")
        assert set(names) == {p.name for p in paths}  # shown as written, not escaped twice
        scores = [float(s) for s in page.locator(".score").all_text_contents()]
        assert scores == sorted(scores, reverse=True)
        assert page.locator(".missing").text_content() == "no preview: file not found"
        browser.close()
    assert not problems, problems
