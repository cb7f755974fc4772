"""The Python API: one object over a catalog, used by the CLI and the HTTP server alike.

    from imgsearch import ImageIndex
    with ImageIndex() as index:
        index.index(["~/Pictures"])
        for hit in index.search("two dogs playing in the snow", k=5):
            print(hit.score, hit.path)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from imgsearch.errors import ImgsearchError
from imgsearch.ingest.indexer import IndexReport, Progress, index_folders
from imgsearch.models import ClipModel, load_clip
from imgsearch.search.engine import Searcher, SearchResult
from imgsearch.search.filters import SearchFilters
from imgsearch.search.query import Query, QueryTerm
from imgsearch.store.catalog import Catalog, Failure, default_db_path


@dataclass(frozen=True)
class Status:
    db_path: str
    roots: list[str]
    image_count: int
    model_id: str | None
    dim: int | None
    db_bytes: int
    failures: list[Failure]

    def to_dict(self) -> dict[str, object]:
        return {
            "db": self.db_path,
            "roots": self.roots,
            "images": self.image_count,
            "model": self.model_id,
            "dim": self.dim,
            "db_bytes": self.db_bytes,
            "failures": [{"path": f.path, "reason": f.reason} for f in self.failures],
        }


class ImageIndex:
    """A catalog plus the model that fills and queries it.

    The model is chosen in this order: `model_path`, `model`, the model the catalog was
    built with, the default model. It is loaded on first use only.
    """

    def __init__(
        self,
        db: str | Path | None = None,
        *,
        model: str | None = None,
        model_path: str | Path | None = None,
    ) -> None:
        self.catalog = Catalog(Path(db).expanduser() if db else default_db_path())
        self._model_name = model
        self._model_path = Path(model_path).expanduser() if model_path else None
        self._model: ClipModel | None = None
        self.searcher = Searcher(self.catalog, self._searching_model)

    def close(self) -> None:
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
        other = ImageIndex(self.catalog.path, model=self._model_name, model_path=self._model_path)
        other._model = self._model
        return other

    @property
    def model(self) -> ClipModel:
        if self._model is None:
            self._model = self._load_model()
        return self._model

    def index(
        self,
        roots: Sequence[str | Path],
        *,
        rebuild: bool = False,
        batch_size: int = 32,
        include_hidden: bool = False,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> IndexReport:
        """Add new and changed images under `roots`, drop deleted ones."""
        for root in roots:
            if not Path(root).expanduser().exists():
                raise ImgsearchError(f"No such folder: {root}. Check the path and try again.")
        if rebuild:
            self.catalog.drop_embeddings()
        model = self.model
        self.catalog.bind_model(model.model_id, model.dim, source=self._model_source())
        return index_folders(
            self.catalog, model, [Path(r) for r in roots],
            batch_size=batch_size, include_hidden=include_hidden, on_progress=on_progress,
        )

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
    ) -> list[SearchResult]:
        """Rank images by texts and example images; `negatives` push results away."""
        if not isinstance(query, Query):
            texts = [query] if isinstance(query, str) else list(query)
            query = Query.build(texts, images=[str(p) for p in images], negatives=negatives)
        return self.searcher.search(
            query, k=k, offset=offset, min_score=min_score, filters=filters
        )

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
        )

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
