"""`imgsearch search` and `imgsearch similar`: rank the catalog by texts and example images."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from imgsearch.api import ImageIndex
from imgsearch.cli.common import (
    DbOption,
    JsonOption,
    MinScoreOption,
    ModelOption,
    ModelPathOption,
    TextModelOption,
    TopKOption,
    app,
    err,
    out,
    print_error,
    print_json,
    user_errors,
)
from imgsearch.cli.present import HtmlOption, PreviewOption, present_results
from imgsearch.errors import ImgsearchError
from imgsearch.search.engine import SearchResult
from imgsearch.search.filters import SearchFilters

InOption = Annotated[Optional[Path], typer.Option("--in", help="Only images in this folder (and below).")]
AfterOption = Annotated[
    Optional[str], typer.Option("--after", help="Taken on or after this date (2020-01-31); mtime if no EXIF.")
]
BeforeOption = Annotated[Optional[str], typer.Option("--before", help="Taken before this date.")]
FormatOption = Annotated[
    Optional[list[str]], typer.Option("--format", help="Only this file format, e.g. heic (repeatable).")
]
MinSizeOption = Annotated[
    Optional[int], typer.Option("--min-size", min=1, help="Only images at least this many pixels wide and high.")
]
CameraOption = Annotated[Optional[str], typer.Option("--camera", help="Camera make/model contains this text.")]
OffsetOption = Annotated[int, typer.Option(min=0, help="Skip this many results (paging).")]


def _filters(
    folder: Path | None, after: str | None, before: str | None,
    formats: list[str] | None, min_size: int | None, camera: str | None,
) -> SearchFilters:
    return SearchFilters(
        folder=str(folder) if folder else None, after=after, before=before,
        formats=tuple(formats or ()), min_width=min_size, min_height=min_size, camera=camera,
    )


@app.command()
def search(
    query: Annotated[
        Optional[list[str]],
        typer.Argument(help="What to look for. Several texts add up; '2:beach' counts one twice."),
    ] = None,
    negatives: Annotated[
        Optional[list[str]], typer.Option("--not", "-n", help="Text to steer away from (repeatable).")
    ] = None,
    images: Annotated[
        Optional[list[Path]], typer.Option("--image", "-i", help="Example image to add (repeatable).")
    ] = None,
    top: TopKOption = 10,
    offset: OffsetOption = 0,
    min_score: MinScoreOption = None,
    folder: InOption = None,
    after: AfterOption = None,
    before: BeforeOption = None,
    formats: FormatOption = None,
    min_size: MinSizeOption = None,
    camera: CameraOption = None,
    mode: Annotated[
        Optional[str],
        typer.Option(
            "--mode",
            help="clip, text, keyword, hybrid (default once images have text) or clip-hybrid "
            "(CLIP over image+text blended vectors).",
        ),
    ] = None,
    weights: Annotated[
        Optional[list[str]], typer.Option("--weight", "-w", help="Signal weight, e.g. keyword=1 (repeatable).")
    ] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Show each signal's share and the matched text.")] = False,
    db: DbOption = None,
    model: ModelOption = None,
    model_path: ModelPathOption = None,
    text_model: TextModelOption = None,
    preview: PreviewOption = False,
    html: HtmlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Search by text and example images. With no query, opens an interactive prompt."""
    with user_errors(), ImageIndex(
        db, model=model, model_path=model_path, text_model=text_model, create=False
    ) as idx:
        filters = _filters(folder, after, before, formats, min_size, camera)
        if not query and not images:
            _interactive(idx, top, min_score, filters)
            return
        results = idx.search(
            query or [], images=images or [], negatives=negatives or [], k=top, offset=offset,
            min_score=min_score, filters=filters, mode=mode, weights=parse_weights(weights or []),
            explain=explain,
        )
        label = " ".join(query or []) or ", ".join(str(p) for p in images or [])
        _show_results(label, results, idx, as_json, preview, html)


@app.command()
def similar(
    image: Annotated[Path, typer.Argument(help="Any image file, indexed or not.")],
    top: TopKOption = 10,
    offset: OffsetOption = 0,
    min_score: MinScoreOption = None,
    folder: InOption = None,
    after: AfterOption = None,
    before: BeforeOption = None,
    formats: FormatOption = None,
    min_size: MinSizeOption = None,
    camera: CameraOption = None,
    db: DbOption = None,
    model: ModelOption = None,
    model_path: ModelPathOption = None,
    preview: PreviewOption = False,
    html: HtmlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find images that look like IMAGE."""
    with user_errors(), ImageIndex(db, model=model, model_path=model_path, create=False) as idx:
        filters = _filters(folder, after, before, formats, min_size, camera)
        results = idx.similar(image, k=top, offset=offset, min_score=min_score, filters=filters)
        _show_results(str(image), results, idx, as_json, preview, html)


def _interactive(idx: ImageIndex, top: int, min_score: float | None, filters: SearchFilters) -> None:
    """A query loop that keeps the model loaded between queries."""
    out.print("Type a query (prefix '-' to subtract, e.g. 'beach -people'); 'exit' to quit.")
    while True:
        try:
            line = input("imgsearch> ").strip()
        except (EOFError, KeyboardInterrupt):
            out.print()
            return
        if line in {"exit", "quit", ":q"}:
            return
        if not line:
            continue
        positives, negatives = _split_signs(line)
        try:
            results = idx.search(
                positives, negatives=negatives, k=top, min_score=min_score, filters=filters
            )
        except ImgsearchError as exc:
            print_error(str(exc))
            continue
        _print_results(line, results, idx, as_json=False)


def parse_weights(pairs: list[str]) -> dict[str, float] | None:
    """['text=2', 'keyword=0.5'] -> {'text': 2.0, 'keyword': 0.5}."""
    weights: dict[str, float] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise ImgsearchError(f"Bad --weight {pair!r}: write SIGNAL=NUMBER, e.g. keyword=0.5.") from None
    return weights or None


def _split_signs(line: str) -> tuple[list[str], list[str]]:
    """'beach -people +sunset' -> (['beach', 'sunset'], ['people']); words group until a sign."""
    positives: list[str] = []
    negatives: list[str] = []
    target, words = positives, []
    for word in line.split():
        if word[:1] in "+-" and len(word) > 1:
            if words:
                target.append(" ".join(words))
            target, words = (negatives if word[0] == "-" else positives), [word[1:]]
        else:
            words.append(word)
    if words:
        target.append(" ".join(words))
    return positives, negatives


def _show_results(
    label: str, results: list[SearchResult], idx: ImageIndex, as_json: bool, preview: bool, html: Path | None
) -> None:
    """--html and --preview first; the table, tab-separated lines or JSON unless thumbnails were shown."""
    model = idx.catalog.model_id
    if not present_results(label, results, model=model, preview=preview, html=html, as_json=as_json,
                           explain=_explanation):
        _print_results(label, results, idx, as_json)


def _print_results(label: str, results: list[SearchResult], idx: ImageIndex, as_json: bool) -> None:
    if as_json:
        print_json({
            "query": label, "model": idx.catalog.model_id,
            "results": [r.to_dict() for r in results],
        })
        return
    if not results:
        err.print(f"No good match for {label!r}: nothing scores above the cut-off. "
                  "Try other words, or --min-score 0 to see the closest images anyway.")
        return
    if not sys.stdout.isatty():
        for r in results:
            print(f"{r.score:.4f}\t{r.path}" + (f"\t{_explanation(r)}" if r.signals else ""))
        return
    table = Table("#", "score", "path", "size", "taken", title=escape(f"Results for {label!r}"))
    explained = any(r.signals for r in results)
    if explained:
        table.add_column("why")
    for r in results:
        table.add_row(
            str(r.rank), f"{r.score:.3f}", Text(r.path, style=f"link {Path(r.path).as_uri()}"),
            f"{r.width}x{r.height}", r.taken_at or "", *([escape(_explanation(r))] if explained else []),
        )
    out.print(table)


def _explanation(result: SearchResult) -> str:
    """'clip 0.12 + text 0.31 + keyword 0.08 | "a dog on the [beach]"'."""
    shares = " + ".join(f"{name} {share:.3f}" for name, share in (result.signals or {}).items())
    if not result.matched_text:
        return shares
    matched = " / ".join(result.matched_text.splitlines())
    return f'{shares} | "{matched}"'


