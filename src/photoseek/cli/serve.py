"""`photoseek serve`: the REST API and web UI (needs the `server` extra)."""

from __future__ import annotations

import errno
import logging
import os
import socket
from pathlib import Path
from typing import Annotated, Optional

import typer

from photoseek.cli.common import (
    DbOption,
    DeviceOption,
    ModelOption,
    ModelPathOption,
    TextModelOption,
    command_app,
    err,
    user_errors,
)
from photoseek.errors import BadInput, Conflict, NotFound, PhotoseekError, Unavailable
from photoseek.server.config import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_QUEUE,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_MAX_UPLOAD_PIXELS,
    DEFAULT_MAX_ZIP_BYTES,
    DEFAULT_MODEL_IDLE_S,
    TOKEN_ENV_VAR,
    check_bind,
)
from photoseek.watch.settings import WatchSettings

app = command_app()

SHUTDOWN_GRACE_SECONDS = 3
"""After Ctrl+C or SIGTERM, requests still running after this long are cancelled."""


@app.command()
def serve(
    db: DbOption = None,
    model: ModelOption = None,
    model_path: ModelPathOption = None,
    device: DeviceOption = "auto",
    text_model: TextModelOption = None,
    model_idle: Annotated[
        float,
        typer.Option(
            "--model-idle", min=0, metavar="SECONDS",
            help="Release a model from memory once unused this long; the next request that needs it loads it "
            "again (a fraction of a second for the text model). 0 keeps every model loaded.",
        ),
    ] = DEFAULT_MODEL_IDLE_S,
    roots: Annotated[
        Optional[list[Path]],
        typer.Option("--root", help="Folder the 'index' button indexes (repeatable), besides the catalog's own."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on. Other than loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    token: Annotated[
        Optional[str],
        typer.Option(envvar=TOKEN_ENV_VAR, show_envvar=True,
                     help="Require 'Authorization: Bearer TOKEN' (16+ characters off loopback)."),
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Allow a non-loopback --host without a token.")
    ] = False,
    allowed_hosts: Annotated[
        Optional[list[str]],
        typer.Option("--allowed-host", help="Another name clients use to reach the server, e.g. photos.lan "
                     "(repeatable; '*' accepts any). Loopback names and --host are always accepted."),
    ] = None,
    max_upload_mb: Annotated[
        float, typer.Option(min=0.1, help="Largest accepted request body (an upload), in MB.")
    ] = DEFAULT_MAX_UPLOAD_BYTES / 1e6,
    max_upload_megapixels: Annotated[
        float, typer.Option(min=0.1, help="Largest uploaded picture, in megapixels as decoded "
                            "(JPEGs decode at up to 1/8 scale, so larger JPEGs pass).")
    ] = DEFAULT_MAX_UPLOAD_PIXELS / 1e6,
    cors_origin: Annotated[
        Optional[list[str]], typer.Option(help="Allow browser calls from this origin (repeatable). Default: none.")
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep the index current: follow --root and the catalog's folders.")
    ] = False,
    poll: Annotated[
        Optional[float],
        typer.Option("--poll", min=0.1, metavar="SECONDS", help="With --watch: scan every SECONDS (network shares)."),
    ] = None,
    max_queue: Annotated[
        int, typer.Option(min=1, help="Searches that may wait their turn (they run in batches); more are "
                          "answered 503 with Retry-After instead of waiting without bound.")
    ] = DEFAULT_MAX_QUEUE,
    duplicates_dir: Annotated[
        Optional[Path],
        typer.Option(help="Where the web UI moves duplicate copies (outside the indexed folders). "
                     "Default: a 'duplicates' folder beside the catalog."),
    ] = None,
    album_dir: Annotated[
        Optional[Path],
        typer.Option(help="Where the web UI saves albums (folders of links to the chosen photos); the only "
                     "place it writes links. Default: an 'albums' folder beside the catalog."),
    ] = None,
    max_zip_mb: Annotated[
        float, typer.Option(min=1, help="Largest zip download of selected photos, in MB (it is streamed).")
    ] = DEFAULT_MAX_ZIP_BYTES / 1e6,
    header_timeout: Annotated[
        float, typer.Option(min=0.1, metavar="SECONDS", help="A request's headers must arrive within this "
                            "time, or the connection is closed (slow or stalled clients, slow-loris attacks).")
    ] = DEFAULT_HEADER_TIMEOUT_S,
    body_timeout: Annotated[
        float, typer.Option(min=0.1, metavar="SECONDS", help="A request's body (an uploaded picture) must "
                            "arrive in full within this time after its headers, or the client is answered 408 "
                            "and the connection closed (stalled or trickling uploads). The default passes a 20 MB "
                            "upload at 2.7 Mbit/s; raise it for clients on slower links.")
    ] = DEFAULT_BODY_TIMEOUT_S,
    max_connections: Annotated[
        int, typer.Option(min=1, help="Open connections at once; one more is answered 503 and closed.")
    ] = DEFAULT_MAX_CONNECTIONS,
) -> None:
    """Serve the web UI and REST API (docs at /docs). Binds to 127.0.0.1 unless told otherwise."""
    from photoseek.api import ImageIndex
    from photoseek.duplicates.moves import check_move_target

    with user_errors():
        check_bind(host, token, insecure)
        if poll is not None and not watch:
            raise BadInput("--poll only applies with --watch: add --watch to keep the index current.")
        try:
            import uvicorn

            from photoseek.server import ServerConfig, create_app
            from photoseek.server.protocol import LimitedH11Protocol
        except ImportError as exc:
            raise Unavailable(
                f"The server needs extra packages ({exc.name} is missing): pip install 'photoseek[server]'"
            ) from None
        config = ServerConfig(
            db=db, model=model, model_path=model_path, text_model=text_model, device=device, model_idle_s=model_idle,
            roots=tuple(r.expanduser() for r in roots or ()),
            token=token or None, max_upload_bytes=int(max_upload_mb * 1e6),
            max_upload_pixels=int(max_upload_megapixels * 1e6), cors_origins=tuple(cors_origin or ()),
            watch=WatchSettings(poll=poll) if watch else None,
            host=host, allowed_hosts=tuple(allowed_hosts or ()), max_queue=max_queue,
            duplicates_dir=duplicates_dir.expanduser().resolve() if duplicates_dir else None,
            album_dir=album_dir.expanduser().resolve() if album_dir else None, max_zip_bytes=int(max_zip_mb * 1e6),
        )
        for root in config.roots:
            if not root.is_dir():
                raise NotFound(f"--root {root} is not a folder. Check the path.")
        with listen(host, port) as listener:  # before the model loads, so a busy port is reported at once
            with ImageIndex(db, model=model, model_path=model_path, text_model=text_model, device=device) as index:
                _ = index.model  # finds the model (its towers load later), so a bad one fails here in one line
                indexed = [*(r.resolve() for r in config.roots), *map(Path, index.roots())]
                if config.duplicates_dir:  # not when the first move is asked for
                    check_move_target(config.duplicates_dir, indexed)
                if config.album_dir and any(config.album_dir.is_relative_to(r) for r in indexed):
                    raise BadInput(f"--album-dir {config.album_dir} is inside an indexed folder: the "
                                   "albums' links would be indexed as copies. Choose a folder outside them.")
                if watch and not (config.roots or index.roots()):
                    raise BadInput("--watch needs folders: give --root ~/Pictures (repeatable), or index some first.")
            if watch:
                _log_watch_batches()
            shown = f"[{host}]" if ":" in host else host
            err.print(f"Loading the model, then serving on http://{shown}:{listener.getsockname()[1]}/ (Ctrl+C stops).")
            if token and os.environ.get(TOKEN_ENV_VAR) != token:
                err.print("Open the UI once with ?token=TOKEN appended; the browser remembers it.")
            server = uvicorn.Server(uvicorn.Config(
                create_app(config), log_level="warning", timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
                http=LimitedH11Protocol.limited(header_timeout, max_connections, body_timeout), ws="none",
            ))
            server.run(sockets=[listener])


def _log_watch_batches() -> None:
    """One line per watch batch (and every notice) on stderr, whatever uvicorn's log level."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("watch: %(message)s"))
    logger = logging.getLogger("photoseek.watch")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line error that says what to do."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise BadInput(f"Cannot listen on {host!r}: {exc.strerror}. Give an address such as 127.0.0.1.") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise Conflict(
                f"Port {port} on {host} is already in use (another photoseek serve?). "
                f"Stop that program, or pick another port with --port {port + 1}."
            ) from None
        raise PhotoseekError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
    return sock
