"""``finetune``: pairs file in, evaluated model directory out.

Steps: read and split the pairs, load the base, measure it on the held-out images with the
evaluation harness, train, export the result in our model-directory layout (with its torch
weights, so it can be fine-tuned again), and measure it again on the same images.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from photoseek.eval import Dataset, RunSpec, evaluate
from photoseek.eval.runner import TEXT_TO_IMAGE
from photoseek.models.export import ExportError, export_model
from photoseek.train.base import TORCH_WEIGHTS, finetuned_id, load_base, save_weights
from photoseek.train.pairs import Pair, read_pairs, split_pairs
from photoseek.train.trainer import TrainConfig, Trainer, TrainProgress

RECALLS = ("R@1", "R@5", "R@10")


@dataclass
class FinetuneResult:
    model_dir: Path
    model_id: str
    base_id: str
    train_pairs: int
    heldout_images: int
    steps: int
    seconds: float
    losses: list[float]
    before: dict[str, float] = field(default_factory=dict)
    """Text-to-image R@1/5/10 of the base model on the held-out images (empty without a held-out split)."""
    after: dict[str, float] = field(default_factory=dict)


def finetune(
    pairs_csv: Path,
    out_dir: Path,
    *,
    base: str,
    images_dir: Path | None = None,
    arch_config: Path | None = None,
    random_weights: bool = False,
    config: TrainConfig | None = None,
    holdout: float = 0.1,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    on_stage: Callable[[str], None] | None = None,
    on_progress: Callable[[TrainProgress], None] | None = None,
    device: str | None = None,
) -> FinetuneResult:
    """Fine-tune ``base`` on ``pairs_csv`` and write the model directory ``out_dir``; the before and
    after evaluations run the ONNX models on ``device`` (training runs on ``config.device``).

    Checkpoints go to ``checkpoint_dir`` (default: ``<out_dir>.checkpoints`` beside it);
    ``resume`` continues from its last checkpoint with the same settings.
    """
    config = config or TrainConfig()
    stage = on_stage or (lambda _message: None)
    out_dir = Path(out_dir).expanduser().resolve()
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ExportError(f"{out_dir} already exists and is not empty; choose a new --out directory.")
    checkpoint_dir = Path(checkpoint_dir).expanduser() if checkpoint_dir else default_checkpoint_dir(out_dir)
    root = Path(images_dir).expanduser() if images_dir else Path(pairs_csv).expanduser().parent
    train, held = split_pairs(read_pairs(pairs_csv, images_dir), holdout, config.seed)
    started = time.perf_counter()

    stage("Loading the base model")
    start = load_base(base, arch_config=arch_config, random_weights=random_weights, seed=config.seed)
    before: dict[str, float] = {}
    if held:
        stage("Evaluating the base model on the held-out images")
        base_dir = checkpoint_dir / "base-model"
        if not base_dir.is_dir():
            export_model(start.model, base_dir, arch=start.arch, model_cfg=start.model_cfg, model_id=start.model_id)
        before = _recall(held, root, base_dir, checkpoint_dir, device)

    trainer = Trainer(start, train, config, checkpoint_dir)
    if resume:
        trainer.resume()
    stage(f"Training on {len(train)} pairs from step {trainer.step} to {config.steps}")
    losses = trainer.run(on_progress)

    stage("Exporting the fine-tuned model")
    model = trainer.merged_model()
    model_id = finetuned_id(start.model_id, model)
    export_model(
        model, out_dir, arch=start.arch, model_cfg=start.model_cfg, model_id=model_id,
        write_extra=lambda staging: save_weights(model, start, model_id, staging / TORCH_WEIGHTS),
    )
    after: dict[str, float] = {}
    if held:
        stage("Evaluating the fine-tuned model on the held-out images")
        after = _recall(held, root, out_dir, checkpoint_dir, device)
    return FinetuneResult(
        out_dir, model_id, start.model_id, len(train), len({p.name for p in held}), config.steps,
        time.perf_counter() - started, losses, before, after,
    )


def default_checkpoint_dir(out_dir: Path) -> Path:
    """``<out_dir>.checkpoints`` beside the model directory, which must stay clean until export."""
    out_dir = Path(out_dir).expanduser().resolve()
    return out_dir.with_name(out_dir.name + ".checkpoints")


def heldout_dataset(held: list[Pair]) -> Dataset:
    """The held-out pairs as an evaluation dataset: each image with all its captions.

    A caption given to several images is relevant to all of them: ranking one above the other
    is no mistake.
    """
    captions: dict[str, list[str]] = {}
    images_of: dict[str, dict[str, float]] = {}
    for pair in held:
        captions.setdefault(pair.name, []).append(pair.caption)
        images_of.setdefault(pair.caption, {})[pair.name] = 1.0
    shared = {caption: images for caption, images in images_of.items() if len(images) > 1}
    return Dataset("pairs", tuple(captions), tuple(tuple(c) for c in captions.values()), shared)


def _recall(held: list[Pair], root: Path, model_dir: Path, work_dir: Path, device: str | None) -> dict[str, float]:
    evaluation = evaluate(
        heldout_dataset(held), root, [RunSpec(model_path=model_dir)], cache_dir=work_dir / "eval", device=device
    )
    summary = evaluation.runs[0].directions[TEXT_TO_IMAGE].summary
    return {k: summary[k] for k in RECALLS}
