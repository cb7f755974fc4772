"""Host and origin checks, token authentication and the request-body limit, as plain ASGI middleware.

`HostCheck` answers only requests addressed to this server by a name it knows, so a page on
another site cannot reach it by pointing its own DNS name at 127.0.0.1 (DNS rebinding).
`OriginCheck` refuses state-changing requests sent by another site's page (a cross-site
form post, say) unless they carry the token.

With a token, API calls need `Authorization: Bearer TOKEN`. Browsers cannot put that
header on <img> tags or EventSource, so `POST /api/session` (with the header) sets an
HttpOnly, SameSite=Strict cookie that is accepted for GET requests outside the JSON
API: thumbnails, files and the indexing progress stream.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from photoseek.server.config import LOOPBACK_NAMES, WILDCARD_HOSTS, is_loopback
from photoseek.server.errors import ApiError

COOKIE_NAME = "photoseek_session"
DOCS_ASSETS = "/docs/assets"
OPEN_PATHS = ("/", "/healthz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/favicon.ico")
OPEN_PREFIXES = ("/static/", f"{DOCS_ASSETS}/")
COOKIE_PREFIXES = ("/thumbs/", "/files/")
COOKIE_SUFFIXES = ("/events",)


def session_cookie_value(token: str) -> str:
    """Derived from the token, so the cookie never holds the token itself."""
    return hmac.new(token.encode(), b"photoseek-session", hashlib.sha256).hexdigest()


async def send_json_error(
    send: Send, status: int, error: str, detail: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def bearer_matches(headers: Headers, token: str | None) -> bool:
    if not token:
        return False
    return hmac.compare_digest(headers.get("authorization", "").encode(), f"Bearer {token}".encode())


def host_name(host_header: str) -> str:
    """'Example.COM.:8000' -> 'example.com', '[::1]:8000' -> '::1'."""
    try:
        name = urlsplit(f"//{host_header.strip()}").hostname or ""
    except ValueError:
        return ""
    return name.rstrip(".")


class HostCheck:
    """Answers 400 unless the `Host` header names this server: a loopback name, the address it
    listens on, or one given with --allowed-host. On a wildcard address (0.0.0.0, ::) any IP
    literal is accepted too: DNS rebinding needs a name, and the machine's addresses are many."""

    def __init__(self, app: ASGIApp, listen_host: str, allowed: Iterable[str] = ()) -> None:
        self.app = app
        self.any_host = "*" in allowed
        self.any_ip = listen_host in WILDCARD_HOSTS
        self.names = {*LOOPBACK_NAMES, *(host_name(h) for h in allowed if h != "*")}
        if not self.any_ip:
            self.names.add(host_name(listen_host) or listen_host.strip("[]").lower())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.any_host:
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("host")
        if header is None or self.allows(host_name(header)):
            await self.app(scope, receive, send)
            return
        await send_json_error(
            send, 400, "host_not_allowed",
            f"This server does not answer to the name {header!r}. If you reach it through that name on "
            f"purpose, start it with --allowed-host {host_name(header) or header}.",
        )

    def allows(self, name: str) -> bool:
        if name in self.names or is_loopback(name):
            return True
        if not self.any_ip:
            return False
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})


class OriginCheck:
    """Refuses (403) a state-changing request that a page on another origin sent, unless it
    carries the token or comes from a --cors-origin. Browsers say where a request comes from
    in `Sec-Fetch-Site` and `Origin`; clients that send neither (curl, scripts) pass."""

    def __init__(self, app: ASGIApp, token: str | None, cors_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.token = token
        self.cors_origins = {o.rstrip("/").lower() for o in cors_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if not self._foreign(headers, origin) or bearer_matches(headers, self.token):
            await self.app(scope, receive, send)
            return
        await send_json_error(
            send, 403, "foreign_origin",
            f"Refused: this request came from a page on another site ({origin or 'cross-site'}). "
            "Use the photoseek web UI, or call the API directly (with the token if the server has one); "
            "to allow a web app on another origin, start the server with --cors-origin ORIGIN.",
        )

    def _foreign(self, headers: Headers, origin: str | None) -> bool:
        if origin is not None and origin.rstrip("/").lower() in self.cors_origins:
            return False
        if headers.get("sec-fetch-site", "same-origin") not in SAME_ORIGIN_FETCH:
            return True
        if origin is None:
            return False
        try:
            origin_netloc = urlsplit(origin).netloc.lower()
        except ValueError:
            return True
        return origin_netloc != headers.get("host", "").strip().lower()


class TrackedSend:
    """Wraps `send` to remember whether the response has started (after that, no error answer fits)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self.send(message)


class TokenAuth:
    """Refuses every non-public request that does not carry the token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token
        self.cookie = session_cookie_value(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        await send_json_error(
            send, 401, "unauthorized",
            "This server needs a token. Send the header 'Authorization: Bearer TOKEN'; "
            "in the web UI, open /?token=TOKEN once.",
            {"www-authenticate": "Bearer"},
        )

    def _allowed(self, scope: Scope) -> bool:
        path: str = scope["path"]
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return True
        headers = Headers(scope=scope)
        if bearer_matches(headers, self.token):
            return True
        cookie_ok = scope["method"] in ("GET", "HEAD") and (
            path.startswith(COOKIE_PREFIXES) or path.endswith(COOKIE_SUFFIXES)
        )
        given = cookie_parser(headers.get("cookie", "")).get(COOKIE_NAME, "")
        return cookie_ok and hmac.compare_digest(given.encode(), self.cookie.encode())


UPLOAD_PATHS = ("/api/search/image",)
MAX_QUERY_BODY_BYTES = 64_000
"""Any other request body: a JSON query of 16 terms of 500 characters fits many times over."""


class BodyTooLarge(ApiError):
    def __init__(self, max_bytes: int, upload: bool) -> None:
        advice = (
            "Send a smaller image (or start the server with a larger --max-upload-mb)." if upload
            else "Send fewer or shorter terms."
        )
        super().__init__(413, "too_large", f"The request body is over the {max_bytes / 1e6:g} MB limit. {advice}")


class BodyLimit:
    """Answers 413 with a JSON error once a request body passes its limit (`max_upload_bytes`
    for uploads, `MAX_QUERY_BODY_BYTES` for the rest), whether the client announced its length
    or streams it in chunks (the route's handler turns the error raised from `receive` into
    the response; this catches what gets past it)."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["path"] in UPLOAD_PATHS
        max_bytes = self.max_upload_bytes if upload else MAX_QUERY_BODY_BYTES
        announced = Headers(scope=scope).get("content-length", "")
        if announced.isdigit() and int(announced) > max_bytes:
            exc = BodyTooLarge(max_bytes, upload)
            await send_json_error(send, 413, exc.code, exc.detail)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise BodyTooLarge(max_bytes, upload)
            return message

        tracked = TrackedSend(send)
        try:
            await self.app(scope, limited_receive, tracked)
        except BodyTooLarge as exc:
            if tracked.started:
                raise
            await send_json_error(send, 413, exc.code, exc.detail)
