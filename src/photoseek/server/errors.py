"""Every error the API returns is JSON: {"error": short code, "detail": what to do}."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from photoseek.errors import BadInput, Conflict, NotFound, PhotoseekError, Unavailable
from photoseek.store.catalog import READ_ONLY_ADVICE, is_read_only_error, utf8_safe

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "too_large", 422: "unprocessable", 503: "busy"}
_LOCATIONS = {"query": "query parameter", "path": "path", "body": "body field", "header": "header"}
_STATUSES: tuple[tuple[type[PhotoseekError], int], ...] = (
    (NotFound, 404), (BadInput, 422), (Unavailable, 503), (Conflict, 409),
)
"""The one place our error kinds become HTTP statuses (a plain PhotoseekError is 400 `bad_request`)."""
log = logging.getLogger("photoseek.server")


class ApiError(HTTPException):
    def __init__(self, status_code: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.code = code


def error_response(status: int, code: str, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": utf8_safe(detail)}, status_code=status, headers=headers)


def describe_validation(exc: RequestValidationError) -> str:
    """One readable line per problem: "query parameter 'k': Input should be less than or equal to 200"."""
    lines = []
    for problem in exc.errors():
        where, *names = [str(part) for part in problem.get("loc", ())] or ["request"]
        name = ".".join(names)
        place = _LOCATIONS.get(where, where)
        lines.append(f"{place} {name!r}: {problem.get('msg', 'invalid')}" if name else f"{place}: {problem.get('msg')}")
    return "; ".join(lines) + ". See /docs for the accepted values."


def status_of(exc: PhotoseekError) -> tuple[int, str]:
    """The HTTP status and `error` code an error of ours answers with: its kind's status and own code."""
    for kind, status in _STATUSES:
        if isinstance(exc, kind):
            return status, exc.code
    return 400, "bad_request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", describe_validation(exc))

    @app.exception_handler(PhotoseekError)
    async def _ours(_: Request, exc: PhotoseekError) -> JSONResponse:
        return error_response(*status_of(exc), str(exc))

    @app.exception_handler(ClientDisconnect)
    async def _gone(_: Request, __: ClientDisconnect) -> JSONResponse:
        # The client left, or was cut off for sending its body too slowly (`serve --body-timeout`): not our
        # failure, nothing to log, and nobody reads this answer.
        return error_response(408, "incomplete_body", "The request body did not arrive in full. Send it again.")

    @app.exception_handler(sqlite3.OperationalError)
    async def _catalog_refused(request: Request, exc: sqlite3.OperationalError) -> JSONResponse:
        if is_read_only_error(exc):  # a write to a catalog this server may only read: the catalog refuses it
            return error_response(409, "read_only", READ_ONLY_ADVICE)
        return _internal_error(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal_error(request, exc)


def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("Unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500, "internal_error",
        f"The server failed on this request ({type(exc).__name__}); its log has the details. "
        "Please report it with the request that caused it.",
    )
