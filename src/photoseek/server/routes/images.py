"""One image: its metadata and text signals, similar images, thumbnail and original file."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from photoseek.errors import NotFound, UnreadableImageError
from photoseek.server.backend import Backend
from photoseek.server.decoding import TooLargeToDecode
from photoseek.server.deps import (
    BackendDep,
    DecoderDep,
    FiltersDep,
    KParam,
    MinScoreParam,
    OffsetParam,
    SortParam,
    ThumbsDep,
    known_id,
    no_such_image,
    search_options,
    search_out,
)
from photoseek.server.errors import ApiError
from photoseek.server.schemas import ErrorOut, ImageOut, SearchOut
from photoseek.server.thumbs import MEDIA_TYPES, THUMB_SIZES, servable_path
from photoseek.store.catalog import ImageRecord, utf8_safe

router = APIRouter(tags=["images"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}
THUMB_CACHE_CONTROL = "private, max-age=86400"
FILE_CACHE_CONTROL = "private, max-age=3600"


@router.get("/api/images/{image_id}", response_model=ImageOut, responses=NOT_FOUND)
async def image_details(backend: BackendDep, image_id: int) -> ImageOut:
    """Everything known about one image, including captions/OCR/notes when available."""
    if not known_id(image_id):
        raise no_such_image(image_id)
    found = await backend.read(lambda index: Backend.details(index, image_id))
    if found is None:
        raise no_such_image(image_id)
    record, signals = found
    path = Path(record.path)
    modified = datetime.fromtimestamp(record.mtime_ns / 1e9, tz=timezone.utc).isoformat(timespec="seconds")
    return ImageOut(
        id=record.id, path=record.path, name=path.name, folder=str(path.parent), size_bytes=record.size,
        width=record.width, height=record.height, format=record.format, taken_at=record.taken_at,
        camera=record.camera, place=record.place_name, latitude=record.latitude, longitude=record.longitude,
        rating=record.rating, label=record.label, modified_at=modified, text_signals=signals,
    )


@router.get("/api/images/{image_id}/similar", response_model=SearchOut, responses=NOT_FOUND)
async def image_similar(
    backend: BackendDep, filters: FiltersDep, image_id: int, k: KParam = 24, offset: OffsetParam = 0,
    min_score: MinScoreParam = None, sort: SortParam = "score",
) -> SearchOut:
    """Images that look like this one."""
    options = search_options(k, offset, filters, min_score=min_score, sort=sort)
    page = await backend.call(lambda index: Backend.similar(index, image_id, options)) if known_id(image_id) else None
    if page is None:
        raise no_such_image(image_id)
    return search_out(page, k, offset)


async def _servable(backend: Backend, image_id: int) -> tuple[ImageRecord, Path]:
    """The record and real file of an indexed image, refused unless the file is still
    under an indexed folder: clients name ids, never paths."""
    if not known_id(image_id):
        raise no_such_image(image_id)
    record, roots = await backend.read(lambda index: (index.find(image_id), index.roots()))
    if record is None:
        raise no_such_image(image_id)
    path = await run_in_threadpool(servable_path, record.path, roots)
    if path is None:
        raise NotFound(
            f"Image {image_id} is no longer available: its file was moved or deleted, or now lies outside the "
            "indexed folders. Re-index to refresh.",
        )
    return record, path


@router.get("/thumbs/{image_id}", responses={**NOT_FOUND, 200: {"content": {"image/webp": {}}}})
async def thumbnail(
    backend: BackendDep,
    thumbs: ThumbsDep,
    decoder: DecoderDep,
    request: Request,
    image_id: int,
    size: Annotated[int, Query(description=f"Longest side: one of {', '.join(map(str, THUMB_SIZES))}.")] = 256,
) -> Response:
    """An upright WebP thumbnail, made on first request and cached on disk."""
    if size not in THUMB_SIZES:
        raise ApiError(422, "bad_size", f"Thumbnail size must be one of {', '.join(map(str, THUMB_SIZES))}.")
    record, path = await _servable(backend, image_id)
    etag = f'"{record.content_hash}-{size}"'
    headers = {"ETag": etag, "Cache-Control": THUMB_CACHE_CONTROL}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    try:
        thumb = thumbs.cached(record.content_hash, size) or await decoder.thumbnail(
            thumbs, path, record.content_hash, size
        )
    except TooLargeToDecode as exc:
        raise ApiError(422, "too_large", f"Image {image_id} gets no thumbnail: {exc}. Open the original: "
                       f"/files/{image_id}.") from None
    except UnreadableImageError as exc:
        raise ApiError(404, "unreadable_image", f"Image {image_id} can no longer be read: {exc}. Re-index.") from None
    return FileResponse(thumb, media_type="image/webp", headers=headers)


@router.get("/files/{image_id}", responses=NOT_FOUND)
async def original_file(backend: BackendDep, image_id: int) -> FileResponse:
    """The original file, streamed with its content type."""
    record, path = await _servable(backend, image_id)
    return FileResponse(
        path, media_type=MEDIA_TYPES.get(record.format, "application/octet-stream"),
        filename=utf8_safe(os.path.basename(path)), content_disposition_type="inline",
        headers={"Cache-Control": FILE_CACHE_CONTROL},
    )
