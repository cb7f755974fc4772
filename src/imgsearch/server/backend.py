"""The one place the server touches `ImageIndex`: dedicated threads that own it.

A catalog connection belongs to the thread that opened it, and the model is loaded
once and kept warm, so index calls are handed to worker threads that each own an
`ImageIndex` (sharing the model). The event loop only awaits; it never runs SQLite or
the model itself.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TypeVar

from PIL import Image

from imgsearch.api import ImageIndex
from imgsearch.ingest.decode import decode_image
from imgsearch.search.engine import SearchResult
from imgsearch.search.filters import SearchFilters
from imgsearch.search.query import Query, QueryTerm
from imgsearch.server.config import ServerConfig
from imgsearch.store.catalog import ImageRecord

T = TypeVar("T")


BY_LOOKS = "clip"
"""The mode for picture-only queries: rank by looks, whatever the default mode."""


@dataclass(frozen=True)
class SearchPage:
    query: str
    results: list[SearchResult]
    took_ms: float

    def relabel(self, query: str) -> SearchPage:
        return SearchPage(query, self.results, self.took_ms)


class _Lane:
    """One thread with its own `ImageIndex`, opened on that thread at first use."""

    def __init__(self, name: str, open_index: Callable[[], ImageIndex]) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._open_index = open_index
        self.index: ImageIndex | None = None

    async def run(self, fn: Callable[[ImageIndex], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(self._run, fn))

    def _run(self, fn: Callable[[ImageIndex], T]) -> T:
        if self.index is None:
            self.index = self._open_index()
        return fn(self.index)

    def close(self) -> None:
        if self.index is not None:
            self._executor.submit(self.index.close).result()
        self._executor.shutdown(wait=True)


class Backend:
    """Runs `ImageIndex` calls off the event loop; start() loads and warms the model.

    Searches run on one thread; quick catalog look-ups (metadata, thumbnails, files) run
    on a second one with its own connection, so pictures keep loading behind a queue of
    searches.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._search = _Lane("imgsearch-search", lambda: _open_warm(config))
        self._read = _Lane("imgsearch-read", self.open_sibling)
        self.image_size = 0
        """The model's input side, known once started."""

    async def start(self) -> None:
        self.image_size = await self.call(lambda index: index.model.image_size)
        await self.read(lambda index: None)

    @property
    def db_path(self) -> Path:
        return self._primary.catalog.path

    @property
    def _primary(self) -> ImageIndex:
        assert self._search.index is not None, "start() first"
        return self._search.index

    def open_sibling(self) -> ImageIndex:
        """An `ImageIndex` for another thread: same catalog, same warm model."""
        return self._primary.for_another_thread()

    def close(self) -> None:
        self._read.close()
        self._search.close()

    async def call(self, fn: Callable[[ImageIndex], T]) -> T:
        """Run `fn(index)` on the search thread and await its result."""
        return await self._search.run(fn)

    async def read(self, fn: Callable[[ImageIndex], T]) -> T:
        """Run a quick catalog look-up `fn(index)` on the read thread."""
        return await self._read.run(fn)

    # -- work done on the worker thread -----------------------------------------------

    @staticmethod
    def search(
        index: ImageIndex, query: Query, *, k: int, offset: int,
        filters: SearchFilters, mode: str | None = None,
    ) -> SearchPage:
        started = time.perf_counter()
        if not mode and all(term.kind != "text" for term in query.terms):
            mode = BY_LOOKS
        results = index.search(query, k=k, offset=offset, filters=filters, mode=mode)
        return SearchPage(query.describe(), results, (time.perf_counter() - started) * 1000)

    @staticmethod
    def similar(
        index: ImageIndex, image_id: int, *, k: int, offset: int, filters: SearchFilters
    ) -> SearchPage | None:
        """Images like an indexed one (by its stored embedding), itself left out;
        None when the id is unknown."""
        record = index.catalog.get(image_id)
        if record is None:
            return None
        started = time.perf_counter()
        query = Query((QueryTerm("image_id", str(image_id)),))
        ranked = [r for r in index.search(query, k=offset + k + 1, filters=filters, mode=BY_LOOKS) if r.id != image_id]
        results = [replace(r, rank=rank) for rank, r in enumerate(ranked[offset : offset + k], start=offset + 1)]
        return SearchPage(f"<like {Path(record.path).name}>", results, (time.perf_counter() - started) * 1000)

    @staticmethod
    def details(index: ImageIndex, image_id: int) -> tuple[ImageRecord, dict[str, str]] | None:
        record = index.catalog.get(image_id)
        if record is None:
            return None
        return record, dict(index.text_signals(image_id))


def _open_warm(config: ServerConfig) -> ImageIndex:
    """Open the catalog and load both model towers now, not on the first request."""
    index = ImageIndex(config.db, model=config.model, model_path=config.model_path, text_model=config.text_model)
    model = index.model
    model.encode_texts(["warm-up"])
    model.encode_images([Image.new("RGB", (model.image_size, model.image_size))])
    if index.catalog.count():
        index.search("warm-up", k=1)  # loads the vectors and whatever else the default mode needs
    return index


def save_upload(data: bytes, *, min_side: int, max_pixels: int) -> Path:
    """Decode an uploaded picture under the upload pixel limit and keep a small PNG of it.

    The engine then reads only this normalised copy, never the raw upload. The caller
    deletes the file.
    """
    decoded = decode_image(data, min_side=min_side, max_pixels=max_pixels)
    fd, name = tempfile.mkstemp(suffix=".png", prefix="imgsearch-upload-")
    with os.fdopen(fd, "wb") as out:
        decoded.image.save(out, format="PNG")
    return Path(name)
