"""The training loop: CLIP's own contrastive loss, AdamW with warmup + cosine, checkpoints with exact resume.

Loss: open_clip's ``ClipLoss`` (symmetric InfoNCE) with the model's learnable temperature
``logit_scale``, clamped to ln(100) after every step as open_clip's trainer does.

Large batches on small GPUs (``accum_steps``): plain gradient accumulation would give each
micro-batch only its own captions as negatives, i.e. a weaker contrastive task than the batch
size suggests. We use the gradient-cache scheme instead (Gao et al., 2021): embed the whole
batch without gradients, take the loss and its gradient with respect to the embeddings over
all ``batch_size`` pairs, then re-run each micro-batch with gradients and backpropagate those
embedding gradients. The update equals the one full-batch step (up to float rounding), at the
cost of a second forward pass, while activations are held for one micro-batch at a time.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from photoseek.errors import BadInput
from photoseek.models.export import OpenClipModel
from photoseek.train.data import PairDataset, batch_loader, train_transform
from photoseek.train.pairs import Pair

Freeze = Literal["none", "text", "image"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
OpenClipModule = Any
"""open_clip's CLIP module, or the peft wrapper around it: open_clip ships no types, and what training
calls on it (encode_image, lock_image_tower, merge_and_unload) is not torch.nn.Module's."""
MAX_LOGIT_SCALE = math.log(100)
_RESUMABLE_CHANGES = {"workers", "checkpoint_every", "device"}
_LORA_TARGETS = {
    "image": r"visual\.transformer\.resblocks\.\d+\.(attn|mlp\.c_fc|mlp\.c_proj)",
    "text": r"transformer\.resblocks\.\d+\.(attn|mlp\.c_fc|mlp\.c_proj)",
}


class TrainingError(BadInput):
    """Training settings that cannot work together; the message says which to change."""


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 64
    accum_steps: int = 1
    """Micro-batches per step (gradient cache): same update, 1/accum_steps of the activation memory."""
    lr: float = 1e-5
    weight_decay: float = 0.2
    warmup_steps: int = 100
    freeze: Freeze = "none"
    lora_rank: int = 0
    """0: train all (unfrozen) weights; r > 0: LoRA adapters of rank r (peft) on every attention and MLP."""
    unlock_last: int = 0
    """0: all layers; N > 0: only the last N layer groups of each trained tower (1 = projection only)."""
    checkpoint_every: int = 200
    seed: int = 0
    workers: int = 0
    device: str | None = None
    precision: Precision = "auto"
    """auto: bf16 autocast on GPUs that have it, else fp16 autocast + loss scaling; fp32 on CPU."""


@dataclass(frozen=True)
class TrainProgress:
    step: int
    steps: int
    loss: float
    lr: float
    images_per_s: float
    temperature: float


class Trainer:
    """Fine-tunes ``base.model`` in place on ``pairs``; ``run`` trains from the current step to the end."""

    def __init__(self, base: OpenClipModel, pairs: list[Pair], config: TrainConfig, checkpoint_dir: Path) -> None:
        import open_clip
        from open_clip.loss import ClipLoss
        from transformers import get_cosine_schedule_with_warmup

        _check_config(config, len(pairs))
        self.config = config
        self.checkpoint_dir = checkpoint_dir
        self.device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        torch.manual_seed(config.seed)
        self.clip = base.model
        self.module = _trainable(base.model, config)
        self.module.to(self.device)
        size = open_clip.get_model_preprocess_cfg(base.model)["size"]
        self.dataset = PairDataset(
            pairs, train_transform(base.model), open_clip.get_tokenizer(base.arch), config.seed,
            min_side=max(size) if isinstance(size, (list, tuple)) else int(size),
        )
        self.optimizer = torch.optim.AdamW(
            _param_groups(self.module, config.weight_decay), lr=config.lr, betas=(0.9, 0.98), eps=1e-6
        )
        self.scheduler = get_cosine_schedule_with_warmup(self.optimizer, config.warmup_steps, config.steps)
        self.amp_dtype = _amp_dtype(self.device, config.precision)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.loss_fn = ClipLoss()
        self.step = 0
        self.losses: list[float] = []

    def run(self, on_progress: Callable[[TrainProgress], None] | None = None, until: int | None = None) -> list[float]:
        """Train up to step ``until`` (default: ``config.steps``), checkpointing every ``checkpoint_every``
        steps and at the end; the losses of all steps so far."""
        cfg = self.config
        self.module.train()
        stop = min(until or cfg.steps, cfg.steps)
        loader = batch_loader(self.dataset, cfg.batch_size, self.step, stop, cfg.workers)
        started, seen = time.perf_counter(), 0
        for images, texts in loader:
            loss = self.train_step(images.to(self.device, non_blocking=True), texts.to(self.device, non_blocking=True))
            self.losses.append(loss)
            seen += len(images)
            if self.step % cfg.checkpoint_every == 0 or self.step == stop:
                self.save_checkpoint()
            if on_progress is not None:
                elapsed = max(time.perf_counter() - started, 1e-9)
                on_progress(TrainProgress(
                    self.step, cfg.steps, loss, self.scheduler.get_last_lr()[0], seen / elapsed,
                    1 / float(self.clip.logit_scale.detach().exp()),
                ))
        self.module.eval()
        return self.losses

    def train_step(self, images: torch.Tensor, texts: torch.Tensor) -> float:
        """One optimizer step on one batch; returns the batch's loss."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.config.accum_steps == 1:
            with self._autocast():
                loss = self._loss(self.clip.encode_image(images, normalize=True),
                                  self.clip.encode_text(texts, normalize=True))
            self.scaler.scale(loss).backward()
        else:
            loss = self._cached_backward(images, texts)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        with torch.no_grad():
            self.clip.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        self.step += 1
        return float(loss.detach())

    def _cached_backward(self, images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        """Gradient cache: loss over the full batch, backpropagated one micro-batch at a time."""
        chunks = self.config.accum_steps
        image_chunks, text_chunks = images.chunk(chunks), texts.chunk(chunks)
        rng = _RngStates(self.device)
        with torch.no_grad(), self._autocast():
            image_emb = torch.cat([rng.capture(("image", i), partial(self.clip.encode_image, c, normalize=True))
                                   for i, c in enumerate(image_chunks)])
            text_emb = torch.cat([rng.capture(("text", i), partial(self.clip.encode_text, c, normalize=True))
                                  for i, c in enumerate(text_chunks)])
        image_emb.requires_grad_(True)
        text_emb.requires_grad_(True)
        with self._autocast():
            loss = self._loss(image_emb, text_emb)
        self.scaler.scale(loss).backward()
        for kind, parts, emb, encode in (
            ("image", image_chunks, image_emb, self.clip.encode_image),
            ("text", text_chunks, text_emb, self.clip.encode_text),
        ):
            grads = emb.grad.split([len(p) for p in parts])  # type: ignore[union-attr]
            for i, (part, grad) in enumerate(zip(parts, grads)):
                with rng.replay((kind, i)), self._autocast():
                    out = encode(part, normalize=True)
                if out.requires_grad:
                    out.backward(grad.to(out.dtype))
        rng.finish()
        return loss

    def _loss(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        loss: torch.Tensor = self.loss_fn(image_emb.float(), text_emb.float(), self.clip.logit_scale.exp())
        return loss

    def _autocast(self) -> Any:
        enabled = self.amp_dtype is not None
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=enabled)

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoint_dir / "last.pt"

    def save_checkpoint(self) -> Path:
        """Everything a resumed run needs to continue bit-for-bit: weights, optimizer, schedule, scaler, RNGs."""
        state = {
            "step": self.step,
            "config": asdict(self.config),
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "losses": self.losses,
            "rng": _global_rng_state(),
        }
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        staging = self.checkpoint_dir / ".last.pt.tmp"
        torch.save(state, staging)
        staging.replace(self.last_checkpoint)
        return self.last_checkpoint

    def resume(self, path: Path | None = None) -> int:
        """Load a checkpoint written by ``save_checkpoint`` (same settings); returns its step."""
        path = path or self.last_checkpoint
        if not path.is_file():
            raise TrainingError(f"No checkpoint at {path} to resume from; run without --resume to start afresh.")
        state = torch.load(path, map_location=self.device, weights_only=False)
        saved = {k: v for k, v in state["config"].items() if k not in _RESUMABLE_CHANGES}
        current = {k: v for k, v in asdict(self.config).items() if k in saved}
        if saved != current:
            changed = ", ".join(f"{k}: {saved[k]} -> {current[k]}" for k in saved if saved[k] != current[k])
            raise TrainingError(f"{path} was written with other training settings ({changed}); use the same ones.")
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.losses = list(state["losses"])
        _set_global_rng_state(state["rng"])
        self.step = int(state["step"])
        return self.step

    def merged_model(self) -> torch.nn.Module:
        """The plain open_clip model with any LoRA adapters folded in, on the CPU, for export."""
        model = self.module.merge_and_unload() if self.config.lora_rank else self.module
        model = model.to("cpu").eval()
        self.clip = model
        return model


def _check_config(config: TrainConfig, rows: int) -> None:
    if config.batch_size < 2:
        raise TrainingError("--batch-size must be at least 2: the other pairs of a batch are the negatives.")
    if config.batch_size > rows:
        raise TrainingError(f"--batch-size {config.batch_size} is larger than the {rows} training pairs; lower it.")
    if config.accum_steps < 1 or config.batch_size % config.accum_steps:
        raise TrainingError(f"--accum-steps {config.accum_steps} must divide --batch-size {config.batch_size}.")
    if config.lora_rank and config.unlock_last:
        raise TrainingError("Use either --lora-rank or --unlock-last, not both.")
    if config.freeze not in ("none", "text", "image"):
        raise TrainingError(f"--freeze must be text, image or none, not {config.freeze!r}.")
    if config.precision not in ("auto", "fp32", "bf16", "fp16"):
        raise TrainingError(f"--precision must be auto, fp32, bf16 or fp16, not {config.precision!r}.")


def _trainable(model: OpenClipModule, config: TrainConfig) -> OpenClipModule:
    """Freeze what the config says; returns the module to optimise (a peft wrapper with LoRA)."""
    towers = [t for t in ("image", "text") if t != config.freeze]
    model.requires_grad_(True)  # exporting the base model beforehand froze it
    if config.lora_rank:
        from peft import LoraConfig, get_peft_model

        pattern = "|".join(_LORA_TARGETS[t] for t in towers)
        lora = LoraConfig(r=config.lora_rank, lora_alpha=2 * config.lora_rank, target_modules=f"^({pattern})$")
        wrapped = get_peft_model(model, lora)
        model.logit_scale.requires_grad_(True)
        return wrapped
    if config.freeze == "image" or config.unlock_last:
        model.lock_image_tower(unlocked_groups=0 if config.freeze == "image" else config.unlock_last)
    if config.freeze == "text" or config.unlock_last:
        model.lock_text_tower(unlocked_layers=0 if config.freeze == "text" else config.unlock_last)
    return model


def _param_groups(module: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on gains, biases, embeddings' scale or the temperature (as open_clip trains)."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        exempt = param.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name
        (no_decay if exempt else decay).append(param)
    if not decay and not no_decay:
        raise TrainingError("Nothing to train: every weight is frozen. Check --freeze and --unlock-last.")
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def _amp_dtype(device: torch.device, precision: Precision) -> torch.dtype | None:
    """The autocast dtype, None for fp32. "auto": bf16 where the GPU has it (no loss scaling
    needed), else fp16 (with the GradScaler); fp32 on CPU, where autocast rarely pays."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


class _RngStates:
    """Lets the gradient cache's second forward pass see the same dropout masks as the first."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.saved: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor | None]] = {}
        self.end: tuple[torch.Tensor, torch.Tensor | None] | None = None

    def _get(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return torch.get_rng_state(), torch.cuda.get_rng_state() if self.cuda else None

    def _set(self, state: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state(state[1])

    def capture(self, key: tuple[str, int], fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        self.saved[key] = self._get()
        out = fn()
        self.end = self._get()
        return out

    def replay(self, key: tuple[str, int]) -> Any:
        self._set(self.saved[key])
        return torch.enable_grad()

    def finish(self) -> None:
        if self.end is not None:
            self._set(self.end)


def _global_rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_global_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
