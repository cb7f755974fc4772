"""`photoseek eval` and `photoseek eval-captions`: measure retrieval and caption quality on a dataset."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from photoseek.cli.common import (
    DeviceOption,
    JsonOption,
    TextModelOption,
    command_app,
    err,
    fail,
    out,
    parse_weights,
    print_json,
    user_errors,
)
from photoseek.errors import BadInput

app = command_app()

if TYPE_CHECKING:  # the evaluation loads the indexer and its decoders: only when a command runs
    from photoseek.eval import Evaluation, RunSpec
    from photoseek.eval.captions import CaptionScores
    from photoseek.ingest.indexer import Progress as IndexProgress

_MODES_HELP = "clip, text, keyword, hybrid, clip-hybrid"

_FORMATS = (
    "Dataset formats, recognised by content whatever the file is called: Karpathy split JSON "
    "(dataset_flickr30k.json, with --split test), COCO captions JSON, a {file: [captions]} JSON or a "
    "JSON list of {image, caption} records, the Flickr8k token file (img.jpg#N, a tab, the caption), "
    "or a CSV image,caption[,relevance] (Flickr8k's captions.txt)."
)


@app.command("eval")
def eval_command(
    dataset: Annotated[
        Path, typer.Option("--dataset", "-d", help="Captions file. " + _FORMATS, dir_okay=False)
    ],
    images: Annotated[
        Path, typer.Option("--images", help="Folder holding the dataset's images.", file_okay=False)
    ],
    split: Annotated[
        Optional[str], typer.Option(help="Karpathy split to use: test, val, train or restval.")
    ] = None,
    models: Annotated[
        Optional[list[str]], typer.Option("--model", "-m", help="Named model (repeatable: one run each).")
    ] = None,
    model_paths: Annotated[
        Optional[list[Path]],
        typer.Option("--model-path", help="Local model directory (repeatable).", file_okay=False),
    ] = None,
    modes: Annotated[
        Optional[list[str]], typer.Option("--mode", help=f"Search mode, repeatable: {_MODES_HELP}.")
    ] = None,
    text_model: TextModelOption = None,
    weights: Annotated[
        Optional[list[str]],
        typer.Option(
            "--weight", "-w",
            help="Signal weight of the fused modes (text, keyword, hybrid), as in search: e.g. keyword=0.5 "
            "(repeatable; the others keep their defaults).",
        ),
    ] = None,
    oracle_captions: Annotated[
        int,
        typer.Option(
            min=0, help="Use N reference captions of each image as its note and query with the rest."
        ),
    ] = 0,
    out_dir: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Write report.json, report.md, a chart and per-query CSVs here."),
    ] = None,
    cache: Annotated[
        Optional[Path], typer.Option(help="Where catalogs of embedded images are kept between runs.")
    ] = None,
    device: DeviceOption = "auto",
    as_json: JsonOption = False,
) -> None:
    """Measure text-to-image and image-to-text retrieval (Recall@K, ranks, nDCG, mAP) on a dataset."""
    from photoseek.eval import evaluate, load_dataset, to_dict, write_report
    from photoseek.eval.report import require_chart_tools

    with user_errors():
        specs = _specs(models or [], model_paths or [], modes or ["clip"], text_model, _weights(weights or []))
        if out_dir:
            require_chart_tools()
        data = load_dataset(dataset, split=split)
        with _progress(enabled=not as_json) as on_progress:
            evaluation = evaluate(
                data, images, specs, dataset_path=str(dataset), split=split,
                oracle_captions=oracle_captions, cache_dir=cache, on_progress=on_progress, device=device,
            )
        written = write_report(evaluation, out_dir) if out_dir else []
    if as_json:
        print_json(to_dict(evaluation))
        return
    _print_summary(evaluation)
    if written:
        names = ", ".join(p.name for p in written[:3])
        out.print(f"Report written to {out_dir}: {names} and per-query CSVs.")


@app.command("eval-captions")
def eval_captions(
    references: Annotated[
        Path, typer.Option("--references", "-r", help="Reference captions. " + _FORMATS, dir_okay=False)
    ],
    candidates: Annotated[
        Path,
        typer.Option(
            "--candidates", "-c", dir_okay=False,
            help="Generated captions, one per image: a {file: caption} JSON or a CSV image,caption.",
        ),
    ],
    split: Annotated[
        Optional[str], typer.Option(help="Karpathy split of the references: test, val, train or restval.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Score generated captions against references: BLEU-1..4, ROUGE-L and CIDEr (pycocoevalcap)."""
    from photoseek.eval import score_caption_files

    with user_errors():
        scores = score_caption_files(references, candidates, split=split)
    if as_json:
        print_json({
            "corpus": scores.corpus, "images": len(scores.per_image), "per_image": scores.per_image,
            "unmatched_candidates": scores.unmatched_candidates,
            "without_candidate": scores.without_candidate, "issues": scores.issues,
        })
        return
    _print_caption_scores(scores)


def _weights(pairs: list[str]) -> tuple[tuple[str, float], ...]:
    """--weight pairs, checked as a search checks them."""
    from photoseek.search.fusion import weights_for

    parsed = parse_weights(pairs) or {}
    try:
        weights_for("hybrid", parsed)
    except ValueError as exc:
        raise BadInput(f"Bad --weight: {exc}.") from None
    return tuple(sorted(parsed.items()))


def _specs(
    models: list[str],
    model_paths: list[Path],
    modes: list[str],
    text_model: str | None,
    weights: tuple[tuple[str, float], ...] = (),
) -> list[RunSpec]:
    """One run per (model, mode); with no model given, the default model."""
    from photoseek.eval import MODES, RunSpec

    unknown = [m for m in modes if m not in MODES]
    if unknown:
        fail(f"unknown mode {unknown[0]!r}; use one of {', '.join(MODES)}.", 2, "usage")
    chosen: list[tuple[str | None, Path | None]] = [(m, None) for m in models]
    chosen += [(None, p) for p in model_paths]
    return [
        RunSpec(mode=mode, model=model, model_path=path, text_model=text_model, weights=weights)
        for model, path in chosen or [(None, None)]
        for mode in modes
    ]


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[RunSpec, IndexProgress], None] | None]:
    """One bar per run while its images are embedded (cached runs finish at once)."""
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("[bold]Embedding {task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err) as bar:
        tasks: dict[RunSpec, TaskID] = {}

        def update(spec: RunSpec, progress: IndexProgress) -> None:
            if spec not in tasks:
                tasks[spec] = bar.add_task(spec.label, total=progress.total)
            bar.update(tasks[spec], completed=progress.done, total=progress.total)

        yield update


def _print_summary(evaluation: Evaluation) -> None:
    from photoseek.eval import summary_rows
    from photoseek.eval.report import SUMMARY_COLUMNS

    for warning in _warnings(evaluation):
        err.print(f"[yellow]Warning:[/] {escape(warning)}", highlight=False)
    table = Table("run", "direction", *SUMMARY_COLUMNS, title="Retrieval (R@K in %, ranks 1-based)")
    for label, direction, cells in summary_rows(evaluation):
        table.add_row(label, direction, *cells)
    out.print(table)
    for run in evaluation.runs:  # the calibration quality behind each fused run's R@K
        for line in run.calibration if run.spec.mode != "clip" else []:
            out.print(f"{escape(run.spec.label)}: {escape(line)}", highlight=False)


def _warnings(evaluation: Evaluation) -> list[str]:
    warnings = []
    if evaluation.missing:
        shown = ", ".join(evaluation.missing[:5])
        warnings.append(
            f"{len(evaluation.missing)} of the dataset's images are not under --images and were left out "
            f"(e.g. {shown}); the report lists them."
        )
    if evaluation.unreadable:
        warnings.append(f"{len(evaluation.unreadable)} images could not be read and were left out: "
                        + ", ".join(evaluation.unreadable[:5]))
    warnings += list(evaluation.dataset.issues[:5])
    if len(evaluation.dataset.issues) > 5:
        warnings.append(f"... and {len(evaluation.dataset.issues) - 5} more dataset issues (see the report).")
    return warnings


def _print_caption_scores(scores: CaptionScores) -> None:
    from photoseek.eval.captions import METRICS

    for issue in scores.issues[:5]:
        err.print(f"[yellow]Warning:[/] {escape(issue)}", highlight=False)
    if scores.unmatched_candidates:
        err.print(
            f"[yellow]Warning:[/] {len(scores.unmatched_candidates)} candidates name images with no "
            f"references (e.g. {escape(scores.unmatched_candidates[0])}); ignored.", highlight=False,
        )
    table = Table(*METRICS, title=f"Caption quality over {len(scores.per_image)} images")
    table.add_row(*(f"{scores.corpus[m]:.3f}" for m in METRICS))
    out.print(table)
