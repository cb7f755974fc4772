"""Loading transformers vision models (captioners, detectors): local cache first, GPU when present.

A named model is looked up in the local Hugging Face cache (or read from a folder) before any
network access, and the Hub is only tried when it is reachable and not switched off
(HF_HUB_OFFLINE), so a missing model fails fast with a message that says what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from imgsearch.errors import ModelNotAvailableError
from imgsearch.models.hub import cache_location, hub_offline

T = TypeVar("T")


def torch_device() -> tuple[Any, Any]:
    """(device, dtype): CUDA in float16 when there is a GPU, else CPU in float32."""
    torch = require_torch()
    if torch.cuda.is_available():
        return torch.device("cuda"), torch.float16
    return torch.device("cpu"), torch.float32


def require_torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelNotAvailableError(
            "Captions and object counts run transformers models on torch, which is not installed: "
            "pip install 'imgsearch[torch]'."
        ) from exc
    return torch


def load_pretrained(loader: Callable[..., T], name: str, what: str, **kwargs: Any) -> T:
    """`loader(name, ...)` from a folder or the local cache, else from the Hub when allowed."""
    require_torch()
    from transformers.utils import logging

    logging.disable_progress_bar()  # our own progress bar and --json output own the terminal
    logging.set_verbosity_error()
    reason = "it is not in the local cache and the Hub cannot be reached (HF_HUB_OFFLINE is set)"
    for local_only in (True, False):
        if not local_only and hub_offline():
            break
        try:
            return loader(name, local_files_only=local_only, **kwargs)
        except (OSError, ValueError) as exc:  # not cached / not a model folder / invalid repo id
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else exc}"
            if not local_only:
                break
        except Exception as exc:  # network, auth, corrupt files: all end the same way for the user
            reason = f"{type(exc).__name__}: {exc}"
            break
    raise ModelNotAvailableError(
        f"The {what} model {name!r} is not available: {reason}. Give a local model folder, or download "
        f"it on a connected machine (huggingface-cli download {name}) into {cache_location()}."
    )


def to_device(inputs: Any) -> dict[str, Any]:
    """A processor's tensors on the model's device; floating ones in the model's dtype."""
    device, dtype = torch_device()
    return {k: v.to(device, dtype) if v.is_floating_point() else v.to(device) for k, v in inputs.items()}


def load_model(auto_class: Any, name: str, what: str) -> Any:
    """A transformers model in inference mode on the best device, in that device's dtype."""
    device, dtype = torch_device()
    return load_pretrained(auto_class.from_pretrained, name, what, dtype=dtype).to(device).eval()


def in_batches(items: list[Any], size: int, run: Callable[[list[Any]], list[T]]) -> list[T]:
    """`run` over consecutive chunks of `items`, results concatenated in order."""
    return [result for i in range(0, len(items), size) for result in run(items[i : i + size])]
