"""`photoseek watch`: keep the catalog current with photo folders as they change."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape

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
    ModelOption,
    ModelPathOption,
    ObjectsOption,
    OcrOption,
    TextModelOption,
    command_app,
    err,
    json_option,
    out,
    print_json,
    user_errors,
)
from photoseek.cli.index import ProgressBar, print_problems, report_dict, stop_on_sigterm
from photoseek.errors import BadInput, NotFound
from photoseek.text.vlm import DEFAULT_TIMEOUT_S, DEFAULT_WORKERS
from photoseek.watch.settings import WatchSettings

app = command_app()

if TYPE_CHECKING:
    from photoseek.watch import WatchBatch


@app.command()
def watch(
    roots: Annotated[list[Path], typer.Argument(help="Folders to keep indexed (followed recursively).")],
    poll: Annotated[
        Optional[float],
        typer.Option(
            "--poll", min=0.1, metavar="SECONDS",
            help="Scan the folders every SECONDS instead of listening for events: for network shares"
            " (NFS, SMB) and other places where change events do not arrive.",
        ),
    ] = None,
    debounce: Annotated[
        float,
        typer.Option(
            "--debounce", min=0.0, metavar="SECONDS",
            help="Index once changes have paused this long, so a burst of copies becomes one batch.",
        ),
    ] = WatchSettings.quiet,
    db: DbOption = None,
    model: ModelOption = None,
    model_path: ModelPathOption = None,
    device: DeviceOption = "auto",
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
    text_model: TextModelOption = None,
    as_json: Annotated[bool, json_option("one object per batch.")] = False,
) -> None:
    """Index photo folders, then keep following them until Ctrl+C: new, changed, moved and deleted
    photos are indexed in batches a few seconds after they change.

    Starts with the same incremental run as `photoseek index`. A folder that goes away (an
    unmounted disk) keeps its images in the catalog and is caught up with when it returns.
    """
    from photoseek.api import ImageIndex
    from photoseek.ingest.signals import SignalOptions

    with user_errors(), ImageIndex(
        db, model=model, model_path=model_path, text_model=text_model, device=device
    ) as idx:
        _check_roots(roots, idx.roots())
        settings = WatchSettings(poll=poll, quiet=debounce, max_wait=max(WatchSettings.max_wait, debounce))
        with ProgressBar(enabled=not as_json, batch_size=batch_size) as bar:

            def on_batch(batch: WatchBatch) -> None:
                bar.stop()
                _show_batch(batch, idx.model_id, as_json)

            watcher = idx.watcher(
                roots, settings=settings, on_batch=on_batch, on_notice=_notice, on_progress=bar,
                batch_size=batch_size, include_hidden=include_hidden, signals=SignalOptions(
                    ocr=ocr, captions=captions or caption_model is not None, objects=objects,
                    caption_model=caption_model, caption_prompt=caption_prompt, caption_endpoint=caption_endpoint,
                    caption_workers=caption_workers, caption_timeout=caption_timeout, detector=detector,
                ),
            )
            how = f"scanning every {poll:g} s" if poll else "listening for changes"
            err.print(f"Watching {len(roots)} folder(s), {how}. Ctrl+C stops.")
            try:
                with stop_on_sigterm():
                    watcher.run()
            except KeyboardInterrupt:
                bar.stop()
                err.print("Stopped watching. Later changes are picked up by the next `photoseek watch` or `index`.")


def _check_roots(roots: list[Path], known: list[str]) -> None:
    """Every root must exist, unless the catalog knows it (a disk not mounted yet is waited for)."""
    for root in roots:
        path = root.expanduser()
        if path.exists() and not path.is_dir():
            raise BadInput(f"{path} is not a folder. Watch the folder that holds it.")
        if not path.exists() and os.path.realpath(path) not in known:
            raise NotFound(f"No such folder: {path}. Check the path.")


def _show_batch(batch: WatchBatch, model_id: str | None, as_json: bool) -> None:
    if as_json:
        finished = datetime.fromtimestamp(batch.finished_at, timezone.utc).isoformat(timespec="seconds")
        record = {"batch": batch.number, "kind": batch.kind, "paths": batch.paths, "finished_at": finished}
        print_json(record | report_dict(batch.report, model_id), indent=None)
        return
    out.print(escape(batch.summary()), highlight=False)
    print_problems(batch.report)


def _notice(message: str) -> None:
    from photoseek.store.catalog import escape_undecodable

    err.print(f"[yellow]{escape(escape_undecodable(message))}[/]", highlight=False)
