"""The Qdrant vector database as a backend: a server (or cluster) at a URL, or embedded local mode.

One collection per model, cosine distance, point id = catalog id. Each point carries the
metadata the filters need (path, every ancestor folder, capture time as a Unix timestamp,
format, width, height, camera), with payload indexes, so filtered queries run inside Qdrant.
The catalog stays the source of truth: the collection is updated from the catalog's change
log, and the generation it reflects is recorded in the catalog (written after the upserts,
so a killed sync is simply redone).
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import partial
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from photoseek.errors import BadInput, Unavailable
from photoseek.legacy import OLD_NAME
from photoseek.store.catalog import Catalog, ImageRecord
from photoseek.store.filters import SearchFilters, normalised_folder, normalised_formats
from photoseek.store.vectors import rank, score_rows

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from qdrant_client.models import Condition, Filter

API_KEY_ENV_VAR = "PHOTOSEEK_QDRANT_API_KEY"
UPSERT_BATCH = 256
RETRIES = 4
PROBE_TIMEOUT_S = 5
"""How long a server may take to answer the first request: a dead or hung server is said in
seconds, while the client's own timeout (60 s) leaves room for a large upsert on a busy server."""
_SYNC_KEY = "qdrant_sync"
T = TypeVar("T")


def _models() -> ModuleType:
    try:
        from qdrant_client import models
    except ImportError:
        raise Unavailable(
            "The qdrant index needs the qdrant extra: pip install 'photoseek[qdrant]' (or index with --index exact)."
        ) from None
    return models


def collection_name(model_id: str, prefix: str = "photoseek") -> str:
    return f"{prefix}_" + re.sub(r"[^A-Za-z0-9_-]+", "_", model_id)


def _collection_for(catalog: Catalog) -> str:
    """The collection of the catalog's model; one that the old name (imgsearch) filled and synced
    keeps being used, so a renamed install need not send every vector again."""
    model_id = catalog.model_id or "none"
    synced = json.loads(catalog.setting(_SYNC_KEY) or "{}").get("collection")
    old = collection_name(model_id, OLD_NAME)
    return old if synced == old else collection_name(model_id)


def connect(url: str | None, path: str | None) -> QdrantClient:
    """A client for the server at `url` (API key from $PHOTOSEEK_QDRANT_API_KEY) or local mode at `path`."""
    _models()
    from qdrant_client import QdrantClient

    if url:
        check_answers(url)
        return QdrantClient(url=url, api_key=os.environ.get(API_KEY_ENV_VAR) or None, timeout=60)
    if path:
        return QdrantClient(path=str(Path(path).expanduser()))
    raise BadInput("The qdrant index needs --qdrant-url URL or --qdrant-path FOLDER.")


def check_answers(url: str) -> None:
    """One quick request to the server at `url`: one line saying what to do when it is down, hung,
    not Qdrant or refuses the key, before anything is sent or remembered."""
    _models()
    from qdrant_client import QdrantClient

    try:
        probe = QdrantClient(
            url=url, api_key=os.environ.get(API_KEY_ENV_VAR) or None, timeout=PROBE_TIMEOUT_S,
            check_compatibility=False,
        )
    except ValueError as exc:
        raise BadInput(f"{url!r} is not a Qdrant URL ({exc}): write it like http://localhost:6333.") from None
    with answering(url):
        try:
            probe.get_collections()
        finally:
            probe.close()


@contextmanager
def answering(url: str | None) -> Iterator[None]:
    """The client's failures to reach or be understood by the server, as one line saying what to do."""
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if url is None:  # local mode: no server to reach
        yield
        return
    try:
        yield
    except (ResponseHandlingException, UnexpectedResponse) as exc:
        reason = " ".join(str(exc.__cause__ or exc).split()) or type(exc).__name__
        raise Unavailable(
            f"The Qdrant server at {url} did not answer ({reason[:200]}). Start it or check the URL and "
            f"${API_KEY_ENV_VAR}, or use the built-in index: photoseek index --index exact FOLDER."
        ) from None


def capture_timestamp(record: ImageRecord) -> float:
    """EXIF capture time, else mtime, as seconds since 1970 (wall-clock time read as UTC, like the SQL filter)."""
    if record.taken_at:
        return _timestamp(record.taken_at[:19])
    return record.mtime_ns / 1e9


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()


def payload(record: ImageRecord) -> dict[str, object]:
    folders = [str(p) for p in PurePosixPath(record.path).parents]
    return {
        "path": record.path, "folders": folders, "captured": capture_timestamp(record),
        "format": record.format, "width": record.width, "height": record.height, "camera": record.camera,
    }


_PAYLOAD_SCHEMA = {
    "folders": "keyword", "format": "keyword", "camera": "keyword",
    "captured": "float", "width": "integer", "height": "integer",
}


class QdrantIndex:
    """Searches one Qdrant collection; metadata filters become Qdrant payload filters."""

    filters_inside = True

    def __init__(self, client: QdrantClient, collection: str, catalog: Catalog, hnsw_ef: int = 256) -> None:
        self.client = client
        self.collection = collection
        self.catalog = catalog
        self.hnsw_ef = hnsw_ef
        self.local = False
        self.url: str | None = None

    def __len__(self) -> int:
        return self.client.count(self.collection, exact=True).count

    @classmethod
    def open(cls, catalog: Catalog, *, url: str | None = None, path: str | None = None) -> QdrantIndex:
        index = cls(connect(url, path), _collection_for(catalog), catalog)
        index.url = url
        index.local = not url  # local mode always searches exactly
        with answering(url):
            index.sync(target=url or str(Path(path or "").expanduser().resolve()))
        return index

    def sync(self, target: str) -> None:
        """Apply the catalog's changes since the last sync, or resend everything."""
        generation = self.catalog.generation()
        synced = json.loads(self.catalog.setting(_SYNC_KEY) or "{}")
        same_place = synced.get("target") == target and synced.get("collection") == self.collection
        if not self._ensure_collection():
            same_place = False
        if same_place and synced.get("generation") == generation:
            return
        if same_place:
            changes = self.catalog.changes_since(synced["generation"])
            self._delete(changes.removed.tolist())
            self._upsert(changes.ids, changes.embeddings)
        if not same_place or len(self) != self.catalog.count():
            self._resend_all()
        self.catalog.set_setting(
            _SYNC_KEY, json.dumps({"target": target, "collection": self.collection, "generation": generation})
        )

    def close(self) -> None:
        self.client.close()

    def search(
        self,
        query: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | None = None,
        filters: SearchFilters | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        models = _models()
        with answering(self.url):
            response = self.client.query_points(
                self.collection, query=np.asarray(query, dtype=np.float32).tolist(), limit=max(k + 20, 2 * k),
                query_filter=self._filter(filters) if filters else None,
                search_params=None if self.local else models.SearchParams(hnsw_ef=max(self.hnsw_ef, 2 * k)),
                with_payload=False, with_vectors=True,
            )
        points = response.points
        if not points:
            return rank(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32), 0)
        # Re-score the candidates from float16-rounded vectors, exactly as the local backends
        # score, so every backend returns the same order (near-ties included).
        vectors = np.array([p.vector for p in points], dtype=np.float32).astype(np.float16)
        ids = np.array([p.id for p in points], dtype=np.int64)
        return rank(ids, score_rows(vectors, query), k)

    def _filter(self, filters: SearchFilters) -> Filter:
        models = _models()
        must: list[Condition] = []
        if filters.folder:
            folder = normalised_folder(filters.folder)
            must.append(models.FieldCondition(key="folders", match=models.MatchValue(value=folder)))
        if filters.after or filters.before:
            must.append(models.FieldCondition(key="captured", range=models.Range(
                gte=_timestamp(filters.after) if filters.after else None,
                lt=_timestamp(filters.before) if filters.before else None,
            )))
        if filters.formats:
            formats = normalised_formats(filters.formats)
            must.append(models.FieldCondition(key="format", match=models.MatchAny(any=formats)))
        for key, minimum in (("width", filters.min_width), ("height", filters.min_height)):
            if minimum:
                must.append(models.FieldCondition(key=key, range=models.Range(gte=minimum)))
        if filters.camera:
            # Qdrant has no substring match; the catalog expands the text into the camera names it matches.
            names = self.catalog.cameras_matching(filters.camera) or ["\0no camera matches"]
            must.append(models.FieldCondition(key="camera", match=models.MatchAny(any=names)))
        in_catalog = SearchFilters(  # topics, places, ratings and labels live in the catalog, not in the payload
            topic=filters.topic, place=filters.place, near=filters.near, min_rating=filters.min_rating,
            label=filters.label,
        )
        if in_catalog:
            ids = self.catalog.filter_ids(in_catalog).tolist()
            must.append(models.HasIdCondition(has_id=ids))
        return models.Filter(must=must)

    def _ensure_collection(self) -> bool:
        """Create the collection if missing; False when it had to be (re)created."""
        models = _models()
        from qdrant_client.models import VectorParams

        dim = self.catalog.dim or 0
        if self.client.collection_exists(self.collection):
            params = self.client.get_collection(self.collection).config.params.vectors
            # One unnamed vector, as created below, of this size and distance: keep it.
            if isinstance(params, VectorParams) and params.size == dim and params.distance == models.Distance.COSINE:
                return True
            self.client.delete_collection(self.collection)
        self.client.create_collection(
            self.collection, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # local mode warns that it builds no payload indexes
            for field, schema in _PAYLOAD_SCHEMA.items():
                self.client.create_payload_index(self.collection, field, field_schema=models.PayloadSchemaType(schema))
        return False

    def _resend_all(self) -> None:
        ids, matrix = self.catalog.all_embeddings()
        self._upsert(ids, matrix)
        present = set(ids.tolist())
        self._delete([i for i in self._stored_ids() if i not in present])

    def _stored_ids(self) -> Iterator[int]:
        offset = None
        while True:
            points, offset = self.client.scroll(
                self.collection, limit=1024, offset=offset, with_payload=False, with_vectors=False
            )
            yield from (int(p.id) for p in points)
            if offset is None:
                return

    def _upsert(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        models = _models()
        for start in range(0, len(ids), UPSERT_BATCH):
            batch_ids = [int(i) for i in ids[start : start + UPSERT_BATCH]]
            records = self.catalog.records(batch_ids)
            points = [
                models.PointStruct(id=i, vector=matrix[start + n].tolist(), payload=payload(records[i]))
                for n, i in enumerate(batch_ids) if i in records
            ]
            _with_retries(partial(self.client.upsert, self.collection, points=points, wait=True))

    def _delete(self, ids: list[int]) -> None:
        models = _models()
        for start in range(0, len(ids), UPSERT_BATCH):
            selector = models.PointIdsList(points=ids[start : start + UPSERT_BATCH])
            _with_retries(partial(self.client.delete, self.collection, points_selector=selector, wait=True))


def _with_retries(call: Callable[[], T]) -> T:
    """Retry transient failures (timeouts, a restarting node) with exponential back-off."""
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    for attempt in range(RETRIES):
        try:
            return call()
        except (ResponseHandlingException, UnexpectedResponse, ConnectionError, TimeoutError) as exc:
            if attempt == RETRIES - 1:
                raise Unavailable(
                    f"Qdrant did not accept an update after {RETRIES} tries: {exc}. "
                    "Check that the server is up, then run photoseek index again (it resumes)."
                ) from exc
            time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")
