"""What the routes share: the backend, search parameters, filters and response conversion.

Dependencies are `async def`: FastAPI runs a plain `def` one on its thread pool, two thread
hand-offs per request for a look-up that takes microseconds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

from fastapi import Depends, Query, Request

from photoseek.errors import BadInput, NotFound
from photoseek.search.fusion import SIGNALS
from photoseek.search.modes import MODE_NAMES
from photoseek.search.ordering import check_result_sort
from photoseek.server.backend import Backend, SearchOptions, SearchPage
from photoseek.server.config import ServerConfig
from photoseek.server.decoding import Decoder
from photoseek.server.jobs import JobRunner
from photoseek.server.schemas import (
    LABEL_HELP,
    MAX_FILTER_CHARS,
    MAX_FORMATS,
    MAX_ID,
    MAX_K,
    MAX_OFFSET,
    MIN_RATING_HELP,
    NEAR_HELP,
    PLACE_HELP,
    FiltersIn,
    HitOut,
    SearchOut,
)
from photoseek.server.thumbs import ThumbnailCache
from photoseek.server.watching import WatchService
from photoseek.store.filters import SearchFilters, parse_near

SEARCH_MODES = MODE_NAMES


async def get_backend(request: Request) -> Backend:
    return request.app.state.backend


async def get_config(request: Request) -> ServerConfig:
    return request.app.state.config


async def get_jobs(request: Request) -> JobRunner:
    return request.app.state.jobs


async def get_thumbs(request: Request) -> ThumbnailCache:
    return request.app.state.thumbs


async def get_watching(request: Request) -> WatchService | None:
    return request.app.state.watching


async def get_decoder(request: Request) -> Decoder:
    return request.app.state.decoder


BackendDep = Annotated[Backend, Depends(get_backend)]
ConfigDep = Annotated[ServerConfig, Depends(get_config)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]
ThumbsDep = Annotated[ThumbnailCache, Depends(get_thumbs)]
WatchDep = Annotated[Optional[WatchService], Depends(get_watching)]
DecoderDep = Annotated[Decoder, Depends(get_decoder)]
KParam = Annotated[int, Query(ge=1, le=MAX_K, description="Results per page.")]
OffsetParam = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Results to skip (paging).")]
SortParam = Annotated[
    str, Query(max_length=10, description="Order of the page: score (best first), date (newest first), oldest, "
               "or name (by path). The page still holds the best matches.")
]
MinScoreParam = Annotated[
    Optional[float],
    Query(ge=-1, le=1, description="Hide results below this score (0 shows all); default: the calibrated cut-off."),
]


async def query_filters(
    folder: Annotated[Optional[str], Query(alias="in", max_length=MAX_FILTER_CHARS,
                                           description="Only images in this folder and below.")] = None,
    after: Annotated[Optional[str], Query(max_length=40, description="Taken on or after this ISO date.")] = None,
    before: Annotated[Optional[str], Query(max_length=40, description="Taken before this ISO date.")] = None,
    formats: Annotated[Optional[list[str]], Query(alias="format", max_length=MAX_FORMATS,
                                                  description="Only these formats (repeatable).")] = None,
    min_size: Annotated[Optional[int], Query(ge=1, le=1_000_000, description="Only images at least this many "
                                             "pixels wide and high.")] = None,
    camera: Annotated[Optional[str], Query(max_length=200, description="Camera make/model contains this text.")] = None,
    topic: Annotated[
        Optional[str], Query(max_length=60, description="Only images with this topic (/api/topics).")
    ] = None,
    place: Annotated[Optional[str], Query(max_length=200, description=PLACE_HELP)] = None,
    near: Annotated[Optional[str], Query(max_length=80, description=NEAR_HELP)] = None,
    min_rating: Annotated[Optional[int], Query(ge=0, le=5, description=MIN_RATING_HELP)] = None,
    label: Annotated[Optional[str], Query(max_length=100, description=LABEL_HELP)] = None,
) -> SearchFilters:
    return to_filters(FiltersIn(folder=folder, after=after, before=before, formats=formats or [],
                                min_size=min_size, camera=camera, topic=topic, place=place, near=near,
                                min_rating=min_rating, label=label))


FiltersDep = Annotated[SearchFilters, Depends(query_filters)]


def to_filters(filters: FiltersIn) -> SearchFilters:
    return SearchFilters(
        folder=filters.folder or None, after=filters.after or None, before=filters.before or None,
        formats=tuple(f for f in filters.formats if f), min_width=filters.min_size, min_height=filters.min_size,
        camera=filters.camera or None, topic=filters.topic or None, place=filters.place or None,
        near=parse_near(filters.near) if filters.near else None, min_rating=filters.min_rating,
        label=filters.label or None,
    )


def search_options(
    k: int, offset: int, filters: SearchFilters, *, mode: str | None = None, min_score: float | None = None,
    weights: dict[str, float] | None = None, explain: bool = False, sort: str = "score",
) -> SearchOptions:
    """Checked options: unknown modes and signals, and weights that add up to nothing, are BadInput (422)."""
    if mode and mode not in SEARCH_MODES:
        raise BadInput(
            f"Unknown mode {mode!r}: use one of {', '.join(SEARCH_MODES)}, or leave it out."
        )
    unknown = sorted(set(weights or {}) - set(SIGNALS))
    if unknown:
        raise BadInput(
            f"Unknown signal(s) {', '.join(unknown)} in weights: use {', '.join(SIGNALS)}."
        )
    if weights and not (all(math.isfinite(w) for w in weights.values()) and sum(weights.values()) > 0):
        raise BadInput("Signal weights must be finite, >= 0 and not all zero.")
    check_result_sort(sort)
    return SearchOptions(k=k, offset=offset, filters=filters, mode=mode or None, min_score=min_score,
                         weights=weights or None, explain=explain, sort=sort)


def no_such_image(image_id: int) -> NotFound:
    """The error for an image id the index does not have (any more), the same on every route."""
    return NotFound(f"No image with id {image_id} in the index. Search again to get current ids.")


def known_id(image_id: int) -> bool:
    """Whether an id can name an image at all (SQLite integers are 64-bit)."""
    return 1 <= image_id <= MAX_ID


def search_out(page: SearchPage, k: int, offset: int) -> SearchOut:
    hits = [HitOut.model_validate({**r.to_dict(), "name": Path(r.path).name}) for r in page.results]
    return SearchOut(
        query=page.query, results=hits, k=k, offset=offset,
        next_offset=offset + len(hits) if len(hits) == k else None, took_ms=round(page.took_ms, 2),
        hidden=page.results.hidden, uncut=page.results.uncut,
    )
