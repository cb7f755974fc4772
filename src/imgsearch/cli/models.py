"""`imgsearch models ...`: list, download and export CLIP models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from imgsearch.cli.common import JsonOption, app, err, out, print_json, user_errors

models_app = typer.Typer(help="List, download and export CLIP models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(as_json: JsonOption = False) -> None:
    """Known named models, with size and published retrieval quality."""
    from imgsearch.models import DEFAULT_MODEL, list_known_models

    known = list_known_models()
    if as_json:
        print_json({"default": DEFAULT_MODEL, "models": [vars(m) for m in known]})
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
    with user_errors():
        written = export_open_clip(
            arch, out_dir, pretrained=pretrained, random_weights=random_weights,
            arch_config=arch_config, seed=seed,
        )
    out.print(f"Model written to {written}. Use it with: imgsearch index --model-path {written} DIR")


