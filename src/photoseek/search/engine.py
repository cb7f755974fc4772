"""Turn a query into a vector and rank the catalog's images against it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from photoseek.errors import BadInput, EmptyIndexError, NotFound, UnreadableImageError
from photoseek.search.query import Query, QueryTerm
from photoseek.store.backends import open_index
from photoseek.store.catalog import Catalog, ImageRecord
from photoseek.store.filters import SearchFilters

if TYPE_CHECKING:  # Pillow loads only when a query image is decoded
    from PIL import Image
from photoseek.store.vectors import VectorIndex, VectorStore, top_many


class QueryEncoder(Protocol):
    """The part of a CLIP model a search needs (read-only, as `ClipModel` offers it)."""

    @property
    def model_id(self) -> str: ...

    @property
    def image_size(self) -> int: ...

    def encode_texts(self, texts: list[str]) -> np.ndarray: ...

    def encode_images(self, images: list[Image.Image]) -> np.ndarray: ...


@dataclass(frozen=True)
class SearchResult:
    rank: int
    id: int
    path: str
    score: float
    width: int
    height: int
    format: str
    taken_at: str | None
    camera: str | None
    signals: dict[str, float] | None = None
    """With `explain`: each signal's evidence in log-odds (0 says nothing; added to the prior odds they
    give `score`, `search.fusion`); in clip mode, the cosine."""
    matched_text: str | None = None
    """With `explain`: the keyword snippet or the image's text that matched."""
    place: str | None = None
    """Where it was taken, on one line ('Porto, Portugal'), when its GPS coordinates are named."""
    latitude: float | None = None
    longitude: float | None = None
    rating: int | None = None
    label: str | None = None

    @classmethod
    def from_record(cls, rank: int, record: ImageRecord, score: float) -> SearchResult:
        return cls(
            rank=rank, id=record.id, path=record.path, score=round(float(score), 6),
            width=record.width, height=record.height, format=record.format,
            taken_at=record.taken_at, camera=record.camera, place=record.place_name,
            latitude=record.latitude, longitude=record.longitude, rating=record.rating, label=record.label,
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class ResultPage(list[SearchResult]):
    """One page of results (a plain list to callers), with what the cut-off kept off it: so a page
    shorter than asked can say why instead of hiding weaker matches silently."""

    def __init__(self, results: Sequence[SearchResult] = (), *, hidden: int = 0, uncut: bool = False) -> None:
        super().__init__(results)
        self.hidden = hidden
        """How many more results this page would hold with no cut-off (`min_score=0`)."""
        self.uncut = uncut
        """Nothing had evidence beyond looks, so the default cut-off was not applied: the best by CLIP."""

    def with_results(self, results: Sequence[SearchResult]) -> ResultPage:
        """The same page's notes over these results (re-sorted or explained)."""
        return ResultPage(results, hidden=self.hidden, uncut=self.uncut)


class Searcher:
    """Ranks a catalog's images; the model is loaded only when a term needs encoding."""

    def __init__(self, catalog: Catalog, model: Callable[[], QueryEncoder]) -> None:
        self.catalog = catalog
        self._model = model
        self._index: VectorIndex | None = None
        self._index_generation = -1

    @property
    def index(self) -> VectorIndex:
        """The vector index, reopened when the catalog has changed since."""
        generation = self.catalog.generation()
        if self._index is None or generation != self._index_generation:
            self.close()
            self._index = open_index(self.catalog)
            self._index_generation = generation
        return self._index

    def close(self) -> None:
        """Release the index (a Qdrant local-mode folder admits one client at a time)."""
        if self._index is not None:
            self._index.close()
            self._index = None

    def search(
        self,
        query: Query,
        *,
        k: int = 10,
        offset: int = 0,
        min_score: float | None = None,
        exclude_ids: frozenset[int] = frozenset(),
        filters: SearchFilters | None = None,
        vector: np.ndarray | None = None,
    ) -> list[SearchResult]:
        """The best `k` images after `offset`; `vector` is the query's, when already computed (batches)."""
        if not query:
            raise BadInput("A query needs at least one positive text or image.")
        self.require_images()
        vector = self.query_vector(query) if vector is None else vector
        return self.search_vectors(
            [vector], k=k, offset=offset, min_score=min_score, exclude_ids=exclude_ids, filters=filters
        )[0]

    def search_vectors(
        self,
        vectors: Sequence[np.ndarray],
        *,
        k: int = 10,
        offset: int = 0,
        min_score: float | None = None,
        exclude_ids: frozenset[int] = frozenset(),
        filters: SearchFilters | None = None,
    ) -> list[list[SearchResult]]:
        """`search` for each query vector, ranked by the index in one call (`top_many`)."""
        index = self.index
        allowed = self.catalog.filter_ids(filters) if filters and not index.filters_inside else None
        ranked = top_many(index, vectors, offset + k + len(exclude_ids), allowed, filters or None)
        return [
            self.page(ids, scores, k=k, offset=offset, min_score=min_score, exclude_ids=exclude_ids)
            for ids, scores in ranked
        ]

    def page(
        self,
        ids: np.ndarray,
        scores: np.ndarray,
        *,
        k: int,
        offset: int,
        min_score: float | None = None,
        exclude_ids: frozenset[int] = frozenset(),
    ) -> list[SearchResult]:
        """Results `offset`..`offset + k` of a ranking (best first), with their catalog records."""
        kept = [(i, s) for i, s in zip(ids.tolist(), scores.tolist()) if i not in exclude_ids]
        kept = kept[offset : offset + k]
        if min_score is not None:
            kept = [(i, s) for i, s in kept if s >= min_score]
        records = self.catalog.records([i for i, _ in kept])
        return [
            SearchResult.from_record(offset + rank, records[i], s)
            for rank, (i, s) in enumerate(kept, start=1)
            if i in records
        ]

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """Stored image vectors of these ids in the order given (NaN rows for unknown ids), as the
        index scores them: one array read instead of a catalog query per image."""
        return self._store().vectors_of(ids)

    def sample_vectors(self, count: int) -> np.ndarray:
        """Up to `count` stored vectors spread over the collection: a query's typical scores."""
        return self._store().sample(count)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Unit CLIP text vectors, as plain query texts (no weight syntax) are encoded."""
        vectors = np.asarray(self._model().encode_texts(texts), dtype=np.float32)
        return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)

    def score_calibration(self) -> tuple[float, float] | None:
        """(logit_scale, logit_bias) when the model carries a calibrated score (SigLIP), else None."""
        return getattr(self._model(), "score_calibration", None)

    def _store(self) -> VectorStore:
        store = getattr(self.index, "store", None)
        return store if store is not None else VectorStore.sync(self.catalog)

    def require_images(self) -> None:
        """Fail with advice, before any model work, when there is nothing to search."""
        if self.catalog.count() > 0:
            return
        indexing = self.catalog.indexing_pid()
        if indexing is not None:
            raise EmptyIndexError(
                f"The catalog at {self.catalog.path} has no images yet: an index run (pid {indexing}) is in "
                "progress, and results appear as its batches commit. Search again in a moment."
            )
        raise EmptyIndexError(
            f"The catalog at {self.catalog.path} has no images yet. "
            "Index a folder first: photoseek index ~/Pictures"
        )

    def query_vector(self, query: Query) -> np.ndarray:
        """Normalised weighted sum of the terms' unit embeddings."""
        return self.query_vectors([query])[0]

    def query_vectors(self, queries: Sequence[Query]) -> list[np.ndarray]:
        """`query_vector` of each query, with all their texts encoded in one model call."""
        if not all(queries):
            raise BadInput("A query needs at least one positive text or image.")
        texts = [t.value for q in queries for t in q.terms if t.kind == "text"]
        embedded = iter(self._model().encode_texts(texts) if texts else [])
        vectors = []
        for query in queries:
            total = np.zeros(self.catalog.dim or 0, dtype=np.float32)
            for term in query.terms:
                embedding = next(embedded) if term.kind == "text" else self._image_embedding(term)
                total += term.weight * embedding
            norm = float(np.linalg.norm(total))
            if norm == 0.0:
                raise BadInput(
                    "The query terms cancel each other out; give different texts or weights."
                )
            vectors.append(total / norm)
        return vectors

    def _image_embedding(self, term: QueryTerm) -> np.ndarray:
        """An indexed image's stored embedding, else encode the file now."""
        if term.kind == "image_id":
            stored = self.catalog.embedding(int(term.value))
            if stored is None:
                raise NotFound(f"No image with id {term.value} in the catalog.")
            return stored
        path = Path(term.value).expanduser()
        record = self.catalog.get_by_path(str(path.resolve())) if path.exists() else None
        if record is not None:
            stored = self.catalog.embedding(record.id)
            if stored is not None:
                return stored
        return self._encode_file(path)

    def _encode_file(self, path: Path) -> np.ndarray:
        """Decode and encode a query image that is not in the catalog. Opened as the indexer opens
        files (regular files only, never blocking on a FIFO, streamed rather than read whole)."""
        if not path.exists():
            raise NotFound(f"Cannot read query image {path}: file not found. Check the path.")
        model = self._model()
        try:
            from photoseek.ingest.decode import decode_image  # image decoders load only when needed

            decoded = decode_image(path, min_side=2 * model.image_size)
        except UnreadableImageError as exc:
            raise BadInput(
                f"Cannot use {path} as a query image: {exc}. Give a JPEG, PNG, WebP, HEIC or "
                "other image file."
            ) from exc
        return model.encode_images([decoded.image])[0]
