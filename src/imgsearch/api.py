"""The Python API: one object over a catalog, used by the CLI and the HTTP server alike.

    from imgsearch import ImageIndex
    with ImageIndex() as index:
        index.index(["~/Pictures"])
        for hit in index.search("two dogs playing in the snow", k=5):
            print(hit.score, hit.path)
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imgsearch.errors import ImgsearchError
from imgsearch.models import ClipModel, load_clip
from imgsearch.search.blend import MODE as BLEND_MODE
from imgsearch.search.blend import BlendedVectors
from imgsearch.search.engine import Searcher, SearchResult
from imgsearch.search.filters import SearchFilters
from imgsearch.search.hybrid import HybridSearcher
from imgsearch.search.query import Query, QueryTerm
from imgsearch.store.backends import IndexConfig, load_config, open_index, resolve, save_config
from imgsearch.store.catalog import Catalog, Failure, ImageRecord, default_db_path
from imgsearch.store.text import TAGS_MODEL, USER_MODEL, TextStore
from imgsearch.text.caption import make_captioner
from imgsearch.text.embedder import TextEmbedder, load_text_embedder
from imgsearch.text.objects import DEFAULT_DETECTOR, DEFAULT_THRESHOLD, ObjectCounter
from imgsearch.text.ocr import OcrReader
from imgsearch.text.vlm import DEFAULT_TIMEOUT_S, DEFAULT_WORKERS, ApiCaptioner

if TYPE_CHECKING:
    from imgsearch.ingest.enrich import TextMaker
    from imgsearch.ingest.indexer import IndexReport, Progress

"""Tags are a note of their own, so `describe` and `tag` never overwrite each other."""


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

    def to_dict(self) -> dict[str, object]:
        return {
            "db": self.db_path,
            "roots": self.roots,
            "images": self.image_count,
            "model": self.model_id,
            "dim": self.dim,
            "db_bytes": self.db_bytes,
            "vector_index": self.vector_index,
            "failures": [{"path": f.path, "reason": f.reason} for f in self.failures],
        }


@dataclass
class ImportReport:
    """What `import_captions` did: notes attached, and rows naming files the catalog does not hold."""

    imported: int = 0
    unknown: list[str] = field(default_factory=list)


@dataclass
class CaptionReport:
    """What `caption` did: (file, caption) pairs, and the files it could not read."""

    pairs: list[tuple[str, str]]
    failures: list[Failure]


def _existing(paths: Sequence[str | Path]) -> list[Path]:
    """The paths, user-expanded, or a clear error naming the first that does not exist."""
    expanded = [Path(p).expanduser() for p in paths]
    for path in expanded:
        if not path.exists():
            raise ImgsearchError(f"No such folder or file: {path}. Check the path and try again.")
    return expanded


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
) -> CaptionReport:
    """Caption image files (folders are walked) without a catalog, e.g. to make fine-tuning pairs.

    `model` "openai:NAME" sends the images to an OpenAI-compatible API at `endpoint`
    ($OPENAI_BASE_URL by default), `workers` requests at a time.
    """
    roots = _existing(paths)
    from imgsearch.ingest.enrich import caption_files  # decoders load only when needed

    captioner = make_captioner(
        model, prompt, endpoint=endpoint, workers=workers, timeout_s=timeout_s, batch_size=batch_size
    )
    pairs, failures = caption_files(roots, captioner, batch_size=batch_size, on_progress=on_progress)
    return CaptionReport(pairs, failures)


class ImageIndex:
    """A catalog plus the model that fills and queries it.

    The model is chosen in this order: `model_path`, `model`, the model the catalog was
    built with, the default model. It is loaded on first use only. With `create=False` a
    missing catalog is an error instead of a new empty one (for read-only commands).
    """

    def __init__(
        self,
        db: str | Path | None = None,
        *,
        model: str | None = None,
        model_path: str | Path | None = None,
        create: bool = True,
        text_model: str | None = None,
    ) -> None:
        db_path = Path(db).expanduser() if db else default_db_path()
        self.catalog = Catalog(db_path, create=create)
        self._model_name = model
        self._model_path = Path(model_path).expanduser() if model_path else None
        self._model: ClipModel | None = None
        self._text_model_name = text_model
        self._text_model: TextEmbedder | None = None
        self.texts = TextStore(self.catalog)
        self.searcher = Searcher(self.catalog, self._searching_model)
        self.hybrid = HybridSearcher(self.searcher, self.texts, lambda: self.text_model)
        self.blend = BlendedVectors(self.catalog, self.texts, lambda: self._searching_model().encode_texts)

    def close(self) -> None:
        self.searcher.close()
        self.catalog.close()

    def __enter__(self) -> ImageIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def for_another_thread(self) -> ImageIndex:
        """A second handle on the same catalog that shares this one's loaded model.

        A catalog connection belongs to the thread that opened it, so a server that
        indexes on one thread and searches on another gives each thread its own handle.
        """
        other = ImageIndex(
            self.catalog.path, model=self._model_name, model_path=self._model_path,
            text_model=self._text_model_name,
        )
        other._model = self._model
        other._text_model = self._text_model
        return other

    @property
    def model(self) -> ClipModel:
        if self._model is None:
            self._model = self._load_model()
        return self._model

    @property
    def text_model(self) -> TextEmbedder:
        if self._text_model is None:
            self._text_model = load_text_embedder(self._text_model_name)
        return self._text_model

    def index(
        self,
        roots: Sequence[str | Path],
        *,
        rebuild: bool = False,
        batch_size: int = 32,
        include_hidden: bool = False,
        on_progress: Callable[[Progress], None] | None = None,
        captions: bool = False,
        ocr: bool = False,
        objects: bool = False,
        caption_model: str | None = None,
        caption_prompt: str | None = None,
        caption_endpoint: str | None = None,
        caption_workers: int = DEFAULT_WORKERS,
        caption_timeout: float = DEFAULT_TIMEOUT_S,
        detector: str | None = None,
        object_threshold: float = DEFAULT_THRESHOLD,
        vector_index: IndexConfig | None = None,
    ) -> IndexReport:
        """Add new and changed images under `roots`, drop deleted ones, then update the vector index.

        Embedded metadata (EXIF/IPTC/XMP descriptions and keywords) is always read; `ocr`,
        `captions` and `objects` add the slower model-made text signals, computed once per
        image content and model (a later run only does images that lack them); `caption_model`
        "openai:NAME" captions through an OpenAI-compatible API (`caption_endpoint`). `vector_index`
        chooses the backend (remembered for later runs and searches).
        """
        _existing(roots)
        makers: list[TextMaker] = [OcrReader()] if ocr else []
        if captions:
            makers.append(make_captioner(
                caption_model, caption_prompt,
                endpoint=caption_endpoint, workers=caption_workers, timeout_s=caption_timeout,
            ))
        if objects:
            makers.append(ObjectCounter(detector or DEFAULT_DETECTOR, object_threshold))
        for maker in makers:
            if isinstance(maker, ApiCaptioner):
                maker.preflight()  # a wrong key or model fails now, not after the embedding pass
        if rebuild:
            self.catalog.drop_embeddings()
        if vector_index is not None:
            save_config(self.catalog, vector_index)
        model = self.model
        self.catalog.bind_model(model.model_id, model.dim, source=self._model_source())
        from imgsearch.ingest.indexer import index_folders  # decoders load only when indexing

        report = index_folders(
            self.catalog, model, [Path(r) for r in roots],
            batch_size=batch_size, include_hidden=include_hidden, on_progress=on_progress,
        )
        try:
            if makers and not report.interrupted:
                self._enrich(makers, report, on_progress)
        finally:  # a failed signal pass (a caption server gone) still leaves what was made searchable
            self.texts.sync()
            self.searcher.close()
            open_index(self.catalog).close()
        return report

    def _enrich(
        self, makers: list[TextMaker], report: IndexReport, on_progress: Callable[[Progress], None] | None
    ) -> None:
        """The model-made text signals indexed images lack; an interrupt keeps the finished batches."""
        from imgsearch.ingest.enrich import EnrichReport, enrich

        enriched = EnrichReport()
        try:
            enriched = enrich(self.texts, makers, on_progress=on_progress)
        except KeyboardInterrupt:
            report.interrupted = True
        report.signals = enriched.computed
        report.failures.extend(enriched.failed)

    def describe(self, image: str | Path | int, text: str) -> None:
        """Attach the user's own description to an image, replacing the previous one."""
        self.texts.put(self._record(image).content_hash, "note", USER_MODEL, text)
        self.texts.sync()

    def tag(self, image: str | Path | int, tags: Sequence[str]) -> None:
        """Add tags (searchable words) to an image; tags it already has are kept once."""
        record = self._record(image)
        current = self.texts.get(record.content_hash, "note", TAGS_MODEL) or ""
        merged = dict.fromkeys([*filter(None, current.split(", ")), *(t.strip() for t in tags if t.strip())])
        self.texts.put(record.content_hash, "note", TAGS_MODEL, ", ".join(merged))
        self.texts.sync()

    def import_captions(self, csv_path: str | Path) -> ImportReport:
        """Notes from a CSV with columns `file,caption`; paths are absolute or relative to the CSV."""
        path = Path(csv_path).expanduser()
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise ImgsearchError(f"Cannot read captions file {path}: {exc}. Give a UTF-8 CSV file.") from exc
        if rows and not {"file", "caption"} <= set(rows[0]):
            raise ImgsearchError(f"{path} needs a header row with the columns file,caption.")
        report, notes = ImportReport(), []
        for row in rows:
            image = path.parent / Path(row["file"] or "").expanduser()
            record = self.catalog.get_by_path(os.path.realpath(image))
            if record is None:
                report.unknown.append(row["file"] or "")
                continue
            notes.append((record.content_hash, "note", USER_MODEL, row["caption"] or ""))
        self.texts.put_many(notes)
        self.texts.sync()
        report.imported = len(notes)
        return report

    def text_signals(self, image_id: int) -> dict[str, str]:
        """source -> text of one image, for detail views."""
        return self.texts.signals(self._record(image_id).content_hash)

    def search(
        self,
        query: str | Query | Sequence[str] = (),
        *,
        images: Sequence[str | Path] = (),
        negatives: Sequence[str] = (),
        k: int = 10,
        offset: int = 0,
        min_score: float | None = None,
        filters: SearchFilters | None = None,
        mode: str | None = None,
        weights: dict[str, float] | None = None,
        explain: bool = False,
    ) -> list[SearchResult]:
        """Rank images by texts and example images; `negatives` push results away.

        `mode` is clip, text, keyword, hybrid (default: hybrid once any image has text, else
        clip) or clip-hybrid (CLIP against each image's blend of image and text embedding,
        `imgsearch.search.blend`). In clip and clip-hybrid modes scores are cosines, cut only at
        `min_score`; in the others they are fused scores in [0, 1], and `min_score=None` means the
        calibrated cut-off that hides noise (0 shows everything), except for a query whose only
        evidence is CLIP (no keyword match, no described image), which is ranked as in clip mode.
        """
        if not isinstance(query, Query):
            texts = [query] if isinstance(query, str) else list(query)
            query = Query.build(texts, images=[str(p) for p in images], negatives=negatives)
        return self.search_many(
            [query], k=k, offset=offset, min_score=min_score, filters=filters, mode=mode,
            weights=weights, explain=explain,
        )[0]

    def search_many(
        self,
        queries: Sequence[str | Query],
        *,
        k: int = 10,
        offset: int = 0,
        min_score: float | None = None,
        filters: SearchFilters | None = None,
        mode: str | None = None,
        weights: dict[str, float] | None = None,
        explain: bool = False,
    ) -> list[list[SearchResult]]:
        """`search` for many queries at once (evaluations, batch jobs): the same ranking and scores,
        but every model encodes all the query texts in one call."""
        built = [q if isinstance(q, Query) else Query.build([q]) for q in queries]
        self.searcher.require_images()
        mode = mode or ("hybrid" if self.texts.has_any() else "clip")
        if mode == BLEND_MODE:
            vectors = self.searcher.query_vectors(built)
            return [self._blended(v, k, offset, min_score, filters) for v in vectors]
        if mode == "clip" and not explain:
            vectors = self.searcher.query_vectors(built)
            return [
                self.searcher.search(q, k=k, offset=offset, min_score=min_score, filters=filters, vector=v)
                for q, v in zip(built, vectors)
            ]
        return self.hybrid.search_many(
            built, mode=mode, weights=weights, k=k, offset=offset,
            min_score=min_score, explain=explain, filters=filters,
        )

    def _blended(
        self, vector: np.ndarray, k: int, offset: int, min_score: float | None, filters: SearchFilters | None
    ) -> list[SearchResult]:
        """Ranked by cosine with each image's blend of image and text embedding (`--mode clip-hybrid`)."""
        ids, scores = self.blend.search(vector, offset + k, filters)
        return self.searcher.page(ids, scores, k=k, offset=offset, min_score=min_score)

    def similar(
        self,
        image: str | Path,
        *,
        k: int = 10,
        offset: int = 0,
        min_score: float | None = None,
        filters: SearchFilters | None = None,
    ) -> list[SearchResult]:
        """Images that look like `image` (any file, indexed or not), itself excluded."""
        path = Path(image).expanduser()
        if not path.is_file():
            raise ImgsearchError(f"No such image file: {path}. Check the path.")
        record = self.catalog.get_by_path(str(path.resolve()))
        query = Query((QueryTerm("image", str(path)),))
        exclude = frozenset({record.id}) if record else frozenset()
        return self.searcher.search(
            query, k=k, offset=offset, min_score=min_score, exclude_ids=exclude, filters=filters
        )

    def status(self) -> Status:
        return Status(
            db_path=str(self.catalog.path),
            roots=self.catalog.roots(),
            image_count=self.catalog.count(),
            model_id=self.catalog.model_id,
            dim=self.catalog.dim,
            db_bytes=self.catalog.file_size(),
            failures=self.catalog.failures(),
            vector_index=resolve(load_config(self.catalog), self.catalog.count()),
        )

    def _record(self, image: str | Path | int) -> ImageRecord:
        """An indexed image by id or by path, or a clear error."""
        if isinstance(image, int):
            record = self.catalog.get(image)
        else:
            record = self.catalog.get_by_path(os.path.realpath(Path(image).expanduser()))
        if record is None:
            raise ImgsearchError(f"{image} is not in the catalog. Index its folder first: imgsearch index FOLDER")
        return record

    def _searching_model(self) -> ClipModel:
        """The model for queries, refused if the catalog was built with another one."""
        if self._model_name and self.catalog.model_id:
            self.catalog.check_model(self._model_name)
        model = self.model
        self.catalog.check_model(model.model_id)
        return model

    def _load_model(self) -> ClipModel:
        if self._model_path is not None:
            return load_clip(path=self._model_path)
        if self._model_name is not None:
            return load_clip(self._model_name)
        recorded_path = self.catalog.model_source
        if recorded_path and Path(recorded_path).is_dir():
            return load_clip(path=recorded_path)
        return load_clip(self.catalog.model_id)

    def _model_source(self) -> str | None:
        return str(self._model_path.resolve()) if self._model_path else None
