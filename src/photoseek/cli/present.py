"""`--preview` and `--html` for result lists: thumbnails in the terminal, a results page on disk."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape

from photoseek.cli.common import err
from photoseek.present import OVERRIDE_ENV

if TYPE_CHECKING:
    from photoseek.search.engine import SearchResult

PreviewOption = Annotated[
    bool,
    typer.Option(
        "--preview",
        help="Show thumbnails in the terminal (kitty, iTerm2, WezTerm, sixel terminals such as foot); "
        f"plain text elsewhere. ${OVERRIDE_ENV}=kitty|iterm|sixel|none overrides the guess.",
    ),
]
HtmlOption = Annotated[
    Optional[Path],
    typer.Option(
        "--html", dir_okay=False, help="Also write the results as one self-contained HTML page (thumbnails inside)."
    ),
]


def present_results(
    label: str,
    results: Sequence[SearchResult],
    *,
    model: str | None,
    preview: bool,
    html: Path | None,
    as_json: bool,
    explain: Callable[[SearchResult], str],
) -> bool:
    """Write the HTML page if asked; True when thumbnails were printed (so the plain listing is not)."""
    from photoseek.present.html import write_results_page
    from photoseek.present.terminal import detect_protocol, print_previews

    if html is not None:
        written = write_results_page(html, label, results, model=model, explain=explain)
        err.print(f"Wrote {len(results)} results to {escape(str(written))}", highlight=False)
    if not preview or as_json or not results:
        return False
    protocol = detect_protocol(os.environ, sys.stdout.isatty())
    if protocol is None:
        if sys.stdout.isatty():
            err.print(f"--preview: no inline-image support detected in this terminal; set {OVERRIDE_ENV} "
                      "to kitty, iterm or sixel if it has some.", highlight=False)
        return False
    print_previews(results, sys.stdout, protocol, explain)
    return True
