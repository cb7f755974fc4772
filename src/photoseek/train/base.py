"""Where training starts: an open_clip architecture (pretrained or random), or weights a fine-tune wrote.

Our model directories hold ONNX graphs, which cannot be trained; a fine-tuned directory also keeps
its torch weights (``torch/model.pt``) so it can be fine-tuned again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from photoseek.errors import BadInput
from photoseek.models import layout
from photoseek.models.export import OpenClipModel, create_open_clip, register_config

TORCH_WEIGHTS = "torch/model.pt"


class BaseModelError(BadInput):
    """The --base model cannot be trained from; the message says what to pass instead."""


def load_base(
    base: str, *, arch_config: Path | None = None, random_weights: bool = False, seed: int = 0
) -> OpenClipModel:
    """``base`` is a fine-tuned model directory, its ``.pt`` weights, or ``ARCH:TAG`` / ``ARCH__TAG``
    (``ARCH`` alone with ``random_weights``; ``arch_config`` registers a custom architecture)."""
    path = Path(base).expanduser()
    if path.is_dir():
        if (path / TORCH_WEIGHTS).is_file():
            return load_weights(path / TORCH_WEIGHTS)
        if not layout.missing_files(path):
            raise BaseModelError(
                f"{path} is an ONNX model directory, which cannot be trained. Pass the open_clip "
                "architecture and pretrained tag it was exported from instead, e.g. --base "
                "ViT-B-32:laion2b_s34b_b79k (see `python -m open_clip list` or open_clip.list_pretrained())."
            )
        raise BaseModelError(f"{path} is neither a fine-tuned model directory nor a model directory.")
    if path.suffix == ".pt":
        if not path.is_file():
            raise BaseModelError(f"No weights file at {path}.")
        return load_weights(path)
    arch, tag = _split_name(base)
    if tag is None and not random_weights:
        raise BaseModelError(
            f"--base {base} names no pretrained weights: use ARCH:TAG (e.g. ViT-B-32:laion2b_s34b_b79k), "
            "or add --random-weights for an untrained model (tests, benchmarks)."
        )
    return create_open_clip(
        arch, pretrained=tag, random_weights=tag is None, arch_config=arch_config, seed=seed
    )


def save_weights(model: torch.nn.Module, base: OpenClipModel, model_id: str, path: Path) -> None:
    """Plain (merged) open_clip weights plus what rebuilds the architecture, for ``--base``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"arch": base.arch, "model_cfg": base.model_cfg, "model_id": model_id, "state_dict": state}, path)


def load_weights(path: Path) -> OpenClipModel:
    import open_clip

    try:
        data: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        arch = register_config(open_clip, data["arch"], data["model_cfg"])
        model = open_clip.create_model(arch)
        model.load_state_dict(data["state_dict"])
    except (OSError, RuntimeError, KeyError, TypeError) as exc:
        raise BaseModelError(f"{path} is not model weights written by photoseek finetune: {exc}") from exc
    return OpenClipModel(model, arch, data["model_cfg"], data["model_id"])


def finetuned_id(base_id: str, model: torch.nn.Module) -> str:
    """``<base id>+ft-<hash of the weights>``: a new id, so the catalog never mixes old and new embeddings."""
    digest = hashlib.blake2b(digest_size=4)
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return f"{base_id}+ft-{digest.hexdigest()}"


def _split_name(base: str) -> tuple[str, str | None]:
    for sep in (":", "__"):
        if sep in base:
            arch, tag = base.split(sep, 1)
            return arch, tag
    return base, None
