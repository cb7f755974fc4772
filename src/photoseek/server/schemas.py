"""JSON shapes of the REST API (they also document it at /docs)."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, BaseModel, Field, model_validator

from photoseek.store.catalog import utf8_safe

MAX_K = 200
MAX_OFFSET = 10_000
MAX_TERMS = 16
"""Texts, negatives and images in one query, all together: each costs an encoding and a ranking."""
MAX_TEXT_CHARS = 500
"""Per text; CLIP reads only the first 77 tokens anyway."""
MAX_FILTER_CHARS = 1000
MAX_FORMATS = 16
MAX_ID = 2**63 - 1
"""Largest id SQLite can hold; larger ones cannot name an image."""

QueryText = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
ImageId = Annotated[int, Field(ge=1, le=MAX_ID)]
FileText = Annotated[str, AfterValidator(utf8_safe)]
"""A path, a file name or a message naming one: bytes that are not UTF-8 (an old Samba copy's
name) as \\xNN, so that the JSON encodes; clients name images by id, never by path."""


class ErrorOut(BaseModel):
    error: str = Field(description="Short machine-readable code, e.g. 'unauthorized', 'too_large'.")
    detail: str = Field(description="What went wrong and what to do about it.")


PLACE_HELP = "Only photos taken in this town, region or country (case and accents aside)."
NEAR_HELP = "Only photos taken near a point: 'LAT,LON' or 'LAT,LON,KM' (decimal degrees; 10 km by default)."
MIN_RATING_HELP = "Only images rated this many stars or more."
LABEL_HELP = "Only images with this label (xmp:Label, darktable colour labels)."


class ListedImageOut(BaseModel):
    """An image in a listing (search results, the timeline); `id` is what /thumbs, /files and
    /api/images take."""

    id: int
    path: FileText
    name: FileText
    width: int
    height: int
    format: str
    taken_at: Optional[str]
    camera: Optional[str]


class HitOut(ListedImageOut):
    """One ranked image."""

    rank: int
    score: float
    place: Optional[str] = Field(None, description="Where it was taken ('Porto, Portugal'), from its GPS.")
    latitude: Optional[float] = None
    longitude: Optional[float] = None
    rating: Optional[int] = Field(None, description="Stars (0 to 5, -1 rejected) from the file or its sidecar.")
    label: Optional[str] = Field(None, description="Its xmp:Label or darktable colour labels.")
    matched_text: Optional[str] = Field(None, description="With `explain`: the text that matched.")
    signals: Optional[dict[str, float]] = Field(
        None, description="With `explain`: each signal's share of `score` (the shares add up to it)."
    )


class SearchOut(BaseModel):
    query: str = Field(description="The query as understood, e.g. '2*\"beach\" - \"people\"'.")
    results: list[HitOut]
    k: int
    offset: int
    next_offset: Optional[int] = Field(description="Offset of the next page; null when this one was the last.")
    took_ms: float
    hidden: int = Field(
        default=0, description="Weaker matches the cut-off kept off this page (min_score=0 shows them)."
    )
    uncut: bool = Field(
        default=False, description="No image's text matched, so the cut-off was not applied: the closest by looks."
    )


class FiltersIn(BaseModel):
    folder: Optional[str] = Field(
        default=None, max_length=MAX_FILTER_CHARS, description="Only images in this folder and below."
    )
    after: Optional[str] = Field(
        default=None, max_length=40, description="Taken on or after this ISO date (EXIF, else mtime)."
    )
    before: Optional[str] = Field(default=None, max_length=40, description="Taken before this ISO date.")
    formats: list[Annotated[str, Field(max_length=20)]] = Field(
        default_factory=list, max_length=MAX_FORMATS, description="Only these formats, e.g. ['jpeg', 'heic']."
    )
    min_size: Optional[int] = Field(
        default=None, ge=1, le=1_000_000, description="Only images at least this many pixels wide and high."
    )
    camera: Optional[str] = Field(default=None, max_length=200, description="Camera make/model contains this text.")
    topic: Optional[str] = Field(default=None, max_length=60, description="Only images with this topic (/api/topics).")
    place: Optional[str] = Field(default=None, max_length=200, description=PLACE_HELP)
    near: Optional[str] = Field(default=None, max_length=80, description=NEAR_HELP)
    min_rating: Optional[int] = Field(default=None, ge=0, le=5, description=MIN_RATING_HELP)
    label: Optional[str] = Field(default=None, max_length=100, description=LABEL_HELP)


class TermIn(BaseModel):
    """A text or an indexed image, with a weight (negative pushes results away)."""

    text: Optional[QueryText] = None
    image_id: Optional[ImageId] = None
    weight: float = Field(1.0, ge=-100, le=100)

    @model_validator(mode="after")
    def _one_kind(self) -> TermIn:
        if (self.text is None) == (self.image_id is None):
            raise ValueError("a term needs exactly one of 'text' or 'image_id'")
        return self


class SearchIn(BaseModel):
    """Texts, negative texts and indexed images, combined into one query vector
    (at most 16 terms in all, each text at most 500 characters)."""

    q: Optional[QueryText] = Field(
        None, description="A query line as typed at the CLI prompt or sent as GET ?q= ('beach -people 2:sunset')."
    )
    texts: list[QueryText] = Field(
        default_factory=list, max_length=MAX_TERMS,
        description="Texts, one term each; '2:beach' weighs one twice, '-1:people' subtracts one.",
    )
    negatives: list[QueryText] = Field(
        default_factory=list, max_length=MAX_TERMS,
        description="Texts to steer away from; '2:people' subtracts one twice (weights here are positive).",
    )
    image_ids: list[ImageId] = Field(
        default_factory=list, max_length=MAX_TERMS, description="Indexed images to search like."
    )
    terms: list[TermIn] = Field(
        default_factory=list, max_length=MAX_TERMS, description="Explicitly weighted texts and images."
    )
    k: int = Field(24, ge=1, le=MAX_K)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    min_score: Optional[float] = Field(
        None, ge=-1, le=1,
        description="Hide results scoring below this (0 shows everything); default: the calibrated cut-off.",
    )
    mode: Optional[str] = Field(None, description="clip, text, keyword, hybrid or clip-hybrid; default as the CLI.")
    weights: dict[str, Annotated[float, Field(ge=0, le=100)]] = Field(
        default_factory=dict, max_length=8, description="Signal weights in hybrid mode, e.g. {'keyword': 0.5}."
    )
    explain: bool = Field(False, description="Give each result's signal shares and the text that matched.")
    sort: Literal["score", "date", "oldest", "name"] = Field(
        "score", description="Order of the page: best first, newest first, oldest first or by path."
    )
    filters: FiltersIn = Field(default_factory=lambda: FiltersIn())

    @model_validator(mode="after")
    def _bounded(self) -> SearchIn:
        count = len(self.texts) + len(self.negatives) + len(self.image_ids) + len(self.terms)
        if count > MAX_TERMS:
            raise ValueError(f"{count} terms; a query takes at most {MAX_TERMS} texts, negatives and images in all")
        return self


class ImageOut(BaseModel):
    id: int
    path: FileText
    name: FileText
    folder: FileText
    size_bytes: int
    width: int
    height: int
    format: str
    taken_at: Optional[str]
    camera: Optional[str]
    place: Optional[str] = Field(None, description="Where it was taken ('Porto, Portugal'), from its GPS.")
    latitude: Optional[float] = None
    longitude: Optional[float] = None
    rating: Optional[int] = None
    label: Optional[str] = None
    modified_at: str
    text_signals: dict[str, str] = Field(
        default_factory=dict, description="Captions, OCR text and notes, when the server extracts them."
    )


class TopicOut(BaseModel):
    name: str
    description: str
    images: int = Field(description="How many images have this topic.")


class TopicsOut(BaseModel):
    topics: list[TopicOut] = Field(description="The catalog's topics, most images first.")


class FailureOut(BaseModel):
    path: FileText
    reason: str


class SearchQueueOut(BaseModel):
    waiting: int = Field(description="Searches waiting for the search thread now.")
    limit: int = Field(description="--max-queue: more waiting searches are answered 503 busy.")
    batches: int = Field(description="Batches run since the server started.")
    searches: int = Field(description="Searches run in those batches (searches / batches = mean batch size).")


class VectorSearchOut(BaseModel):
    backend: str = Field(description="The index chosen: exact, faiss or qdrant.")
    kind: str = Field(description="What really searches: exact, hnsw, ivfpq, scan or qdrant.")
    reason: str = Field(description="Why, e.g. the graph's measured recall@10 and depth.")
    depth: Optional[int] = Field(None, description="Search depth: efSearch, nprobe, or candidates re-ranked.")
    depth_setting: Optional[str] = Field(None, description="What depth sets: efSearch, nprobe or candidates.")
    recall_at_10: Optional[float] = Field(None, description="recall@10 against exact search, measured on a sample.")


class StatusOut(BaseModel):
    images: int
    roots: list[FileText] = Field(description="Every folder and single file given to `index`.")
    folders: list[FileText] = Field(description="The roots that are folders.")
    files: list[FileText] = Field(description="The roots that are single images (`photoseek index photo.jpg`).")
    model: Optional[str]
    dim: Optional[int]
    db_bytes: int
    failures: int
    auth: bool = Field(description="Whether this server needs a token.")
    job: Optional[str] = Field(description="Id of the indexing job running now, if any.")
    search_queue: SearchQueueOut
    watching: bool = Field(False, description="Whether the server keeps the index current (serve --watch).")
    vector_index: Optional[str] = Field(None, description="The index chosen: exact, faiss or qdrant.")
    vector_search: Optional[VectorSearchOut] = Field(None, description="What really answers searches, and why.")
    located: int = Field(0, description="Photos with GPS coordinates.")
    placed: int = Field(0, description="Photos whose coordinates are named (town, region, country).")
    models_loaded: list[str] = Field(
        default_factory=list, description="Models in memory now; idle ones are released (serve --model-idle)."
    )


class ReportOut(BaseModel):
    scanned: int
    unchanged: int
    embedded: int
    reused: int
    removed: int
    failed: list[FailureOut]
    seconds: float


class JobOut(BaseModel):
    id: str
    state: Literal["running", "done", "failed"]
    roots: list[FileText]
    done: int
    total: int
    current: Optional[FileText]
    started_at: float
    finished_at: Optional[float]
    report: Optional[ReportOut]
    error: Optional[FileText]


class WatchRootOut(BaseModel):
    path: FileText
    online: bool = Field(description="False while the folder is away (an unmounted disk); its images are kept.")


class WatchBatchOut(BaseModel):
    number: int
    kind: Literal["catch-up", "changes"]
    paths: int = Field(description="Folders caught up with, or changed paths looked at.")
    finished_at: float = Field(description="Seconds since the epoch.")
    embedded: int
    reused: int
    removed: int
    skipped: int
    seconds: float


class WatchOut(BaseModel):
    """The folder watcher of `serve --watch`."""

    enabled: bool
    running: bool = False
    indexing: bool = Field(default=False, description="A batch is under way.")
    roots: list[WatchRootOut] = []
    pending: int = Field(default=0, description="Changes waiting for their batch.")
    batches: int = 0
    last_batch: Optional[WatchBatchOut] = None
    totals: dict[str, int] = Field(default={}, description="embedded, reused, removed, skipped over all batches.")
    error: Optional[str] = None
