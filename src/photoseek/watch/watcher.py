"""The watch loop: catch up, then turn file-system events into indexing batches until stopped."""

from __future__ import annotations

import errno
import glob
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from photoseek.errors import BadInput, PhotoseekError, Unavailable
from photoseek.ingest.discover import is_image_name, is_wanted
from photoseek.ingest.indexer import IndexReport
from photoseek.watch.changes import PendingChanges
from photoseek.watch.roots import Root, RootChange
from photoseek.watch.settings import WatchSettings

if TYPE_CHECKING:  # watchdog is the optional `watch` extra, imported when a watcher is made
    from watchdog.events import FileSystemEvent
    from watchdog.observers.api import BaseObserver, ObservedWatch

Indexer = Callable[[list[Path]], IndexReport]
SIDECAR_SUFFIX = ".xmp"


BatchKind = Literal["catch-up", "changes"]


@dataclass(frozen=True)
class WatchBatch:
    """One indexing run of the watcher: the start-up catch-up, a returning root, or a set of changes."""

    number: int
    kind: BatchKind
    """'catch-up' (whole roots) or 'changes' (the paths events named)."""
    paths: int
    """Roots walked ('catch-up') or changed paths looked at ('changes')."""
    report: IndexReport
    finished_at: float
    """Seconds since the epoch."""

    def summary(self) -> str:
        """The batch's log line."""
        r = self.report
        counts = {
            "embedded": r.embedded, "reused": r.reused, "removed": r.removed,
            "skipped": len(r.failures), **{f"{s} texts": n for s, n in r.signals.items()},
        }
        done = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
        if r.interrupted:
            done = f"interrupted, kept {done or 'nothing'}; the rest is indexed at the next start"
        what = f"{self.paths} folder(s) caught up" if self.kind == "catch-up" else f"{self.paths} change(s)"
        stamp = time.strftime("%H:%M:%S", time.localtime(self.finished_at))
        return f"{stamp} batch {self.number}: {what} in {r.seconds:.1f} s: {done or 'nothing new'}."


@dataclass(frozen=True)
class RootStatus:
    path: str
    online: bool


@dataclass(frozen=True)
class WatchState:
    """A snapshot for status displays (the server's index view)."""

    running: bool
    indexing: bool
    """A batch is under way."""
    roots: list[RootStatus]
    pending: int
    batches: int
    last_batch: WatchBatch | None
    totals: dict[str, int] = field(default_factory=dict)
    """embedded, reused, removed, skipped over all batches so far."""
    error: str | None = None


class Watcher:
    """Follows `roots` and keeps an index current through `catch_up(roots)` and `apply(paths)`.

    `include_hidden` must match what the indexers do with dot-files (`index --include-hidden`).

    `run()` blocks: it catches up with every root present, then indexes changes in batches
    until `stop()` (from any thread) or Ctrl-C. Each batch is one indexing run, so it commits
    and can be interrupted like `index`; whatever had not been indexed when the watcher
    stopped is found by the next catch-up. A root that goes away is reported and its images
    stay in the catalog; when it comes back, it is caught up with.
    """

    def __init__(
        self,
        roots: Sequence[Path],
        *,
        catch_up: Indexer,
        apply: Indexer,
        settings: WatchSettings | None = None,
        include_hidden: bool = False,
        on_batch: Callable[[WatchBatch], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        if not roots:
            raise BadInput("Give at least one folder to watch.")
        self.settings = settings or WatchSettings()
        self._observer_class = _observer_class(self.settings.poll)
        self._roots = [Root(Path(os.path.realpath(r))) for r in dict.fromkeys(roots)]
        self._catch_up, self._apply = catch_up, apply
        self._include_hidden = include_hidden
        self._on_batch, self._on_notice = on_batch, on_notice
        self._pending = PendingChanges(self.settings)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watches: dict[Path, ObservedWatch] = {}
        self._batch_count = 0
        self._last_batch: WatchBatch | None = None
        self._totals = dict.fromkeys(("embedded", "reused", "removed", "skipped"), 0)
        self._running = self._indexing = False
        self._error: str | None = None
        self._retry_at = 0.0

    # -- public ------------------------------------------------------------------------

    def run(self) -> None:
        """Catch up, then follow changes until `stop()` (even one called before `run()`: a watcher
        runs once); Ctrl-C (or an interrupted batch) raises KeyboardInterrupt."""
        observer = self._observer()
        observer.start()
        self._running = True
        try:
            self._check_roots(observer)
            for root in self._roots:
                if not root.online:
                    self._notice(f"{root.path} is not there (unmounted?); it is caught up with when it appears.")
            while not self._stopping.is_set():
                self._pending.wait(self.settings.tick)
                self._check_roots(observer)
                if time.monotonic() >= self._retry_at:
                    self._index_changes()
        finally:
            self._running = False
            observer.stop()
            observer.join(timeout=10)

    def stop(self) -> None:
        """Ask `run()` to return after the batch under way."""
        self._stopping.set()
        self._pending.wake()

    def state(self) -> WatchState:
        with self._lock:
            return WatchState(
                running=self._running,
                indexing=self._indexing,
                roots=[RootStatus(str(r.path), r.online) for r in self._roots],
                pending=len(self._pending),
                batches=self._batch_count,
                last_batch=self._last_batch,
                totals=dict(self._totals),
                error=self._error,
            )

    # -- roots ---------------------------------------------------------------------------

    def _observer(self) -> BaseObserver:
        if self.settings.poll is not None:
            return self._observer_class(timeout=self.settings.poll)
        return self._observer_class()

    def _check_roots(self, observer: BaseObserver) -> None:
        """Stop following roots that went away; schedule and catch up with those (back) here."""
        back: list[Root] = []
        for root in self._roots:
            change = root.check()
            if change is RootChange.GONE:
                self._forget(observer, root)
            elif change is RootChange.BACK:
                self._follow(observer, root)
                back.append(root)
        if back:
            self._run_batch("catch-up", [r.path for r in back], self._catch_up)

    def _forget(self, observer: BaseObserver, root: Root) -> None:
        watch = self._watches.pop(root.path, None)
        if watch is not None:
            observer.unschedule(watch)
        self._pending.discard_below(str(root.path))
        self._notice(
            f"{root.path} went away (unmounted or moved?). Its images stay in the catalog; "
            "watching for it to come back."
        )

    def _follow(self, observer: BaseObserver, root: Root) -> None:
        old = self._watches.pop(root.path, None)
        if old is not None:
            observer.unschedule(old)
        from photoseek.watch.handler import RootHandler  # watchdog, loaded with the observer

        try:
            handler = RootHandler(self.note, root.path)
            self._watches[root.path] = observer.schedule(handler, str(root.path), recursive=True)
        except OSError as exc:
            raise Unavailable(_schedule_error(root.path, exc)) from exc
        if self._batch_count:
            self._notice(f"{root.path} is back; catching up with it.")

    # -- changes ---------------------------------------------------------------------------

    def note(self, event: FileSystemEvent, root: Path) -> None:
        """Turn one file-system event into pending changes (called on the observer's thread)."""
        kind = event.event_type
        if kind in ("opened", "closed_no_write"):
            return  # reads, ours included
        writing = None
        if self.settings.poll is None and kind in ("modified", "closed"):
            writing = kind == "modified"
        # A folder matters only where it vanished: the files of a new or moved-in one report themselves.
        sources = [event.src_path] if not event.is_directory or kind in ("deleted", "moved") else []
        if not event.is_directory:
            sources.append(getattr(event, "dest_path", ""))
        for raw in sources:
            if raw:
                for path in self._affected(Path(os.fsdecode(raw)), root, event.is_directory):
                    self._pending.add(str(path), writing=writing)

    def _affected(self, path: Path, root: Path, is_dir: bool) -> list[Path]:
        """The image paths (or folders) a change at `path` may concern; a sidecar stands for its images."""
        if not path.is_relative_to(root):
            return []
        hidden = self._include_hidden
        if not is_dir and path.suffix.lower() == SIDECAR_SUFFIX:
            return [p for p in _images_of_sidecar(path) if is_wanted(p, root, include_hidden=hidden)]
        return [path] if is_wanted(path, root, include_hidden=hidden, is_dir=is_dir) else []

    def _index_changes(self) -> None:
        self._indexing = True  # before the paths leave `pending`, so the watcher never looks idle between
        try:
            paths = [p for p in self._pending.take_ready() if self._root_online(p)]
            if paths:
                self._run_batch("changes", [Path(p) for p in paths], self._apply)
        finally:
            self._indexing = False

    def _root_online(self, path: str) -> bool:
        return any(r.online and Path(path).is_relative_to(r.path) for r in self._roots)

    def _run_batch(self, kind: BatchKind, paths: list[Path], indexer: Indexer) -> None:
        self._indexing = True
        try:
            report = self._index(paths, indexer)
            if report is not None:
                self._record(kind, len(paths), report)
        finally:
            self._indexing = False

    def _index(self, paths: list[Path], indexer: Indexer) -> IndexReport | None:
        """The batch's report, or None when it failed (then its paths wait for a retry)."""
        try:
            return indexer(paths)
        except PhotoseekError as exc:
            self._failed(paths, str(exc))
        except Exception as exc:  # e.g. the catalog stayed locked: keep watching, try again later
            self._failed(paths, f"{type(exc).__name__}: {exc}")
        return None

    def _record(self, kind: BatchKind, paths: int, report: IndexReport) -> None:
        with self._lock:
            self._batch_count += 1
            batch = self._last_batch = WatchBatch(self._batch_count, kind, paths, report, time.time())
            for key, value in (("embedded", report.embedded), ("reused", report.reused),
                               ("removed", report.removed), ("skipped", len(report.failures))):
                self._totals[key] += value
            self._error = None
        if self._on_batch:
            self._on_batch(batch)
        if report.interrupted:
            raise KeyboardInterrupt

    def _failed(self, paths: list[Path], reason: str) -> None:
        with self._lock:
            self._error = reason
        self._retry_at = time.monotonic() + self.settings.retry
        for path in paths:  # a root's catch-up is retried as a walk of the whole root
            self._pending.add(str(path))
        self._notice(f"Indexing {len(paths)} path(s) failed: {reason}. Trying again in {self.settings.retry:g} s.")

    def _notice(self, message: str) -> None:
        if self._on_notice:
            self._on_notice(message)


def _observer_class(poll: float | None) -> Callable[..., BaseObserver]:
    """watchdog's native observer (inotify, FSEvents, ReadDirectoryChangesW), or its polling one."""
    try:
        if poll is not None:
            from watchdog.observers.polling import PollingObserver

            return PollingObserver
        from watchdog.observers import Observer

        return Observer
    except ImportError:
        raise Unavailable("Watching folders needs the watchdog package: pip install 'photoseek[watch]'") from None


def _images_of_sidecar(sidecar: Path) -> list[Path]:
    """photo.jpg for photo.jpg.xmp; photo.jpg, photo.heic, ... for photo.xmp."""
    stem = sidecar.with_suffix("")
    if is_image_name(stem.name):
        return [stem]
    return [Path(p) for p in glob.glob(glob.escape(str(stem)) + ".*") if is_image_name(p)]


def _schedule_error(root: Path, exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return (
            f"Cannot watch {root}: the system's limit of watched folders is reached. Raise it "
            "(sysctl fs.inotify.max_user_watches=524288) or scan instead of listening: --poll 60."
        )
    return f"Cannot watch {root}: {exc.strerror or exc}. Try --poll 60 to scan it instead."
