"""Which hardware runs the models: ``--device auto|cpu|cuda[:N]|coreml`` to ONNX Runtime providers.

ONNX Runtime picks hardware through execution providers, and which ones exist depends on the
installed wheel: ``onnxruntime`` offers CPU (and CoreML on macOS), ``onnxruntime-gpu`` adds CUDA.
Asking for hardware the wheel cannot drive is an error that names the package to install; ``auto``
takes the best provider on offer and falls back to the CPU.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photoseek.errors import BadInput, Unavailable

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
COREML = "CoreMLExecutionProvider"

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "coreml")
_SPEC = re.compile(r"^(?P<kind>auto|cpu|cuda|coreml)(?::(?P<index>\d+))?$")
_KIND_PROVIDER = {"cpu": CPU, "cuda": CUDA, "coreml": COREML}
_AUTO_ORDER = (CUDA, COREML)

GPU_INSTALL = (
    "pip install 'photoseek[gpu]' && pip uninstall -y onnxruntime && "
    "pip install --force-reinstall --no-deps onnxruntime-gpu"
)
"""onnxruntime and onnxruntime-gpu share one import name, so the CPU wheel has to go (README: GPU)."""

Provider = tuple[str, dict[str, Any]]
"""An ONNX Runtime provider name with its options, as ``InferenceSession(providers=...)`` takes them."""


class DeviceError(Unavailable):
    """The asked-for device is one this onnxruntime (or torch) build cannot drive here."""

    code = "device_unavailable"


class UnknownDeviceError(BadInput, DeviceError):
    """The `--device` value names no device: a bad input, whatever the machine has."""

    code = "unknown_device"


@dataclass(frozen=True)
class Device:
    """A parsed ``--device`` value."""

    kind: str
    index: int = 0

    def __str__(self) -> str:
        return f"{self.kind}:{self.index}" if self.kind == "cuda" and self.index else self.kind


def parse_device(spec: str | Device | None) -> Device:
    """``"cuda:1"`` to ``Device("cuda", 1)``; None means ``auto``."""
    if isinstance(spec, Device):
        return spec
    text = (spec or "auto").strip().lower()
    match = _SPEC.match(text)
    if match is None or (match["index"] is not None and match["kind"] != "cuda"):
        raise UnknownDeviceError(
            f"Unknown device {spec!r}: use one of {', '.join(DEVICES)} (e.g. cuda:1 for the second GPU)."
        )
    return Device(match["kind"], int(match["index"] or 0))


def available_providers() -> list[str]:
    """Hardware providers this onnxruntime build offers (CPU always among them; Azure's remote one left out).

    Importing ONNX Runtime costs ~0.13 CPU-s, most of a small command such as `status`; until some
    command has imported it anyway, the answer comes from the last one's, kept per build (see
    ``_build_stamp``).
    """
    stamp = None if "onnxruntime" in sys.modules else _build_stamp()
    if stamp is not None and (known := _remembered_providers(stamp)) is not None:
        return known
    import onnxruntime as ort  # here, not above: parsing a --device must not load ONNX Runtime

    offered = [p for p in ort.get_available_providers() if p != "AzureExecutionProvider"]
    offered = offered if CPU in offered else [*offered, CPU]
    if stamp is not None:  # asked of the module this call imported: never what a test or caller patched in
        _remember_providers(stamp, offered)
    return offered


def _build_stamp() -> str | None:
    """Names the installed onnxruntime build without importing it: its native library's path, size and
    modification time, which any install, upgrade or swap between onnxruntime and onnxruntime-gpu changes."""
    try:
        spec = importlib.util.find_spec("onnxruntime")
        if spec is None or not spec.submodule_search_locations:
            return None
        capi = Path(next(iter(spec.submodule_search_locations))) / "capi"
        native = sorted(capi.glob("onnxruntime_pybind11_state*"))
        if not native:
            return None
        info = native[0].stat()
    except (OSError, ImportError, ValueError):
        return None
    return f"{native[0]}|{info.st_size}|{info.st_mtime_ns}"


def _providers_file() -> Path:
    from platformdirs import user_cache_path

    return user_cache_path("photoseek") / "onnxruntime-providers.json"


def _remembered_providers(stamp: str) -> list[str] | None:
    try:
        known = json.loads(_providers_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    providers = known.get("providers") if isinstance(known, dict) and known.get("build") == stamp else None
    if isinstance(providers, list) and providers and all(isinstance(p, str) for p in providers):
        return providers
    return None


def _remember_providers(stamp: str | None, providers: list[str]) -> None:
    """Best effort: a cache that cannot be written only means the next small command imports ONNX Runtime."""
    if stamp is None or _remembered_providers(stamp) == providers:
        return
    from photoseek.durable import write_atomically  # whole or absent: a reader never sees half of it

    path = _providers_file()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps({"build": stamp, "providers": providers}).encode())


def plan_providers(spec: str | Device | None = None, offered: list[str] | None = None) -> list[Provider]:
    """The providers, with options, that a session on ``spec`` gets; CPU is always the last resort."""
    device = parse_device(spec)
    offered = available_providers() if offered is None else offered
    if device.kind == "auto":
        best = next((p for p in _AUTO_ORDER if p in offered), CPU)
        return [(CPU, {})] if best == CPU else [_with_options(best, 0), (CPU, {})]
    provider = _KIND_PROVIDER[device.kind]
    if provider not in offered:
        raise DeviceError(_missing_provider_message(device, provider, offered))
    return [(CPU, {})] if provider == CPU else [_with_options(provider, device.index), (CPU, {})]


def _with_options(provider: str, index: int) -> Provider:
    if provider == CUDA:
        # The default arena grows in powers of two; same-shape batches fit the requested size better.
        return CUDA, {"device_id": index, "arena_extend_strategy": "kSameAsRequested"}
    return provider, {}


def _missing_provider_message(device: Device, provider: str, offered: list[str]) -> str:
    have = ", ".join(offered)
    if device.kind == "cuda":
        both = _installed("onnxruntime") and _installed("onnxruntime-gpu")
        clash = (
            " Both onnxruntime and onnxruntime-gpu are installed and the CPU one shadows the GPU one." if both else ""
        )
        return (
            f"--device {device} needs ONNX Runtime's {provider}, "
            f"but this onnxruntime offers only {have}.{clash} "
            f"Install the GPU build (NVIDIA driver and CUDA 12 needed): {GPU_INSTALL}. Or use --device cpu."
        )
    return (
        f"--device {device} needs ONNX Runtime's {provider}, but this onnxruntime offers only {have}. "
        "The standard onnxruntime wheel for macOS has it: run on a Mac, or use --device cpu."
    )


def _installed(distribution: str) -> bool:
    from importlib import metadata  # here: only an error message asks, and it costs ~0.02 s to import

    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def check_session_providers(spec: str | Device | None, planned: list[Provider], running: list[str]) -> None:
    """Refuse a session that silently fell back to the CPU when a GPU was asked for explicitly.

    ONNX Runtime falls back to the CPU (with a log line) when the CUDA libraries fail to load.
    """
    wanted = planned[0][0]
    if parse_device(spec).kind != "auto" and wanted != CPU and wanted not in running:
        raise DeviceError(
            f"--device {parse_device(spec)}: ONNX Runtime could not start {wanted} "
            f"and fell back to {', '.join(running)}. "
            "Check the NVIDIA driver and that CUDA 12 and cuDNN 9 libraries are installed (pip install "
            "'onnxruntime-gpu[cuda,cudnn]' brings them), or use --device cpu."
        )
