"""`photoseek models ...`: list, download, export and quantize models."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from photoseek.cli.common import (
    DeviceOption,
    JsonOption,
    command_app,
    fail,
    json_option,
    out,
    print_json,
    said_on_interrupt,
    user_errors,
)
from photoseek.cli.index import stop_on_sigterm

app = command_app()

_WIDE_TABLE = 140
"""Columns from which the notes fit in the table itself."""
_NOTHING_WRITTEN = "nothing was written to {}; run the same command again."
"""Export and quantize write into a staging folder that becomes the output only when complete."""

models_app = typer.Typer(
    help="List CLIP models, download any model for offline use, export and quantize CLIP models.", no_args_is_help=True
)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(device: DeviceOption = "auto", as_json: JsonOption = False) -> None:
    """Known named models, with size, published retrieval quality, and where they would run.

    Models marked * understand queries in many languages: pick one of them for non-English queries.
    """
    from photoseek.models import DEFAULT_MODEL, list_known_models
    from photoseek.models.device import available_providers, plan_providers

    known = list_known_models()
    with user_errors():
        providers = [name for name, _ in plan_providers(device)]
    if as_json:
        print_json({
            "default": DEFAULT_MODEL, "models": [vars(m) for m in known],
            "device": device, "providers": providers, "available_providers": available_providers(),
        })
        return
    wide = out.width >= _WIDE_TABLE
    table = Table(
        title=f"Known models (default: {DEFAULT_MODEL})", box=box.HEAVY_HEAD if wide else box.SIMPLE_HEAD,
        caption="Flickr, COCO: published zero-shot text-to-image R@1 (open_clip's benchmark table), English "
        "queries. * multilingual: pick one of these for queries in other languages.",
        pad_edge=wide, collapse_padding=not wide,
    )
    table.add_column("name", no_wrap=True)
    for numeric in ("Mparams", "GFLOPs", "Flickr", "COCO"):
        table.add_column(numeric, justify="right", no_wrap=not wide)
    if wide:
        table.add_column("notes")
    for entry in known:
        numbers = (_number(entry.params_m), _number(entry.gflops), _number(entry.flickr30k_r1), _number(entry.coco_r1))
        name = f"{entry.name} *" if entry.multilingual else entry.name
        table.add_row(name, *numbers, *([entry.notes] if wide else []))
    out.print(table)
    if not wide:  # a narrow terminal gets the notes as a list below, not squeezed into a column
        for entry in known:
            if entry.notes:
                out.print(f"[bold]{escape(entry.name)}[/]: {escape(entry.notes)}", highlight=False)
    offered = ", ".join(available_providers())
    out.print(f"Runs on: {', '.join(providers)} (--device {device}; ONNX Runtime offers {offered}).")


class ModelKind(str, Enum):
    clip = "clip"
    text = "text"
    caption = "caption"
    detector = "detector"


@models_app.command("download")
def models_download(
    name: Annotated[
        Optional[str],
        typer.Argument(help="CLIP name (`photoseek models list`) or, for other kinds, a Hub id. Default: the default."),
    ] = None,
    kind: Annotated[
        ModelKind,
        typer.Option(help="clip (image search), text (text embedder), caption (--captions) or detector (--objects)."),
    ] = ModelKind.clip,
    as_json: Annotated[bool, json_option(
        '{"name", "kind", "path" (null for caption and detector models, kept in the Hub cache), "cache"}.'
    )] = False,
) -> None:
    """Fetch a model into the local cache now, so that later runs work offline.

    Examples: `photoseek models download` (the default CLIP model), `photoseek models download --kind text`,
    `photoseek models download --kind caption` (needs the torch extra, as captions do).
    """
    from photoseek.models.hub import cache_location

    with user_errors():
        path = _download(kind, name)
    if as_json:
        print_json({
            "name": name, "kind": kind.value, "path": str(path) if path else None, "cache": str(cache_location()),
        })
        return
    label = name or "The default model"
    out.print(escape(f"{label} is ready{f' in {path}' if path else ''}."))
    cache = escape(str(cache_location()))
    out.print(
        f"To use it on a machine without network, copy {cache} there: to the same place, "
        "or anywhere and point HF_HUB_CACHE at it."
    )


def _download(kind: ModelKind, name: str | None) -> Path | None:
    """The model's folder (CLIP, text) after fetching it; transformers models are loaded once instead."""
    if kind is ModelKind.clip:
        from photoseek.models import DEFAULT_MODEL, resolve_model_dir

        return resolve_model_dir(name or DEFAULT_MODEL)
    if kind is ModelKind.text:
        from photoseek.text.embedder import download_text_model

        return download_text_model(name)
    from photoseek.models.runtime import Runtime
    from photoseek.text.caption import DEFAULT_CAPTION_MODEL, Captioner
    from photoseek.text.objects import DEFAULT_DETECTOR, ObjectCounter

    on_cpu = Runtime("cpu")  # loaded once only to fetch it: no GPU needed
    caption = kind is ModelKind.caption
    maker = (
        Captioner(name or DEFAULT_CAPTION_MODEL, runtime=on_cpu) if caption
        else ObjectCounter(name or DEFAULT_DETECTOR, runtime=on_cpu)
    )
    maker.prepare()  # no network: fails in seconds, before transformers' heavy imports
    maker.load()
    return None


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


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
    as_json: Annotated[bool, json_option('{"model_dir", "arch", "pretrained" (null: random)}.')] = False,
) -> None:
    """Export an open_clip model to ONNX for `--model-path` (needs `photoseek[torch]`)."""
    from photoseek.models.export import export_open_clip

    if not (pretrained or random_weights):
        fail("give --pretrained TAG or --random-weights.", 2, "usage")
    with user_errors(), stop_on_sigterm(), said_on_interrupt(_NOTHING_WRITTEN.format(out_dir)):
        written = export_open_clip(
            arch, out_dir, pretrained=pretrained, random_weights=random_weights,
            arch_config=arch_config, seed=seed,
        )
    if as_json:
        print_json({"model_dir": str(written), "arch": arch, "pretrained": pretrained})
        return
    out.print(escape(f"Model written to {written}. Use it with: photoseek index --model-path {written} DIR"))


@models_app.command("quantize")
def models_quantize(
    model_dir: Annotated[Path, typer.Argument(help="Model directory (e.g. from `models export` or the Hub cache).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="New directory for the INT8 model.")],
    text: Annotated[
        bool, typer.Option("--text", help="Quantize the text tower too (default: image tower only).")
    ] = False,
    as_json: Annotated[bool, json_option('{"model_dir", "source", "text" (text tower too)}.')] = False,
) -> None:
    """Write an INT8 copy of a model for faster CPU indexing (needs `photoseek[quantize]`).

    Its embeddings differ slightly from the original's, so it gets its own model id: index with
    `--model-path OUT --rebuild`. Check the speed and the embedding agreement on your photos with
    bench/quantize_bench.py before relying on it.
    """
    from photoseek.models.quantize import quantize_model

    with user_errors(), stop_on_sigterm(), said_on_interrupt(_NOTHING_WRITTEN.format(out_dir)):
        written = quantize_model(model_dir, out_dir, text=text)
    if as_json:
        print_json({"model_dir": str(written), "source": str(model_dir), "text": text})
        return
    hint = f"photoseek index --rebuild --model-path {written} DIR"
    out.print(escape(f"INT8 model written to {written}. Use it with: {hint}"))
