"""Bring the catalog up to date with the files under some folders.

Worker threads read, hash, decode and preprocess files while the main thread runs the
model on full batches, so decoding overlaps inference. Unchanged files (same size and
mtime) are never opened; a file whose content the catalog already holds (moved or
copied) reuses its embedding. Each inference batch is committed on its own, so an
interrupted run keeps everything finished before it stopped.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from photoseek.errors import UnreadableImageError
from photoseek.imaging.hashing import HASH_VERSION, perceptual_hash, to_signed
from photoseek.ingest.ahead import ordered_ahead
from photoseek.ingest.decode import DecodedImage, decode_image
from photoseek.ingest.discover import FoundFile, discover
from photoseek.ingest.reading import open_image, read_sidecar
from photoseek.store.catalog import METADATA_SOURCE, Catalog, Failure, FileState, ImageRecord, NewImage, TextSignal
from photoseek.text.metadata import MODEL as METADATA_MODEL
from photoseek.text.metadata import FileFacts, read_facts, sidecars
from photoseek.threads import decode_workers

if TYPE_CHECKING:
    from PIL import Image

DRAFT_FACTOR = 2
"""JPEGs are DCT-decoded to at least this multiple of the model input side."""
CLOCK_SLACK_S = 0.02
"""File systems stamp a change with a clock that lags `time.time()` by up to a kernel tick (10 ms at
most): a sidecar edited just after it was read may carry a time a little before the read's."""


class ImagePreparer(Protocol):
    """The part of a CLIP model that turns a decoded picture into its input (no ONNX session needed)."""

    @property
    def image_size(self) -> int: ...

    def preprocess(self, image: Image.Image) -> np.ndarray: ...


class ImageEncoder(ImagePreparer, Protocol):
    """The part of a CLIP model the indexer needs (read-only, as `ClipModel` has them)."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

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
    empty_roots: list[str] = field(default_factory=list)
    """Roots found empty although the catalog holds images below them (unmounted?): those were kept."""
    linked: list[str] = field(default_factory=list)
    """Files found through a link that leads outside the roots, by their real path (as the catalog
    stores them): with the roots, where this run's images are."""

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Prepared:
    """Decoded and preprocessed, waiting for the model."""

    found: FoundFile
    content_hash: str
    decoded: DecodedImage
    pixels: np.ndarray
    facts: FileFacts
    phash: int
    read_at: float | None = None
    """When the file and its sidecars were read (see `NewImage.read_at`)."""


@dataclass(frozen=True)
class Embedded:
    """Embedded elsewhere (on a cluster), ready to be written."""

    found: FoundFile
    new_image: NewImage


@dataclass(frozen=True)
class Reused:
    found: FoundFile
    new_image: NewImage


@dataclass(frozen=True)
class Hashed:
    """An unchanged image indexed before perceptual hashes existed, now hashed."""

    found: FoundFile
    phash: int | None


@dataclass(frozen=True)
class Failed:
    found: FoundFile
    reason: str


Outcome = Prepared | Embedded | Reused | Hashed | Failed
OnSkip = Callable[[Path, str], None]
"""Hears of a sidecar that could not be read: its path and why (reported, not kept as a failure)."""
OutcomeSource = Callable[[list[FoundFile], set[str], OnSkip], Iterator[Outcome]]
"""Turns the files that need work (and the paths among them that only need a perceptual hash) into
outcomes, naming the sidecars it could not read to the `OnSkip`: local threads by default, or a cluster."""


def index_folders(
    catalog: Catalog,
    model: ImageEncoder,
    roots: Sequence[Path],
    *,
    batch_size: int = 32,
    workers: int | None = None,
    include_hidden: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    outcomes: OutcomeSource | None = None,
) -> IndexReport:
    """Index or refresh `roots` in the catalog, with `model` embedding new content.

    Discovery, change detection and the batch commits always run here; `outcomes` only
    changes who reads, decodes and embeds the files that need work. A root that is an empty
    folder while the catalog holds images below it keeps them: an unmounted disk leaves an
    empty mount point, and that must not empty the catalog.
    """
    started = time.perf_counter()
    roots = [_real(root) for root in roots]
    walk_errors: list[Failure] = []
    found = list(discover(roots, include_hidden=include_hidden, on_error=_collect(walk_errors)))
    catalog.add_roots(roots)
    catalog.expire_perceptual_hashes(HASH_VERSION)
    known = _known_states(catalog, roots, found)
    empty = [str(root) for root in roots if _holds_images_but_is_empty(root, known)]
    run = _Run(catalog, model, batch_size, workers, on_progress, started, outcomes)
    run.report.empty_roots = empty
    run.report.linked = [str(path) for path in _outside(roots, found)]
    return run.index(found, known, walk_errors, keep_below=empty)


def index_paths(
    catalog: Catalog,
    model: ImageEncoder,
    paths: Sequence[Path],
    *,
    batch_size: int = 32,
    workers: int | None = None,
    include_hidden: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
) -> IndexReport:
    """Bring only `paths` up to date: files or folders that appeared, changed or vanished.

    What a watcher calls with the paths its events named, instead of walking whole roots. A
    folder is walked in full; a path that no longer exists drops what the catalog holds at or
    below it. A moved file reuses its embedding if its old path is dropped in the same call or later.
    """
    started = time.perf_counter()
    paths = _outermost([_real(path) for path in paths])
    catalog.expire_perceptual_hashes(HASH_VERSION)  # as index_folders does: the hashes it writes are this version
    walk_errors: list[Failure] = []
    found: list[FoundFile] = []
    for path in paths:
        try:
            found.extend(discover([path], include_hidden=include_hidden, on_error=_collect(walk_errors)))
        except (FileNotFoundError, NotADirectoryError):
            continue  # gone (its rows are dropped below) or not an image file
    known = _known_states(catalog, paths, found)
    run = _Run(catalog, model, batch_size, workers, on_progress, started)
    run.report.linked = [str(path) for path in _outside(paths, found)]
    return run.index(found, known, walk_errors)


def _known_states(catalog: Catalog, roots: Sequence[Path], found: list[FoundFile]) -> dict[str, FileState]:
    """What the catalog knows below the roots, and of the files found through a link that leads
    outside them (the catalog stores a file's real path), so an unchanged linked file is skipped
    like any other instead of being read and hashed again on every run."""
    known = catalog.file_states(roots)
    outside = [path for path in _outside(roots, found) if str(path) not in known]
    if outside:
        known.update(catalog.file_states(outside))
    return known


def _outside(roots: Sequence[Path], found: list[FoundFile]) -> list[Path]:
    """The files found through a link that leads outside the roots."""
    prefixes = tuple(f"{str(root).rstrip('/')}/" for root in roots)
    return [f.path for f in found if f.path not in roots and not str(f.path).startswith(prefixes)]


class _Run:
    """One indexing run over files already found: embed what changed, drop what vanished."""

    def __init__(
        self,
        catalog: Catalog,
        model: ImageEncoder,
        batch_size: int,
        workers: int | None,
        on_progress: Callable[[Progress], None] | None,
        started: float,
        outcomes: OutcomeSource | None = None,
    ) -> None:
        self.catalog, self.model = catalog, model
        self.batch_size, self.workers, self.on_progress = batch_size, workers, on_progress
        self.started = started
        self.outcomes = outcomes or self._prepare_here
        self.report = IndexReport()
        self.skipped_sidecars: list[Failure] = []
        """Sidecars that could not be read: reported, but not failures the catalog keeps (the image is fine)."""

    def index(
        self,
        found: list[FoundFile],
        known: dict[str, FileState],
        walk_errors: list[Failure],
        keep_below: Sequence[str] = (),
    ) -> IndexReport:
        catalog, model, report = self.catalog, self.model, self.report
        if catalog.model_id != model.model_id:
            catalog.bind_model(model.model_id, model.dim)
        report.scanned = len(found)
        todo = [f for f in found if _needs_work(f, known.get(str(f.path)))]
        report.unchanged = len(found) - len(todo)
        hash_only = {str(f.path) for f in found if _needs_hash_only(f, known.get(str(f.path)))}
        todo += [f for f in found if str(f.path) in hash_only]
        removed = _vanished(known, found, [*(f.path for f in walk_errors), *keep_below])
        new_skips = [f for f in walk_errors if not (f.path in known and known[f.path].failed)]
        writer = _BatchWriter(catalog, model, self.batch_size, report, leaving=set(removed))
        try:
            outcomes = self.outcomes(todo, hash_only, _collect(self.skipped_sidecars))
            for done, outcome in enumerate(outcomes, start=1):
                writer.add(outcome)
                if self.on_progress:
                    self.on_progress(Progress(done, len(todo), str(outcome.found.path)))
            writer.flush(extra_failures=new_skips, removed=removed)
        except KeyboardInterrupt:
            report.interrupted = True
        finally:
            reported = {failure.path for failure in report.failures}  # a FIFO sidecar was met by the walk too
            report.failures.extend(f for f in self.skipped_sidecars if f.path not in reported)
            report.seconds = time.perf_counter() - self.started
        report.removed = 0 if report.interrupted else len(removed)
        return report

    def _prepare_here(self, files: list[FoundFile], hash_only: set[str], on_skip: OnSkip) -> Iterator[Outcome]:
        """The default `OutcomeSource`: this machine's decode threads."""
        return _prepare_all(self.catalog.path, self.model, files, self.workers, self.batch_size, hash_only, on_skip)


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def _collect(errors: list[Failure]) -> Callable[[Path, str], None]:
    return lambda path, reason: errors.append(Failure(str(path), 0, 0, reason))


def _outermost(paths: list[Path]) -> list[Path]:
    """The paths without those inside another one of them (each folder is walked once)."""
    kept: list[Path] = []
    for path in sorted(set(paths)):
        if not (kept and path.is_relative_to(kept[-1])):
            kept.append(path)
    return kept


def _holds_images_but_is_empty(root: Path, known: dict[str, FileState]) -> bool:
    """An empty folder (an unmounted disk's mount point?) below which the catalog holds images."""
    if not root.is_dir() or not any(not state.failed and path.startswith(f"{root}/") for path, state in known.items()):
        return False
    try:
        with os.scandir(root) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def _needs_work(found: FoundFile, known: FileState | None) -> bool:
    """New, changed, read by an older metadata reader, or with an `.xmp` sidecar edited since the
    file was last indexed."""
    if known is None or (known.size, known.mtime_ns) != (found.size, found.mtime_ns):
        return True
    return not known.failed and (
        known.metadata_stale
        or any(_mtime(s) > known.indexed_at - CLOCK_SLACK_S for s in sidecars(found.path))
    )


def _needs_hash_only(found: FoundFile, known: FileState | None) -> bool:
    """Unchanged and indexed, but from before perceptual hashes were stored."""
    return known is not None and known.unhashed and not _needs_work(found, known)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _vanished(known: dict[str, FileState], found: list[FoundFile], keep_below: Sequence[str]) -> list[str]:
    """Known paths no longer on disk, except at or below places that could not be read (`keep_below`)."""
    present = {str(f.path) for f in found} | set(keep_below)
    kept = tuple(path.rstrip("/") + "/" for path in keep_below)
    return [path for path in known if path not in present and not (kept and path.startswith(kept))]


class _BatchWriter:
    """Collects outcomes, runs the model on full batches and commits each batch."""

    def __init__(
        self, catalog: Catalog, model: ImageEncoder, batch_size: int, report: IndexReport, leaving: set[str],
    ) -> None:
        self.catalog = catalog
        self.leaving = leaving
        """Paths the run drops at its end: a copy there no longer keeps another copy's metadata text."""
        self.model = model
        self.batch_size = batch_size
        self.report = report
        self.prepared: list[Prepared] = []
        self.ready: list[NewImage] = []
        self.failures: list[Failure] = []
        self.phashes: list[tuple[str, int]] = []
        self.embedded_ready = 0

    def add(self, outcome: Outcome) -> None:
        if isinstance(outcome, Prepared):
            self.prepared.append(outcome)
        elif isinstance(outcome, Embedded):
            self.ready.append(outcome.new_image)
            self.embedded_ready += 1
        elif isinstance(outcome, Reused):
            self.ready.append(outcome.new_image)
            self.report.reused += 1
        elif isinstance(outcome, Hashed):
            if outcome.phash is not None:
                self.phashes.append((str(outcome.found.path), outcome.phash))
        else:
            self.failures.append(_failure(outcome.found, outcome.reason))
        if len(self.prepared) + self.embedded_ready >= self.batch_size or len(self.phashes) >= 8 * self.batch_size:
            self.flush()

    def flush(self, extra_failures: Sequence[Failure] = (), removed: Sequence[str] = ()) -> None:
        images = self.ready + self._embed(self.prepared)
        failures = self.failures + list(extra_failures)
        refused = self.catalog.write_batch(images, failures, removed, self.phashes, leaving=self.leaving)
        self.report.embedded += self.embedded_ready
        self.report.failures.extend(failures + refused)
        self.prepared, self.ready, self.failures, self.phashes = [], [], [], []
        self.embedded_ready = 0

    def _embed(self, prepared: list[Prepared]) -> list[NewImage]:
        if not prepared:
            return []
        embeddings = self.model.encode_pixels(np.stack([p.pixels for p in prepared]))
        self.report.embedded += len(prepared)
        return [new_image(p, e) for p, e in zip(prepared, embeddings)]


def _prepare_all(
    db_path: Path,
    model: ImageEncoder,
    files: list[FoundFile],
    workers: int | None,
    batch_size: int,
    hash_only: set[str],
    on_skip: OnSkip | None = None,
) -> Iterator[Outcome]:
    """Outcomes in file order, computed by a thread pool that runs a few batches ahead."""
    lookup = _HashLookup(db_path)
    workers = workers or decode_workers()
    try:
        yield from ordered_ahead(
            lambda found: _prepare_one(found, model, lookup, str(found.path) in hash_only, on_skip), files,
            workers=workers, window=max(2 * batch_size, 4 * workers), name="decode",
        )
    finally:
        lookup.close()


def _prepare_one(
    found: FoundFile, model: ImagePreparer, lookup: _HashLookup, hash_only: bool,
    on_skip: OnSkip | None = None,
) -> Outcome:
    """Read, hash and decode one file (in a worker thread); any problem becomes a `Failed` with its
    reason. `hash_only`: an unchanged image that only lacks its perceptual hash. `on_skip` hears of
    sidecars that could not be read."""
    min_side = DRAFT_FACTOR * model.image_size
    read_at = time.time()  # before the sidecars are read: an edit made after it is newer
    try:
        with open_image(found.path) as opened:
            if hash_only:
                return Hashed(found, _phash(decode_image(opened.source(), min_side=min_side)))
            facts = read_file_facts(opened.head, found.path, on_skip)
            known = lookup.find(opened.content_hash)
            if known is not None:  # the same picture, but this copy may have its own sidecar
                record, embedding, phash = known
                if phash is None:
                    phash = _phash(decode_image(opened.source(), min_side=min_side))
                return Reused(found, copy_known(found, opened.content_hash, record, embedding, phash, facts, read_at))
            decoded = decode_image(opened.source(), min_side=min_side)
        pixels = model.preprocess(decoded.image)
    except UnreadableImageError as exc:
        return Hashed(found, None) if hash_only else Failed(found, str(exc))
    return Prepared(found, opened.content_hash, decoded, pixels, facts, _phash(decoded), read_at)


def prepare_file(
    found: FoundFile, model: ImagePreparer, shipped: tuple[bytes, str] | None = None, on_skip: OnSkip | None = None,
) -> Prepared | Failed:
    """Open, hash, decode and preprocess one file with no catalog at hand (on a cluster worker);
    `shipped`: the file's bytes and content hash, sent by the driver instead of read here. `on_skip`
    hears of sidecars that could not be read."""
    min_side = DRAFT_FACTOR * model.image_size
    try:
        if shipped is not None:
            data, content_hash = shipped
            facts = read_file_facts(data, found.path, on_skip)
            decoded = decode_image(data, min_side=min_side)
        else:
            with open_image(found.path) as opened:
                content_hash, facts = opened.content_hash, read_file_facts(opened.head, found.path, on_skip)
                decoded = decode_image(opened.source(), min_side=min_side)
        pixels = model.preprocess(decoded.image)
    except UnreadableImageError as exc:
        return Failed(found, str(exc))
    return Prepared(found, content_hash, decoded, pixels, facts, _phash(decoded))


def _phash(decoded: DecodedImage) -> int:
    """The perceptual hash of the decoded, upright picture, as the catalog stores it."""
    return to_signed(perceptual_hash(decoded.image))


def metadata_signals(facts: FileFacts) -> tuple[TextSignal, ...]:
    """The descriptions and keywords written into the file or its sidecar, as a text signal."""
    return (TextSignal(METADATA_SOURCE, METADATA_MODEL, facts.text),) if facts.text else ()


def fact_fields(facts: FileFacts) -> dict[str, object]:
    """The NewImage fields that come from the file's metadata."""
    place = facts.location
    return {
        "texts": metadata_signals(facts), "rating": facts.rating, "label": facts.label,
        "latitude": place.latitude if place else None, "longitude": place.longitude if place else None,
    }


def read_file_facts(
    data: bytes, path: Path, on_skip: OnSkip | None = None
) -> FileFacts:
    """What the file (`data`: its first bytes) and its sidecars say (a header parse, no decode).

    A sidecar that is not a regular file, or is too large, is skipped and named to `on_skip` with the reason.
    """
    return read_facts(data, _sidecar_data(path, on_skip))


def _sidecar_data(path: Path, on_skip: OnSkip | None) -> list[bytes]:
    found = []
    for sidecar in sidecars(path):
        try:
            found.append(read_sidecar(sidecar))
        except UnreadableImageError as exc:
            if on_skip is not None:
                on_skip(sidecar, f"sidecar skipped: {exc}")
    return found


class _HashLookup:
    """Per-thread read-only catalog connections for content-hash look-ups."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.local = threading.local()
        self.opened: list[Catalog] = []
        self.lock = threading.Lock()

    def find(self, content_hash: str) -> tuple[ImageRecord, np.ndarray, int | None] | None:
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


def copy_known(
    found: FoundFile, content_hash: str, record: ImageRecord, embedding: np.ndarray, phash: int,
    facts: FileFacts, read_at: float | None = None,
) -> NewImage:
    """A file whose content is indexed already: its record and embedding, this copy's own metadata
    (read at `read_at`)."""
    return NewImage(
        path=str(found.path), size=found.size, mtime_ns=found.mtime_ns,
        content_hash=content_hash, width=record.width, height=record.height,
        format=record.format, taken_at=record.taken_at, camera=record.camera,
        embedding=embedding, phash=phash, read_at=read_at, **fact_fields(facts),  # type: ignore[arg-type]
    )


def new_image(prepared: Prepared, embedding: np.ndarray) -> NewImage:
    found, decoded = prepared.found, prepared.decoded
    return NewImage(
        path=str(found.path), size=found.size, mtime_ns=found.mtime_ns,
        content_hash=prepared.content_hash, width=decoded.width, height=decoded.height,
        format=decoded.format, taken_at=decoded.taken_at, camera=decoded.camera,
        embedding=embedding, phash=prepared.phash, read_at=prepared.read_at,
        **fact_fields(prepared.facts),  # type: ignore[arg-type]
    )


def _failure(found: FoundFile, reason: str) -> Failure:
    return Failure(str(found.path), found.size, found.mtime_ns, reason)
