"""The Python API: one object over a catalog, used by the CLI and the HTTP server alike.

    from photoseek import ImageIndex
    with ImageIndex() as index:
        index.index(["~/Pictures"])
        for hit in index.search("two dogs playing in the snow", k=5):
            print(hit.score, hit.path)
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from photoseek.albums import LinkReport, link_files
from photoseek.errors import (
    BadInput,
    Conflict,
    ModelMismatchError,
    ModelNotAvailableError,
    NotFound,
    PhotoseekError,
    Unavailable,
)
from photoseek.models.device import Device
from photoseek.models.runtime import Runtime
from photoseek.search.engine import ResultPage, Searcher, SearchResult
from photoseek.search.modes import Mode, SearchPolicy, choose_policy
from photoseek.search.ordering import check_result_sort, sort_results
from photoseek.search.query import Query, QueryTerm
from photoseek.store.backends import (
    IndexConfig,
    check_usable,
    describe_index,
    open_index,
    remove_catalog,
    save_config,
)
from photoseek.store.browsing import BrowsePage, browse, capture_times
from photoseek.store.catalog import Catalog, Failure, ImageRecord, default_db_path
from photoseek.store.filters import SearchFilters
from photoseek.store.text import TAGS_MODEL, USER_MODEL, TextStore
from photoseek.store.vectors import IndexInfo
from photoseek.text.caption_files import load_dataset
from photoseek.text.vlm import DEFAULT_TIMEOUT_S, DEFAULT_WORKERS
from photoseek.topics import (
    TagReport,
    Taxonomy,
    Topic,
    TopicEncoders,
    catalog_taxonomy,
    check_topic,
    has_topics,
    image_topics,
    load_taxonomy,
    tag_images,
    topic_counts,
    topic_name,
)

if TYPE_CHECKING:  # the model runtimes load on first use: a command that needs none starts fast
    from photoseek.distributed import ClusterRun
    from photoseek.duplicates.finder import DuplicateGroup
    from photoseek.duplicates.moves import MoveReport
    from photoseek.ingest.enrich import SignalSource, TextMaker
    from photoseek.ingest.indexer import IndexReport, OutcomeSource, Progress
    from photoseek.ingest.signals import SignalOptions
    from photoseek.models import ClipModel
    from photoseek.search.blend import BlendedVectors
    from photoseek.search.hybrid import HybridSearcher
    from photoseek.sidecars import ExportReport
    from photoseek.text.embedder import TextEmbedder
    from photoseek.watch import WatchBatch, Watcher, WatchSettings

IMPORTED_MODEL = "imported-captions"
"""Imported captions are a note of their own too: `import-captions` never replaces a `describe`."""
TEXT_MODEL_SETTING = "text_model"
"""The catalog setting that remembers `--text-model`."""
NOTICES_SETTING = "notices_given"
"""The catalog setting that lists the advice already given for it (said once per catalog, not per run)."""

log = logging.getLogger("photoseek")
_UNPROBED = object()


@dataclass
class _TextProbe:
    """Whether the text model loads (None, or why not) and what was already said; shared by sibling handles."""

    problem: object = _UNPROBED
    said: set[str] = field(default_factory=set)

    def say_once(self, notice: str | None) -> None:
        if notice and notice not in self.said:
            self.said.add(notice)
            log.warning(notice)


@dataclass(frozen=True)
class Status:
    db_path: str
    roots: list[str]
    image_count: int
    model_id: str | None
    dim: int | None
    db_bytes: int
    failures: list[Failure]
    vector_index: str
    vector_search: IndexInfo | None = None
    """What really answers searches (a faiss catalog may be searched exactly) and why."""
    model_path: str | None = None
    """The model directory the catalog remembers (None for a named model)."""
    text_model: str | None = None
    """The text model the catalog remembers (None: the default)."""
    providers: list[str] = field(default_factory=list)
    """ONNX Runtime execution providers running the CLIP model (planned ones until it loads), best first."""
    files: list[str] = field(default_factory=list)
    """The roots that are single images (`photoseek index photo.jpg`) rather than folders."""
    located: int = 0
    """Images with GPS coordinates."""
    placed: int = 0
    """Images whose coordinates are named (a town, region or country; needs the `places` extra)."""
    places_hint: str | None = None
    """What to install to name places, when located images lack names because the extra is missing."""
    calibration: list[str] = field(default_factory=list)
    """Each search signal's curve fitted on this library, in words ("CLIP: informative, AUC 0.91 on...")."""

    @property
    def folders(self) -> list[str]:
        """The roots that are folders."""
        return [root for root in self.roots if root not in self.files]

    def to_dict(self) -> dict[str, object]:
        return {
            "db": self.db_path,
            "roots": self.roots,
            "folders": self.folders,
            "files": self.files,
            "images": self.image_count,
            "model": self.model_id,
            "dim": self.dim,
            "db_bytes": self.db_bytes,
            "vector_index": self.vector_index,
            "vector_search": asdict(self.vector_search) if self.vector_search else None,
            "model_path": self.model_path,
            "text_model": self.text_model,
            "providers": self.providers,
            "located": self.located,
            "placed": self.placed,
            "places_hint": self.places_hint,
            "calibration": self.calibration,
            "failures": [{"path": f.path, "reason": f.reason} for f in self.failures],
        }


@dataclass
class ImportReport:
    """What `import_captions` did: notes attached, and rows naming files the catalog does not hold."""

    imported: int = 0
    unknown: list[str] = field(default_factory=list)
    beside_descriptions: int = 0
    """Images that also have a `describe` text of their own: both are kept."""
    replaced: int = 0
    """Images whose caption from an earlier import this one replaced."""
    issues: list[str] = field(default_factory=list)
    """Rows the caption file reader skipped, and why."""


@dataclass
class CaptionReport:
    """What `caption` did: (file, caption) pairs, and the files it could not read."""

    pairs: list[tuple[str, str]]
    failures: list[Failure]


def _cluster(
    ray: str | None, model: ClipModel, roots: list[Path], db_path: Path, batch_size: int, ship_bytes: bool,
    signals: SignalOptions,
) -> AbstractContextManager[ClusterRun | None]:
    """This machine (None), or a connection to the Ray cluster at `ray`, its models on `model`'s device."""
    if not ray:
        if ship_bytes:
            raise BadInput("--ray-ship-bytes only applies with --ray ADDRESS.")
        return nullcontext(None)
    from photoseek.distributed import on_cluster

    return on_cluster(ray, model, roots, db_path, batch_size=batch_size, ship_bytes=ship_bytes, signals=signals,
                      device=model.runtime.device)


def _existing(paths: Sequence[str | Path]) -> list[Path]:
    """The paths, user-expanded, or a clear error naming the first that does not exist."""
    expanded = [Path(p).expanduser() for p in paths]
    for path in expanded:
        if not path.exists():
            raise NotFound(f"No such folder or file: {path}. Check the path and try again.")
    return expanded


def _real(path: str | Path) -> Path:
    """The path as the catalog stores it: absolute, user-expanded, symlinks resolved."""
    return Path(os.path.realpath(Path(path).expanduser()))


def _index_folders(
    catalog: Catalog,
    model: ClipModel,
    roots: Sequence[Path],
    *,
    batch_size: int,
    include_hidden: bool,
    on_progress: Callable[[Progress], None] | None,
    outcomes: OutcomeSource | None = None,
) -> IndexReport:
    from photoseek.ingest.indexer import index_folders  # decoders load only when indexing

    return index_folders(
        catalog, model, roots, batch_size=batch_size, include_hidden=include_hidden, on_progress=on_progress,
        outcomes=outcomes,
    )


def caption(
    paths: Sequence[str | Path],
    *,
    model: str | None = None,
    prompt: str | None = None,
    batch_size: int = 8,
    endpoint: str | None = None,
    workers: int = DEFAULT_WORKERS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    on_progress: Callable[[Progress], None] | None = None,
    device: str | Device | None = None,
) -> CaptionReport:
    """Caption image files (folders are walked) without a catalog, e.g. to make fine-tuning pairs.

    `model` "openai:NAME" sends the images to an OpenAI-compatible API at `endpoint`
    ($OPENAI_BASE_URL by default), `workers` requests at a time; a local model runs on `device`
    (as `ImageIndex`'s).
    """
    runtime = Runtime(device)  # a device that cannot be used fails before any file is read
    roots = _existing(paths)
    from photoseek.ingest.enrich import caption_files  # decoders load only when needed
    from photoseek.text.caption import make_captioner

    captioner = make_captioner(
        model, prompt, endpoint=endpoint, workers=workers, timeout_s=timeout_s, batch_size=batch_size,
        runtime=runtime,
    )
    pairs, failures = caption_files(roots, captioner, batch_size=batch_size, on_progress=on_progress)
    return CaptionReport(pairs, failures)


class ImageIndex:
    """A catalog plus the model that fills and queries it.

    The model is chosen in this order: `model_path`, `model`, the model the catalog was
    built with (its directory or name, remembered in the catalog), the default model. The text
    model likewise: `text_model`, the one the catalog remembers, the default. Models load on
    first use only. With `create=False` a missing catalog is an error instead of a new empty
    one (for read-only commands); a new catalog that a failed first run left empty is removed.
    `device` runs every model (CLIP, the text model, OCR, captioner and detector) on "auto"
    (default: a GPU when there is one), "cpu", "cuda", "cuda:N" or "coreml"; a device this
    onnxruntime cannot drive is an error at once. It makes the index's one `runtime`
    (`photoseek.models.runtime`), shared by its handles, which a server asks to release idle models.
    """

    def __init__(
        self,
        db: str | Path | None = None,
        *,
        model: str | None = None,
        model_path: str | Path | None = None,
        create: bool = True,
        text_model: str | None = None,
        device: str | Device | Runtime | None = None,
    ) -> None:
        # One runtime for every model; a device this onnxruntime cannot drive fails before anything else.
        # Another handle's Runtime is shared as it is (`for_another_thread`), not planned again.
        self.runtime = device if isinstance(device, Runtime) else Runtime(device)
        db_path = Path(db).expanduser() if db else default_db_path()
        self._created = not db_path.exists()
        self._catalog = Catalog(db_path, create=create)
        self._model_name = model
        self._model_path = Path(model_path).expanduser().resolve() if model_path else None
        self._model: ClipModel | None = None
        self._text_model_asked = _text_model_key(text_model) if text_model else None
        self._text_model_name = self._text_model_asked or self._catalog.setting(TEXT_MODEL_SETTING)
        self._text_model: TextEmbedder | None = None
        self._text_probe = _TextProbe()
        self._texts = TextStore(self._catalog)
        self._searcher = Searcher(self._catalog, self._searching_model)

    @cached_property
    def _hybrid(self) -> HybridSearcher:
        """Text-and-image search; made on first use, so commands that never search load no text runtime."""
        from photoseek.search.hybrid import HybridSearcher

        return HybridSearcher(self._searcher, self._texts, lambda: self.text_model)

    @cached_property
    def _blend(self) -> BlendedVectors:
        from photoseek.search.blend import BlendedVectors

        return BlendedVectors(self._catalog, self._texts, lambda: self._searching_model().encode_texts)

    def close(self) -> None:
        self._searcher.close()
        self._catalog.close()

    def __enter__(self) -> ImageIndex:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        discard = exc_type is not None and self._created and self._is_empty()
        self.close()
        if discard:
            remove_catalog(self._catalog.path)

    @property
    def is_new(self) -> bool:
        """Whether this handle created the catalog: if it is still empty when an error or an
        interrupt ends the `with` block, it is removed with every file beside it."""
        return self._created

    # -- reads: what the CLI, the server and the evaluation look up, without reaching into the store --

    @property
    def db_path(self) -> Path:
        """The catalog file (the server keeps its albums beside it)."""
        return self._catalog.path

    @property
    def model_id(self) -> str | None:
        """The CLIP model the catalog's embeddings come from (None before the first index run),
        read without loading any model: what reports name."""
        return self._catalog.model_id

    def count(self) -> int:
        """How many images are indexed."""
        return self._catalog.count()

    def roots(self) -> list[str]:
        """The indexed folders and single files, as real paths: a file is served only from under one."""
        return self._catalog.roots()

    def find(self, image: str | Path | int) -> ImageRecord | None:
        """An indexed image by id or by path (`~` and symlinks allowed), None when the catalog lacks
        it: for callers that answer "not found" in their own words."""
        if isinstance(image, int):
            return self._catalog.get(image)
        return self._catalog.get_by_path(os.path.realpath(Path(image).expanduser()))

    def records(self, ids: Sequence[int]) -> dict[int, ImageRecord]:
        """id -> record of the indexed images among `ids`, in one read (unknown ids are left out):
        a selection made in the web UI."""
        return self._catalog.records(list(ids))

    def unhashed_count(self) -> int:
        """Images without a current perceptual hash (indexed before hashes existed, or hashed by an
        older version), which near-duplicate search cannot compare until the next `index` run hashes them."""
        from photoseek.imaging.hashing import HASH_VERSION

        return self._catalog.unhashed_count(HASH_VERSION)

    def calibration_summary(self, weights: Mapping[str, float] | None = None) -> list[str]:
        """Each search signal's curve in words, as stored (nothing is fitted here), with its weight
        under `weights` (a search policy's; default hybrid's): for `--explain`, `status` and reports
        (`calibrate` fits them now)."""
        return self._hybrid.summary(weights) if weights is not None else self._hybrid.summary()

    def image_vectors(self, ids: np.ndarray, *, exact: bool = False) -> np.ndarray:
        """The CLIP vectors of these images in the order given, read at once: the float16 rows that
        searches score (NaN rows for unknown ids), or with `exact` the stored float32 embeddings.
        For evaluations, which score a whole gallery with one matrix product."""
        if not exact:
            return self._searcher.vectors_of(ids)
        from photoseek.store.vectors import locate

        out = np.full((len(ids), self._catalog.dim or 0), np.nan, dtype=np.float32)
        stored_ids, stored = self._catalog.all_embeddings()  # one read, not one query per image
        found, where = locate(stored_ids, ids)
        out[found] = stored[where]
        return out

    def _is_empty(self) -> bool:
        try:
            return self._catalog.count() == 0
        except Exception:  # a catalog too broken to count is not ours to delete
            return False

    def for_another_thread(self) -> ImageIndex:
        """A second handle on the same catalog that shares this one's loaded model.

        A catalog connection belongs to the thread that opened it, so a server that
        indexes on one thread and searches on another gives each thread its own handle.
        """
        other = ImageIndex(
            self._catalog.path, model=self._model_name, model_path=self._model_path,
            text_model=self._text_model_asked, device=self.runtime,
        )
        other._text_model_name = self._text_model_name
        other._model = self._model
        other._text_model = self._text_model
        other._text_probe = self._text_probe
        return other

    @property
    def model(self) -> ClipModel:
        if self._model is None:
            self._model = self._load_model()
        return self._model

    @property
    def text_model(self) -> TextEmbedder:
        if self._text_model is None:
            self._text_model = self._load_text_model()
            self._remember(self._remember_text_model)  # a text model asked for and found is the catalog's own
        return self._text_model

    def _load_text_model(self) -> TextEmbedder:
        name = self._text_model_name
        if name and Path(name).expanduser().is_absolute() and not Path(name).expanduser().is_dir():
            if name == self._text_model_asked:  # asked for now: most likely a typo
                raise NotFound(f"No text model folder at {name}: check the path, or give a Hugging Face Hub "
                               "id (e.g. --text-model sentence-transformers/all-MiniLM-L6-v2).")
            raise ModelNotAvailableError(
                f"The text model folder {name}, which this catalog uses, is gone. Put it back, or choose "
                "another text model: photoseek index --text-model FOLDER_OR_HUB_ID FOLDER."
            )
        from photoseek.text.embedder import load_text_embedder

        return load_text_embedder(name, runtime=self.runtime)

    def _remember(self, write: Callable[[], None]) -> None:
        """Keep a setting in the catalog; a catalog this process cannot write still searches."""
        try:
            write()
        except sqlite3.OperationalError as exc:
            log.debug("Not remembered (the catalog cannot be written: %s)", exc)

    def _say(self, notice: str | None, once_per_catalog: bool) -> None:
        """A notice, once per process; advice (`once_per_catalog`) once per catalog, remembered in it."""
        if not notice or notice in self._text_probe.said:
            return
        if once_per_catalog:
            given = json.loads(self._catalog.setting(NOTICES_SETTING) or "[]")
            if notice in given:
                self._text_probe.said.add(notice)
                return
            self._remember(lambda: self._catalog.set_setting(NOTICES_SETTING, json.dumps([*given, notice])))
        self._text_probe.say_once(notice)

    def index(
        self,
        roots: Sequence[str | Path],
        *,
        rebuild: bool = False,
        batch_size: int = 32,
        include_hidden: bool = False,
        on_progress: Callable[[Progress], None] | None = None,
        signals: SignalOptions | None = None,
        vector_index: IndexConfig | None = None,
        topics: bool | str | Path = False,
        ray: str | None = None,
        ray_ship_bytes: bool = False,
        signals_everywhere: bool = False,
    ) -> IndexReport:
        """Add new and changed images under `roots`, drop deleted ones, then update the vector index.

        Embedded metadata (EXIF/IPTC/XMP descriptions and keywords) is always read; `signals`
        (e.g. `SignalOptions(ocr=True, captions=True)`) adds the slower model-made text signals,
        computed once per image content and model (a later run only does images that lack them), for
        the images under `roots` (`signals_everywhere`: every indexed image). `vector_index` chooses
        the backend (remembered for later runs and searches). `ray` (`auto` or a cluster address)
        reads, decodes, embeds and makes those signals on a Ray cluster that sees `roots` at the same
        paths (or is sent the bytes with `ray_ship_bytes`); this process
        still decides what needs work and writes the catalog. `topics` tags images with the
        catalog's taxonomy (True) or the one in a file (see `tag_topics`); once a catalog has
        topics, every run tags its new images.
        """
        _existing(roots)
        if vector_index is not None:
            check_usable(vector_index)  # before --rebuild forgets any embedding
        # A bad topics file fails before the pass; a catalog with topics keeps them up to date.
        taxonomy = self._taxonomy(topics or True) if topics or has_topics(self._catalog) else None
        if not rebuild and self._model_name and self._catalog.count():
            self._catalog.check_model(self._model_name)  # before a download of the wrong model
        if self._text_model_asked and self._text_model is None:
            self._text_model = self._load_text_model()  # a text model asked for fails now, not after the CLIP pass
        from photoseek.ingest.signals import SignalOptions  # the makers' defaults: only for runs that ingest

        signals = signals or SignalOptions()
        makers = signals.makers(self.runtime)  # a missing extra, model or key fails now, before any work
        model = self.model  # found before anything is written or forgotten
        paths = [Path(r) for r in roots]
        with (
            self._catalog.index_lock(),  # a second run on this catalog exits instead of redoing the work
            _cluster(ray, model, paths, self._catalog.path, batch_size, ray_ship_bytes, signals) as cluster,
        ):
            if rebuild:  # only once the cluster, if any, is reachable and sees the folders
                self._catalog.drop_embeddings()
            elif self._catalog.count():
                self._check_model(model)
            if vector_index is not None:
                save_config(self._catalog, vector_index)
            self._catalog.bind_model(model.model_id, model.dim, source=self._model_source())
            self._remember_text_model()
            report = _index_folders(
                self._catalog, model, paths, batch_size=batch_size, include_hidden=include_hidden,
                on_progress=on_progress, outcomes=cluster.outcomes if cluster else None,
            )
            under = None if signals_everywhere else [*map(_real, paths), *map(Path, report.linked)]
            self._after_ingest(report, makers, on_progress, taxonomy, cluster.signals if cluster else None, under)
            return report

    def index_changes(
        self,
        paths: Sequence[str | Path],
        *,
        batch_size: int = 32,
        include_hidden: bool = False,
        on_progress: Callable[[Progress], None] | None = None,
        text_makers: Sequence[TextMaker] = (),
    ) -> IndexReport:
        """Bring only `paths` up to date (files or folders that appeared, changed or vanished),
        then the text signals and the vector index: one batch of a watcher."""
        from photoseek.ingest.indexer import index_paths

        return self._refresh(
            lambda model: index_paths(
                self._catalog, model, [Path(p) for p in paths],
                batch_size=batch_size, include_hidden=include_hidden, on_progress=on_progress,
            ),
            list(text_makers), on_progress, [_real(p) for p in paths],
        )

    def watcher(
        self,
        roots: Sequence[str | Path],
        *,
        settings: WatchSettings | None = None,
        on_batch: Callable[[WatchBatch], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        batch_size: int = 32,
        include_hidden: bool = False,
        signals: SignalOptions | None = None,
    ) -> Watcher:
        """A `Watcher` that keeps this index current with `roots`: `run()` catches up once, then
        follows changes in batches until `stop()` or Ctrl-C. Use it on the thread that owns this
        index (`for_another_thread` gives a server's watcher thread its own)."""
        from photoseek.ingest.signals import SignalOptions
        from photoseek.watch import Watcher

        makers = (signals or SignalOptions()).makers(self.runtime)

        def catch_up(folders: Sequence[Path]) -> IndexReport:
            return self._refresh(
                lambda model: _index_folders(
                    self._catalog, model, folders, batch_size=batch_size, include_hidden=include_hidden,
                    on_progress=on_progress,
                ),
                makers, on_progress, [_real(f) for f in folders],
            )

        return Watcher(
            [Path(r).expanduser() for r in roots],
            catch_up=catch_up,
            apply=lambda paths: self.index_changes(
                paths, text_makers=makers, batch_size=batch_size, include_hidden=include_hidden
            ),
            settings=settings, include_hidden=include_hidden, on_batch=on_batch, on_notice=on_notice,
        )

    def watch(self, roots: Sequence[str | Path], **options: Any) -> None:
        """Keep this index current with `roots` until Ctrl-C: `watcher(roots, **options).run()`, so
        `options` are `watcher`'s keywords (checked there)."""
        self.watcher(roots, **options).run()

    def _refresh(
        self,
        ingest: Callable[[ClipModel], IndexReport],
        makers: list[TextMaker],
        on_progress: Callable[[Progress], None] | None,
        under: list[Path],
    ) -> IndexReport:
        """A watcher's batch under the catalog's index lock (it waits while an `index` runs): `ingest`
        with the bound model, then the text signals of the images `under` these paths and the vector index."""
        model = self.model
        with self._catalog.index_lock():
            self._catalog.bind_model(model.model_id, model.dim, source=self._model_source())
            report = ingest(model)
            self._after_ingest(report, makers, on_progress, under=[*under, *map(Path, report.linked)])
            return report

    def _after_ingest(
        self,
        report: IndexReport,
        makers: list[TextMaker],
        on_progress: Callable[[Progress], None] | None,
        taxonomy: Taxonomy | None = None,
        elsewhere: SignalSource | None = None,
        under: list[Path] | None = None,
    ) -> None:
        """The text signals of the images `under` these paths (None: all; on a cluster: `elsewhere`),
        the topics (with a `taxonomy`) and the vector index that an ingest affects."""
        try:
            if not report.interrupted:
                self._name_places(report)
            if makers and not report.interrupted:
                self._enrich(makers, report, on_progress, elsewhere, under)
            if taxonomy is not None and not report.interrupted:
                self._texts.sync()
                report.signals["topics"] = self.tag_topics(taxonomy).tagged
        finally:  # a failed signal pass (a caption server gone) still leaves what was made searchable
            self._texts.sync()
            self._searcher.close()
            open_index(self._catalog).close()

    def _name_places(self, report: IndexReport) -> None:
        """Place names for located images that lack them (`photoseek.places`; needs the `places` extra)."""
        from photoseek.ingest.places import name_missing_places

        named = name_missing_places(self._texts)
        if named:
            report.signals["place"] = named

    def _enrich(
        self,
        makers: list[TextMaker],
        report: IndexReport,
        on_progress: Callable[[Progress], None] | None,
        elsewhere: SignalSource | None,
        under: list[Path] | None,
    ) -> None:
        """The model-made text signals the images `under` these paths (None: all) lack; an interrupt
        keeps the finished batches."""
        from photoseek.ingest.enrich import EnrichReport, enrich

        enriched = EnrichReport()
        try:
            enriched = enrich(self._texts, makers, on_progress=on_progress, elsewhere=elsewhere, under=under)
        except KeyboardInterrupt:
            report.interrupted = True
        report.signals = enriched.computed
        report.failures.extend(enriched.failed)

    def _remember_text_model(self) -> None:
        """Store an asked-for text model as the catalog's own, saying so when it replaces another."""
        stored = self._catalog.setting(TEXT_MODEL_SETTING)
        if not self._text_model_asked or stored == self._text_model_asked:
            return
        if stored:
            log.warning(f"This catalog's text model is now {self._text_model_asked} (was {stored}).")
        self._catalog.set_setting(TEXT_MODEL_SETTING, self._text_model_asked)

    def describe(self, image: str | Path | int, text: str) -> None:
        """Attach the user's own description to an image, replacing the previous one."""
        self._texts.put(self._record(image).content_hash, "note", USER_MODEL, text)
        self._texts.sync()

    def describe_many(self, notes: Iterable[tuple[str | Path | int, str]]) -> None:
        """`describe` for many images in one transaction (an evaluation's oracle captions); an
        empty text removes an earlier description. Every image must be indexed, or nothing changes."""
        rows = [(self._record(image).content_hash, "note", USER_MODEL, text) for image, text in notes]
        self._texts.put_many(rows)
        self._texts.sync()

    def tag(self, image: str | Path | int, tags: Sequence[str]) -> list[str]:
        """Add tags (searchable words) to an image; tags it already has are kept once. Returns all its tags."""
        record = self._record(image)
        current = self._texts.get(record.content_hash, "note", TAGS_MODEL) or ""
        merged = dict.fromkeys([*filter(None, current.split(", ")), *(t.strip() for t in tags if t.strip())])
        self._texts.put(record.content_hash, "note", TAGS_MODEL, ", ".join(merged))
        self._texts.sync()
        return list(merged)

    def untag(self, image: str | Path | int, tags: Sequence[str]) -> None:
        """Remove tags from an image (those it does not have are ignored)."""
        self.tag_many([image], remove=tags)

    def tag_many(
        self, images: Sequence[str | Path | int], add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> int:
        """Add and remove tags on many images in one go (a selection in the web UI); how many changed."""
        records = {r.content_hash: r for r in map(self._record, images)}
        dropped = {t.strip() for t in remove}
        rows = []
        for content_hash in records:
            current = _tag_list(self._texts.get(content_hash, "note", TAGS_MODEL))
            merged = [t for t in dict.fromkeys([*current, *(t.strip() for t in add if t.strip())]) if t not in dropped]
            if merged != current:
                rows.append((content_hash, "note", TAGS_MODEL, ", ".join(merged)))
        self._texts.put_many(rows)
        self._texts.sync()
        return len(rows)

    def notes(self, image: str | Path | int) -> tuple[str, list[str]]:
        """The user's own description and tags of an image ("" and [] when it has none)."""
        content_hash = self._record(image).content_hash
        description = self._texts.get(content_hash, "note", USER_MODEL) or ""
        return description, _tag_list(self._texts.get(content_hash, "note", TAGS_MODEL))

    def import_captions(self, captions_file: str | Path) -> ImportReport:
        """Notes from a caption file (`photoseek.text.caption_files`: CSV or TSV with `file,caption` or
        `image,caption` columns, or a JSON form `eval` reads); paths are absolute or relative to the file.

        They are kept beside the user's own `describe` texts; importing again replaces only
        the captions an earlier import brought. A file naming no indexed image is an error.
        """
        path = Path(captions_file).expanduser()
        dataset = load_dataset(path, flag="captions file")
        report, notes = ImportReport(issues=list(dataset.issues)), []
        for name, captions in zip(dataset.images, dataset.captions, strict=True):
            record = self._catalog.get_by_path(os.path.realpath(path.parent / Path(name).expanduser()))
            if record is None:
                report.unknown.append(name)
                continue
            notes.append((record.content_hash, "note", IMPORTED_MODEL, "\n".join(captions)))
            report.beside_descriptions += bool(self._texts.get(record.content_hash, "note", USER_MODEL))
            report.replaced += bool(self._texts.get(record.content_hash, "note", IMPORTED_MODEL))
        if not notes:
            raise NotFound(
                f"None of the {len(report.unknown)} images named in {path} is in the catalog "
                f"(the first, {report.unknown[0]!r}, was looked for at {path.parent / report.unknown[0]}). "
                "Names are read relative to the captions file's folder, or absolute: fix them, or index the images."
            )
        self._texts.put_many(notes)
        self._texts.sync()
        report.imported = len(notes)
        return report

    def tag_topics(
        self,
        taxonomy: Taxonomy | str | Path | None = None,
        *,
        threshold: float | None = None,
        weights: dict[str, float] | None = None,
    ) -> TagReport:
        """Tag every image that lacks up-to-date topics (`photoseek.topics`), from stored embeddings only.

        `taxonomy` is a Taxonomy, a topics file (TOML or one name per line) or None for the
        catalog's own (the default one until a file or `add_topic` changed it). The image's own
        text counts too when the text model loads; `weights` (clip, text) and `threshold` tune the
        fused confidence (default: those used last, else clip=1, text=1 and 0.5). A CLIP that search
        calibration found uninformative on this library weighs 0 beside the text model. Recomputed only
        when the taxonomy, a model or these settings change.
        """
        self._searcher.require_images()
        taxonomy = self._taxonomy(taxonomy) if taxonomy is not None else catalog_taxonomy(self._catalog)
        model = self._searching_model()
        text = None if self._text_problem() else self.text_model
        clip_curve = self._hybrid.curves({"clip": 1.0})["clip"]  # fitted on the library when it has enough text
        encoders = TopicEncoders(
            clip=model.encode_texts, clip_id=model.model_id,
            text=text.embed_queries if text else None, text_id=text.model_id if text else "",
            passages=text.embed_passages if text else None,
            clip_informative=clip_curve.source != "fitted" or clip_curve.informative,
        )
        try:
            return tag_images(self._catalog, self._texts, taxonomy, encoders, threshold=threshold, weights=weights)
        except ValueError as exc:
            raise BadInput(f"{exc}.") from None

    def add_topic(
        self, name: str, description: str = "", *, threshold: float | None = None,
        weights: dict[str, float] | None = None,
    ) -> TagReport:
        """Add a topic to the catalog's taxonomy and tag every image with it (no image is re-embedded);
        `threshold` and `weights` as in `tag_topics`."""
        taxonomy = catalog_taxonomy(self._catalog).with_topic(Topic(topic_name(name), " ".join(description.split())))
        return self.tag_topics(taxonomy, threshold=threshold, weights=weights)

    def topics(self) -> list[tuple[Topic, int]]:
        """The catalog's topics with how many images have each, most first."""
        taxonomy = catalog_taxonomy(self._catalog)
        counts = topic_counts(self._catalog, self._texts, taxonomy)
        return sorted(((t, counts[t.name]) for t in taxonomy.topics), key=lambda tc: -tc[1])

    def topics_of(self, image: str | Path | int) -> list[str]:
        """An indexed image's topics, most confident first (those from before its text changed,
        until it is tagged again); [] before `tag_topics` ran."""
        return image_topics(self._texts, self._catalog, self._record(image).content_hash)

    def check_topic(self, name: str) -> None:
        """A clear error when filtering by `name` cannot match: unknown topic, or none computed yet."""
        check_topic(self._catalog, name)

    def _taxonomy(self, source: bool | Taxonomy | str | Path) -> Taxonomy:
        if isinstance(source, Taxonomy):
            return source
        if isinstance(source, bool):  # True: the catalog's own
            return catalog_taxonomy(self._catalog)
        return load_taxonomy(source)

    def text_signals(self, image_id: int) -> dict[str, str]:
        """source -> text of one image, for detail views."""
        return self._texts.signals(self._record(image_id).content_hash)

    def search(
        self,
        query: str | Query | Sequence[str] = (),
        *,
        images: Sequence[str | Path] = (),
        negatives: Sequence[str] = (),
        negative_images: Sequence[str | Path] = (),
        k: int = 10,
        offset: int = 0,
        min_score: float | None = None,
        filters: SearchFilters | None = None,
        mode: str | Mode | None = None,
        weights: dict[str, float] | None = None,
        explain: bool = False,
        sort: str = "score",
    ) -> ResultPage:
        """Rank images by texts and example images; `negatives` and `negative_images` push results away.

        Each text or image may carry a weight, `photoseek.search.query`'s syntax ('2:beach' twice,
        '-1:dog' subtracts in `query` and `images`; negatives take positive weights). `query` may
        also be a `Query`, e.g. `Query.parse("beach -people")` for a line as typed at the prompt.

        `mode` is a `Mode` or its name: clip, text, keyword, hybrid (default: hybrid once any image has
        text, else clip, and clip for a query of example images only; without a text model, CLIP plus
        keyword, said once in a log warning) or clip-hybrid
        (CLIP against each image's blend of image and text embedding,
        `photoseek.search.blend`). In clip and clip-hybrid modes scores are cosines, cut only at
        `min_score`; in the others they are fused scores in [0, 1], and `min_score=None` means the
        calibrated cut-off that hides noise (0 shows everything), except for a query whose only
        evidence is CLIP (no keyword match, no described image), which is ranked as in clip mode.
        `sort` shows the page newest first (date), oldest first, or by name instead of best first
        (`photoseek.search.ordering`): the page still holds the best matches. The page is a list that
        also says how many weaker matches the cut-off kept off it (`ResultPage.hidden`) and whether
        it was left uncut for want of evidence beyond looks (`ResultPage.uncut`).
        """
        if not isinstance(query, Query):
            texts = [query] if isinstance(query, str) else list(query)
            query = Query.build(
                texts, images=[str(p) for p in images], negatives=list(negatives),
                negative_images=[str(p) for p in negative_images],
            )
        return self.search_many(
            [query], k=k, offset=offset, min_score=min_score, filters=filters, mode=mode,
            weights=weights, explain=explain, sort=sort,
        )[0]

    def search_many(
        self,
        queries: Sequence[str | Query],
        *,
        k: int = 10,
        offset: int = 0,
        min_score: float | None = None,
        filters: SearchFilters | None = None,
        mode: str | Mode | None = None,
        weights: dict[str, float] | None = None,
        explain: bool = False,
        sort: str = "score",
    ) -> list[ResultPage]:
        """`search` for many queries at once (evaluations, batch jobs): the same ranking and scores,
        but every model encodes all the query texts in one call."""
        check_result_sort(sort)
        return [page.with_results(self.sorted_results(page, sort)) for page in self._ranked_many(
            queries, k=k, offset=offset, min_score=min_score, filters=filters, mode=mode, weights=weights,
            explain=explain,
        )]

    def _ranked_many(
        self,
        queries: Sequence[str | Query],
        *,
        k: int,
        offset: int,
        min_score: float | None,
        filters: SearchFilters | None,
        mode: str | Mode | None,
        weights: dict[str, float] | None,
        explain: bool,
    ) -> list[ResultPage]:
        built = [q if isinstance(q, Query) else Query.build([q]) for q in queries]
        self._searcher.require_images()
        policy = self.search_policy(mode, weights, min_score, built)
        self._say(policy.notice, policy.once_per_catalog)
        ranked: list[ResultPage] = [ResultPage() for _ in built]
        plans = [policy.for_query(q) for q in built]  # example pictures alone rank by looks
        for mode_of_rows in dict.fromkeys(p.mode for p in plans):
            rows = [n for n, p in enumerate(plans) if p.mode is mode_of_rows]
            pages = self._ranked_by(plans[rows[0]], [built[n] for n in rows], k, offset, filters, explain)
            for n, page in zip(rows, pages):
                ranked[n] = page
        return ranked

    def search_policy(
        self,
        mode: str | Mode | None = None,
        weights: dict[str, float] | None = None,
        min_score: float | None = None,
        queries: Sequence[Query] = (),
    ) -> SearchPolicy:
        """The mode, weights and cut-off a search with these options uses (`photoseek.search.modes`):
        every front end's searches, and the evaluation's score matrix, go by it."""
        return choose_policy(
            mode, weights, min_score, has_text=self._texts.has_any, text_problem=self._text_problem,
            text_model_asked=self._text_model_asked is not None,
            text_model_named=self._text_model_name is not None,
            query_has_text=not queries or any(q.has_text() for q in queries),
        )

    def _ranked_by(
        self,
        policy: SearchPolicy,
        built: list[Query],
        k: int,
        offset: int,
        filters: SearchFilters | None,
        explain: bool,
    ) -> list[ResultPage]:
        min_score = policy.min_score
        policy = self._as_ranked(policy, built)
        if policy.mode is Mode.CLIP_HYBRID:
            vectors = self._searcher.query_vectors(built)
            # A query the fused signals find no evidence for is refused here too (default cut-off only).
            answered = (
                self._hybrid.answered(built, replace(policy, mode=Mode.HYBRID), vectors, filters)
                if policy.calibrated_cut and self._texts.has_any() else [True] * len(built)
            )
            return [ResultPage(self._blended(v, k, offset, min_score, filters) if hit else [])
                    for v, hit in zip(vectors, answered)]
        if policy.mode is Mode.CLIP:
            vectors = self._searcher.query_vectors(built)
            found = self._searcher.search_vectors(vectors, k=k, offset=offset, min_score=min_score, filters=filters)
            # the calibrated cut-off, where the library's CLIP curve is fitted
            ranked = self._hybrid.clip_cut(built, vectors, found, policy) if policy.calibrated_cut else [
                ResultPage(rs) for rs in found
            ]
            # Scores stay cosines; explaining only names the one signal they come from.
            if explain:
                return [rs.with_results([replace(r, signals={"clip": r.score}) for r in rs]) for rs in ranked]
            return ranked
        return self._hybrid.search_many(built, policy, k=k, offset=offset, explain=explain, filters=filters)

    def score_matrix(
        self,
        queries: Sequence[str | Query],
        ids: Sequence[int] | np.ndarray,
        *,
        mode: str | Mode | None = None,
        weights: dict[str, float] | None = None,
    ) -> np.ndarray:
        """The score `search` ranks by, of every query (rows) for every image in `ids` (columns), without
        the cut-off: for evaluations, which rank the whole gallery for thousands of queries. Fused modes
        go through the very scorer searches use; clip and clip-hybrid give their cosines."""
        built = [q if isinstance(q, Query) else Query.build([q]) for q in queries]
        self._searcher.require_images()
        policy = self._as_ranked(self.search_policy(mode, weights, None, built), built)
        wanted = np.asarray(ids, dtype=np.int64)
        if policy.mode.fused:
            return self._hybrid.score_matrix(built, policy, wanted)
        vectors = np.stack(self._searcher.query_vectors(built))
        if policy.mode is Mode.CLIP:
            return vectors @ self._searcher.vectors_of(wanted).T
        blended_ids, blended = self._blend.matrix()
        return vectors @ blended[np.searchsorted(blended_ids, wanted)].T

    def _as_ranked(self, policy: SearchPolicy, queries: Sequence[Query]) -> SearchPolicy:
        """clip-hybrid ranks text queries by CLIP alone; where this library's fit finds CLIP flat, that
        would be at random, so they rank as hybrid does (the text signals, CLIP weighing nothing), with
        probabilities as scores (a `min_score` too), and the user is told. Picture-only queries keep
        clip-hybrid's cosines: CLIP is all they have."""
        if (policy.mode is Mode.CLIP_HYBRID and queries
                and all(q.has_text() for q in queries) and self._hybrid.clip_is_flat()):
            self._say("CLIP is uninformative on this library (see photoseek status): clip-hybrid ranks "
                      "as hybrid, by the text signals.", False)
            return replace(policy, mode=Mode.HYBRID)
        return policy

    def sorted_results(self, results: list[SearchResult], sort: str) -> list[SearchResult]:
        """`results` in `sort` order (score, date, oldest or name), e.g. a page put together elsewhere."""
        check_result_sort(sort)
        captured = capture_times(self._catalog, [r.id for r in results]) if sort in ("date", "oldest") else {}
        return sort_results(results, sort, captured)

    def _blended(
        self, vector: np.ndarray, k: int, offset: int, min_score: float | None, filters: SearchFilters | None
    ) -> list[SearchResult]:
        """Ranked by cosine with each image's blend of image and text embedding (`--mode clip-hybrid`)."""
        ids, scores = self._blend.search(vector, offset + k, filters)
        return self._searcher.page(ids, scores, k=k, offset=offset, min_score=min_score)

    def similar(
        self,
        image: str | Path | int,
        *,
        k: int = 10,
        offset: int = 0,
        min_score: float | None = None,
        filters: SearchFilters | None = None,
        sort: str = "score",
    ) -> list[SearchResult]:
        """Images that look like `image`, itself excluded: an indexed image by id (its stored
        embedding, e.g. a result's "more like this") or any image file, indexed or not; `sort` as in `search`."""
        check_result_sort(sort)
        if isinstance(image, int):
            record: ImageRecord | None = self._record(image)
            query = Query((QueryTerm("image_id", str(image)),))
        else:
            path = Path(image).expanduser()
            if path.is_dir():
                raise BadInput(f"{path} is a folder: give one image file (or search the folder's images with "
                               "`photoseek search --in FOLDER`).")
            if not path.is_file():
                raise NotFound(f"No such image file: {path}. Check the path.")
            record = self._catalog.get_by_path(str(path.resolve()))
            query = Query((QueryTerm("image", str(path)),))
        exclude = frozenset({record.id}) if record else frozenset()
        return self.sorted_results(self._searcher.search(
            query, k=k, offset=offset, min_score=min_score, exclude_ids=exclude, filters=filters
        ), sort)

    def browse(
        self, *, filters: SearchFilters | None = None, sort: str = "date", limit: int = 100,
        cursor: str | None = None,
    ) -> BrowsePage:
        """The library without a query, a page at a time: newest first (date), oldest first, or by
        name; pass the page's `next_cursor` back for the next one (`photoseek.store.browsing`)."""
        return browse(self._catalog, filters=filters, sort=sort, limit=limit, cursor=cursor)

    def link(self, paths: Sequence[str | Path], folder: str | Path, *, hard: bool = False) -> LinkReport:
        """Save photos as an album: a link to each in `folder`, names made unique, nothing
        overwritten (`photoseek.albums`); hard links with `hard`."""
        return link_files([str(p) for p in paths], folder, hard=hard)

    def count_matching(self, filters: SearchFilters) -> int:
        """How many indexed images pass `filters`, to tell an empty filter from a strict cut-off."""
        return len(self._catalog.filter_ids(filters)) if filters else self._catalog.count()

    def duplicates(
        self, tier: str = "all", threshold: float | None = None, folder: str | Path | None = None
    ) -> list[DuplicateGroup]:
        """Groups of copies, keeper first (see `photoseek.duplicates.finder`): tier exact, near
        (threshold: differing bits of 64, default 9), similar (threshold: cosine, default 0.95) or all."""
        from photoseek.duplicates.finder import find_duplicates

        return find_duplicates(self._catalog, tier=tier, threshold=threshold, folder=folder)

    def move_duplicates(
        self, groups: Sequence[DuplicateGroup], target: str | Path, only_ids: set[int] | None = None
    ) -> MoveReport:
        """Move every copy but the keepers (or just `only_ids`) under `target`; never deletes."""
        from photoseek.duplicates.moves import move_copies

        return move_copies(self._catalog, groups, target, only_ids)

    def undo_duplicates(self, manifest: str | Path) -> MoveReport:
        """Move the files a `move_duplicates` manifest lists back."""
        from photoseek.duplicates.moves import undo_moves

        return undo_moves(self._catalog, manifest)

    def export_xmp(
        self, folder: str | Path | None = None, *, style: str = "auto", dry_run: bool = False, remove: bool = False,
    ) -> ExportReport:
        """Write notes, tags, captions, topics and places into the XMP sidecars of the indexed images
        (at or below `folder`), named for digiKam/darktable (`style` digikam: IMG_1.jpg.xmp), Lightroom
        (lightroom: IMG_1.xmp), or auto: the sidecar each photo has, else the digiKam name.
        Existing sidecars are merged into, never a photo is touched, and
        the next `index` reads back what was written. `dry_run` only reports the changes; `remove`
        takes out everything photoseek wrote (see `photoseek.sidecars`)."""
        from photoseek.sidecars import export_sidecars
        from photoseek.sidecars.export import STYLES

        if style not in STYLES:
            raise BadInput(f"--style {style}: use one of {', '.join(STYLES)}.")
        filters = SearchFilters(folder=str(folder)) if folder else SearchFilters()
        ids = self._catalog.filter_ids(filters)
        if folder and not len(ids):
            if not Path(folder).expanduser().exists():
                raise NotFound(f"No such folder: {folder}. Check the path.")
            raise NotFound(f"No indexed image is in {folder}. Index it first: photoseek index {folder}")
        records = sorted(self._catalog.records(ids.tolist()).values(), key=lambda r: r.path)
        return export_sidecars(self._texts, records, style=style, dry_run=dry_run, remove=remove)

    def status(self) -> Status:
        search = describe_index(self._catalog)
        located, placed, places_hint = self._place_counts()
        return Status(
            db_path=str(self._catalog.path),
            roots=self._catalog.roots(),
            image_count=self._catalog.count(),
            model_id=self._catalog.model_id,
            dim=self._catalog.dim,
            db_bytes=self._catalog.file_size(),
            failures=self._catalog.failures(),
            vector_index=search.backend,
            vector_search=search,
            model_path=self._catalog.model_source or None,
            text_model=self._catalog.setting(TEXT_MODEL_SETTING),
            providers=self.providers(),
            files=self._catalog.file_roots(),
            located=located, placed=placed, places_hint=places_hint,
            calibration=self._hybrid.summary(),
        )

    def _place_counts(self) -> tuple[int, int, str | None]:
        """Located images, placed ones, and what to install when located ones lack names for want of it."""
        from photoseek.places.naming import INSTALL_HINT, place_namer

        located, placed = self._catalog.located_count(), self._catalog.placed_count()
        return located, placed, INSTALL_HINT if located and place_namer() is None else None

    def check_place(self, name: str) -> None:
        """A clear error when filtering by place cannot match: no photo has a place name yet."""
        if self._catalog.placed_count():
            return
        from photoseek.places.naming import INSTALL_HINT, place_namer

        if not self._catalog.located_count():
            raise Conflict(
                f"--place {name}: no indexed photo has GPS coordinates, so none has a place. "
                "Photos without a location cannot be found by place."
            )
        if place_namer() is None:
            raise Unavailable(
                f"--place {name}: no photo has a place name yet; {INSTALL_HINT}, then run index again."
            )

    def calibrate(self) -> list[str]:
        """Fit every search signal's curve on this library now (searches refit by themselves once the
        library or a model changed enough), and say how each came out (`status` shows it later too)."""
        self._searcher.require_images()
        if self._text_model_asked:
            _ = self.text_model  # a text model named for this fit must load: its error says why not
        signals = ["clip"] + ([] if self._text_problem() else ["text"])
        self._hybrid.curves(signals, refit=True)
        return self._hybrid.summary()

    def providers(self) -> list[str]:
        """Execution providers running the CLIP model: the loaded sessions', else what would be chosen."""
        if self._model is not None:
            return self._model.providers()
        return [name for name, _ in self.runtime.providers()]

    def _record(self, image: str | Path | int) -> ImageRecord:
        """An indexed image by id or by path, or a clear error."""
        record = self.find(image)
        if record is None:
            raise NotFound(f"{image} is not in the catalog. Index its folder first: photoseek index FOLDER")
        return record

    def _searching_model(self) -> ClipModel:
        """The model for queries, refused if the catalog was built with another one."""
        if self._model_name and self._catalog.model_id:
            self._catalog.check_model(self._model_name)
        model = self.model
        self._check_model(model)
        source = self._model_source()
        if source and source != self._catalog.model_source:  # e.g. the model folder was moved: its new place
            self._remember(lambda: self._catalog.bind_model(model.model_id, model.dim, source=source))
        return model

    def _check_model(self, model: ClipModel) -> None:
        """Refuse a model other than the catalog's, naming the flag that asked for it."""
        current = self._catalog.model_id
        if self._model_path is not None and current is not None and current != model.model_id:
            raise ModelMismatchError(
                f"This catalog ({self._catalog.path}) was built with model '{current}', but "
                f"--model-path {self._model_path} holds '{model.model_id}'. Leave out --model-path to use "
                f"the catalog's model, re-embed every image with the new one (photoseek index --rebuild "
                f"--model-path {self._model_path} FOLDER), or use another --db."
            )
        self._catalog.check_model(model.model_id)

    def _load_model(self) -> ClipModel:
        """The asked-for model, else the one the catalog remembers (its directory, else its name)."""
        if self._model_path is None and self._model_name is None and self._catalog.model_source:
            recorded = Path(self._catalog.model_source)
            if not recorded.is_dir():
                raise ModelNotAvailableError(
                    f"This catalog ({self._catalog.path}) was built with the model in {recorded}, which is "
                    f"gone. Put the folder back, or give its new place with --model-path DIR (or start over "
                    f"with another model: photoseek index --rebuild --model NAME FOLDER)."
                )
            self._model_path = recorded  # remembered again by the next index run
        from photoseek.models import load_clip

        if self._model_path is not None:
            return load_clip(path=self._model_path, runtime=self.runtime)
        return load_clip(self._model_name or self._catalog.model_id, runtime=self.runtime)

    def _model_source(self) -> str | None:
        return str(self._model_path) if self._model_path else None

    def _text_problem(self) -> str | None:
        """None when the text model loads, else why not (probed once, shared with sibling handles)."""
        if self._text_probe.problem is _UNPROBED:
            try:
                _ = self.text_model
                self._text_probe.problem = None
            except (PhotoseekError, ImportError) as exc:
                self._text_probe.problem = str(exc) or type(exc).__name__
        problem = self._text_probe.problem
        return problem if isinstance(problem, str) else None


def _tag_list(stored: str | None) -> list[str]:
    return [t for t in (stored or "").split(", ") if t]


def _text_model_key(name: str) -> str:
    """A text model as the catalog remembers it: a folder by its absolute path, else the Hub id."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.is_dir() else name
