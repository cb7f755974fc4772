"""Search endpoints: by text, by combined terms, by an uploaded picture, by an indexed image."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated, Optional

from fastapi import APIRouter, File, Form, Query, UploadFile
from starlette.concurrency import run_in_threadpool

from imgsearch.errors import UnreadableImageError
from imgsearch.search.query import Query as SearchQuery
from imgsearch.search.query import QueryTerm
from imgsearch.server.backend import Backend, save_upload
from imgsearch.server.deps import (
    BackendDep,
    ConfigDep,
    FiltersDep,
    KParam,
    OffsetParam,
    check_mode,
    search_out,
    to_filters,
)
from imgsearch.server.errors import ApiError
from imgsearch.server.schemas import ErrorOut, SearchIn, SearchOut

router = APIRouter(prefix="/api", tags=["search"])
ERRORS = {400: {"model": ErrorOut}, 409: {"model": ErrorOut}}


@router.get("/search", response_model=SearchOut, responses=ERRORS)
async def search_get(
    backend: BackendDep,
    filters: FiltersDep,
    q: Annotated[str, Query(min_length=1, description="What to look for; '2:beach' weighs a text twice.")],
    k: KParam = 24,
    offset: OffsetParam = 0,
    mode: Annotated[Optional[str], Query(description="Ranking mode, when text signals are available.")] = None,
) -> SearchOut:
    """Rank the images by one text."""
    query = SearchQuery.build([q])
    mode = check_mode(mode)
    page = await backend.call(
        lambda index: Backend.search(index, query, k=k, offset=offset, filters=filters, mode=mode)
    )
    return search_out(page, k, offset)


@router.post("/search", response_model=SearchOut, responses=ERRORS)
async def search_post(backend: BackendDep, body: SearchIn) -> SearchOut:
    """Rank the images by texts, negative texts and indexed images, each optionally weighted."""
    query = _query(body)
    filters = to_filters(body.filters)
    mode = check_mode(body.mode)
    page = await backend.call(
        lambda index: Backend.search(index, query, k=body.k, offset=body.offset, filters=filters, mode=mode)
    )
    return search_out(page, body.k, body.offset)


def _query(body: SearchIn) -> SearchQuery:
    built = SearchQuery.build(body.texts, negatives=body.negatives)
    terms = list(built.terms)
    terms += [QueryTerm("image_id", str(i)) for i in body.image_ids]
    terms += [
        QueryTerm("text", t.text, t.weight) if t.text is not None else QueryTerm("image_id", str(t.image_id), t.weight)
        for t in body.terms
    ]
    return SearchQuery(tuple(terms))


@router.post(
    "/search/image", response_model=SearchOut,
    responses={**ERRORS, 413: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
async def search_image(
    backend: BackendDep,
    config: ConfigDep,
    filters: FiltersDep,
    file: Annotated[Optional[UploadFile], File(description="The example picture.")] = None,
    data_url: Annotated[Optional[str], Form(description="Or a pasted 'data:image/...;base64,' URL.")] = None,
    k: KParam = 24,
    offset: OffsetParam = 0,
) -> SearchOut:
    """Find images that look like an uploaded one (multipart `file`, or `data_url`)."""
    data = await file.read() if file is not None else _decode_data_url(data_url)
    try:
        path = await run_in_threadpool(
            save_upload, data, min_side=2 * backend.image_size, max_pixels=config.max_upload_pixels
        )
    except UnreadableImageError as exc:
        raise ApiError(422, "unreadable_image", f"The upload is not an image that can be used: {exc}.") from None
    try:
        page = await backend.call(
            lambda index: Backend.search(
                index, SearchQuery.build(images=[str(path)]), k=k, offset=offset, filters=filters
            )
        )
    finally:
        Path(path).unlink(missing_ok=True)
    page = page.relabel("<uploaded image>")
    return search_out(page, k, offset)


def _decode_data_url(data_url: str | None) -> bytes:
    if not data_url:
        raise ApiError(422, "no_image", "Send the picture as a multipart field 'file' (or a 'data_url' form field).")
    header, _, payload = data_url.partition(",")
    if not (header.startswith("data:") and header.endswith(";base64")):
        raise ApiError(422, "no_image", "'data_url' must look like 'data:image/png;base64,...'.")
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise ApiError(422, "no_image", "'data_url' holds invalid base64.") from None
