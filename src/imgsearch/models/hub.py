"""Finding a named model: local Hugging Face cache first, then the Hub, failing fast when offline.

Models are Immich's ONNX exports, ``immich-app/<name>`` on the Hub, stored in the standard HF cache
(``HF_HOME`` / ``HF_HUB_CACHE``) or in ``$IMGSEARCH_MODEL_DIR`` when set. A search on a machine
without network must never wait on DNS or TCP timeouts, so before any download we probe the Hub
(or the configured HTTPS proxy) with a few-second budget and say exactly how to get the model.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

from imgsearch.errors import ModelNotAvailableError
from imgsearch.models.catalog import (
    HUB_MODELS,
    HUB_ORGANIZATION,
    clean_model_name,
    is_valid_repo_name,
    known_names_hint,
)
from imgsearch.models.layout import DOWNLOAD_PATTERNS, missing_files

MODEL_DIR_ENV = "IMGSEARCH_MODEL_DIR"
PROBE_TIMEOUT_S = 2.0
METADATA_TIMEOUT_S = 5.0
_TRUE = {"1", "on", "yes", "true"}


def cache_dir() -> Path | None:
    """``$IMGSEARCH_MODEL_DIR`` if set; ``None`` means huggingface_hub's default (honours HF_HOME)."""
    value = os.environ.get(MODEL_DIR_ENV)
    return Path(value).expanduser() if value else None


def cache_location() -> Path:
    """The folder that holds downloaded models, for messages and for copying to other machines."""
    from huggingface_hub import constants

    return cache_dir() or Path(constants.HF_HUB_CACHE)


def hub_offline() -> bool:
    """HF_HUB_OFFLINE read now, not at import, so tests and users can flip it at runtime."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in _TRUE or bool(constants.HF_HUB_OFFLINE)


def resolve_model_dir(name: str) -> Path:
    """Local directory of hub model ``name``, downloading it once if needed and possible."""
    name = clean_model_name(name)
    if not is_valid_repo_name(name):
        raise ModelNotAvailableError(f"{name!r} is not a valid model name. Known models: {known_names_hint()}.")
    found = _find_local(name)
    if found is not None:
        return found
    if hub_offline():
        raise _not_available(name, "HF_HUB_OFFLINE is set and the model is not in the local cache")
    reason = _probe_hub()
    if reason is not None:
        raise _not_available(name, reason)
    return _download(name)


def _find_local(name: str) -> Path | None:
    """A complete copy in the HF cache, or a plain folder ``$IMGSEARCH_MODEL_DIR/<name>``."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    root = cache_dir()
    if root is not None and not missing_files(root / name):
        return root / name
    try:
        path = Path(
            snapshot_download(
                f"{HUB_ORGANIZATION}/{name}",
                cache_dir=root,
                local_files_only=True,
                allow_patterns=list(DOWNLOAD_PATTERNS),
            )
        )
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    return None if missing_files(path) else path


def _download(name: str) -> Path:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError

    repo_id = f"{HUB_ORGANIZATION}/{name}"
    try:
        info = HfApi().repo_info(repo_id, timeout=METADATA_TIMEOUT_S)
        path = Path(
            snapshot_download(
                repo_id,
                revision=info.sha,
                cache_dir=cache_dir(),
                allow_patterns=list(DOWNLOAD_PATTERNS),
                etag_timeout=METADATA_TIMEOUT_S,
            )
        )
    except RepositoryNotFoundError as exc:
        raise ModelNotAvailableError(
            f"Unknown model {name!r}: there is no {repo_id} on the Hugging Face Hub. "
            f"Known models: {known_names_hint()}."
        ) from exc
    except Exception as exc:  # HfHubHTTPError, OSError, and httpx errors, which share no public base
        raise _not_available(name, f"download failed ({type(exc).__name__}: {exc})") from exc
    missing = missing_files(path)
    if missing:
        raise ModelNotAvailableError(
            f"{repo_id} is not a CLIP model in Immich's layout (missing {', '.join(missing)}). "
            f"Known models: {known_names_hint()}."
        )
    return path


def _probe_hub() -> str | None:
    """``None`` if a TCP connection to the Hub (or proxy) opens within the budget, else why not."""
    from huggingface_hub import constants

    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or os.environ.get("ALL_PROXY")
    target = urlsplit(proxy if proxy else constants.ENDPOINT)
    host = target.hostname
    if host is None:
        return f"cannot parse the Hub address {constants.ENDPOINT!r}"
    port = target.port or (443 if target.scheme == "https" else 80)
    addresses: list[tuple[object, ...]] = []
    errors: list[BaseException] = []

    def resolve() -> None:  # getaddrinfo has no timeout of its own
        try:
            addresses.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            errors.append(exc)

    worker = threading.Thread(target=resolve, daemon=True)
    worker.start()
    worker.join(PROBE_TIMEOUT_S)
    if worker.is_alive():
        return f"DNS lookup of {host} timed out after {PROBE_TIMEOUT_S:.0f} s"
    if errors or not addresses:
        return f"cannot resolve {host} ({errors[0] if errors else 'no address'})"
    family, socktype, proto, _, sockaddr = addresses[0]
    try:
        with socket.socket(family, socktype, proto) as sock:  # type: ignore[arg-type]
            sock.settimeout(PROBE_TIMEOUT_S)
            sock.connect(sockaddr)  # type: ignore[arg-type]
    except OSError as exc:
        return f"cannot connect to {host}:{port} ({exc or type(exc).__name__})"
    return None


def _not_available(name: str, reason: str) -> ModelNotAvailableError:
    hint = "" if name in HUB_MODELS else f" ({name!r} is not a model imgsearch knows: {known_names_hint()}.)"
    return ModelNotAvailableError(
        f"Model {name!r} is not available offline and cannot be downloaded: {reason}.{hint}\n"
        "To get it:\n"
        f"  - run the same command on a machine with internet access; it downloads {HUB_ORGANIZATION}/{name} "
        f"into the Hugging Face cache ({cache_location()}); copy that folder to the same place here, "
        f"or anywhere and point HF_HOME (or {MODEL_DIR_ENV}) at it;\n"
        "  - or pass --model-path DIR with a model directory in Immich's layout (config.json, visual/, textual/);\n"
        "  - or create such a directory with `imgsearch models export` (needs `pip install 'imgsearch[torch]'`)."
    )
