"""Server settings and the start-up check that keeps a tokenless server on loopback."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from imgsearch.errors import ImgsearchError

TOKEN_ENV_VAR = "IMGSEARCH_TOKEN"
DEFAULT_MAX_UPLOAD_BYTES = 20_000_000
DEFAULT_MAX_UPLOAD_PIXELS = 50_000_000


@dataclass(frozen=True)
class ServerConfig:
    """What `imgsearch serve` was asked for; `create_app` needs nothing else."""

    db: Path | None = None
    model: str | None = None
    model_path: Path | None = None
    text_model: str | None = None
    """None: the catalog's own text model (remembered from `index --text-model`), else the default."""
    roots: tuple[Path, ...] = ()
    """Folders `POST /api/index` indexes, besides the ones the catalog already holds."""
    token: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_upload_pixels: int = DEFAULT_MAX_UPLOAD_PIXELS
    cors_origins: tuple[str, ...] = field(default=())
    """Empty: no CORS headers at all, so other sites' pages cannot read the API."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None, insecure: bool) -> None:
    """Refuse to expose an unauthenticated index to the network."""
    if is_loopback(host) or token or insecure:
        return
    raise ImgsearchError(
        f"Refusing to listen on {host} without a token: anyone on the network could browse your "
        f"photos. Give --token SECRET (or set ${TOKEN_ENV_VAR}), or --insecure if you really mean it."
    )
