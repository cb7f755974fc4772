"""Browsing and organising: the timeline, notes and tags, and what a selection can become
(tags, a zip download, an album of links).

Clients name image ids, never paths. The zip holds only files that still lie under the
indexed folders; albums are made only inside the server's album folder (`serve --album-dir`,
by default an `albums` folder beside the catalog), under a name that is one plain folder name.
"""

from __future__ import annotations

import os
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from photoseek.albums import name_variants
from photoseek.api import ImageIndex
from photoseek.errors import BadInput, NotFound
from photoseek.server.deps import BackendDep, ConfigDep, FiltersDep, KParam, known_id, no_such_image
from photoseek.server.errors import ApiError
from photoseek.server.schemas import ErrorOut, FailureOut, FileText, ImageId, ListedImageOut
from photoseek.server.thumbs import servable_path
from photoseek.store.catalog import ImageRecord, utf8_safe

router = APIRouter(tags=["library"])
ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorOut} for status in (400, 404, 422)}
MAX_SELECTION = 500
"""Images in one selection (tags, zip, album): a request's cost stays bounded."""
MAX_NOTE_CHARS = 4000
MAX_TAGS = 50
ZIP_CHUNK_BYTES = 1 << 20
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
"""The earliest time a zip entry can carry."""

Tag = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[^,\r\n]*[^\s,][^,\r\n]*$",
                           description="One tag: no commas or line breaks.")]
Selection = Annotated[list[ImageId], Field(min_length=1, max_length=MAX_SELECTION)]


class BrowseHitOut(ListedImageOut):
    """One image of the timeline."""

    captured: str = Field(description="What the timeline orders by: the EXIF capture time, else the file's "
                          "modification time (UTC), as YYYY-MM-DDTHH:MM:SS.")


class BrowseOut(BaseModel):
    sort: str
    results: list[BrowseHitOut]
    next_cursor: Optional[str] = Field(description="Pass as `cursor` for the next page; null after the last.")
    total: Optional[int] = Field(description="Images that pass the filters (first page only).")
    took_ms: float


class NotesIn(BaseModel):
    description: Optional[str] = Field(None, max_length=MAX_NOTE_CHARS,
                                       description="Your description (searchable); '' removes it; null keeps it.")
    tags: Optional[list[Tag]] = Field(None, max_length=MAX_TAGS,
                                      description="The image's whole set of tags; null keeps them.")


class NotesOut(BaseModel):
    id: int
    description: str
    tags: list[str]


class TagsIn(BaseModel):
    ids: Selection
    add: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    remove: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)


class TaggedOut(BaseModel):
    changed: int = Field(description="Images whose tags changed.")


class AlbumIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="A folder name, made inside the album folder.")
    ids: Selection


class AlbumOut(BaseModel):
    folder: FileText
    linked: int
    already: int = Field(description="Photos the album already held (saving twice adds nothing).")
    failed: list[FailureOut]


@router.get("/api/browse", response_model=BrowseOut, responses=ERRORS)
async def browse(
    backend: BackendDep,
    filters: FiltersDep,
    sort: Literal["date", "oldest", "name"] = "date",
    cursor: Annotated[Optional[str], Query(max_length=4000, description="`next_cursor` of the page before.")] = None,
    k: KParam = 100,
) -> BrowseOut:
    """The library without a query, newest first (or oldest first, or by name), a page at a time."""

    def run(index: ImageIndex) -> BrowseOut:
        started = time.perf_counter()
        page = index.browse(filters=filters, sort=sort, limit=k, cursor=cursor)
        hits = [
            BrowseHitOut(id=r.id, path=r.path, name=Path(r.path).name, width=r.width, height=r.height,
                         format=r.format, taken_at=r.taken_at, camera=r.camera, captured=e.captured)
            for e in page.entries for r in [e.record]
        ]
        took_ms = round((time.perf_counter() - started) * 1000, 2)
        return BrowseOut(sort=sort, results=hits, next_cursor=page.next_cursor, total=page.total, took_ms=took_ms)

    return await backend.read(run)


@router.get("/api/images/{image_id}/notes", response_model=NotesOut, responses=ERRORS)
async def notes(backend: BackendDep, image_id: int) -> NotesOut:
    """Your own description and tags of one image."""
    return await backend.read(lambda index: _notes_out(index, _known(index, image_id)))


@router.post("/api/images/{image_id}/notes", response_model=NotesOut, responses=ERRORS)
async def edit_notes(backend: BackendDep, image_id: int, body: NotesIn) -> NotesOut:
    """Set the description and/or the whole set of tags of one image; both become searchable."""

    def run(index: ImageIndex) -> NotesOut:
        record = _known(index, image_id)
        description, tags = index.notes(record.id)
        if body.description is not None and body.description.strip() != description:
            index.describe(record.id, body.description.strip())
        if body.tags is not None:
            wanted = list(dict.fromkeys(t.strip() for t in body.tags))
            index.tag_many([record.id], add=wanted, remove=[t for t in tags if t not in wanted])
        return _notes_out(index, record)

    return await backend.call(run)


@router.post("/api/tags", response_model=TaggedOut, responses=ERRORS)
async def tag_selection(backend: BackendDep, body: TagsIn) -> TaggedOut:
    """Add and remove tags on a selection of images."""

    def run(index: ImageIndex) -> TaggedOut:
        _all_known(index, body.ids)
        return TaggedOut(changed=index.tag_many(body.ids, add=body.add, remove=body.remove))

    return await backend.call(run)


@router.post("/api/albums", response_model=AlbumOut, responses=ERRORS)
async def save_album(backend: BackendDep, config: ConfigDep, body: AlbumIn) -> AlbumOut:
    """Save a selection as an album: a folder of symbolic links in the server's album folder."""
    folder = _album_folder(config.album_dir or backend.db_path.parent / "albums", body.name)

    def run(index: ImageIndex) -> AlbumOut:
        files = _servable(index, body.ids)
        report = index.link([path for _, path in files], folder)
        linked = {record.id for record, _ in files}
        gone = [FailureOut(path=r.path, reason="gone, or no longer under the indexed folders; re-index")
                for r in index.records(body.ids).values() if r.id not in linked]
        failed = [FailureOut(path=p, reason=why) for p, why in report.failed]
        return AlbumOut(folder=report.folder, linked=len(report.linked), already=len(report.already),
                        failed=gone + failed)

    return await backend.call(run)


@router.get("/files/selection.zip", responses={**ERRORS, 413: {"model": ErrorOut},
                                                200: {"content": {"application/zip": {}}}})
async def selection_zip(
    backend: BackendDep,
    config: ConfigDep,
    ids: Annotated[list[int], Query(alias="id", min_length=1, max_length=MAX_SELECTION,
                                    description="Image ids (repeat `id=`).")],
) -> StreamingResponse:
    """The chosen originals in one zip, streamed as it is written (at most --max-zip-mb in all)."""
    files = await backend.read(lambda index: _servable(index, ids))
    sized = await run_in_threadpool(_sizes, [path for _, path in files])
    total = sum(size for _, size in sized)
    if total > config.max_zip_bytes:
        raise ApiError(413, "too_large", f"These {len(sized)} photos add up to {total / 1e6:.0f} MB, over the "
                       f"{config.max_zip_bytes / 1e6:.0f} MB of one download. Select fewer photos (or start the "
                       "server with a larger --max-zip-mb).")
    entries = [(name, path, size) for name, (path, size) in zip(_zip_names([p for p, _ in sized]), sized)]
    name = f"photoseek-{len(entries)}-photos.zip"
    return StreamingResponse(_zip_stream(entries), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})


def _known(index: ImageIndex, image_id: int) -> ImageRecord:
    record = index.find(image_id) if known_id(image_id) else None
    if record is None:
        raise no_such_image(image_id)
    return record


def _all_known(index: ImageIndex, ids: list[int]) -> list[ImageRecord]:
    records = index.records([i for i in ids if known_id(i)])
    missing = [i for i in ids if i not in records]
    if missing:
        raise NotFound(f"No images with ids {missing[:10]} in the index (any more). "
                       "Search again and choose again.")
    return [records[i] for i in dict.fromkeys(ids)]


def _servable(index: ImageIndex, ids: list[int]) -> list[tuple[ImageRecord, str]]:
    """The chosen images whose files still lie under the indexed folders, with their real paths."""
    roots = index.roots()
    found = [(r, servable_path(r.path, roots)) for r in _all_known(index, ids)]
    return [(r, str(path)) for r, path in found if path is not None]


def _sizes(paths: list[str]) -> list[tuple[str, int]]:
    """(path, bytes) of the files still there."""
    found = []
    for path in paths:
        try:
            found.append((path, os.stat(path).st_size))
        except OSError:
            continue
    return found


def _notes_out(index: ImageIndex, record: ImageRecord) -> NotesOut:
    description, tags = index.notes(record.id)
    return NotesOut(id=record.id, description=description, tags=tags)


def _album_folder(albums: Path, name: str) -> Path:
    """The album's folder: one plain name inside the album folder, never a path out of it."""
    if name != name.strip() or name.startswith(".") or any(c in name for c in "/\\\0") or not name.isprintable():
        raise BadInput(f"Album name {utf8_safe(name)!r}: use a plain folder name, without "
                       "slashes, a leading dot or surrounding spaces.")
    folder = albums / name
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise BadInput(f"{folder} exists and is not an album folder. Choose another name.")
    return folder


def _zip_names(paths: list[str]) -> list[str]:
    """File names for the zip, each unique ('a.jpg', 'a (2).jpg')."""
    taken: set[str] = set()
    names = []
    for path in paths:
        name = next(n for n in name_variants(utf8_safe(os.path.basename(path))) if n not in taken)
        taken.add(name)
        names.append(name)
    return names


class _Sink:
    """A write-only stream that zipfile fills and the response drains (zipfile then writes data
    descriptors instead of seeking back, so nothing but the current chunk is held)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Nothing to release: the response has taken every chunk."""

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def _zip_stream(entries: list[tuple[str, str, int]]) -> Iterator[bytes]:
    """The zip, a chunk at a time; each file is read up to the size it had when the request came
    (a file that grew since is cut there, one that vanished is left out)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, path, size in entries:
            try:
                source = open(path, "rb")  # noqa: SIM115 (closed by the with below)
            except OSError:
                continue
            modified = max(time.localtime(os.fstat(source.fileno()).st_mtime)[:6], ZIP_EPOCH)
            info = zipfile.ZipInfo(name, modified)
            with source, archive.open(info, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as entry:
                remaining = size
                while remaining > 0 and (chunk := source.read(min(ZIP_CHUNK_BYTES, remaining))):
                    entry.write(chunk)
                    remaining -= len(chunk)
                    yield sink.take()
    yield sink.take()

