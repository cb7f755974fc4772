"""The FastAPI application: middleware, routes, the static web UI and start-up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import photoseek
from photoseek.server.backend import Backend
from photoseek.server.config import ServerConfig
from photoseek.server.decoding import Decoder
from photoseek.server.errors import install_error_handlers
from photoseek.server.jobs import JobRunner
from photoseek.server.routes import admin, duplicates, images, library, search
from photoseek.server.security import (
    DOCS_ASSETS,
    BodyLimit,
    HostCheck,
    OriginCheck,
    TokenAuth,
    TrackedSend,
    send_json_error,
)
from photoseek.server.thumbs import ThumbnailCache
from photoseek.server.watching import WatchService

STATIC_DIR = Path(__file__).parent / "static"
IDLE_CHECK_MAX_S = 60.0
"""The longest wait between two looks for idle models."""
UI_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def create_app(config: ServerConfig) -> FastAPI:
    """A ready-to-serve app; the model loads when the app starts (lifespan), not per request."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend = Backend(config)
        await backend.start()
        app.state.backend = backend
        app.state.jobs = JobRunner(backend.open_sibling)
        app.state.thumbs = ThumbnailCache.beside(backend.db_path)
        app.state.watching = await _start_watching(config, backend)
        app.state.decoder = Decoder()
        app.state.upload_slots = asyncio.Semaphore(search.UPLOAD_SLOTS)
        releasing = asyncio.create_task(_release_idle_models(backend, config.model_idle_s))
        try:
            yield
        finally:
            releasing.cancel()
            with suppress(asyncio.CancelledError):
                await releasing
            if app.state.watching is not None:
                app.state.watching.stop()
            app.state.decoder.close()
            backend.close()

    app = FastAPIOffline(  # /docs and /redoc with their scripts served from here, not from a CDN
        title="photoseek", version=photoseek.__version__, lifespan=lifespan,
        static_url=DOCS_ASSETS, favicon_url="/static/icon.svg",
        description="Semantic search over your photo folders. Every result's `id` works with "
        "/thumbs/{id}, /files/{id} and /api/images/{id}. Errors are JSON: `{\"error\", \"detail\"}`.",
    )
    app.state.config = config
    install_error_handlers(app)
    # library first: its /files/selection.zip must not be taken for /files/{image_id}
    for router in (library.router, search.router, images.router, duplicates.router, admin.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def ui() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": UI_CSP,
                                                                "Cache-Control": "no-cache"})

    # The last added runs first: headers on every answer, then the Host check, CORS (whose
    # preflights carry no token), the origin check, the token, and the body limit.
    app.add_middleware(BodyLimit, max_upload_bytes=config.max_upload_bytes)
    if config.token:
        app.add_middleware(TokenAuth, token=config.token)
    app.add_middleware(OriginCheck, token=config.token, cors_origins=config.cors_origins)
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(HostCheck, listen_host=config.host, allowed=config.allowed_hosts)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(StopQuietly)
    return app


async def _start_watching(config: ServerConfig, backend: Backend) -> WatchService | None:
    """The watcher of `serve --watch`, over --root folders and the catalog's own (a single file
    indexed on its own is a catalog root too, but only folders are watched)."""
    if config.watch is None:
        return None
    recorded = await backend.read(lambda index: index.roots())
    folders = [path for path in map(Path, recorded) if not path.is_file()]
    service = WatchService(backend.open_sibling, [*config.roots, *folders], config.watch)
    service.start()
    return service


async def _release_idle_models(backend: Backend, idle_s: float) -> None:
    """Every so often, release the models unused for `idle_s` seconds (0: never); a request that
    needs one loads it again. Runs off the event loop: freeing a session takes a moment."""
    if idle_s <= 0:
        return
    while True:
        await asyncio.sleep(min(max(idle_s / 2, 0.05), IDLE_CHECK_MAX_S))
        await asyncio.to_thread(backend.runtime.release_idle, idle_s)


class StopQuietly:
    """When shutdown cancels a request that is still running (a long search after SIGTERM),
    answer 503 if nothing was sent yet, instead of a traceback in the log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            if not tracked.started:
                await send_json_error(send, 503, "shutting_down", "The server is stopping. Retry once it is back.")


class SecurityHeaders:
    """No MIME sniffing, and no Referer (a ?token= URL must not leak to other sites)."""

    HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)
