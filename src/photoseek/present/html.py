"""A self-contained HTML page of search results: thumbnails inline as data URLs, links to the files.

One file that opens in any browser, offline, and can be mailed or archived: no scripts, no
external resources (a Content-Security-Policy forbids them), every text from the catalog or the
query escaped, since file names and queries are arbitrary text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from photoseek.durable import write_atomically
from photoseek.errors import BadInput, PhotoseekError, UnreadableImageError
from photoseek.imaging.encode import jpeg_data_url
from photoseek.ingest.encode import thumbnail
from photoseek.search.engine import SearchResult
from photoseek.store.catalog import escape_undecodable

THUMB_SIDE = 320
"""Sharp in a 160-220 px grid cell on high-density screens; about 20 KB per photo."""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;background:#fafafa;color:#222}
h1{font-size:1.3rem;margin:0 0 .2rem} .meta{color:#666;margin:0 0 1rem}
ol{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:1rem}
li{background:#fff;border:1px solid #ddd;border-radius:6px;overflow:hidden}
li a.thumb{display:flex;align-items:center;justify-content:center;height:220px;background:#eee}
li img{max-width:100%;max-height:220px;display:block}
.missing{color:#a00;padding:1rem;text-align:center}
.info{padding:.5rem .6rem;word-break:break-all} .score{font-weight:600}
.folder,.details,.why{color:#666;font-size:12px}
"""


def results_page(
    query: str,
    results: Sequence[SearchResult],
    *,
    model: str | None = None,
    explain: Callable[[SearchResult], str] | None = None,
) -> str:
    """The whole page as a string; unreadable files get a placeholder that says why."""
    made = datetime.now(timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M")
    meta = f"{len(results)} result{'s' * (len(results) != 1)}" + (f" · model {model}" if model else "") + f" · {made}"
    items = "\n".join(_item(r, explain) for r in results)
    empty = "" if results else '<p class="missing">No good match: nothing scored above the cut-off.</p>'
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>photoseek: {escape(query)}</title><style>{_STYLE}</style></head>\n<body>\n"
        f'<h1>Results for <q id="query">{escape(query)}</q></h1>\n<p class="meta">{escape(meta)}</p>\n'
        f"{empty}<ol>\n{items}\n</ol>\n</body></html>\n"
    )


def write_results_page(path: Path, query: str, results: Sequence[SearchResult], **kwargs: object) -> Path:
    """Write the page atomically (a half-written page never replaces a good one)."""
    page = results_page(query, results, **kwargs)  # type: ignore[arg-type]
    target = path.expanduser()
    if target.is_dir():
        raise BadInput(f"--html {target} is a folder: give a file name, e.g. {target / 'results.html'}.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, page.encode("utf-8"))
    except OSError as exc:
        raise PhotoseekError(f"Cannot write {target}: {exc.strerror or exc}. Choose another --html path.") from exc
    return target


def _text(text: str) -> str:
    """HTML-escaped, with a file name's undecodable bytes as \\xNN so the page can be written as UTF-8."""
    return escape(escape_undecodable(text))


def _item(result: SearchResult, explain: Callable[[SearchResult], str] | None) -> str:
    path = Path(result.path)
    href = escape(path.as_uri())
    try:
        picture = f'<img src="{jpeg_data_url(thumbnail(path, THUMB_SIDE), THUMB_SIDE)}" alt="{_text(path.name)}">'
    except UnreadableImageError as exc:
        picture = f'<span class="missing">no preview: {escape(str(exc))}</span>'
    taken = result.taken_at.replace("T", " ") if result.taken_at else None
    details = " · ".join(filter(None, [f"{result.width}×{result.height}", taken, result.camera]))
    why = explain(result) if explain and result.signals else ""
    return (
        f'<li data-rank="{result.rank}"><a class="thumb" href="{href}">{picture}</a><div class="info">'
        f'<span class="rank">#{result.rank}</span> <span class="score">{result.score:.3f}</span><br>'
        f'<a class="path" href="{href}" title="{_text(result.path)}">{_text(path.name)}</a>'
        f'<div class="folder">{_text(str(path.parent))}</div><div class="details">{escape(details)}</div>'
        + (f'<div class="why">{escape(why)}</div>' if why else "")
        + "</div></li>"
    )
