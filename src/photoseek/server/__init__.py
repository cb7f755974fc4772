"""The HTTP server: a REST API and a web UI over `photoseek.api.ImageIndex`.

    from photoseek.server import ServerConfig, create_app
    app = create_app(ServerConfig(db=Path("catalog.db")))   # then run it with uvicorn

Needs the `server` extra (FastAPI, uvicorn, python-multipart); imported lazily so the CLI
starts without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from photoseek.server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]

if TYPE_CHECKING:
    from photoseek.server.app import create_app


def __getattr__(name: str) -> object:
    if name == "create_app":
        from photoseek.server.app import create_app

        return create_app
    raise AttributeError(name)
