"""Every error the API returns is JSON: {"error": short code, "detail": what to do}."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from imgsearch.errors import EmptyIndexError, ImgsearchError, ModelMismatchError

_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "too_large", 422: "unprocessable"}


class ApiError(HTTPException):
    def __init__(self, status_code: int, code: str, detail: str) -> None:
        super().__init__(status_code=status_code, detail=detail)
        self.code = code


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), exc.headers)

    @app.exception_handler(ImgsearchError)
    async def _ours(_: Request, exc: ImgsearchError) -> JSONResponse:
        if isinstance(exc, EmptyIndexError):
            return error_response(409, "empty_index", str(exc))
        if isinstance(exc, ModelMismatchError):
            return error_response(409, "model_mismatch", str(exc))
        return error_response(400, "bad_request", str(exc))
