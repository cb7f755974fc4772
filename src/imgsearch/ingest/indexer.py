"""Bring the catalog up to date with the files under some folders.

Worker threads read, hash, decode and preprocess files while the main thread runs the
model on full batches, so decoding overlaps inference. Unchanged files (same size and
mtime) are never opened; a file whose content the catalog already holds (moved or
copied) reuses its embedding. Each inference batch is committed on its own, so an
interrupted run keeps everything finished before it stopped.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from imgsearch.errors import UnreadableImageError
from imgsearch.ingest.ahead import ordered_ahead
from imgsearch.ingest.decode import DecodedImage, decode_image
from imgsearch.ingest.discover import FoundFile, discover
from imgsearch.store.catalog import Catalog, Failure, FileState, NewImage, TextSignal
from imgsearch.text.metadata import MODEL as METADATA_MODEL
from imgsearch.text.metadata import read_metadata, sidecars
from imgsearch.threads import decode_workers

DRAFT_FACTOR = 2
"""JPEGs are DCT-decoded to at least this multiple of the model input side."""


class ImageEncoder(Protocol):
    """The part of a CLIP model the indexer needs."""

    model_id: str
    dim: int
    image_size: int

    def preprocess(self, image: object) -> np.ndarray: ...

    def encode_pixels(self, batch: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Progress:
    """Handed to the progress callback after each file is settled."""

    done: int
    total: int
    path: str


@dataclass
class IndexReport:
    """What a run did; `failures` lists every file skipped in this run with its reason."""

    scanned: int = 0
    unchanged: int = 0
    embedded: int = 0
    reused: int = 0
    removed: int = 0
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    signals: dict[str, int] = field(default_factory=dict)
    """Model-made text signals computed in this run, per source (`ocr`, `caption`, `objects`)."""

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Prepared:
    found: FoundFile
    content_hash: str
    decoded: DecodedImage
    pixels: np.ndarray
    texts: tuple[TextSignal, ...]


@dataclass(frozen=True)
class _Reused:
    found: FoundFile
    new_image: NewImage


@dataclass(frozen=True)
class _Failed:
    found: FoundFile
    reason: str


_Outcome = _Prepared | _Reused | _Failed


def index_folders(
    catalog: Catalog,
    model: ImageEncoder,
    roots: Sequence[Path],
    *,
    batch_size: int = 32,
    workers: int | None = None,
    include_hidden: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
) -> IndexReport:
    """Index or refresh `roots` in the catalog, with `model` embedding new content."""
    started = time.perf_counter()
    report = IndexReport()
    roots = [Path(os.path.realpath(Path(root).expanduser())) for root in roots]
    if catalog.model_id != model.model_id:
        catalog.bind_model(model.model_id, model.dim)
    walk_errors: list[Failure] = []
    found = list(
        discover(
            roots,
            include_hidden=include_hidden,
            on_error=lambda path, reason: walk_errors.append(Failure(str(path), 0, 0, reason)),
        )
    )
    catalog.add_roots(roots)
    report.scanned = len(found)
    known = catalog.file_states(roots)
    todo = [f for f in found if _needs_work(f, known.get(str(f.path)))]
    report.unchanged = len(found) - len(todo)
    removed = _vanished(known, found, walk_errors)

    writer = _BatchWriter(catalog, model, batch_size, report)
    try:
        for done, outcome in enumerate(
            _prepare_all(catalog.path, model, todo, workers, batch_size), start=1
        ):
            writer.add(outcome)
            if on_progress:
                on_progress(Progress(done, len(todo), str(outcome.found.path)))
        writer.flush(extra_failures=walk_errors, removed=removed)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        report.seconds = time.perf_counter() - started
    report.removed = 0 if report.interrupted else len(removed)
    return report


def _needs_work(found: FoundFile, known: FileState | None) -> bool:
    """New, changed, or with an `.xmp` sidecar edited since the file was last indexed."""
    if known is None or (known.size, known.mtime_ns) != (found.size, found.mtime_ns):
        return True
    return not known.failed and any(_mtime(s) > known.indexed_at for s in sidecars(found.path))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _vanished(
    known: dict[str, FileState], found: list[FoundFile], walk_errors: list[Failure]
) -> list[str]:
    """Known paths no longer on disk, except at or below places that could not be read."""
    present = {str(f.path) for f in found} | {f.path for f in walk_errors}
    unreadable = tuple(f.path.rstrip("/") + "/" for f in walk_errors)
    return [
        path for path in known
        if path not in present and not (unreadable and path.startswith(unreadable))
    ]


class _BatchWriter:
    """Collects outcomes, runs the model on full batches and commits each batch."""

    def __init__(self, catalog: Catalog, model: ImageEncoder, batch_size: int, report: IndexReport):
        self.catalog = catalog
        self.model = model
        self.batch_size = batch_size
        self.report = report
        self.prepared: list[_Prepared] = []
        self.ready: list[NewImage] = []
        self.failures: list[Failure] = []

    def add(self, outcome: _Outcome) -> None:
        if isinstance(outcome, _Prepared):
            self.prepared.append(outcome)
        elif isinstance(outcome, _Reused):
            self.ready.append(outcome.new_image)
            self.report.reused += 1
        else:
            self.failures.append(_failure(outcome.found, outcome.reason))
        if len(self.prepared) >= self.batch_size:
            self.flush()

    def flush(self, extra_failures: Sequence[Failure] = (), removed: Sequence[str] = ()) -> None:
        images = self.ready + self._embed(self.prepared)
        failures = self.failures + list(extra_failures)
        self.catalog.write_batch(images, failures, removed)
        self.report.failures.extend(failures)
        self.prepared, self.ready, self.failures = [], [], []

    def _embed(self, prepared: list[_Prepared]) -> list[NewImage]:
        if not prepared:
            return []
        embeddings = self.model.encode_pixels(np.stack([p.pixels for p in prepared]))
        self.report.embedded += len(prepared)
        return [_new_image(p, e) for p, e in zip(prepared, embeddings)]


def _prepare_all(
    db_path: Path,
    model: ImageEncoder,
    files: list[FoundFile],
    workers: int | None,
    batch_size: int,
) -> Iterator[_Outcome]:
    """Outcomes in file order, computed by a thread pool that runs a few batches ahead."""
    lookup = _HashLookup(db_path)
    workers = workers or decode_workers()
    try:
        yield from ordered_ahead(
            lambda found: _prepare_one(found, model, lookup), files,
            workers=workers, window=max(2 * batch_size, 4 * workers), name="decode",
        )
    finally:
        lookup.close()


def _prepare_one(found: FoundFile, model: ImageEncoder, lookup: _HashLookup) -> _Outcome:
    try:
        data = found.path.read_bytes()
    except OSError as exc:
        return _Failed(found, f"cannot read file: {exc.strerror or exc}")
    content_hash = hashlib.blake2b(data, digest_size=16).hexdigest()
    known = lookup.find(content_hash)
    if known is not None:  # the same picture, but this copy may have its own sidecar
        return _Reused(found, _copy_known(found, content_hash, known, _metadata_signals(data, found.path)))
    try:
        decoded = decode_image(data, min_side=DRAFT_FACTOR * model.image_size)
        pixels = model.preprocess(decoded.image)
    except UnreadableImageError as exc:
        return _Failed(found, str(exc))
    return _Prepared(found, content_hash, decoded, pixels, _metadata_signals(data, found.path))


def _metadata_signals(data: bytes, path: Path) -> tuple[TextSignal, ...]:
    """Descriptions and keywords written into the file or its sidecar (a header parse, no decode)."""
    text = read_metadata(data, path)
    return (TextSignal("metadata", METADATA_MODEL, text),) if text else ()


class _HashLookup:
    """Per-thread read-only catalog connections for content-hash look-ups."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.local = threading.local()
        self.opened: list[Catalog] = []
        self.lock = threading.Lock()

    def find(self, content_hash: str) -> tuple | None:
        catalog = getattr(self.local, "catalog", None)
        if catalog is None:
            catalog = Catalog(self.db_path, readonly=True)
            self.local.catalog = catalog
            with self.lock:
                self.opened.append(catalog)
        return catalog.embedding_for_hash(content_hash)

    def close(self) -> None:
        with self.lock:
            for catalog in self.opened:
                catalog.close()
            self.opened.clear()


def _copy_known(found: FoundFile, content_hash: str, known: tuple, texts: tuple[TextSignal, ...]) -> NewImage:
    record, embedding = known
    return NewImage(
        path=str(found.path), size=found.size, mtime_ns=found.mtime_ns,
        content_hash=content_hash, width=record.width, height=record.height,
        format=record.format, taken_at=record.taken_at, camera=record.camera,
        embedding=embedding, texts=texts,
    )


def _new_image(prepared: _Prepared, embedding: np.ndarray) -> NewImage:
    found, decoded = prepared.found, prepared.decoded
    return NewImage(
        path=str(found.path), size=found.size, mtime_ns=found.mtime_ns,
        content_hash=prepared.content_hash, width=decoded.width, height=decoded.height,
        format=decoded.format, taken_at=decoded.taken_at, camera=decoded.camera,
        embedding=embedding, texts=prepared.texts,
    )


def _failure(found: FoundFile, reason: str) -> Failure:
    return Failure(str(found.path), found.size, found.mtime_ns, reason)
