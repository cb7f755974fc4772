"""Search endpoints: by text, by combined terms, by an uploaded picture, by an indexed image."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated, Any, Optional

from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile

from photoseek.errors import BadInput, UnreadableImageError
from photoseek.search.query import Query as SearchQuery
from photoseek.search.query import QueryTerm
from photoseek.server.deps import (
    BackendDep,
    ConfigDep,
    DecoderDep,
    FiltersDep,
    KParam,
    MinScoreParam,
    OffsetParam,
    SortParam,
    search_options,
    search_out,
    to_filters,
)
from photoseek.server.errors import ApiError
from photoseek.server.schemas import MAX_TERMS, MAX_TEXT_CHARS, ErrorOut, SearchIn, SearchOut, TopicOut, TopicsOut

router = APIRouter(prefix="/api", tags=["search"])
ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorOut} for status in (400, 404, 409, 422, 503)}
UPLOAD_SLOTS = 2
"""Uploads read and decoded at once; more wait their turn before their body is read."""
UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "The example picture."},
                        "data_url": {"type": "string", "description": "Or a pasted 'data:image/...;base64,' URL."},
                    },
                }
            }
        },
    }
}


@router.get("/search", response_model=SearchOut, responses=ERRORS)
async def search_get(
    backend: BackendDep,
    filters: FiltersDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_TEXT_CHARS,
                            description="What to look for, as typed at the CLI prompt: '2:beach' weighs a text "
                            "twice, '-people' or '--not people' subtracts, double quotes group words.")],
    k: KParam = 24,
    offset: OffsetParam = 0,
    min_score: MinScoreParam = None,
    mode: Annotated[Optional[str], Query(description="clip, text, keyword, hybrid or clip-hybrid.")] = None,
    explain: Annotated[bool, Query(description="Give each result's signal shares and the matched text.")] = False,
    sort: SortParam = "score",
) -> SearchOut:
    """Rank the images by one query line (the syntax of `photoseek search`'s prompt)."""
    query = _checked(SearchQuery.parse(q))
    options = search_options(k, offset, filters, mode=mode, min_score=min_score, explain=explain, sort=sort)
    page = await backend.search(query, options)
    return search_out(page, k, offset)


@router.post("/search", response_model=SearchOut, responses=ERRORS)
async def search_post(backend: BackendDep, body: SearchIn) -> SearchOut:
    """Rank the images by texts, negative texts and indexed images, each optionally weighted."""
    query = _query(body)
    options = search_options(
        body.k, body.offset, to_filters(body.filters), mode=body.mode, min_score=body.min_score,
        weights=body.weights, explain=body.explain, sort=body.sort,
    )
    page = await backend.search(query, options)
    return search_out(page, body.k, body.offset)


@router.get("/topics", response_model=TopicsOut)
async def topics(backend: BackendDep) -> TopicsOut:
    """The catalog's topics with image counts, for a topic facet (`topic` filters a search)."""
    listed = await backend.read(lambda index: index.topics())
    return TopicsOut(topics=[TopicOut(name=t.name, description=t.description, images=n) for t, n in listed])


def _query(body: SearchIn) -> SearchQuery:
    built = SearchQuery.build(body.texts, negatives=body.negatives)
    if body.q:
        built += _checked(SearchQuery.parse(body.q))
    terms = list(built.terms)
    terms += [QueryTerm("image_id", str(i)) for i in body.image_ids]
    terms += [
        QueryTerm("text", t.text, t.weight) if t.text is not None else QueryTerm("image_id", str(t.image_id), t.weight)
        for t in body.terms
    ]
    if len(terms) > MAX_TERMS:
        raise ApiError(422, "invalid_request", f"{len(terms)} terms; a query takes at most {MAX_TERMS} in all.")
    return SearchQuery(tuple(terms))


def _checked(query: SearchQuery) -> SearchQuery:
    """A query line's terms, refused when they name image files: over HTTP, examples are indexed images."""
    if any(term.kind == "image" for term in query.terms):
        raise BadInput(
            "--image and --not-image take files, which this server does not open for a query: send indexed "
            "images as image_ids or terms (POST /api/search), or upload one (POST /api/search/image).",
        )
    if len(query.terms) > MAX_TERMS:
        raise ApiError(422, "invalid_request", f"{len(query.terms)} terms; a query takes at most {MAX_TERMS}.")
    return query


@router.post(
    "/search/image", response_model=SearchOut, openapi_extra=UPLOAD_FORM,
    responses={**ERRORS, 413: {"model": ErrorOut}},
)
async def search_image(
    request: Request,
    backend: BackendDep,
    config: ConfigDep,
    decoder: DecoderDep,
    filters: FiltersDep,
    k: KParam = 24,
    offset: OffsetParam = 0,
    min_score: MinScoreParam = None,
    sort: SortParam = "score",
) -> SearchOut:
    """Find images that look like an uploaded one (multipart `file`, or form field `data_url`)."""
    options = search_options(k, offset, filters, min_score=min_score, sort=sort)
    async with request.app.state.upload_slots:
        data = await _read_upload(request, config.max_upload_bytes)
        try:
            path = await decoder.upload(data, min_side=2 * backend.image_size, max_pixels=config.max_upload_pixels)
        except UnreadableImageError as exc:
            raise ApiError(422, "unreadable_image", f"The upload is not an image that can be used: {exc}.") from None
        finally:
            del data
    try:
        page = await backend.search(SearchQuery.build(images=[str(path)]), options)
    finally:
        Path(path).unlink(missing_ok=True)
    return search_out(page.relabel("<uploaded image>"), k, offset)


async def _read_upload(request: Request, max_bytes: int) -> bytes:
    """The picture from a multipart `file` or a `data_url` field; a data URL may be as large as
    the upload limit allows (not only the 1 MB that form fields get by default)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        async with request.form(max_files=1, max_fields=4, max_part_size=max_bytes) as form:
            upload = form.get("file")
            if isinstance(upload, UploadFile):
                return await upload.read()
            data_url = form.get("data_url")
            if isinstance(data_url, str) and data_url:
                return _decode_data_url(data_url)
    raise ApiError(422, "no_image", "Send the picture as a multipart field 'file' (or a 'data_url' form field).")


def _decode_data_url(data_url: str) -> bytes:
    header, _, payload = data_url.partition(",")
    if not (header.startswith("data:") and header.endswith(";base64")):
        raise ApiError(422, "no_image", "'data_url' must look like 'data:image/png;base64,...'.")
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise ApiError(422, "no_image", "'data_url' holds invalid base64.") from None
