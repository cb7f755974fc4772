"""`photoseek search` and `photoseek similar`: rank the catalog by texts and example images."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from photoseek.api import ImageIndex
from photoseek.cli.common import (
    DbOption,
    DeviceOption,
    JsonOption,
    MinScoreOption,
    ModelOption,
    ModelPathOption,
    TextModelOption,
    TopKOption,
    app,
    err,
    out,
    parse_weights,
    print_error,
    print_json,
    user_errors,
)
from photoseek.cli.present import HtmlOption, PreviewOption, present_results
from photoseek.errors import PhotoseekError
from photoseek.models.session import one_shot
from photoseek.search.engine import SearchResult
from photoseek.store.catalog import escape_undecodable
from photoseek.store.filters import SearchFilters

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
TopicOption = Annotated[
    Optional[str], typer.Option("--topic", help="Only images tagged with this topic (`photoseek topics` lists them).")
]
OffsetOption = Annotated[int, typer.Option(min=0, help="Skip this many results (paging).")]


@dataclass(frozen=True)
class _Options:
    """How every query of one command is ranked and shown (the interactive prompt reuses them)."""

    k: int
    offset: int
    min_score: float | None
    filters: SearchFilters
    mode: str | None = None
    weights: dict[str, float] | None = None
    explain: bool = False
    as_json: bool = False
    preview: bool = False
    html: Path | None = None


def _filters(
    idx: ImageIndex, folder: Path | None, after: str | None, before: str | None,
    formats: list[str] | None, min_size: int | None, camera: str | None, topic: str | None = None,
) -> SearchFilters:
    filters = SearchFilters(
        folder=str(folder) if folder else None, after=after, before=before,
        formats=tuple(formats or ()), min_width=min_size, min_height=min_size, camera=camera, topic=topic,
    )
    if topic:
        idx.check_topic(topic)
    # A folder that is gone still filters when the catalog holds images from it (an unplugged disk).
    if folder and not folder.expanduser().exists() and not idx.count_matching(SearchFilters(folder=str(folder))):
        raise PhotoseekError(f"--in {folder}: no such folder, and no indexed image is in it. Check the path.")
    return filters


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
    topic: TopicOption = None,
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
    explain: Annotated[bool, typer.Option(
        "--explain",
        help="Show each signal's evidence (log-odds), the matched text and how well each signal is calibrated here.",
    )] = False,
    db: DbOption = None,
    model: ModelOption = None,
    model_path: ModelPathOption = None,
    device: DeviceOption = "auto",
    text_model: TextModelOption = None,
    preview: PreviewOption = False,
    html: HtmlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Search by text and example images.

    With no query, reads one query per line (an interactive prompt on a terminal, or piped
    lines); every option applies to each of them.
    """
    with user_errors(), ImageIndex(
        db, model=model, model_path=model_path, text_model=text_model, create=False, device=device
    ) as idx:
        options = _Options(
            k=top, offset=offset, min_score=min_score,
            filters=_filters(idx, folder, after, before, formats, min_size, camera, topic),
            mode=mode, weights=parse_weights(weights or []), explain=explain, as_json=as_json,
            preview=preview, html=html,
        )
        if not query and not images:
            _interactive(idx, options)
            return
        with one_shot():  # this process runs each model once
            results = idx.search(
                query or [], images=images or [], negatives=negatives or [], k=top, offset=offset,
                min_score=min_score, filters=options.filters, mode=mode, weights=options.weights,
                explain=explain,
            )
        label = " ".join(query or []) or ", ".join(str(p) for p in images or [])
        _print_results(label, results, idx, options)


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
    topic: TopicOption = None,
    db: DbOption = None,
    model: ModelOption = None,
    model_path: ModelPathOption = None,
    preview: PreviewOption = False,
    html: HtmlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find images that look like IMAGE."""
    with user_errors(), ImageIndex(db, model=model, model_path=model_path, create=False) as idx:
        options = _Options(
            k=top, offset=offset, min_score=min_score, as_json=as_json, preview=preview, html=html,
            filters=_filters(idx, folder, after, before, formats, min_size, camera, topic),
        )
        with one_shot():
            results = idx.similar(image, k=top, offset=offset, min_score=min_score, filters=options.filters)
        _print_results(str(image), results, idx, options, mode="clip")


def _interactive(idx: ImageIndex, options: _Options) -> None:
    """A query loop that keeps the models loaded between queries.

    The prompt shows only on a terminal, so piped queries give clean output (JSON: one line each).
    """
    prompt = "photoseek> " if sys.stdin.isatty() else ""
    if prompt:
        err.print("Type a query (prefix '-' to subtract, e.g. 'beach -people'); 'exit' to quit.")
    while True:
        try:
            line = input(prompt).strip()
        except (EOFError, KeyboardInterrupt):
            if prompt:
                err.print()
            return
        if line in {"exit", "quit", ":q"}:
            return
        if not line:
            continue
        positives, negatives = _split_signs(line)
        try:
            results = idx.search(
                positives, negatives=negatives, k=options.k, offset=options.offset,
                min_score=options.min_score, filters=options.filters, mode=options.mode,
                weights=options.weights, explain=options.explain,
            )
        except PhotoseekError as exc:
            print_error(str(exc))
            continue
        _print_results(line, results, idx, options, one_line=True)


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


def _print_results(
    label: str, results: list[SearchResult], idx: ImageIndex, options: _Options,
    *, one_line: bool = False, mode: str | None = None,
) -> None:
    """--html and --preview first; then JSON, tab-separated lines or a table, unless thumbnails were shown."""
    shown = present_results(
        label, results, model=idx.catalog.model_id, preview=options.preview, html=options.html,
        as_json=options.as_json, explain=_explanation,
    )
    if shown:
        return
    if options.explain and not options.as_json:
        for line in idx.hybrid.summary():  # on stderr: piped result lines stay one per result
            err.print(escape(line), highlight=False)
    if options.as_json:
        payload = {"query": label, "model": idx.catalog.model_id, "results": [r.to_dict() for r in results]}
        if options.explain:
            payload["calibration"] = idx.hybrid.summary()
        if one_line:
            print(json.dumps(payload, ensure_ascii=False), flush=True)
        else:
            print_json(payload)
        return
    if not results:
        err.print(escape(_why_empty(label, idx, options, mode or options.mode)), highlight=False)
        return
    if not sys.stdout.isatty():
        for r in results:
            print(f"{r.score:.4f}\t{escape_undecodable(r.path)}" + (f"\t{_explanation(r)}" if r.signals else ""))
        return
    table = Table("#", "score", "path", "size", "taken", title=escape(f"Results for {label!r}"))
    explained = any(r.signals for r in results)
    if explained:
        table.add_column("why")
    for r in results:
        table.add_row(
            str(r.rank), f"{r.score:.3f}", Text(escape_undecodable(r.path), style=f"link {Path(r.path).as_uri()}"),
            f"{r.width}x{r.height}", r.taken_at or "", *([escape(_explanation(r))] if explained else []),
        )
    out.print(table)


def _why_empty(label: str, idx: ImageIndex, options: _Options, mode: str | None) -> str:
    """Which of the filters, the paging or the score cut-off left nothing to show."""
    if options.filters and idx.count_matching(options.filters) == 0:
        return f"No image matches the filters ({_describe(options.filters)}); loosen or drop them."
    if options.offset and options.offset >= idx.count_matching(options.filters):
        return f"No results past --offset {options.offset}: fewer images match."
    if mode == "keyword" and not idx.search(label, mode="keyword", k=1, min_score=0, filters=options.filters):
        return (f"No image text contains the words of {label!r} (words such as 'the', and words found in most "
                "images, single out nothing). Try other words or another --mode.")
    if options.min_score is not None:
        return f"No result for {label!r} scores --min-score {options.min_score:g} or more; lower it to see more."
    return (f"No good match for {label!r}: nothing scores above the cut-off. "
            "Try other words, or --min-score 0 to see the closest images anyway.")


def _describe(filters: SearchFilters) -> str:
    """The filters as the flags that set them: '--in /photos --format heic'."""
    flags = [("--in", filters.folder), ("--after", filters.after), ("--before", filters.before),
             *(("--format", f) for f in filters.formats), ("--min-size", filters.min_width),
             ("--camera", filters.camera)]
    return " ".join(f"{flag} {value}" for flag, value in flags if value is not None)


def _explanation(result: SearchResult) -> str:
    """'clip 0.000 + text 3.120 + keyword 4.000 | "a dog on the [beach]"': each signal's evidence."""
    shares = " + ".join(f"{name} {share:.3f}" for name, share in (result.signals or {}).items())
    if not result.matched_text:
        return shares
    matched = " / ".join(result.matched_text.splitlines())
    return f'{shares} | "{matched}"'


