"""`photoseek caption`: describe image files with a captioning model, as a file,caption CSV."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from photoseek.cli.common import (
    CaptionEndpointOption,
    CaptionPromptOption,
    CaptionTimeoutOption,
    CaptionWorkersOption,
    DeviceOption,
    app,
    err,
    out,
    print_json,
    user_errors,
)
from photoseek.text.vlm import DEFAULT_TIMEOUT_S, DEFAULT_WORKERS


@app.command()
def caption(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders (searched recursively).")],
    out_file: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Write the file,caption CSV here (default: stdout).")
    ] = None,
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model", "--caption-model", "-m",
            help="Hub id or folder (Florence-2 or BLIP), or openai:MODEL for a model behind an OpenAI-compatible API.",
        ),
    ] = None,
    prompt: CaptionPromptOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per model call.")] = 8,
    endpoint: CaptionEndpointOption = None,
    workers: CaptionWorkersOption = DEFAULT_WORKERS,
    timeout: CaptionTimeoutOption = DEFAULT_TIMEOUT_S,
    device: DeviceOption = "auto",
    as_json: Annotated[
        bool,
        typer.Option("--json", help="JSON on stdout instead of the CSV (which --out still writes): "
                     '{"captions": [{"file", "caption"}], "failed": [{"path", "reason"}], "out": FILE or null}.'),
    ] = False,
) -> None:
    """Caption images; the CSV feeds `photoseek import-captions` or fine-tuning."""
    from photoseek.api import caption as caption_images
    from photoseek.store.catalog import escape_undecodable

    with user_errors():
        report = caption_images(
            paths, model=model, prompt=prompt, batch_size=batch_size,
            endpoint=endpoint, workers=workers, timeout_s=timeout, device=device,
        )
    if out_file is not None:
        with out_file.open("w", newline="", encoding="utf-8") as fh:
            _write(fh, report.pairs)
    if as_json:
        print_json({
            "captions": [{"file": file, "caption": text} for file, text in report.pairs],
            "failed": [{"path": f.path, "reason": f.reason} for f in report.failures],
            "out": str(out_file) if out_file is not None else None,
        })
        return
    if out_file is None:
        _write(sys.stdout, report.pairs)
    else:
        out.print(f"Wrote {len(report.pairs)} captions to {escape(str(out_file))}.")
    for failure in report.failures:
        shown = escape(escape_undecodable(failure.path))
        err.print(f"  [red]skipped[/] {shown}: {escape(failure.reason)}", highlight=False)


def _write(stream: object, pairs: list[tuple[str, str]]) -> None:
    writer = csv.writer(stream)
    writer.writerow(["file", "caption"])
    writer.writerows(pairs)
