"""Token authentication and the request-body limit, as plain ASGI middleware.

With a token, API calls need `Authorization: Bearer TOKEN`. Browsers cannot put that
header on <img> tags or EventSource, so `POST /api/session` (with the header) sets an
HttpOnly, SameSite=Strict cookie that is accepted for GET requests outside the JSON
API: thumbnails, files and the indexing progress stream.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imgsearch.server.errors import ApiError

COOKIE_NAME = "imgsearch_session"
OPEN_PATHS = ("/", "/healthz", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/favicon.ico")
OPEN_PREFIXES = ("/static/",)
COOKIE_PREFIXES = ("/thumbs/", "/files/")
COOKIE_SUFFIXES = ("/events",)


def session_cookie_value(token: str) -> str:
    """Derived from the token, so the cookie never holds the token itself."""
    return hmac.new(token.encode(), b"imgsearch-session", hashlib.sha256).hexdigest()


async def send_json_error(
    send: Send, status: int, error: str, detail: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class TokenAuth:
    """Refuses every non-public request that does not carry the token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.bearer = f"Bearer {token}".encode()
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
        if hmac.compare_digest(headers.get("authorization", "").encode(), self.bearer):
            return True
        cookie_ok = scope["method"] in ("GET", "HEAD") and (
            path.startswith(COOKIE_PREFIXES) or path.endswith(COOKIE_SUFFIXES)
        )
        given = cookie_parser(headers.get("cookie", "")).get(COOKIE_NAME, "")
        return cookie_ok and hmac.compare_digest(given.encode(), self.cookie.encode())


class BodyTooLarge(ApiError):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            413, "too_large",
            f"The request body is over the {max_bytes / 1e6:g} MB limit. Send a smaller image "
            "(or start the server with a larger --max-upload-mb).",
        )


class BodyLimit:
    """Answers 413 with a JSON error once a request body passes `max_bytes`, whether the
    client announced its length or streams it in chunks (the route's handler turns the
    error raised from `receive` into the response; this catches what gets past it)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = Headers(scope=scope).get("content-length", "")
        if announced.isdigit() and int(announced) > self.max_bytes:
            exc = BodyTooLarge(self.max_bytes)
            await send_json_error(send, 413, exc.code, exc.detail)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await send_json_error(send, 413, exc.code, exc.detail)
