"""Model-made text signals (OCR, captions, object counts) for indexed images that lack them.

A pass of its own after indexing, driven by the catalog rather than the file walk: it finds
every content hash without a signal from the chosen model, so it covers new images and old
ones alike (turning on `--ocr` for a folder indexed yesterday), and a re-run finds nothing to
do. It decodes at a higher resolution than the CLIP path (small print must stay legible), so
the plain indexing path pays nothing when no signal is asked for.

Worker threads read and decode files and run the per-image makers (OCR); the main thread runs
the batched GPU-friendly makers (captioner, detector) on full batches, so both overlap. Each
batch is committed on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from PIL import Image

from imgsearch.errors import UnreadableImageError
from imgsearch.ingest.ahead import ordered_ahead
from imgsearch.ingest.decode import decode_image
from imgsearch.ingest.discover import discover
from imgsearch.ingest.indexer import Progress
from imgsearch.ingest.reading import open_image
from imgsearch.store.catalog import Failure
from imgsearch.store.text import TextStore
from imgsearch.threads import decode_workers

DECODE_SIDE = 1024
"""Shorter side the images are decoded to (at least): enough for OCR of small print and for captioners."""


class TextMaker(Protocol):
    """Anything that turns images into one text each: OCR, a captioner, an object counter."""

    source: str
    """The signal it makes (`ocr`, `caption`, `objects`)."""
    model_id: str
    """What made it; part of the cache key, so a different model or prompt recomputes."""
    in_workers: bool
    """True: called per image from the decode threads. False: called on batches in the main thread."""

    def prepare(self) -> None:
        """Check, in seconds, that the extra and model it needs are there (raises if not)."""

    def describe(self, images: list[Image.Image]) -> list[str]: ...


@dataclass
class EnrichReport:
    """How many texts each source computed in this run, and the images that could not be read."""

    computed: dict[str, int] = field(default_factory=dict)
    failed: list[Failure] = field(default_factory=list)


@dataclass(frozen=True)
class _Job:
    content_hash: str
    path: str
    makers: tuple[TextMaker, ...]


@dataclass(frozen=True)
class _Decoded:
    job: _Job
    image: Image.Image | None
    texts: dict[str, str]
    """source -> text from the makers that already ran (in the worker)."""
    error: str = ""


def enrich(
    texts: TextStore,
    makers: Sequence[TextMaker],
    *,
    batch_size: int = 8,
    workers: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> EnrichReport:
    """Compute the signals `makers` make for every indexed image that lacks them."""
    report = EnrichReport()
    batch_size = _batch_size(makers, batch_size)
    for batch in _describe_in_batches(_jobs(texts, makers), batch_size, workers, report.failed.append, on_progress):
        rows = [(d.job.content_hash, m.source, m.model_id, d.texts[m.source]) for d in batch for m in d.job.makers]
        texts.put_many(rows, keep_empty=True)
        for _, source, _, _ in rows:
            report.computed[source] = report.computed.get(source, 0) + 1
    return report


def caption_files(
    roots: Sequence[Path],
    captioner: TextMaker,
    *,
    batch_size: int = 8,
    workers: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> tuple[list[tuple[str, str]], list[Failure]]:
    """(path, caption) for every image file at or under `roots`, and the files that could not be read."""
    failures: list[Failure] = []
    found = discover(roots, on_error=lambda path, reason: failures.append(Failure(str(path), 0, 0, reason)))
    jobs = [_Job("", str(f.path), (captioner,)) for f in found]
    batch_size = _batch_size([captioner], batch_size)
    pairs = [
        (d.job.path, d.texts[captioner.source])
        for batch in _describe_in_batches(jobs, batch_size, workers, failures.append, on_progress)
        for d in batch
    ]
    return pairs, failures


def _describe_in_batches(
    jobs: list[_Job],
    batch_size: int,
    workers: int | None,
    on_failure: Callable[[Failure], None],
    on_progress: Callable[[Progress], None] | None,
) -> Iterator[list[_Decoded]]:
    """Batches of decoded jobs with every maker's text filled in; unreadable files go to `on_failure`."""
    batch: list[_Decoded] = []
    for done, decoded in enumerate(_decode_all(jobs, workers, batch_size), start=1):
        if decoded.error:
            on_failure(Failure(decoded.job.path, 0, 0, decoded.error))
        else:
            batch.append(decoded)
        if len(batch) >= batch_size:
            yield _run_batched(batch)
            batch = []
        if on_progress:
            on_progress(Progress(done, len(jobs), decoded.job.path))
    if batch:
        yield _run_batched(batch)


def _batch_size(makers: Sequence[TextMaker], asked: int) -> int:
    """`asked`, or more when a batched maker wants bigger batches (an API captioner keeping its workers busy)."""
    return max([asked, *(getattr(m, "batch_size", 0) for m in makers if not m.in_workers)])


def _jobs(texts: TextStore, makers: Sequence[TextMaker]) -> list[_Job]:
    """One job per content hash that lacks a signal from at least one maker."""
    wanted: dict[str, tuple[str, list[TextMaker]]] = {}
    for maker in makers:
        for content_hash, path in texts.hashes_missing(maker.source, maker.model_id):
            wanted.setdefault(content_hash, (path, []))[1].append(maker)
    return [_Job(h, path, tuple(found)) for h, (path, found) in sorted(wanted.items(), key=lambda kv: kv[1][0])]


def _decode_all(jobs: list[_Job], workers: int | None, batch_size: int) -> Iterator[_Decoded]:
    """Decoded jobs in order, from a thread pool that runs a few batches ahead."""
    workers = workers or decode_workers()
    yield from ordered_ahead(_decode_one, jobs, workers=workers, window=max(2 * batch_size, 4 * workers), name="enrich")


def _decode_one(job: _Job) -> _Decoded:
    """Read and decode one file and run the per-image makers on it (in a worker thread)."""
    try:
        with open_image(Path(job.path)) as opened:
            if job.content_hash and opened.content_hash != job.content_hash:
                return _Decoded(job, None, {}, "the file changed since it was indexed; run index again")
            image = decode_image(opened.source(), min_side=DECODE_SIDE).image
    except UnreadableImageError as exc:
        return _Decoded(job, None, {}, str(exc))
    return _Decoded(job, image, {m.source: m.describe([image])[0] for m in job.makers if m.in_workers})


def _run_batched(batch: list[_Decoded]) -> list[_Decoded]:
    """Run the batched makers (captioner, detector) over the images of this batch that need them."""
    batched = {id(m): m for d in batch for m in d.job.makers if not m.in_workers}
    for maker in batched.values():
        needing = [d for d in batch if maker in d.job.makers]
        for decoded, text in zip(needing, maker.describe([d.image for d in needing])):
            decoded.texts[maker.source] = text
    return batch
