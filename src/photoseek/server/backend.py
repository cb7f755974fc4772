"""The one place the server touches `ImageIndex`: dedicated threads that own it.

A catalog connection belongs to the thread that opened it, and the model is loaded
once and kept warm, so index calls are handed to worker threads that each own an
`ImageIndex` (sharing the model). The event loop only awaits; it never runs SQLite or
the model itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from PIL import Image

from photoseek.api import ImageIndex
from photoseek.errors import PhotoseekError
from photoseek.models.runtime import Runtime
from photoseek.search.engine import ResultPage
from photoseek.search.modes import Mode
from photoseek.search.query import Query
from photoseek.server.batching import Batcher
from photoseek.server.config import ServerConfig
from photoseek.server.workers import DaemonWorkers
from photoseek.store.catalog import ImageRecord
from photoseek.store.filters import SearchFilters
from photoseek.threads import leave_a_core

T = TypeVar("T")


BY_LOOKS = Mode.CLIP
"""The mode for images like an indexed one: rank by looks, whatever the default mode."""
CLOSE_WAIT_SECONDS = 2.0
"""How long shutdown waits for an idle lane to close its catalog."""


@dataclass(frozen=True)
class SearchOptions:
    """What a search request may set besides the query, as the CLI's `search` offers it."""

    k: int
    offset: int = 0
    filters: SearchFilters = SearchFilters()
    mode: str | None = None
    min_score: float | None = None
    weights: dict[str, float] | None = None
    explain: bool = False
    sort: str = "score"
    """The page's order: score, date, oldest or name (`photoseek.search.ordering`)."""

    def key(self) -> tuple[object, ...]:
        """Equal for options that one `search_many` call can serve together."""
        weights = tuple(sorted(self.weights.items())) if self.weights is not None else None
        return (self.k, self.offset, self.filters, self.mode, self.min_score, weights, self.explain, self.sort)


@dataclass(frozen=True)
class SearchPage:
    query: str
    results: ResultPage
    """With how many weaker matches the cut-off kept off the page, and whether it was left uncut."""
    took_ms: float

    def relabel(self, query: str) -> SearchPage:
        return SearchPage(query, self.results, self.took_ms)


class _Lane:
    """One daemon thread with its own `ImageIndex`, opened on that thread at first use."""

    def __init__(self, name: str, open_index: Callable[[], ImageIndex]) -> None:
        self._worker = DaemonWorkers(name)
        self._open_index = open_index
        self.index: ImageIndex | None = None

    async def run(self, fn: Callable[[ImageIndex], T]) -> T:
        return await self._worker.run(lambda: self._run(fn))

    def _run(self, fn: Callable[[ImageIndex], T]) -> T:
        with leave_a_core():  # models and BLAS leave the event loop a core (photoseek.threads)
            if self.index is None:
                self.index = self._open_index()
            return fn(self.index)

    def close(self) -> None:
        """Close the catalog on its own thread if the lane is idle; a busy one is left to end with
        the process (its thread is a daemon), so shutdown never waits for a long search."""
        if self.index is not None and not self._worker.busy:
            try:
                self._worker.submit(self.index.close).result(timeout=CLOSE_WAIT_SECONDS)
            except FutureTimeout:
                pass
        self._worker.stop()


class Backend:
    """Runs `ImageIndex` calls off the event loop; start() loads and warms the model.

    Searches run on one thread; quick catalog look-ups (metadata, thumbnails, files) run
    on a second one with its own connection, so pictures keep loading behind a queue of
    searches.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._search = _Lane("photoseek-search", lambda: _open_warm(config))
        self._read = _Lane("photoseek-read", self.open_sibling)
        self.batcher: Batcher[tuple[Query, SearchOptions], SearchPage] = Batcher(
            self._run_batch, max_queue=config.max_queue)
        self.image_size = 0
        """The model's input side, known once started."""

    async def start(self) -> None:
        self.image_size = await self.call(lambda index: index.model.image_size)
        await self.read(lambda index: None)

    @property
    def runtime(self) -> Runtime:
        """The models' runtime, shared by every lane: what is loaded, and releasing idle models."""
        return self._primary.runtime

    @property
    def db_path(self) -> Path:
        return self._primary.db_path

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

    async def search(self, query: Query, options: SearchOptions) -> SearchPage:
        """Rank by `query`, batched with the searches that wait at the same time
        (503 `busy` when `--max-queue` searches wait already); the search policy (`photoseek.search.modes`)
        ranks a picture-only query of the batch by looks, as the CLI and the Python API do."""
        return await self.batcher.submit(options.key(), (query, options))

    async def _run_batch(
        self, _key: object, jobs: list[tuple[Query, SearchOptions]]
    ) -> list[SearchPage | BaseException]:
        options = jobs[0][1]
        return await self.call(lambda index: Backend.search_batch(index, [q for q, _ in jobs], options))

    async def read(self, fn: Callable[[ImageIndex], T]) -> T:
        """Run a quick catalog look-up `fn(index)` on the read thread."""
        return await self._read.run(fn)

    # -- work done on the worker thread -----------------------------------------------

    @staticmethod
    def search_batch(
        index: ImageIndex, queries: list[Query], options: SearchOptions
    ) -> list[SearchPage | BaseException]:
        """One page per query, all through the models and the ranking together; when the batch
        fails (a query its mode cannot use, say), each query alone, so each gets its own error."""
        started = time.perf_counter()
        try:
            ranked: list[ResultPage | BaseException] = list(_ranked(index, queries, options))
        except PhotoseekError:
            if len(queries) == 1:
                raise
            ranked = [_alone(index, query, options) for query in queries]
        took_ms = (time.perf_counter() - started) * 1000
        return [
            r if isinstance(r, BaseException) else SearchPage(q.describe(), r, took_ms)
            for q, r in zip(queries, ranked)
        ]

    @staticmethod
    def similar(index: ImageIndex, image_id: int, options: SearchOptions) -> SearchPage | None:
        """Images like an indexed one (by its stored embedding), itself left out;
        None when the id is unknown."""
        record = index.find(image_id)
        if record is None:
            return None
        started = time.perf_counter()
        results = index.similar(
            image_id, k=options.k, offset=options.offset, min_score=options.min_score, filters=options.filters,
            sort=options.sort,
        )
        took_ms = (time.perf_counter() - started) * 1000
        return SearchPage(f"<like {Path(record.path).name}>", ResultPage(results), took_ms)

    @staticmethod
    def details(index: ImageIndex, image_id: int) -> tuple[ImageRecord, dict[str, str]] | None:
        record = index.find(image_id)
        if record is None:
            return None
        return record, dict(index.text_signals(image_id))


def _ranked(index: ImageIndex, queries: list[Query], options: SearchOptions) -> list[ResultPage]:
    return index.search_many(
        queries, k=options.k, offset=options.offset, filters=options.filters, mode=options.mode,
        min_score=options.min_score, weights=options.weights, explain=options.explain, sort=options.sort,
    )


def _alone(index: ImageIndex, query: Query, options: SearchOptions) -> ResultPage | BaseException:
    try:
        return _ranked(index, [query], options)[0]
    except PhotoseekError as exc:
        return exc


def _open_warm(config: ServerConfig) -> ImageIndex:
    """Open the catalog and load both model towers now, not on the first request."""
    index = ImageIndex(
        config.db, model=config.model, model_path=config.model_path, text_model=config.text_model, device=config.device
    )
    model = index.model
    model.encode_texts(["warm-up"])
    model.encode_images([Image.new("RGB", (model.image_size, model.image_size))])
    if index.count():
        index.search("warm-up", k=1)  # loads the vectors and whatever else the default mode needs
    return index

