"""Health, status, indexing jobs with their progress stream, and the browser session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from photoseek.errors import NotFound
from photoseek.server.deps import BackendDep, ConfigDep, JobsDep, WatchDep
from photoseek.server.errors import ApiError
from photoseek.server.jobs import JobState
from photoseek.server.schemas import (
    ErrorOut,
    FailureOut,
    JobOut,
    ReportOut,
    SearchQueueOut,
    StatusOut,
    VectorSearchOut,
    WatchBatchOut,
    WatchOut,
    WatchRootOut,
)
from photoseek.server.security import COOKIE_NAME, session_cookie_value
from photoseek.server.watching import unique_real

router = APIRouter(tags=["admin"])
PROGRESS_POLL_SECONDS = 0.25
SESSION_MAX_AGE = 30 * 24 * 3600


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: answers without touching the index."""
    return {"status": "ok"}


@router.get("/api/status", response_model=StatusOut)
async def status(backend: BackendDep, config: ConfigDep, jobs: JobsDep, watching: WatchDep) -> StatusOut:
    """What the index holds."""
    info = await backend.read(lambda index: index.status())
    batcher = backend.batcher
    return StatusOut(
        images=info.image_count, roots=info.roots, folders=info.folders, files=info.files, model=info.model_id,
        dim=info.dim, db_bytes=info.db_bytes, failures=len(info.failures), auth=config.token is not None,
        job=jobs.running,
        search_queue=SearchQueueOut(waiting=batcher.queued, limit=batcher.max_queue, batches=batcher.batches,
                                    searches=batcher.batched),
        watching=watching is not None, vector_index=info.vector_index, located=info.located, placed=info.placed,
        vector_search=VectorSearchOut(**asdict(info.vector_search)) if info.vector_search else None,
        models_loaded=backend.runtime.loaded(),
    )


@router.get("/api/watch", response_model=WatchOut)
async def watch_status(watching: WatchDep) -> WatchOut:
    """What the folder watcher (`serve --watch`) has done: its folders, the last batch, totals."""
    if watching is None:
        return WatchOut(enabled=False)
    state = watching.state()
    if state is None:
        return WatchOut(enabled=True, error=watching.error)
    last = state.last_batch
    return WatchOut(
        enabled=True, running=state.running, indexing=state.indexing, pending=state.pending,
        batches=state.batches, totals=state.totals, error=watching.error or state.error,
        roots=[WatchRootOut(path=r.path, online=r.online) for r in state.roots],
        last_batch=None if last is None else WatchBatchOut(
            number=last.number, kind=last.kind, paths=last.paths, finished_at=last.finished_at,
            embedded=last.report.embedded, reused=last.report.reused, removed=last.report.removed,
            skipped=len(last.report.failures), seconds=round(last.report.seconds, 3),
        ),
    )


@router.post("/api/index", response_model=JobOut, status_code=202, responses={400: {"model": ErrorOut}})
async def start_indexing(backend: BackendDep, config: ConfigDep, jobs: JobsDep) -> JobOut:
    """Index the server's folders (--root and those already in the catalog) in the background.

    Returns the running job if one is already under way. Clients cannot name folders.
    """
    recorded = await backend.read(lambda index: index.roots())
    roots = unique_real([*config.roots, *map(Path, recorded)])
    if not roots:
        raise ApiError(
            400, "no_roots", "No folders to index. Start the server with --root ~/Pictures (repeatable)."
        )
    return job_out(jobs.start(roots))


async def existing_job(jobs: JobsDep, job_id: str) -> JobState:
    """The job, or 404 before any response (the event stream cannot fail once started)."""
    job = jobs.get(job_id)
    if job is None:
        raise NotFound(f"No indexing job {job_id!r} (jobs are forgotten when the server restarts).")
    return job


JobDep = Annotated[JobState, Depends(existing_job)]


@router.get("/api/jobs/{job_id}", response_model=JobOut, responses={404: {"model": ErrorOut}})
async def job_status(job: JobDep) -> JobOut:
    """Progress of an indexing job, and its report once finished."""
    return job_out(job)


@router.get("/api/jobs/{job_id}/events", response_class=EventSourceResponse, responses={404: {"model": ErrorOut}})
async def job_events(jobs: JobsDep, job: JobDep, request: Request) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: 'progress' on every change, then one 'done' and the stream ends."""
    seen = -1
    while not await request.is_disconnected():
        job = jobs.get(job.id) or job
        if job.version != seen:
            seen = job.version
            yield ServerSentEvent(data=job_out(job), event="done" if job.finished else "progress", id=str(seen))
        if job.finished:
            return
        await asyncio.sleep(PROGRESS_POLL_SECONDS)


@router.post("/api/session", status_code=204)
async def start_session(config: ConfigDep) -> Response:
    """Given the token in the Authorization header, set the cookie that lets the browser load
    thumbnails and files (which cannot carry headers)."""
    response = Response(status_code=204)
    if config.token:
        response.set_cookie(
            COOKIE_NAME, session_cookie_value(config.token), max_age=SESSION_MAX_AGE,
            httponly=True, samesite="strict", path="/",
        )
    return response


def job_out(job: JobState) -> JobOut:
    report = job.report
    return JobOut(
        id=job.id, state=job.state, roots=list(job.roots), done=job.done, total=job.total, current=job.current,
        started_at=job.started_at, finished_at=job.finished_at, error=job.error,
        report=None if report is None else ReportOut(
            scanned=report.scanned, unchanged=report.unchanged, embedded=report.embedded, reused=report.reused,
            removed=report.removed, seconds=round(report.seconds, 3),
            failed=[FailureOut(path=f.path, reason=f.reason) for f in report.failures],
        ),
    )
