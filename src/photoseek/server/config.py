"""Server settings and the start-up checks that keep a server private unless told otherwise."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from photoseek.errors import BadInput
from photoseek.watch.settings import WatchSettings

TOKEN_ENV_VAR = "PHOTOSEEK_TOKEN"
MIN_NETWORK_TOKEN_CHARS = 16
DEFAULT_MAX_UPLOAD_BYTES = 20_000_000
DEFAULT_MAX_UPLOAD_PIXELS = 24_000_000
"""Pixels decoded for one uploaded picture: a 24 MP HEIC passes, a 49 MP PNG bomb does not.
JPEGs are decoded at 1/2 to 1/8 scale, so much larger JPEGs pass."""
DEFAULT_MAX_QUEUE = 64
DEFAULT_MAX_ZIP_BYTES = 2_000_000_000
"""Bytes of photos in one zip download of a selection (the zip is streamed, never held in memory)."""
DEFAULT_HEADER_TIMEOUT_S = 10.0
"""Browsers send their headers in one packet; ten seconds is generous even on a slow phone link."""
DEFAULT_BODY_TIMEOUT_S = 60.0
"""A request body (an uploaded picture) must arrive in full within this time after the headers: a
20 MB upload (the default limit) needs 2.7 Mbit/s, a typical 4 MB phone photo 0.6 Mbit/s."""
DEFAULT_MODEL_IDLE_S = 600.0
"""Models unused for ten minutes are released (a few hundred MB each) and load again on the next request."""
DEFAULT_MAX_CONNECTIONS = 512
"""Half the usual 1024 open-file limit; a browser opens at most six connections to one server."""
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


@dataclass(frozen=True)
class ServerConfig:
    """What `photoseek serve` was asked for; `create_app` needs nothing else."""

    db: Path | None = None
    model: str | None = None
    model_path: Path | None = None
    text_model: str | None = None
    """None: the catalog's own text model (remembered from `index --text-model`), else the default."""
    device: str = "auto"
    """Where every model runs (`--device`)."""
    model_idle_s: float = DEFAULT_MODEL_IDLE_S
    """Release models unused this many seconds; they load again when next needed. 0: keep them loaded."""
    roots: tuple[Path, ...] = ()
    """Folders `POST /api/index` indexes, besides the ones the catalog already holds."""
    token: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_upload_pixels: int = DEFAULT_MAX_UPLOAD_PIXELS
    duplicates_dir: Path | None = None
    """Where the web UI moves duplicate copies; None: a `duplicates` folder beside the catalog."""
    cors_origins: tuple[str, ...] = field(default=())
    """Empty: no CORS headers at all, so other sites' pages cannot read the API."""
    watch: WatchSettings | None = None
    """Keep the index current with `roots` and the catalog's folders (`serve --watch`); None: don't."""
    host: str = "127.0.0.1"
    """The address listened on; its name is also an accepted `Host` header."""
    allowed_hosts: tuple[str, ...] = field(default=())
    """More names clients may use in the `Host` header ('*' accepts any)."""
    max_queue: int = DEFAULT_MAX_QUEUE
    """Searches that may wait for the search thread; more are answered 503 with `Retry-After`."""
    album_dir: Path | None = None
    """Where the web UI's "save as album" makes its folders of links; None: an `albums` folder beside
    the catalog. The only place the server writes links: clients name an album, never a path."""
    max_zip_bytes: int = DEFAULT_MAX_ZIP_BYTES


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None, insecure: bool) -> None:
    """Refuse to expose an unauthenticated index, or one behind a guessable token, to the network."""
    if token is not None and (not token.strip() or token != token.strip()):
        raise BadInput(
            "The token is blank or starts or ends with whitespace, which HTTP headers cannot carry. "
            "Use a random string, e.g. from: python -c 'import secrets; print(secrets.token_urlsafe())'"
        )
    if is_loopback(host):
        return
    if token and len(token) < MIN_NETWORK_TOKEN_CHARS:
        raise BadInput(
            f"The token is {len(token)} characters long; on a network address ({host}) it needs at least "
            f"{MIN_NETWORK_TOKEN_CHARS}, so it cannot be guessed. Make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe())'"
        )
    if token or insecure:
        return
    raise BadInput(
        f"Refusing to listen on {host} without a token: anyone on the network could browse your "
        f"photos. Give --token SECRET (or set ${TOKEN_ENV_VAR}), or --insecure if you really mean it."
    )
