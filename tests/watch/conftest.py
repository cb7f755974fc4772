"""A watcher running on its own thread over a temporary library, with short timings for tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photoseek import ImageIndex
from photoseek.watch import WatchBatch, Watcher, WatchSettings
from tests.helpers import catalog_of, wait_until

pytest.importorskip("watchdog")

FAST = WatchSettings(quiet=0.3, settle=0.3, max_wait=20.0, retry=0.5)
"""Short enough for quick tests, long enough that one copy loop is one burst on a busy machine."""
TIMEOUT = 60.0
"""Generous: the machine running the tests may be busy; waits end as soon as the condition holds."""


def small_png(path: Path, seed: int, side: int = 16) -> Path:
    """A tiny noise picture, different for every seed."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@dataclass
class Session:
    """A running watcher plus what it reported, and a reader index for checking the catalog."""

    watcher: Watcher
    reader: ImageIndex
    batches: list[WatchBatch] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def idle(self) -> bool:
        """Nothing waiting and no batch under way (so `batches` holds every batch so far)."""
        state = self.watcher.state()
        return not state.pending and not state.indexing

    def settle(self, condition: Callable[[], object], what: str, timeout: float = TIMEOUT) -> None:
        """Wait until `condition` holds with the watcher idle."""
        wait_until(lambda: self.idle() and condition(), what, timeout)

    def searchable(self) -> set[str]:
        """Paths a CLIP search returns when nothing is cut off (random weights: every score is noise)."""
        if self.reader.count() == 0:
            return set()
        return {r.path for r in self.reader.search("a photo", mode="clip", min_score=-1.0, k=5000)}

    def indexed(self) -> set[str]:
        return {row[0] for row in catalog_of(self.reader).db.execute("SELECT path FROM images")}

    def failed(self) -> set[str]:
        return {f.path for f in catalog_of(self.reader).failures()}

    def change_batches(self) -> list[WatchBatch]:
        return [b for b in self.batches if b.kind == "changes"]


@pytest.fixture
def watch(tmp_path: Path, tiny_clip_dir: Path) -> Iterator[Callable[..., Session]]:
    """`watch(roots, settings=FAST)` starts a watcher thread and waits for its catch-up."""
    started: list[tuple[threading.Thread, Session, list[BaseException]]] = []
    db = tmp_path / "catalog.db"

    def start(roots: list[Path], settings: WatchSettings = FAST) -> Session:
        ready = threading.Event()
        errors: list[BaseException] = []
        holder: list[Watcher] = []

        batches: list[WatchBatch] = []
        notices: list[str] = []

        def run() -> None:
            try:
                with ImageIndex(db, model_path=tiny_clip_dir) as index:
                    watcher = index.watcher(roots, settings=settings, on_batch=batches.append, on_notice=notices.append)
                    holder.append(watcher)
                    ready.set()
                    watcher.run()
            except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread
                errors.append(exc)
                ready.set()

        thread = threading.Thread(target=run, name="test-watcher", daemon=True)
        thread.start()
        ready.wait(TIMEOUT)
        if errors:
            raise errors[0]
        session = Session(holder[0], ImageIndex(db, model_path=tiny_clip_dir), batches, notices)
        started.append((thread, session, errors))
        wait_until(lambda: session.batches or errors, "the catch-up batch")
        return session

    yield start
    for thread, session, errors in started:
        session.watcher.stop()
        thread.join(TIMEOUT)
        session.reader.close()
        assert not thread.is_alive(), "the watcher did not stop"
        assert not errors, errors
