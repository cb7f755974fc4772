"""Fine-tuning speed: training-step throughput per setting, and the tiny model's end-to-end run time.

    PYTHONPATH=src:tests python bench/train_bench.py            # CPU: tiny model
    PYTHONPATH=src:tests python bench/train_bench.py --gpu      # GPU: ViT-B-32, batch 256, mixed precision

Step throughput uses in-memory random batches (the model's training step alone, no image
decoding), in one process, so the ratios between settings are comparable even on a busy
machine; "full" (all weights, one pass) is the baseline. ViT-B-32 runs with random weights
(throughput does not depend on them, and pretrained weights need a download).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from photoseek.train import TrainConfig, Trainer, finetune, load_base
from photoseek.train.pairs import Pair

SETTINGS = {
    "full": {},
    "gradient cache, 4 chunks": {"accum_steps": 4},
    "LoRA r=8": {"lora_rank": 8},
    "text tower frozen": {"freeze": "text"},
    "last 2 layer groups": {"unlock_last": 2},
}


def step_throughput(base_spec: str, arch_config: Path | None, batch: int, steps: int, **overrides: object) -> float:
    """Images per second of ``train_step`` on random pixels and tokens, after two warm-up steps."""
    base = load_base(base_spec, arch_config=arch_config, random_weights=True)
    dummy = [Pair("x", Path("x"), "x")] * batch
    config = TrainConfig(steps=steps + 2, batch_size=batch, warmup_steps=1, **overrides)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(base, dummy, config, Path(tmp))
    size = trainer.dataset.min_side
    context = base.model_cfg["text_cfg"].get("context_length", 77)
    images = torch.randn(batch, 3, size, size, device=trainer.device)
    texts = torch.randint(1, 49000, (batch, context), device=trainer.device)
    trainer.module.train()
    for _ in range(2):
        trainer.train_step(images, texts)
    _sync()
    started = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(images, texts)
    _sync()
    return batch * steps / (time.perf_counter() - started)


def tiny_end_to_end(arch_config: Path, arch: str) -> dict[str, object]:
    """The test suite's fine-tune (rendered shapes, 120 steps at batch 16) timed end to end."""
    from train.shapes import write_shape_pairs

    with tempfile.TemporaryDirectory() as tmp:
        csv = write_shape_pairs(Path(tmp) / "data", per_class=6)
        config = TrainConfig(steps=120, batch_size=16, lr=2e-3, warmup_steps=10, checkpoint_every=1000)
        started = time.perf_counter()
        result = finetune(csv, Path(tmp) / "out", base=arch, arch_config=arch_config, random_weights=True,
                          config=config, holdout=0.25)
        seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 1), "images_per_s": round(120 * 16 / seconds, 1),
            "before": result.before, "after": result.after}


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="ViT-B-32 at batch 256 with mixed precision (needs CUDA)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per setting")
    args = parser.parse_args()
    report: dict[str, object] = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                                 "torch_threads": torch.get_num_threads()}
    if args.gpu:
        if not torch.cuda.is_available():
            raise SystemExit("--gpu needs a CUDA device.")
        base_spec, arch_config, batch, steps = "ViT-B-32", None, 256, args.steps or 20
    else:
        from train.test_finetune import ARCH, CONFIG

        tmp = Path(tempfile.mkdtemp())
        arch_config = tmp / f"{ARCH}.json"
        arch_config.write_text(json.dumps(CONFIG), encoding="utf-8")
        base_spec, batch, steps = ARCH, 16, args.steps or 20
        report["tiny_end_to_end"] = tiny_end_to_end(arch_config, ARCH)
    rates = {name: step_throughput(base_spec, arch_config, batch, steps, **o) for name, o in SETTINGS.items()}
    report["model"], report["batch"] = base_spec, batch
    report["images_per_s"] = {name: round(rate, 1) for name, rate in rates.items()}
    report["ratio_to_full"] = {name: round(rate / rates["full"], 2) for name, rate in rates.items()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    from measure import measured_run  # bench/ is on sys.path when run as a script

    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
