"""Indexing jobs: one at a time, on their own thread, with progress others can poll."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict

from photoseek.api import ImageIndex
from photoseek.ingest.indexer import IndexReport, Progress

if TYPE_CHECKING:
    from typing_extensions import Unpack

JobPhase = Literal["running", "done", "failed"]


@dataclass(frozen=True)
class JobState:
    """A snapshot; `version` grows with every change so watchers can skip repeats."""

    id: str
    roots: tuple[str, ...]
    state: JobPhase = "running"
    done: int = 0
    total: int = 0
    current: str | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    report: IndexReport | None = None
    error: str | None = None
    version: int = 0

    @property
    def finished(self) -> bool:
        return self.state != "running"


class _Changes(TypedDict, total=False):
    """What a job's progress and end change in its `JobState`."""

    state: JobPhase
    done: int
    total: int
    current: str | None
    finished_at: float
    report: IndexReport
    error: str


class JobRunner:
    """Starts indexing jobs and keeps their latest state.

    `open_index` gives the job thread its own `ImageIndex` (its own catalog connection,
    sharing the loaded model), so searches go on while a job runs.
    """

    def __init__(self, open_index: Callable[[], ImageIndex]) -> None:
        self._open_index = open_index
        self._lock = threading.Lock()
        self._jobs: dict[str, JobState] = {}
        self._running: str | None = None

    def start(self, roots: Sequence[Path]) -> JobState:
        """A new job over `roots`, or the job already running (jobs never overlap)."""
        with self._lock:
            if self._running is not None:
                return self._jobs[self._running]
            job = JobState(id=uuid.uuid4().hex[:12], roots=tuple(str(r) for r in roots))
            self._jobs[job.id] = job
            self._running = job.id
        threading.Thread(target=self._run, args=(job.id, list(roots)), name=f"index-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> JobState | None:
        with self._lock:
            return self._jobs.get(job_id)

    @property
    def running(self) -> str | None:
        return self._running

    def _run(self, job_id: str, roots: list[Path]) -> None:
        def on_progress(progress: Progress) -> None:
            self._update(job_id, done=progress.done, total=progress.total, current=progress.path)

        try:
            index = self._open_index()
            try:
                report = index.index(roots, on_progress=on_progress)
            finally:
                index.close()
        except Exception as exc:  # the job reports any failure instead of dying silently
            self._update(job_id, state="failed", error=str(exc) or type(exc).__name__, finished_at=time.time())
        else:
            self._update(job_id, state="done", report=report, current=None, finished_at=time.time())

    def _update(self, job_id: str, **changes: Unpack[_Changes]) -> None:
        with self._lock:
            job = replace(self._jobs[job_id], version=self._jobs[job_id].version + 1, **changes)
            self._jobs[job_id] = job
            if job.finished:
                self._running = None
