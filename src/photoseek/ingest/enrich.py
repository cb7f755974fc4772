"""Model-made text signals (OCR, captions, object counts) for indexed images that lack them.

A pass of its own after indexing, driven by the catalog rather than the file walk: it finds
every content hash without a signal from the chosen model, so it covers new images and old
ones alike (turning on `--ocr` for a folder indexed yesterday), and a re-run finds nothing to
do. It decodes at a higher resolution than the CLIP path (small print must stay legible), so
the plain indexing path pays nothing when no signal is asked for.

Worker threads read and decode files and run the per-image makers (OCR); the main thread runs
the batched GPU-friendly makers (captioner, detector) on full batches, so both overlap. Or a
`SignalSource` (a Ray cluster) describes the images elsewhere and only the texts come back. Each
batch is committed on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from PIL import Image

from photoseek.errors import UnreadableImageError
from photoseek.ingest.ahead import ordered_ahead
from photoseek.ingest.decode import decode_image
from photoseek.ingest.discover import discover
from photoseek.ingest.indexer import Progress
from photoseek.ingest.reading import OpenedImage, open_image
from photoseek.store.catalog import Failure
from photoseek.store.text import TextStore
from photoseek.threads import decode_workers

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

    def unload(self) -> bool:
        """Release its loaded model (or client); the next `describe` loads it again."""


@dataclass
class EnrichReport:
    """How many texts each source computed in this run, and the images that could not be read."""

    computed: dict[str, int] = field(default_factory=dict)
    failed: list[Failure] = field(default_factory=list)


@dataclass(frozen=True)
class SignalJob:
    """One indexed image content (at `path`) and the makers whose signal it lacks."""

    content_hash: str
    path: str
    makers: tuple[TextMaker, ...]


@dataclass
class Described:
    """A job with each maker's text (source -> text), or the reason its file could not be read."""

    job: SignalJob
    texts: dict[str, str]
    error: str = ""
    image: Image.Image | None = None
    """Held here only until the batched makers have run on it."""


class SignalSource(Protocol):
    """Somewhere else that describes images (a cluster): which makers it takes, and their results."""

    def runs(self, maker: TextMaker) -> bool: ...

    def __call__(self, jobs: list[SignalJob]) -> Iterator[Described]:
        """One `Described` per job, in any order, as they finish."""


def enrich(
    texts: TextStore,
    makers: Sequence[TextMaker],
    *,
    batch_size: int = 8,
    workers: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    elsewhere: SignalSource | None = None,
    under: Sequence[Path] | None = None,
) -> EnrichReport:
    """Compute the signals `makers` make for the indexed images that lack them: those at or below
    `under` (real paths), or every one when it is None (a paid captioning API is asked only about the
    folders named). The makers that `elsewhere` runs (a cluster) are run there, the others here."""
    report = EnrichReport()
    there = [m for m in makers if elsewhere is not None and elsewhere.runs(m)]
    here = [m for m in makers if m not in there]
    for group, source in ((there, elsewhere), (here, None)):
        if group:
            jobs = _jobs(texts, group, under)
            _enrich_pass(texts, jobs, source, _batch_size(group, batch_size), workers, report, on_progress)
    return report


def _enrich_pass(
    texts: TextStore,
    jobs: list[SignalJob],
    source: SignalSource | None,
    batch_size: int,
    workers: int | None,
    report: EnrichReport,
    on_progress: Callable[[Progress], None] | None,
) -> None:
    described = source(jobs) if source is not None else _describe_here(jobs, batch_size, workers)
    for batch in _batches(described, len(jobs), batch_size, report.failed.append, on_progress):
        rows = [(d.job.content_hash, m.source, m.model_id, d.texts[m.source]) for d in batch for m in d.job.makers]
        texts.put_many(rows, keep_empty=True)
        for _, made, _, _ in rows:
            report.computed[made] = report.computed.get(made, 0) + 1


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
    jobs = [SignalJob("", str(f.path), (captioner,)) for f in found]
    batch_size = _batch_size([captioner], batch_size)
    described = _describe_here(jobs, batch_size, workers)
    pairs = [
        (d.job.path, d.texts[captioner.source])
        for batch in _batches(described, len(jobs), batch_size, failures.append, on_progress)
        for d in batch
    ]
    return pairs, failures


def signal_image(path: Path, content_hash: str = "", data: bytes | None = None) -> Image.Image:
    """The picture every maker sees, decoded at `DECODE_SIDE` from the file or its `data` (already
    checked against `content_hash`); raises UnreadableImageError with the reason."""
    if data is not None:
        return decode_image(data, min_side=DECODE_SIDE).image
    with open_image(path) as opened:
        _check_unchanged(opened, content_hash)
        return decode_image(opened.source(), min_side=DECODE_SIDE).image


def signal_bytes(path: Path, content_hash: str) -> bytes:
    """The file's bytes for `signal_image` elsewhere, checked against `content_hash`."""
    with open_image(path) as opened:
        _check_unchanged(opened, content_hash)
        return opened.data if opened.data is not None else path.read_bytes()


def _check_unchanged(opened: OpenedImage, content_hash: str) -> None:
    if content_hash and opened.content_hash != content_hash:
        raise UnreadableImageError("the file changed since it was indexed; run index again")


def _describe_here(jobs: list[SignalJob], batch_size: int, workers: int | None) -> Iterator[Described]:
    """Jobs described on this machine: decoded (and OCR'd) by worker threads, then batched makers."""
    batch: list[Described] = []
    for described in _decode_all(jobs, workers, batch_size):
        if described.error:
            yield described
            continue
        batch.append(described)
        if len(batch) >= batch_size:
            yield from _run_batched(batch)
            batch = []
    yield from _run_batched(batch)


def _batches(
    described: Iterator[Described],
    total: int,
    batch_size: int,
    on_failure: Callable[[Failure], None],
    on_progress: Callable[[Progress], None] | None,
) -> Iterator[list[Described]]:
    """Described jobs in batches to commit; unreadable files go to `on_failure`."""
    batch: list[Described] = []
    for done, item in enumerate(described, start=1):
        if item.error:
            on_failure(Failure(item.job.path, 0, 0, item.error))
        else:
            batch.append(item)
        if len(batch) >= batch_size:
            yield batch
            batch = []
        if on_progress:
            on_progress(Progress(done, total, item.job.path))
    if batch:
        yield batch


def _batch_size(makers: Sequence[TextMaker], asked: int) -> int:
    """`asked`, or more when a batched maker wants bigger batches (an API captioner keeping its workers busy)."""
    return max([asked, *(getattr(m, "batch_size", 0) for m in makers if not m.in_workers)])


def _jobs(texts: TextStore, makers: Sequence[TextMaker], under: Sequence[Path] | None) -> list[SignalJob]:
    """One job per content hash (at or below `under`) that lacks a signal from at least one maker."""
    wanted: dict[str, tuple[str, list[TextMaker]]] = {}
    for maker in makers:
        for content_hash, path in texts.hashes_missing(maker.source, maker.model_id, under):
            wanted.setdefault(content_hash, (path, []))[1].append(maker)
    return [SignalJob(h, path, tuple(found)) for h, (path, found) in sorted(wanted.items(), key=lambda kv: kv[1][0])]


def _decode_all(jobs: list[SignalJob], workers: int | None, batch_size: int) -> Iterator[Described]:
    """Decoded jobs in order, from a thread pool that runs a few batches ahead."""
    workers = workers or decode_workers()
    yield from ordered_ahead(_decode_one, jobs, workers=workers, window=max(2 * batch_size, 4 * workers), name="enrich")


def _decode_one(job: SignalJob) -> Described:
    """Read and decode one file and run the per-image makers on it (in a worker thread)."""
    try:
        image = signal_image(Path(job.path), job.content_hash)
    except UnreadableImageError as exc:
        return Described(job, {}, str(exc))
    return Described(job, {m.source: m.describe([image])[0] for m in job.makers if m.in_workers}, image=image)


def _run_batched(batch: list[Described]) -> list[Described]:
    """Run the batched makers (captioner, detector) over the images of this batch that need them."""
    batched = {id(m): m for d in batch for m in d.job.makers if not m.in_workers}
    for maker in batched.values():
        needing = [(d, d.image) for d in batch if maker in d.job.makers and d.image is not None]  # all decoded
        for (described, _), text in zip(needing, maker.describe([image for _, image in needing])):
            described.texts[maker.source] = text
    for described in batch:
        described.image = None  # the batch's pixels are freed once it is described
    return batch
