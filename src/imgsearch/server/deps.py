"""What the routes share: the backend, filter parameters and response conversion."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

from fastapi import Depends, Query, Request

from imgsearch.search.filters import SearchFilters
from imgsearch.search.fusion import MODES
from imgsearch.server.backend import Backend, SearchPage
from imgsearch.server.config import ServerConfig
from imgsearch.server.errors import ApiError
from imgsearch.server.jobs import JobRunner
from imgsearch.server.schemas import MAX_K, MAX_OFFSET, FiltersIn, HitOut, SearchOut
from imgsearch.server.thumbs import ThumbnailCache
from imgsearch.server.watching import WatchService


def get_backend(request: Request) -> Backend:
    return request.app.state.backend


def get_config(request: Request) -> ServerConfig:
    return request.app.state.config


def get_jobs(request: Request) -> JobRunner:
    return request.app.state.jobs


def get_thumbs(request: Request) -> ThumbnailCache:
    return request.app.state.thumbs


def get_watching(request: Request) -> WatchService | None:
    return request.app.state.watching


BackendDep = Annotated[Backend, Depends(get_backend)]
ConfigDep = Annotated[ServerConfig, Depends(get_config)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]
ThumbsDep = Annotated[ThumbnailCache, Depends(get_thumbs)]
WatchDep = Annotated[Optional[WatchService], Depends(get_watching)]
KParam = Annotated[int, Query(ge=1, le=MAX_K, description="Results per page.")]
OffsetParam = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Results to skip (paging).")]


def query_filters(
    folder: Annotated[Optional[str], Query(alias="in", description="Only images in this folder and below.")] = None,
    after: Annotated[Optional[str], Query(description="Taken on or after this ISO date.")] = None,
    before: Annotated[Optional[str], Query(description="Taken before this ISO date.")] = None,
    formats: Annotated[Optional[list[str]], Query(alias="format", description="Only these formats.")] = None,
) -> SearchFilters:
    return to_filters(FiltersIn(folder=folder, after=after, before=before, formats=formats or []))


FiltersDep = Annotated[SearchFilters, Depends(query_filters)]


def to_filters(filters: FiltersIn) -> SearchFilters:
    return SearchFilters(
        folder=filters.folder or None, after=filters.after or None, before=filters.before or None,
        formats=tuple(f for f in filters.formats if f),
    )


def check_mode(mode: str | None) -> str | None:
    if mode and mode not in MODES:
        raise ApiError(400, "bad_request", f"Unknown mode {mode!r}: use one of {', '.join(MODES)}, or leave it out.")
    return mode or None


def search_out(page: SearchPage, k: int, offset: int) -> SearchOut:
    hits = [HitOut(**r.to_dict(), name=Path(r.path).name) for r in page.results]
    return SearchOut(
        query=page.query, results=hits, k=k, offset=offset,
        next_offset=offset + len(hits) if len(hits) == k else None, took_ms=round(page.took_ms, 2),
    )
