"""watchdog's side of a watch: the handler an observer calls for every event under one root.

Apart from `watcher` because it subclasses watchdog's handler, and watchdog (the optional `watch`
extra) is imported only when a watcher starts observing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler


class RootHandler(FileSystemEventHandler):
    """Hands every event under `root` to `note` (all an observer asks of a handler is `dispatch`)."""

    def __init__(self, note: Callable[[FileSystemEvent, Path], None], root: Path) -> None:
        super().__init__()
        self.note, self.root = note, root

    def dispatch(self, event: FileSystemEvent) -> None:
        self.note(event, self.root)
