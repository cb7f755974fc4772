"""`photoseek finetune`: train CLIP on your own image-caption pairs, then search with the result."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from photoseek.cli.common import (
    DbOption,
    DeviceOption,
    JsonOption,
    command_app,
    err,
    out,
    print_json,
    stop_interrupted,
    user_errors,
)

app = command_app()

if TYPE_CHECKING:
    from photoseek.train import FinetuneResult, TrainProgress


@app.command()
def finetune(
    pairs: Annotated[Path, typer.Option(
        "--pairs", help="Captions file: CSV or TSV with the columns file,caption (as `photoseek caption` writes) "
        "or image,caption; or any form import-captions and eval read."
    )],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="New model directory to write.")],
    base: Annotated[
        str,
        typer.Option(help="ARCH:TAG (e.g. ViT-B-32:laion2b_s34b_b79k), ARCH with --random-weights, "
                     "or a directory a previous finetune wrote."),
    ],
    images: Annotated[
        Optional[Path], typer.Option("--images", help="Folder the pairs' paths are relative to (default: its folder).")
    ] = None,
    steps: Annotated[int, typer.Option(min=1, help="Optimizer steps.")] = 1000,
    batch_size: Annotated[int, typer.Option(min=2, help="Pairs per step; each one's negatives are the rest.")] = 64,
    accum_steps: Annotated[
        int, typer.Option(min=1, help="Split each batch into this many micro-batches (same update, less memory).")
    ] = 1,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, warmup then cosine).")] = 1e-5,
    warmup: Annotated[int, typer.Option(min=0, help="Warmup steps.")] = 100,
    weight_decay: Annotated[float, typer.Option(min=0.0)] = 0.2,
    freeze: Annotated[str, typer.Option(help="Keep one tower fixed: text, image or none.")] = "none",
    lora_rank: Annotated[int, typer.Option(min=0, help="Train LoRA adapters of this rank (0: full weights).")] = 0,
    unlock_last: Annotated[
        int, typer.Option(min=0, help="Train only the last N layer groups per tower (1: projection only; 0: all).")
    ] = 0,
    precision: Annotated[
        str, typer.Option(help="auto (bf16/fp16 mixed precision on GPU, fp32 on CPU), fp32, bf16 or fp16.")
    ] = "auto",
    holdout: Annotated[float, typer.Option(help="Share of images held out for the before/after evaluation.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed for the split, data order, augmentation and init.")] = 0,
    checkpoint_every: Annotated[int, typer.Option(min=1)] = 200,
    checkpoints: Annotated[
        Optional[Path], typer.Option(help="Checkpoint folder (default: OUT.checkpoints beside OUT).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint.")] = False,
    workers: Annotated[int, typer.Option(min=0, help="Image-loading worker processes.")] = 2,
    arch_config: Annotated[
        Optional[Path], typer.Option(help="JSON architecture config for a custom (e.g. tiny) model.")
    ] = None,
    random_weights: Annotated[
        bool, typer.Option("--random-weights", help="Start from random weights: for tests and benchmarks.")
    ] = False,
    db: DbOption = None,
    device: DeviceOption = "auto",
    as_json: JsonOption = False,
) -> None:
    """Fine-tune CLIP on image-caption pairs; evaluates it before and after on held-out images.

    Needs `pip install 'photoseek[torch,train]'`.
    """
    with user_errors():
        from photoseek.models.runtime import Runtime
        from photoseek.text.hf import torch_device
        from photoseek.train import TrainConfig, default_checkpoint_dir
        from photoseek.train import finetune as run_finetune

        config = TrainConfig(
            steps=steps, batch_size=batch_size, accum_steps=accum_steps, lr=lr, weight_decay=weight_decay,
            warmup_steps=warmup, freeze=freeze, lora_rank=lora_rank, unlock_last=unlock_last,  # type: ignore[arg-type]
            checkpoint_every=checkpoint_every, seed=seed, workers=workers,
            precision=precision,  # type: ignore[arg-type]
            device=str(torch_device(Runtime(device))[0]),  # a GPU torch cannot use is one line, before training
        )
        try:
            with _progress(enabled=not as_json) as (on_stage, on_progress):
                result = run_finetune(
                    pairs, out_dir, base=base, images_dir=images, arch_config=arch_config,
                    random_weights=random_weights, config=config, holdout=holdout, checkpoint_dir=checkpoints,
                    resume=resume, on_stage=on_stage, on_progress=on_progress, device=device,
                )
        except KeyboardInterrupt:
            saved = checkpoints or default_checkpoint_dir(out_dir)
            stop_interrupted(f"Interrupted. Checkpoints are in {saved}: run the same command with --resume to go on.")
    command = _reindex_command(result.model_dir, db)
    if as_json:
        print_json({**_result_dict(result), "reindex_command": command})
        return
    _print_result(result)
    out.print(f"Search with it: re-index with the new model (embeddings of different models never mix):\n  {command}")


@contextmanager
def _progress(
    enabled: bool,
) -> Iterator[tuple[Callable[[str], None] | None, Callable[[TrainProgress], None] | None]]:
    if not enabled:
        yield None, None
        return
    columns = (
        TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}  {task.fields[speed]:.1f} img/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("train", total=None, visible=False, loss=float("nan"), lr=0.0, speed=0.0)

        def on_progress(p: TrainProgress) -> None:
            bar.update(
                task, visible=True, completed=p.step, total=p.steps, loss=p.loss, lr=p.lr, speed=p.images_per_s
            )

        yield (lambda message: bar.console.print(f"[dim]{message}…[/]")), on_progress


def _reindex_command(model_dir: Path, db: Path | None) -> str:
    """The index command for the catalog's folders, or a placeholder when there is no catalog yet."""
    from photoseek.store.catalog import default_db_path

    db_path = Path(db).expanduser() if db else default_db_path()
    roots = ["DIR"]
    if db_path.is_file():
        from photoseek.api import ImageIndex

        with ImageIndex(db_path) as idx:
            roots = idx.status().roots or roots
    db_flag = f" --db {db_path}" if db else ""
    return f"photoseek index{db_flag} --model-path {model_dir} --rebuild {' '.join(roots)}"


def _result_dict(result: FinetuneResult) -> dict[str, object]:
    return {
        "model_dir": str(result.model_dir),
        "model_id": result.model_id,
        "base_model_id": result.base_id,
        "train_pairs": result.train_pairs,
        "heldout_images": result.heldout_images,
        "steps": result.steps,
        "seconds": round(result.seconds, 2),
        "final_loss": result.losses[-1] if result.losses else None,
        "before": result.before,
        "after": result.after,
    }


def _print_result(result: FinetuneResult) -> None:
    out.print(f"Fine-tuned model {result.model_id} written to {result.model_dir} ({result.seconds:.0f} s).")
    if not result.before:
        out.print("No held-out split (--holdout 0): nothing evaluated.")
        return
    table = Table("model", *result.before, title=f"Text-to-image recall on {result.heldout_images} held-out images")
    table.add_row(f"before: {result.base_id}", *(f"{v:.3f}" for v in result.before.values()))
    table.add_row(f"after: {result.model_id}", *(f"{v:.3f}" for v in result.after.values()))
    out.print(table)
