"""`photoseek index`: bring the catalog up to date with photo folders."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from photoseek.cli.common import (
    BatchSizeOption,
    CaptionEndpointOption,
    CaptionModelOption,
    CaptionPromptOption,
    CaptionsOption,
    CaptionTimeoutOption,
    CaptionWorkersOption,
    DbOption,
    DetectorOption,
    DeviceOption,
    IncludeHiddenOption,
    JsonOption,
    ModelOption,
    ModelPathOption,
    ObjectsOption,
    OcrOption,
    TextModelOption,
    TopicsFileOption,
    command_app,
    err,
    out,
    print_json,
    user_errors,
)
from photoseek.store.backends import BACKENDS
from photoseek.text.vlm import DEFAULT_TIMEOUT_S, DEFAULT_WORKERS

if TYPE_CHECKING:
    from photoseek.ingest.indexer import IndexReport
    from photoseek.ingest.indexer import Progress as IndexProgress

app = command_app()

VectorIndexOption = Annotated[
    Optional[str],
    typer.Option(
        "--index",
        help=f"Vector index: {', '.join(BACKENDS)} (remembered; default auto: exact when small, faiss when large).",
    ),
]


@app.command()
def index(
    roots: Annotated[list[Path], typer.Argument(help="Folders to index (searched recursively).")],
    db: DbOption = None,
    model: ModelOption = None,
    model_path: ModelPathOption = None,
    device: DeviceOption = "auto",
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Forget all embeddings and re-embed with the chosen model.")
    ] = False,
    batch_size: BatchSizeOption = 32,
    include_hidden: IncludeHiddenOption = False,
    ocr: OcrOption = False,
    captions: CaptionsOption = False,
    objects: ObjectsOption = False,
    caption_model: CaptionModelOption = None,
    caption_prompt: CaptionPromptOption = None,
    caption_endpoint: CaptionEndpointOption = None,
    caption_workers: CaptionWorkersOption = DEFAULT_WORKERS,
    caption_timeout: CaptionTimeoutOption = DEFAULT_TIMEOUT_S,
    detector: DetectorOption = None,
    everywhere: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Make the --ocr/--captions/--objects texts for every indexed image that lacks them, not only "
            "for those under the folders named (a paid captioning API is asked about every one of them).",
        ),
    ] = False,
    text_model: TextModelOption = None,
    vector_index: VectorIndexOption = None,
    faiss_kind: Annotated[
        str, typer.Option("--faiss-kind", help="hnsw (in RAM) or ivfpq (compressed, for beyond-RAM collections).")
    ] = "hnsw",
    qdrant_url: Annotated[
        Optional[str], typer.Option("--qdrant-url", help="Qdrant server; API key from $PHOTOSEEK_QDRANT_API_KEY.")
    ] = None,
    qdrant_path: Annotated[
        Optional[Path], typer.Option("--qdrant-path", help="Folder for Qdrant's embedded local mode.")
    ] = None,
    ray: Annotated[
        Optional[str],
        typer.Option(
            "--ray", metavar="ADDRESS|auto",
            help="Read, decode and embed, and make the --ocr/--captions/--objects texts, on a Ray cluster "
            "(needs photoseek[ray]): auto = the cluster this "
            "machine belongs to, or host:6379 / ray://host:10001. Every node must see the folders at the same "
            "path; this machine still writes the catalog.",
        ),
    ] = None,
    ray_ship_bytes: Annotated[
        bool,
        typer.Option(
            "--ray-ship-bytes", help="With --ray: send file bytes from this machine (no shared filesystem needed)."
        ),
    ] = False,
    topics: Annotated[
        bool, typer.Option("--topics", help="Tag images with topics (the catalog's list: 30 everyday ones by default).")
    ] = False,
    topics_file: TopicsFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Index photo folders. Run it again any time: only new and changed files are read.

    The catalog remembers the model (--model / --model-path) and --text-model, so later runs
    and searches need neither flag. Text signals (--ocr, --captions, --objects) are made for
    the images under the folders named (--all: every image in the catalog).
    """
    from photoseek.api import ImageIndex
    from photoseek.ingest.signals import SignalOptions
    from photoseek.store.backends import IndexConfig

    with user_errors(), stop_on_sigterm(), ImageIndex(
        db, model=model, model_path=model_path, text_model=text_model, device=device
    ) as idx:
        images_before = idx.count()
        config = None
        if vector_index or qdrant_url or qdrant_path:
            config = IndexConfig(
                backend=vector_index or "qdrant", faiss_kind=faiss_kind, qdrant_url=qdrant_url,
                qdrant_path=str(qdrant_path.expanduser().resolve()) if qdrant_path else None,
            )
        with ProgressBar(enabled=not as_json, batch_size=batch_size) as on_progress:
            report = idx.index(
                roots, rebuild=rebuild, batch_size=batch_size, include_hidden=include_hidden,
                on_progress=on_progress, vector_index=config, topics=topics_file or topics,
                ray=ray, ray_ship_bytes=ray_ship_bytes, signals_everywhere=everywhere, signals=SignalOptions(
                    ocr=ocr, captions=captions or caption_model is not None, objects=objects,
                    caption_model=caption_model, caption_prompt=caption_prompt, caption_endpoint=caption_endpoint,
                    caption_workers=caption_workers, caption_timeout=caption_timeout, detector=detector,
                ),
            )
        images = idx.count()
        if as_json:
            print_json(report_dict(report, idx.model_id) | {
                "vector_index": idx.status().vector_index, "images": images,
                "images_added": images - images_before, "providers": idx.providers(),
            })
        else:
            _print_report(report, images, images - images_before, discarded=idx.is_new and not images)
        if report.interrupted:
            raise typer.Exit(130)


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """`kill` (a service manager's stop) ends a run like Ctrl+C does: finished batches kept, and said so."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (an embedding application): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ProgressBar:
    """A bar with images/s and time left that appears once there is work to show; call it with progress.

    Until the first batch has gone through the model, the count climbs at decoding speed
    only, so rate and time left are shown from then on, measured over the whole run. After
    `stop()` (a watcher's batch is done) the next progress starts a new run.
    """

    def __init__(self, enabled: bool, batch_size: int) -> None:
        columns = (
            TextColumn("[bold]Indexing"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[eta]}", style="progress.remaining"),
        )
        self.enabled, self.batch_size = enabled, batch_size
        self.bar = Progress(*columns, console=err, transient=False)
        self.task = self.bar.add_task("index", total=None, rate="", eta="")
        self.started: float | None = time.monotonic()

    def __call__(self, progress: IndexProgress) -> None:
        if not self.enabled:
            return
        if self.started is None:
            self.started = time.monotonic()
        if not self.bar.live.is_started:
            self.bar.start()
        rate, eta = _rate_and_eta(progress, time.monotonic() - self.started, self.batch_size)
        self.bar.update(self.task, completed=progress.done, total=progress.total, rate=rate, eta=eta)

    def stop(self) -> None:
        self.started = None
        if self.bar.live.is_started:
            self.bar.stop()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _rate_and_eta(progress: IndexProgress, elapsed: float, batch_size: int) -> tuple[str, str]:
    """'12.3 img/s', '0:01:05 left' once a first batch is embedded; blank before."""
    first_batch = min(batch_size, progress.total)
    if progress.done < first_batch or progress.done == 0 or elapsed <= 0:
        return "", ""
    speed = progress.done / elapsed
    left = int((progress.total - progress.done) / speed)
    return f"{speed:.1f} img/s", f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d} left"


def report_dict(report: IndexReport, model_id: str | None) -> dict[str, object]:
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
        "signals": report.signals,
        "interrupted": report.interrupted,
        "empty_roots": report.empty_roots,
    }


def _print_report(report: IndexReport, images: int, added: int, discarded: bool) -> None:
    """What the run did; `discarded`: it made a new catalog that is removed again (still empty)."""
    if report.interrupted and discarded:
        err.print(
            "[yellow]Interrupted[/] before the first batch was saved: nothing was indexed and no catalog "
            "was created; run the same command again to start."
        )
        print_problems(report)
        return
    if report.interrupted:
        todo = report.scanned - report.unchanged
        err.print(
            f"[yellow]Interrupted.[/] Kept what finished: the catalog holds {images} images "
            f"({added} added by this run). Of {todo} files to read, the rest is left: "
            "run the same command to continue."
        )
        print_problems(report)
        return
    counts = {
        "embedded": report.embedded, "reused (moved or copied)": report.reused,
        "unchanged": report.unchanged, "removed": report.removed, "skipped": len(report.failures),
        **{f"{source} texts made": n for source, n in report.signals.items()},
    }
    done = ", ".join(f"{n} {what}" for what, n in counts.items() if n) or "nothing to do"
    speed = f" at {report.images_per_second:.1f} images/s" if report.embedded else ""
    out.print(f"{report.scanned} files checked in {report.seconds:.1f} s{speed}: {done}.")
    print_problems(report)


def print_problems(report: IndexReport) -> None:
    """The files skipped (the first 20) and the empty roots whose images were kept, on stderr."""
    from photoseek.store.catalog import escape_undecodable

    for failure in report.failures[:20]:
        shown = escape(escape_undecodable(failure.path))
        err.print(f"  [red]skipped[/] {shown}: {escape(failure.reason)}", highlight=False)
    if len(report.failures) > 20:
        err.print(f"  ... and {len(report.failures) - 20} more: see `photoseek status`.")
    for root in report.empty_roots:
        err.print(
            f"[yellow]{escape(escape_undecodable(root))} is empty[/]; its indexed images are kept, as an unmounted"
            " disk leaves an empty folder. Mount it and index again; if you emptied it on purpose, put any file"
            " in it and index again.",
            highlight=False,
        )
