"""Run a function over items in a thread pool, a bounded window ahead, yielding results in order."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_ahead(work: Callable[[T], R], items: Iterable[T], *, workers: int, window: int, name: str) -> Iterator[R]:
    """`work(item)` for each item, in item order; at most `window` are in flight, so memory stays bounded."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(work, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
