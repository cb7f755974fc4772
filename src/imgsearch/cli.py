"""The `imgsearch` command line: a thin layer over `imgsearch.api.ImageIndex`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from imgsearch.api import ImageIndex, Status
from imgsearch.errors import ImgsearchError
from imgsearch.ingest.indexer import IndexReport
from imgsearch.search.engine import SearchResult

app = typer.Typer(
    help=(
        "Find photos by describing them or by showing an example.\n\n"
        "Start with `imgsearch index ~/Pictures`, then `imgsearch search \"a dog on a beach\"`."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="List, download and export CLIP models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

out = Console()
err = Console(stderr=True)

DbOption = Annotated[
    Optional[Path],
    typer.Option("--db", help="Catalog file. Default: $IMGSEARCH_DB, else a per-user data folder."),
]
ModelOption = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Named model, e.g. ViT-B-32__openai (`imgsearch models list`)."),
]
ModelPathOption = Annotated[
    Optional[Path],
    typer.Option("--model-path", help="Local model directory (see docs/models.md).", file_okay=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
TopKOption = Annotated[int, typer.Option("--top", "-k", min=1, help="How many results.")]
MinScoreOption = Annotated[
    Optional[float], typer.Option("--min-score", help="Hide results scoring below this (cosine).")
]


@contextmanager
def _user_errors() -> Iterator[None]:
    """Print our errors as one clear line and exit non-zero, without a traceback."""
    try:
        yield
    except ImgsearchError as exc:
        err.print(f"[bold red]Error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None


@app.command()
def index(
    roots: Annotated[list[Path], typer.Argument(help="Folders to index (searched recursively).")],
    db: DbOption = None,
    model: ModelOption = None,
    model_path: ModelPathOption = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Forget all embeddings and re-embed with the chosen model.")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per model call.")] = 32,
    include_hidden: Annotated[
        bool, typer.Option("--include-hidden", help="Also index dot-folders and dot-files.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Index photo folders. Run it again any time: only new and changed files are read."""
    with _user_errors(), ImageIndex(db, model=model, model_path=model_path) as idx:
        with _progress_bar(enabled=not as_json) as on_progress:
            report = idx.index(
                roots, rebuild=rebuild, batch_size=batch_size,
                include_hidden=include_hidden, on_progress=on_progress,
            )
        if as_json:
            _print_json(_report_dict(report, idx.catalog.model_id))
        else:
            _print_report(report)
        if report.interrupted:
            raise typer.Exit(130)


@app.command()
def search(
    query: Annotated[
        Optional[list[str]],
        typer.Argument(help="What to look for. Several texts are added together; '2:beach' weighs one twice."),
    ] = None,
    negatives: Annotated[
        Optional[list[str]], typer.Option("--not", "-n", help="Text to steer away from (repeatable).")
    ] = None,
    images: Annotated[
        Optional[list[Path]], typer.Option("--image", "-i", help="Example image to add (repeatable).")
    ] = None,
    top: TopKOption = 10,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many results (paging).")] = 0,
    min_score: MinScoreOption = None,
    db: DbOption = None,
    model: ModelOption = None,
    model_path: ModelPathOption = None,
    as_json: JsonOption = False,
) -> None:
    """Search by text and example images. With no query, opens an interactive prompt."""
    with _user_errors(), ImageIndex(db, model=model, model_path=model_path) as idx:
        if not query and not images:
            _interactive(idx, top, min_score)
            return
        results = idx.search(
            query or [], images=images or [], negatives=negatives or [],
            k=top, offset=offset, min_score=min_score,
        )
        label = " ".join(query or []) or ", ".join(str(p) for p in images or [])
        _print_results(label, results, idx, as_json)


@app.command()
def similar(
    image: Annotated[Path, typer.Argument(help="Any image file, indexed or not.")],
    top: TopKOption = 10,
    min_score: MinScoreOption = None,
    db: DbOption = None,
    model: ModelOption = None,
    model_path: ModelPathOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find images that look like IMAGE."""
    with _user_errors(), ImageIndex(db, model=model, model_path=model_path) as idx:
        results = idx.similar(image, k=top, min_score=min_score)
        _print_results(str(image), results, idx, as_json)


@app.command()
def status(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show what is indexed: folders, image count, model, size, and files that failed."""
    with _user_errors(), ImageIndex(db) as idx:
        info = idx.status()
        if as_json:
            _print_json(info.to_dict())
        else:
            _print_status(info)


@models_app.command("list")
def models_list(as_json: JsonOption = False) -> None:
    """Known named models, with size and published retrieval quality."""
    from imgsearch.models import DEFAULT_MODEL, list_known_models

    known = list_known_models()
    if as_json:
        _print_json({"default": DEFAULT_MODEL, "models": [vars(m) for m in known]})
        return
    table = Table("name", "notes", title=f"Known models (default: {DEFAULT_MODEL})")
    for entry in known:
        table.add_row(entry.name, getattr(entry, "notes", ""))
    out.print(table)


@models_app.command("export")
def models_export(
    arch: Annotated[str, typer.Argument(help="open_clip architecture, e.g. ViT-B-32.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the model into.")],
    pretrained: Annotated[
        Optional[str], typer.Option(help="open_clip pretrained tag, e.g. laion2b_s34b_b79k.")
    ] = None,
    random_weights: Annotated[
        bool, typer.Option("--random-weights", help="Random weights: for tests and benchmarks.")
    ] = False,
    arch_config: Annotated[
        Optional[Path], typer.Option(help="JSON architecture config for a custom (e.g. tiny) model.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for --random-weights.")] = 0,
) -> None:
    """Export an open_clip model to ONNX for `--model-path` (needs `imgsearch[torch]`)."""
    from imgsearch.models.export import export_open_clip

    if not (pretrained or random_weights):
        err.print("[bold red]Error:[/] give --pretrained TAG or --random-weights.")
        raise typer.Exit(2)
    with _user_errors():
        written = export_open_clip(
            arch, out_dir, pretrained=pretrained, random_weights=random_weights,
            arch_config=arch_config, seed=seed,
        )
    out.print(f"Model written to {written}. Use it with: imgsearch index --model-path {written} DIR")


def _interactive(idx: ImageIndex, top: int, min_score: float | None) -> None:
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
            results = idx.search(positives, negatives=negatives, k=top, min_score=min_score)
        except ImgsearchError as exc:
            err.print(f"[bold red]Error:[/] {exc}", highlight=False)
            continue
        _print_results(line, results, idx, as_json=False)


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


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[object]:
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("[bold]Indexing"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("index", total=None, rate="")

        def update(progress: object) -> None:
            speed = bar.tasks[0].speed
            bar.update(
                task, completed=progress.done, total=progress.total,
                rate=f"{speed:.1f} img/s" if speed else "",
            )

        yield update


def _print_results(label: str, results: list[SearchResult], idx: ImageIndex, as_json: bool) -> None:
    if as_json:
        _print_json({
            "query": label, "model": idx.catalog.model_id,
            "results": [r.to_dict() for r in results],
        })
        return
    if not results:
        err.print("No results above the score threshold.")
        return
    if not sys.stdout.isatty():
        for r in results:
            print(f"{r.score:.4f}\t{r.path}")
        return
    table = Table("#", "score", "path", "size", "taken", title=f"Results for {label!r}")
    for r in results:
        table.add_row(
            str(r.rank), f"{r.score:.3f}", f"[link=file://{r.path}]{r.path}[/link]",
            f"{r.width}x{r.height}", r.taken_at or "",
        )
    out.print(table)


def _report_dict(report: IndexReport, model_id: str | None) -> dict[str, object]:
    return {
        "model": model_id,
        "scanned": report.scanned,
        "unchanged": report.unchanged,
        "embedded": report.embedded,
        "reused": report.reused,
        "removed": report.removed,
        "failed": [{"path": f.path, "reason": f.reason} for f in report.failures],
        "seconds": round(report.seconds, 3),
        "images_per_second": round(report.images_per_second, 2),
        "interrupted": report.interrupted,
    }


def _print_report(report: IndexReport) -> None:
    if report.interrupted:
        err.print("[yellow]Interrupted.[/] Finished batches are saved; run the same command to continue.")
    out.print(
        f"Scanned {report.scanned} files in {report.seconds:.1f} s: {report.embedded} embedded "
        f"({report.images_per_second:.1f} img/s), {report.reused} reused, "
        f"{report.unchanged} unchanged, {report.removed} removed, {len(report.failures)} failed."
    )
    for failure in report.failures[:20]:
        err.print(f"  [red]skipped[/] {failure.path}: {failure.reason}", highlight=False)
    if len(report.failures) > 20:
        err.print(f"  ... and {len(report.failures) - 20} more: see `imgsearch status`.")


def _print_status(info: Status) -> None:
    out.print(f"Catalog: {info.db_path} ({info.db_bytes / 1e6:.1f} MB)")
    out.print(f"Model:   {info.model_id or '(none yet)'}")
    out.print(f"Images:  {info.image_count}")
    out.print("Folders: " + (", ".join(info.roots) or "(none yet: imgsearch index FOLDER)"))
    if info.failures:
        out.print(f"Failed files ({len(info.failures)}):")
        for failure in info.failures:
            out.print(f"  {failure.path}: {failure.reason}", highlight=False)


def _print_json(payload: object) -> None:
    print(json.dumps(payload, indent=2, ensure_ascii=False))
