"""Loading transformers vision models (captioners, detectors): local cache first, on the runtime's device.

A named model is looked up in the local Hugging Face cache (or read from a folder) before any
network access, and the Hub is only tried when it answers within seconds and is not switched off
(HF_HUB_OFFLINE), so a missing model fails fast with a message that says what to do.
`check_available` does the same check without loading, before a long indexing pass.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from photoseek.errors import ModelNotAvailableError
from photoseek.models.device import DeviceError
from photoseek.models.hub import cache_dir, copy_hint, hub_unreachable, local_snapshot
from photoseek.models.runtime import Runtime

T = TypeVar("T")

KINDS = {"caption": "captioning", "detector": "object detection"}
"""The transformers models photoseek runs, by the name `photoseek models download --kind` gives them."""


def torch_device(runtime: Runtime) -> tuple[Any, Any]:
    """(device, dtype) for the runtime's ``--device``: CUDA in float16, else float32 on the CPU (or,
    for ``coreml``, Apple's GPU through torch's MPS when this torch has it). ``auto`` takes CUDA
    when torch sees a GPU; an explicit ``cuda`` that torch cannot drive is an error."""
    torch = require_torch()
    device = runtime.device
    if device.kind == "cuda" or (device.kind == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available() or device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"--device {device}: torch cannot use that GPU (it sees {torch.cuda.device_count()}), so "
                "captions, object counts and fine-tuning cannot run there. Install a CUDA build of torch "
                "(https://pytorch.org/get-started/locally/), or use --device cpu."
            )
        return torch.device("cuda", device.index), torch.float16
    if device.kind == "coreml" and torch.backends.mps.is_available():
        return torch.device("mps"), torch.float32
    return torch.device("cpu"), torch.float32


def require_torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelNotAvailableError(
            "Captions and object counts run transformers models on torch, which is not installed: "
            "pip install 'photoseek[torch]'."
        ) from exc
    return torch


def check_available(name: str, kind: str) -> None:
    """Fail now, in seconds, if `name` cannot be loaded later: torch missing, or not cached and no Hub.

    Called before the long CLIP pass of `index`, so a missing piece is not reported an hour later.
    Looks at files only (a folder's or the cache's config.json); the weights load on first use.
    """
    require_torch()
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelNotAvailableError(f"{folder} is not a transformers model folder (it has no config.json).")
        return
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json", cache_dir=cache_dir())
    except ValueError:  # not a valid repo id
        cached = None
    if isinstance(cached, str):
        return
    reason = hub_unreachable()
    if reason is not None:
        raise _not_available(name, kind, reason)


def load_pretrained(loader: Callable[..., T], name: str, kind: str, **kwargs: Any) -> T:
    """`loader(name, ...)` from a folder or the local cache, else from the Hub when it answers."""
    require_torch()
    from transformers.utils import logging

    logging.disable_progress_bar()  # our own progress bar and --json output own the terminal
    logging.set_verbosity_error()
    kwargs.setdefault("cache_dir", cache_dir())
    try:
        return loader(name, local_files_only=True, **kwargs)
    except (OSError, ValueError) as exc:  # not cached / not a model folder / invalid repo id
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else exc}"
    if Path(name).expanduser().is_dir():
        raise _not_available(name, kind, reason)
    unreachable = hub_unreachable()  # seconds, instead of minutes of transformers' retries
    if unreachable is not None:
        raise _not_available(name, kind, unreachable)
    try:
        return loader(name, local_files_only=False, **kwargs)
    except Exception as exc:  # network, auth, missing repo, corrupt files: all end the same way for the user
        raise _not_available(name, kind, f"{type(exc).__name__}: {exc}") from exc


def _not_available(name: str, kind: str, reason: str) -> ModelNotAvailableError:
    return ModelNotAvailableError(
        f"The {KINDS[kind]} model {name!r} is not available: {reason}. Give a local model folder, or "
        f"{copy_hint(f'photoseek models download --kind {kind} {name}')}."
    )


def local_folder(name: str, kind: str, load: Callable[[], object]) -> Path:
    """The folder `name` loads from: the folder itself or its cached Hub snapshot (`load` fetches it
    first, once, when it is not cached). What a cluster's nodes are sent instead of each downloading."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        return folder
    snapshot = local_snapshot(name, ["*"])
    if snapshot is None:
        load()
        snapshot = local_snapshot(name, ["*"])
    if snapshot is None:
        raise _not_available(name, kind, "it loaded, but not from the Hugging Face cache")
    return snapshot


def to_device(inputs: Any, model: Any) -> dict[str, Any]:
    """A processor's tensors on the model's device; floating ones in the model's dtype."""
    device, dtype = model.device, model.dtype
    return {k: v.to(device, dtype) if v.is_floating_point() else v.to(device) for k, v in inputs.items()}


def load_model(auto_class: Any, name: str, kind: str, runtime: Runtime) -> Any:
    """A transformers model in inference mode on the runtime's device, in that device's dtype,
    with torch's CPU threads within the budget (`photoseek.threads`)."""
    device, dtype = torch_device(runtime)
    torch = require_torch()
    torch.set_num_threads(runtime.intra_threads())
    return load_pretrained(auto_class.from_pretrained, name, kind, dtype=dtype).to(device).eval()


def in_batches(items: list[Any], size: int, run: Callable[[list[Any]], list[T]]) -> list[T]:
    """`run` over consecutive chunks of `items`, results concatenated in order."""
    return [result for i in range(0, len(items), size) for result in run(items[i : i + size])]
