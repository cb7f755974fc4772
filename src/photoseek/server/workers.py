"""Worker threads that never hold up shutdown, and a pixel budget that bounds decoding memory.

`concurrent.futures` joins its threads when the interpreter exits, so one long call would keep
a stopped server alive; these threads are daemons, and the process ends once uvicorn is done.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
_STOP = None


class DaemonWorkers:
    """A fixed number of daemon threads running submitted calls in order."""

    def __init__(self, name: str, count: int = 1) -> None:
        self._queue: queue.SimpleQueue[tuple[Future, Callable[[], object]] | None] = queue.SimpleQueue()
        self.busy = 0
        """Calls running now."""
        self._count = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((future, fn))
        return future

    async def run(self, fn: Callable[[], T]) -> T:
        """Await `fn()` on a worker; a cancelled caller's call is dropped if it has not started."""
        return await asyncio.wrap_future(self.submit(fn))

    def stop(self) -> None:
        """Let the threads end after the calls already queued; does not wait for them."""
        for _ in self._threads:
            self._queue.put(_STOP)

    def _work(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            future, fn = item
            if not future.set_running_or_notify_cancel():
                continue
            with self._count:
                self.busy += 1
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the awaiting request, which reports it
                future.set_exception(exc)
            finally:
                with self._count:
                    self.busy -= 1


class PixelBudget:
    """Lets decodes run together while their decoded pixels add up to at most `pixels`;
    a larger one waits until it can run alone. Memory for decoding thus stays near
    `pixels` x bytes per pixel, whatever the number of requests."""

    def __init__(self, pixels: int) -> None:
        self.pixels = pixels
        self._in_use = 0
        self._running = 0
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: self._running == 0 or self._in_use + pixels <= self.pixels)
            self._in_use += pixels
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._in_use -= pixels
                self._running -= 1
                self._changed.notify_all()
