"""`serve --watch`: a watcher on its own thread with its own `ImageIndex`, started and stopped with the app."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from photoseek.api import ImageIndex
from photoseek.watch import Watcher, WatchSettings, WatchState

log = logging.getLogger("photoseek.watch")


class WatchService:
    """Keeps the catalog current while the server runs; `state()` feeds the UI's index view."""

    def __init__(self, open_index: Callable[[], ImageIndex], roots: Sequence[Path], settings: WatchSettings) -> None:
        self._open_index = open_index
        self.roots = unique_real(roots)
        self._settings = settings
        self._watcher: Watcher | None = None
        self._stopping = threading.Event()
        self._started = threading.Event()
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="photoseek-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait(timeout=60)

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.stop()
        self._thread.join(timeout=60)

    def state(self) -> WatchState | None:
        """The watcher's latest state; None before it started or after it failed to start."""
        return self._watcher.state() if self._watcher is not None else None

    def _run(self) -> None:
        try:
            with self._open_index() as index:
                self._watcher = index.watcher(
                    self.roots, settings=self._settings, on_notice=log.warning,
                    on_batch=lambda batch: log.info(batch.summary()),
                )
                self._started.set()
                if not self._stopping.is_set():
                    self._watcher.run()
        except Exception as exc:  # shown by /api/watch instead of dying silently
            self.error = str(exc) or type(exc).__name__
            log.error("Watching stopped: %s", self.error)
        finally:
            self._started.set()


def unique_real(paths: Sequence[Path]) -> list[Path]:
    """The paths without repeats, compared by real path (first spelling kept)."""
    seen: dict[str, Path] = {}
    for path in paths:
        seen.setdefault(os.path.realpath(path.expanduser()), path)
    return [Path(p) for p in seen]
