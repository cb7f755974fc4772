"""`photoseek search` and `photoseek similar`: rank the catalog by texts and example images."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand, TyperOption

from photoseek.albums import LinkReport
from photoseek.cli.common import (
    DbOption,
    DeviceOption,
    InOption,
    JsonOption,
    MinScoreOption,
    ModelOption,
    ModelPathOption,
    TextModelOption,
    TopKOption,
    click,
    command_app,
    err,
    out,
    parse_weights,
    print_error,
    print_json,
    user_errors,
)
from photoseek.cli.present import HtmlOption, PreviewOption, present_results
from photoseek.errors import NotFound, PhotoseekError
from photoseek.search.query import NEGATIVE_WEIGHT, Query
from photoseek.store.filters import DEFAULT_NEAR_KM, SearchFilters, parse_near

app = command_app()

if TYPE_CHECKING:  # the API and search engine load when a command runs: --help and typos stay fast
    from photoseek.api import ImageIndex
    from photoseek.search.engine import SearchResult
    from photoseek.search.modes import Mode

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
PlaceOption = Annotated[Optional[str], typer.Option(
    "--place", help="Only photos taken in this town, region or country (from their GPS; case and accents aside).",
)]
NearOption = Annotated[Optional[str], typer.Option(
    "--near", metavar="LAT,LON[,KM]",
    help=f"Only photos taken within KM (default {DEFAULT_NEAR_KM:g}) of this point, e.g. 41.15,-8.61,5.",
)]
MinRatingOption = Annotated[Optional[int], typer.Option(
    "--min-rating", min=0, max=5, help="Only images rated this many stars or more (xmp:Rating, Windows rating).",
)]
LabelOption = Annotated[Optional[str], typer.Option(
    "--label", help="Only images with this label (xmp:Label, e.g. Red; darktable colour labels too).",
)]
OffsetOption = Annotated[int, typer.Option(min=0, help="Skip this many results (paging).")]
SortOption = Annotated[
    str, typer.Option("--sort", help="Show the results best first (score), newest first (date), oldest first "
                      "(oldest) or by path (name); the results are still the best matches.")
]
LinkToOption = Annotated[
    Optional[Path], typer.Option("--link-to", help="Save the results as an album: a link to each in this folder "
                                 "(created if missing; names made unique, nothing overwritten).")
]
HardlinkOption = Annotated[
    bool, typer.Option("--hardlink", help="With --link-to: hard links instead of symbolic ones (same disk only).")
]


@dataclass(frozen=True)
class _MetaFilters:
    """The filters on what people and their photo tools wrote into the files: place, rating, label."""

    place: str | None = None
    near: str | None = None
    min_rating: int | None = None
    label: str | None = None


@dataclass(frozen=True)
class _Options:
    """How every query of one command is ranked and shown (the interactive prompt reuses them)."""

    k: int
    offset: int
    min_score: float | None
    filters: SearchFilters
    mode: Mode | None = None
    weights: dict[str, float] | None = None
    explain: bool = False
    as_json: bool = False
    preview: bool = False
    html: Path | None = None
    sort: str = "score"
    link_to: Path | None = None
    hardlink: bool = False


def _filters(
    idx: ImageIndex, folder: Path | None, after: str | None, before: str | None,
    formats: list[str] | None, min_size: int | None, camera: str | None, topic: str | None = None,
    meta: _MetaFilters = _MetaFilters(),
) -> SearchFilters:
    filters = SearchFilters(
        folder=str(folder) if folder else None, after=after, before=before,
        formats=tuple(formats or ()), min_width=min_size, min_height=min_size, camera=camera, topic=topic,
        place=meta.place, near=parse_near(meta.near) if meta.near else None, min_rating=meta.min_rating,
        label=meta.label,
    )
    if topic:
        idx.check_topic(topic)
    if meta.place:
        idx.check_place(meta.place)
    # A folder that is gone still filters when the catalog holds images from it (an unplugged disk).
    if folder and not folder.expanduser().exists() and not idx.count_matching(SearchFilters(folder=str(folder))):
        raise NotFound(f"--in {folder}: no such folder, and no indexed image is in it. Check the path.")
    return filters


class _SearchCommand(TyperCommand):
    """Takes a query term with a negative weight ('-1:dog') as an argument, not as an unknown option."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _negative_terms_last(args, self._options_with_values()))

    def _options_with_values(self) -> set[str]:
        return {
            name for param in self.params if isinstance(param, TyperOption) and not param.is_flag
            for name in (*param.opts, *param.secondary_opts)
        }


def _negative_terms_last(args: list[str], options: set[str]) -> list[str]:
    """The arguments, with each '-W:TEXT' term (not an option's value) moved behind a '--', where
    click reads it as an argument."""
    kept: list[str] = []
    moved: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            moved += list(rest)
            break
        if NEGATIVE_WEIGHT.match(arg):
            moved.append(arg)
            continue
        kept.append(arg)
        if arg in options:  # its value stays with it, whatever it looks like ('--not -1:cat')
            kept += [value for value in [next(rest, None)] if value is not None]
    return [*kept, "--", *moved] if moved else kept


@app.command(cls=_SearchCommand)
def search(
    query: Annotated[
        Optional[list[str]],
        typer.Argument(
            help="What to look for, one term each: texts add up; '2:beach' counts one twice, '-1:people' "
            "subtracts one.",
        ),
    ] = None,
    negatives: Annotated[
        Optional[list[str]],
        typer.Option("--not", "-n", help="Text to steer away from (repeatable; '2:people' subtracts it twice)."),
    ] = None,
    images: Annotated[
        Optional[list[Path]],
        typer.Option("--image", "-i", help="Example image to add (repeatable; '2:FILE' counts it twice)."),
    ] = None,
    negative_images: Annotated[
        Optional[list[Path]],
        typer.Option("--not-image", help="Example image to steer away from (repeatable)."),
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
    place: PlaceOption = None,
    near: NearOption = None,
    min_rating: MinRatingOption = None,
    label_: LabelOption = None,
    mode: Annotated[
        Optional[str],
        typer.Option(
            "--mode",
            help="clip, text, keyword, hybrid (default once images have text; clip for example images alone) "
            "or clip-hybrid (CLIP over image+text blended vectors).",
        ),
    ] = None,
    weights: Annotated[
        Optional[list[str]], typer.Option("--weight", "-w", help="Signal weight, e.g. keyword=1 (repeatable).")
    ] = None,
    explain: Annotated[bool, typer.Option(
        "--explain",
        help="Show each signal's evidence (log-odds), the matched text and how well each signal is calibrated here.",
    )] = False,
    sort: SortOption = "score",
    link_to: LinkToOption = None,
    hardlink: HardlinkOption = False,
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
    lines); every option applies to each of them, --not, --image and --not-image included. A line
    holds the same terms and options as this command line, and '-word' there subtracts too:
    'red car -people on bikes 2:sunset --not-image ~/crowd.jpg' (double quotes group words).
    """
    from photoseek.api import ImageIndex
    from photoseek.models.runtime import one_shot
    from photoseek.search.modes import Mode

    with user_errors(), ImageIndex(
        db, model=model, model_path=model_path, text_model=text_model, create=False, device=device
    ) as idx:
        chosen = Mode.parse(mode) if mode else None  # a bad --mode fails before any model loads
        options = _Options(
            k=top, offset=offset, min_score=min_score,
            filters=_filters(
                idx, folder, after, before, formats, min_size, camera, topic,
                _MetaFilters(place, near, min_rating, label_),
            ),
            mode=chosen, weights=parse_weights(weights or []), explain=explain, as_json=as_json,
            preview=preview, html=html, sort=_checked_sort(sort), link_to=link_to, hardlink=hardlink,
        )
        given = Query.build(
            query or [], images=[str(p) for p in images or []], negatives=negatives or [],
            negative_images=[str(p) for p in negative_images or []],
        )
        # No text: query lines, each joined by the terms given here. An --image alone on a terminal,
        # or piped with no line at all (a script), is searched at once.
        if not query and (not images or not sys.stdin.isatty()) and (_interactive(idx, options, given) or not images):
            return
        with one_shot():  # this process runs each model once
            results = idx.search(
                given, k=top, offset=offset, min_score=min_score, filters=options.filters, mode=chosen,
                weights=options.weights, explain=explain, sort=options.sort,
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
    sort: SortOption = "score",
    link_to: LinkToOption = None,
    hardlink: HardlinkOption = False,
    place: PlaceOption = None,
    near: NearOption = None,
    min_rating: MinRatingOption = None,
    label_: LabelOption = None,
    db: DbOption = None,
    model: ModelOption = None,
    model_path: ModelPathOption = None,
    device: DeviceOption = "auto",
    preview: PreviewOption = False,
    html: HtmlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find images that look like IMAGE."""
    from photoseek.api import ImageIndex
    from photoseek.models.runtime import one_shot

    with user_errors(), ImageIndex(db, model=model, model_path=model_path, create=False, device=device) as idx:
        options = _Options(
            k=top, offset=offset, min_score=min_score, as_json=as_json, preview=preview, html=html,
            filters=_filters(
                idx, folder, after, before, formats, min_size, camera, topic,
                _MetaFilters(place, near, min_rating, label_),
            ),
            sort=_checked_sort(sort), link_to=link_to, hardlink=hardlink,
        )
        with one_shot():
            results = idx.similar(
                image, k=top, offset=offset, min_score=min_score, filters=options.filters, sort=options.sort
            )
        _print_results(str(image), results, idx, options, mode="clip")


def _interactive(idx: ImageIndex, options: _Options, given: Query) -> int:
    """A query loop that keeps the models loaded between queries; the terms `given` on the command
    line (--not, --image, --not-image) join every line's. Returns how many lines it read.

    The prompt shows only on a terminal, so piped queries give clean output (JSON: one line each).
    """
    prompt = "photoseek> " if sys.stdin.isatty() else ""
    if prompt:
        err.print("Type a query ('-' subtracts, '2:' weighs: 'beach -people 2:sunset', --not-image FILE); "
                  "'exit' to quit.")
    lines = 0
    while True:
        try:
            line = input(prompt).strip()
        except (EOFError, KeyboardInterrupt):
            if prompt:
                err.print()
            return lines
        if line in {"exit", "quit", ":q"}:
            return lines + 1
        if not line:
            continue
        lines += 1
        try:
            results = idx.search(
                Query.parse(line) + given, k=options.k, offset=options.offset,
                min_score=options.min_score, filters=options.filters, mode=options.mode,
                weights=options.weights, explain=options.explain, sort=options.sort,
            )
        except PhotoseekError as exc:
            print_error(str(exc), exc.code)
            continue
        _print_results(line, results, idx, options, one_line=True)


def _print_results(
    label: str, results: list[SearchResult], idx: ImageIndex, options: _Options,
    *, one_line: bool = False, mode: str | None = None,
) -> None:
    """--html and --preview first; then JSON, tab-separated lines or a table, unless thumbnails were shown;
    then --link-to (its report on stderr, or under "album" in JSON)."""
    from photoseek.search.engine import ResultPage
    from photoseek.store.catalog import escape_undecodable

    album = idx.link([r.path for r in results], options.link_to, hard=options.hardlink) if options.link_to else None
    shown = present_results(
        label, results, model=idx.model_id, preview=options.preview, html=options.html,
        as_json=options.as_json, explain=_explanation,
    )
    if album is not None and (shown or not options.as_json):
        _say_album(album)
    if shown:
        _say_cut(results, options)
        return
    policy = idx.search_policy(options.mode, options.weights) if options.explain else None
    calibration = idx.calibration_summary(policy.weights) if policy else []  # each signal's curve and weight here
    if options.explain and not options.as_json:
        for line in calibration:  # on stderr: piped result lines stay one per result
            err.print(escape(line), highlight=False)
    if options.as_json:
        payload: dict[str, object] = {
            "query": label, "model": idx.model_id, "results": [r.to_dict() for r in results],
        }
        if isinstance(results, ResultPage):
            payload["hidden"], payload["uncut"] = results.hidden, results.uncut
        if album is not None:
            payload["album"] = album.to_dict()
        if options.explain:
            payload["calibration"] = calibration
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
        _say_cut(results, options)
        return
    table = Table("#", "score", "path", "size", "taken", title=escape(f"Results for {label!r}"))
    placed = any(r.place for r in results)
    if placed:
        table.add_column("place")
    explained = any(r.signals for r in results)
    if explained:
        table.add_column("why")
    for r in results:
        table.add_row(
            str(r.rank), f"{r.score:.3f}", Text(escape_undecodable(r.path), style=f"link {Path(r.path).as_uri()}"),
            f"{r.width}x{r.height}", r.taken_at or "", *([escape(r.place or "")] if placed else []),
            *([escape(_explanation(r))] if explained else []),
        )
    out.print(table)
    _say_cut(results, options)


def _say_cut(results: list[SearchResult], options: _Options) -> None:
    """One line on stderr when the cut-off shaped a page: the weaker matches it hid, or, where no text
    matched and it was not applied, that the page is the closest by looks alone. Nothing goes silently."""
    from photoseek.search.engine import ResultPage
    from photoseek.search.fusion import DEFAULT_MIN_SCORE

    if not isinstance(results, ResultPage) or not results:
        return
    cut = DEFAULT_MIN_SCORE if options.min_score is None else options.min_score
    if results.hidden:
        matches = f"{results.hidden} weaker match{'es' if results.hidden > 1 else ''}"
        line = (f"{matches} hidden by the cut-off ({cut:g}); --min-score 0 shows them." if options.min_score is None
                else f"{matches} below --min-score {cut:g} hidden; lower it to see them.")
    elif results.uncut:
        line = (f"No image's text (tags, notes, captions) matches, so the cut-off ({cut:g}) is not applied: "
                "these are the closest by looks alone.")
    else:
        return
    err.print(escape(line), highlight=False)


def _checked_sort(sort: str) -> str:
    from photoseek.search.ordering import check_result_sort  # before any model loads

    return check_result_sort(sort)


def _say_album(album: LinkReport) -> None:
    """One line for the album, then one per photo that got no link (file and reason)."""
    from photoseek.store.catalog import escape_undecodable

    kept = f", {len(album.already)} already there" if album.already else ""
    err.print(escape(f"Linked {len(album.linked)} photo(s) into {escape_undecodable(album.folder)}{kept}."),
              highlight=False)
    for path, reason in album.failed:
        err.print(escape(f"Not linked: {escape_undecodable(path)}: {reason}."), highlight=False)


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
             ("--camera", filters.camera), ("--topic", filters.topic), ("--place", filters.place),
             ("--near", ",".join(f"{v:g}" for v in filters.near) if filters.near else None),
             ("--min-rating", filters.min_rating), ("--label", filters.label)]
    return " ".join(f"{flag} {value}" for flag, value in flags if value is not None)


def _explanation(result: SearchResult) -> str:
    """'clip 0.000 + text 3.120 + keyword 4.000 | "a dog on the [beach]" | taken in Porto, Portugal': each
    signal's evidence."""
    shares = " + ".join(f"{name} {share:.3f}" for name, share in (result.signals or {}).items())
    place = f" | taken in {result.place}" if result.place else ""
    if not result.matched_text:
        return shares + place
    matched = " / ".join(result.matched_text.splitlines())
    return f'{shares} | "{matched}"{place}'


