"""Micro-batching of concurrent searches, with a bounded queue.

Searches run on one thread, so concurrent requests queue behind it. Instead of running them
one by one, the requests that wait together go through the models and the ranking together
(`ImageIndex.search_many`): the text towers encode all their texts in one call. A request
that finds the search thread idle waits a short window (a few ms, shorter when batches are
quick) for company; while a batch runs, everything that queues behind it forms the next one.

Requests are grouped by their options (mode, filters, weights, page), since `search_many`
takes one set of options; each request gets exactly what it would get alone. If a batched call
fails (a query that does not suit its mode, say), its requests are rerun one by one, so each
gets its own answer or error.

Beyond `max_queue` waiting requests, new ones are refused at once (503 with `Retry-After`)
rather than waiting without bound.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from photoseek.server.errors import ApiError

Job = TypeVar("Job")
Result = TypeVar("Result")

MAX_BATCH = 32
"""Searches run in one batch at most; the rest form the next one."""
MAX_WINDOW_S = 0.004
"""The longest a request that finds the search thread idle waits for others to join it."""


@dataclass
class _Waiting(Generic[Job, Result]):
    job: Job
    key: Hashable
    future: asyncio.Future[Result] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


RunBatch = Callable[[Hashable, list[Job]], Awaitable[list["Result | BaseException"]]]
"""Runs jobs that share a key together; one result (or the error) per job, in order."""


class Batcher(Generic[Job, Result]):
    """Collects jobs on the event loop and hands them to `run_batch` in batches of one key each."""

    def __init__(self, run_batch: RunBatch, *, max_queue: int,
                 max_batch: int = MAX_BATCH, max_window_s: float = MAX_WINDOW_S) -> None:
        self._run_batch = run_batch
        self.max_queue = max_queue
        self.max_batch = max_batch
        self.max_window_s = max_window_s
        self._waiting: list[_Waiting[Job, Result]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()
        self.running = 0
        """Jobs in the batch being run now."""
        self.batches = 0
        self.batched = 0
        """Batches run, and the jobs in them."""
        self._last_batch_size = 1
        self._seconds_per_job = 0.05
        """A running estimate, for the window and for `Retry-After`."""

    @property
    def queued(self) -> int:
        return len(self._waiting)

    async def submit(self, key: Hashable, job: Job) -> Result:
        if len(self._waiting) >= self.max_queue:
            wait = max(1, math.ceil(len(self._waiting) * self._seconds_per_job))
            raise ApiError(
                503, "busy",
                f"The server has {len(self._waiting)} searches waiting, its limit (--max-queue {self.max_queue}). "
                f"Retry in {wait} s.",
                headers={"Retry-After": str(wait)},
            )
        waiting: _Waiting[Job, Result] = _Waiting(job, key)
        self._waiting.append(waiting)
        self._arrived.set()
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await waiting.future

    async def _drain(self) -> None:
        while self._waiting:
            await self._gather()
            batch = self._take()
            if not batch:
                continue
            started = time.perf_counter()
            self.running = len(batch)
            try:
                outcomes = await self._run_batch(batch[0].key, [w.job for w in batch])
            except BaseException as exc:  # the lane failed as a whole: every request hears of it
                outcomes = [exc] * len(batch)
                if isinstance(exc, asyncio.CancelledError):
                    for waiting in batch:
                        waiting.future.cancel()
                    raise
            finally:
                self.running = 0
            elapsed = time.perf_counter() - started
            self._seconds_per_job = 0.8 * self._seconds_per_job + 0.2 * elapsed / len(batch)
            self._last_batch_size = len(batch)
            self.batches += 1
            self.batched += len(batch)
            for waiting, outcome in zip(batch, outcomes):
                if waiting.future.done():  # the client went away
                    continue
                if isinstance(outcome, BaseException):
                    waiting.future.set_exception(outcome)
                else:
                    waiting.future.set_result(outcome)

    async def _gather(self) -> None:
        """Wait briefly until about as many requests wait as joined the last batch (clients in a
        closed loop come back together), at most a few ms and a fraction of a job's cost."""
        window = min(self.max_window_s, self._seconds_per_job / 4)
        deadline = time.perf_counter() + window
        target = min(self.max_batch, self._last_batch_size)
        while len(self._live()) < target and (left := deadline - time.perf_counter()) > 0:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                break

    def _live(self) -> list[_Waiting[Job, Result]]:
        self._waiting = [w for w in self._waiting if not w.future.done()]  # drop cancelled requests
        return self._waiting

    def _take(self) -> list[_Waiting[Job, Result]]:
        """The oldest request and up to `max_batch` - 1 more with the same key, oldest first."""
        live = self._live()
        if not live:
            return []
        key = live[0].key
        batch = [w for w in live if w.key == key][: self.max_batch]
        chosen = {id(w) for w in batch}
        self._waiting = [w for w in live if id(w) not in chosen]
        return batch
