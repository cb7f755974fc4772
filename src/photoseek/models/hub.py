"""Finding a named model: local Hugging Face cache first, then the Hub, failing fast when offline.

CLIP models are Immich's ONNX exports, ``immich-app/<name>`` on the Hub, stored in the standard HF
cache (``$HF_HUB_CACHE``, by default ``$HF_HOME/hub``) or in ``$PHOTOSEEK_MODEL_DIR`` when set; the
text model and the captioning and detection models use the same cache and the same checks. A
command on a machine without network must never wait on DNS or TCP timeouts, so before any download
we probe the Hub (or the configured HTTPS proxy) with a few-second budget and say exactly how to get
the model.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from photoseek.errors import ModelNotAvailableError
from photoseek.models.catalog import (
    HUB_MODELS,
    HUB_ORGANIZATION,
    clean_model_name,
    is_valid_repo_name,
    known_names_hint,
)
from photoseek.models.layout import DOWNLOAD_PATTERNS, missing_files

MODEL_DIR_ENV = "PHOTOSEEK_MODEL_DIR"
PROBE_TIMEOUT_S = 2.0
METADATA_TIMEOUT_S = 5.0
_TRUE = {"1", "on", "yes", "true"}


def cache_dir() -> Path | None:
    """``$PHOTOSEEK_MODEL_DIR`` if set; ``None`` means huggingface_hub's default (honours HF_HOME)."""
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
    repo_id = f"{HUB_ORGANIZATION}/{name}"
    root = cache_dir()
    if root is not None and not missing_files(root / name):
        return root / name
    found = local_snapshot(repo_id, DOWNLOAD_PATTERNS)
    if found is not None and not missing_files(found):
        return found
    reason = hub_unreachable()
    if reason is not None:
        raise _not_available(name, reason)
    try:
        path = download_snapshot(repo_id, lambda files: DOWNLOAD_PATTERNS)
    except RepoNotFound as exc:
        raise ModelNotAvailableError(
            f"Unknown model {name!r}: there is no {repo_id} on the Hugging Face Hub. "
            f"Known models: {known_names_hint()}."
        ) from exc
    except DownloadFailed as exc:
        raise _not_available(name, str(exc)) from exc
    missing = missing_files(path)
    if missing:
        raise ModelNotAvailableError(
            f"{repo_id} is not a CLIP model in Immich's layout (missing {', '.join(missing)}). "
            f"Known models: {known_names_hint()}."
        )
    return path


class RepoNotFound(Exception):
    """The Hub answered: no such repository."""


class DownloadFailed(Exception):
    """The Hub was reachable but the download did not complete; the message says why."""


def hub_unreachable() -> str | None:
    """Why the Hub cannot be used now (HF_HUB_OFFLINE, no DNS, no route), or ``None``; answers in seconds.

    Every model download goes through this first, so no command waits on minutes of retries.
    """
    if hub_offline():
        return "HF_HUB_OFFLINE is set and the model is not in the local cache"
    return _probe_hub()


def local_snapshot(repo_id: str, patterns: Sequence[str]) -> Path | None:
    """The cached snapshot folder of ``repo_id`` (HF cache or ``$PHOTOSEEK_MODEL_DIR``), never the network.

    Callers check that the files they need are in it: a snapshot can be partial. A repository never
    fetched is told apart by its folder, without importing huggingface_hub's download code (0.2 s),
    so asking whether an optional model is there costs a command next to nothing.
    """
    if not (cache_location() / ("models--" + repo_id.replace("/", "--"))).is_dir():
        return None
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = snapshot_download(repo_id, cache_dir=cache_dir(), local_files_only=True, allow_patterns=list(patterns))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    return Path(path)


def download_snapshot(repo_id: str, choose: Callable[[list[str]], Sequence[str]]) -> Path:
    """Download the files that ``choose(repo file names)`` selects (glob patterns) into the cache.

    Raises ``RepoNotFound`` or ``DownloadFailed``; call ``hub_unreachable`` first so that a machine
    without network fails in seconds instead of here.
    """
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        info = HfApi().model_info(repo_id, timeout=METADATA_TIMEOUT_S)
        files = [s.rfilename for s in info.siblings or []]
        return Path(
            snapshot_download(  # by branch, not by info.sha: only then is refs/main written for offline runs
                repo_id,
                cache_dir=cache_dir(),
                allow_patterns=list(choose(files)),
                etag_timeout=METADATA_TIMEOUT_S,
            )
        )
    except RepositoryNotFoundError as exc:
        raise RepoNotFound(repo_id) from exc
    except Exception as exc:  # HfHubHTTPError, OSError, and httpx errors, which share no public base
        raise DownloadFailed(f"download failed ({type(exc).__name__}: {exc})") from exc


def copy_hint(command: str) -> str:
    """How to bring a model to a machine without network: the same words in every message."""
    return (
        f"run `{command}` on a machine with internet access, then copy its Hugging Face cache folder "
        f"({cache_location()}) to the same place here, or anywhere and point HF_HUB_CACHE "
        f"(or {MODEL_DIR_ENV}) at the copy; HF_HOME would name the folder above it"
    )


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
    hint = "" if name in HUB_MODELS else f" ({name!r} is not a model photoseek knows: {known_names_hint()}.)"
    return ModelNotAvailableError(
        f"Model {name!r} is not available offline and cannot be downloaded: {reason}.{hint} To get it, "
        f"{copy_hint(f'photoseek models download {name}')}; or pass --model-path DIR with a model directory in "
        "Immich's layout (config.json, visual/, textual/); or create one with `photoseek models export` "
        "(needs `pip install 'photoseek[torch]'`)."
    )
