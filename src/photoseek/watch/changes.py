"""Changed paths waiting to be indexed: debounced into batches, and held back while still being written."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from photoseek.watch.settings import WatchSettings

Stat = tuple[int, int] | None
"""(size, mtime_ns) of a path, None when it does not exist."""


def unchanged_for(stat: Stat) -> float:
    """Seconds since the path was last written, by its mtime (a moved file is steady at once)."""
    return 0.0 if stat is None else max(0.0, time.time() - stat[1] / 1e9)


def stat_of(path: str) -> Stat:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


@dataclass
class _Change:
    first_seen: float
    stat: Stat
    steady_since: float
    writing: bool = False
    """Written to and not closed yet (known with native events only)."""


class PendingChanges:
    """Thread-safe: the observer thread adds paths, the watcher loop takes batches of ready ones."""

    def __init__(self, settings: WatchSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._changes: dict[str, _Change] = {}
        self._last_event = 0.0
        self._arrived = threading.Condition()

    def __len__(self) -> int:
        with self._arrived:
            return len(self._changes)

    def add(self, path: str, *, writing: bool | None = None) -> None:
        """Note a change at `path`; `writing` says whether a writer still has it open, when known."""
        now, stat = self._clock(), stat_of(path)
        with self._arrived:
            change = self._changes.setdefault(path, _Change(now, stat, now - unchanged_for(stat)))
            if change.stat != stat:
                change.stat, change.steady_since = stat, now - unchanged_for(stat)
            if writing is not None:
                change.writing = writing
            self._last_event = now
            self._arrived.notify_all()

    def wait(self, timeout: float) -> None:
        """Sleep until a change arrives or `timeout` passes."""
        with self._arrived:
            self._arrived.wait(timeout)

    def wake(self) -> None:
        """End a `wait` now (the watcher is asked to stop)."""
        with self._arrived:
            self._arrived.notify_all()

    def discard_below(self, folder: str) -> int:
        """Forget the changes at or below `folder` (it went away); how many there were."""
        below = folder.rstrip("/") + "/"
        with self._arrived:
            gone = [p for p in self._changes if p == folder or p.startswith(below)]
            for path in gone:
                del self._changes[path]
        return len(gone)

    def take_ready(self) -> list[str]:
        """The paths ready for a batch (oldest first), once changes have paused for `quiet`
        seconds or the oldest has waited `max_wait`; files still changing stay behind, and so
        do vanished paths while anything else waits (a move's new path must be indexed with or
        before its old one goes, to reuse the embedding)."""
        now, s = self._clock(), self.settings
        with self._arrived:
            if not self._changes:
                return []
            oldest = min(c.first_seen for c in self._changes.values())
            if now - self._last_event < s.quiet and now - oldest < s.max_wait:
                return []
            ready = {p: self._is_ready(p, c, now) for p, c in self._changes.items()}
            if not all(ready.values()) and now - oldest < s.max_wait:
                ready = {p: is_ready and self._changes[p].stat is not None for p, is_ready in ready.items()}
            batch = sorted((p for p, ok in ready.items() if ok), key=lambda p: self._changes[p].first_seen)
            batch = batch[: s.max_batch]
            for path in batch:
                del self._changes[path]
        return batch

    def _is_ready(self, path: str, change: _Change, now: float) -> bool:
        stat = stat_of(path)
        if stat != change.stat:
            change.stat, change.steady_since = stat, now - unchanged_for(stat)
        if stat is None:
            return True
        steady = now - change.steady_since
        if change.writing and steady < self.settings.open_timeout:
            return False
        return steady >= self.settings.settle
