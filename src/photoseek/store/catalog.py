"""The SQLite catalog: one row per indexed image, its metadata and its embedding.

The catalog is the single source of truth. Every batch of finished work is written in
one transaction (WAL mode), so a run killed at any point leaves a valid catalog that
keeps all committed batches; the next run resumes from there. Within a batch, a record
that cannot be stored becomes a failure entry and the rest of the batch still commits.

File names are stored losslessly. Linux file names are bytes; Python hands them to us as
str, with bytes that are not UTF-8 (old Samba/FAT copies) as surrogate escapes (PEP 383).
SQLite TEXT must be UTF-8, so such a path is stored as a BLOB of its exact bytes
(`os.fsencode`) and every other path as TEXT; readers always get back the str the os
module gave us (`path_from_db`). Use `escape_undecodable` to show one.
"""

from __future__ import annotations

import errno
import math
import os
import re
import sqlite3
import time
import unicodedata
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from platformdirs import user_data_path

from photoseek.legacy import OLD_NAME, adopt_folder

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent runs are not detected there
    fcntl = None  # type: ignore[assignment]

from photoseek.errors import Conflict, ModelMismatchError, NotFound, PhotoseekError
from photoseek.places.gps import distance_km
from photoseek.store.filters import SearchFilters, normalised_folder, normalised_formats

SCHEMA_VERSION = 9
METADATA_VERSION = 1
"""What the indexer reads from a file's metadata; a row read by an older one is read again (no re-embedding)."""
DB_ENV_VAR = "PHOTOSEEK_DB"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS roots (path TEXT PRIMARY KEY, added_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    format TEXT NOT NULL,
    taken_at TEXT,
    camera TEXT,
    model_id TEXT NOT NULL,
    embedding BLOB NOT NULL,
    indexed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS images_hash ON images(content_hash);
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    reason TEXT NOT NULL,
    failed_at REAL NOT NULL
);
"""

# Each entry upgrades a catalog from the version before it; applied in order, in one transaction.
_MIGRATIONS: dict[int, str] = {
    2: """
CREATE TABLE IF NOT EXISTS text_signals (
    content_hash TEXT NOT NULL,
    source TEXT NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (content_hash, source, model)
);
CREATE TABLE IF NOT EXISTS image_text (
    image_id INTEGER PRIMARY KEY,
    content_hash TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS text_fts USING fts5(name, body, tokenize='porter unicode61');
CREATE TABLE IF NOT EXISTS text_embeddings (
    content_hash TEXT NOT NULL,
    model TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    embedding BLOB NOT NULL,
    PRIMARY KEY (content_hash, model)
);
""",
    3: """
ALTER TABLE images ADD COLUMN changed_generation INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS images_changed ON images(changed_generation);
CREATE TABLE IF NOT EXISTS removed_ids (id INTEGER PRIMARY KEY, generation INTEGER NOT NULL);
""",
    4: """
ALTER TABLE images ADD COLUMN phash INTEGER;
""",
    # "substring index" (issue 11): a trigram index beside the word index, over file names, OCR text
    # and tags, so "bakery" finds HARBOURBAKERY; (re)filled here for catalogs indexed before it.
    5: """
CREATE VIRTUAL TABLE IF NOT EXISTS text_substrings USING fts5(name, body, tokenize='trigram');
DELETE FROM text_substrings;
INSERT INTO text_substrings(rowid, name, body)
    SELECT i.id, CASE WHEN typeof(i.path) = 'text'
                 THEN substr(i.path, length(rtrim(i.path, replace(i.path, '/', ''))) + 1) ELSE '' END,
           COALESCE((SELECT group_concat(s.text, ' ') FROM text_signals s
                     WHERE s.content_hash = i.content_hash AND s.text != ''
                       AND (s.source = 'ocr' OR s.model = 'user-tags')), '')
    FROM images i;
""",
    # The timeline (issue 23): pages in capture-time order by keyset, one index seek per page.
    # The expression is `_CAPTURE_TIME_SQL`, spelled alike so that SQLite uses the index.
    6: """
CREATE INDEX IF NOT EXISTS images_captured ON images(
    COALESCE(taken_at, strftime('%Y-%m-%dT%H:%M:%S', mtime_ns / 1000000000, 'unixepoch')), id);
""",
    # OCR text goes into the word index split at letter/digit boundaries (EXIT42NORTH -> EXIT 42 NORTH):
    # documents with OCR text are rebuilt by the next sync (their embeddings stay valid).
    7: """
UPDATE image_text SET text_hash = '' WHERE content_hash IN
    (SELECT content_hash FROM text_signals WHERE source = 'ocr' AND text != '');
""",
    # Places, ratings and labels (issue 23). Rows from before were read without them: `metadata_version`
    # 0 makes the next index run read their metadata again (hash and header only, the embedding is kept).
    8: """
ALTER TABLE images ADD COLUMN latitude REAL;
ALTER TABLE images ADD COLUMN longitude REAL;
ALTER TABLE images ADD COLUMN rating INTEGER;
ALTER TABLE images ADD COLUMN label TEXT;
ALTER TABLE images ADD COLUMN metadata_version INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS images_latitude ON images(latitude) WHERE latitude IS NOT NULL;
""",
    # "separate texts" (issue 20): each text of an image (note, tags, caption, OCR...) is embedded on its
    # own, keyed by its hash so a text shared by many images (a tag) is embedded once; an image scores
    # by its best-matching text. The per-document sentence embeddings are no longer read. Every document
    # is rebuilt at the next sync, so file names lose their hash-like parts in the keyword index.
    9: """
CREATE TABLE IF NOT EXISTS text_piece_embeddings (
    model TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    embedding BLOB NOT NULL,
    PRIMARY KEY (model, text_hash)
);
UPDATE image_text SET text_hash = '';
""",
}


_ADD_COLUMN = re.compile(r"\s*ALTER TABLE (\w+) ADD COLUMN (\w+)", re.I)

_RECORD_ERRORS = (ValueError, OverflowError, sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.DataError)
"""What one record's values can raise on write (UnicodeEncodeError is a ValueError); an I/O or lock
error (sqlite3.OperationalError) is not about one record and still aborts the batch."""


class CatalogBusyError(Conflict):
    """Another process (or another handle in this one) is indexing into the same catalog."""

    code = "catalog_busy"


def _process_alive(pid: int) -> bool:
    """True when a process with this pid runs (one of another user's counts too)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except (OSError, OverflowError):
        return False
    return True


def path_to_db(path: str) -> str | bytes:
    """The value stored for `path`: the str itself, or its exact bytes when it is not valid UTF-8."""
    if path.isascii():
        return path
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def path_from_db(value: str | bytes) -> str:
    """The path as the os module spells it (undecodable bytes as surrogate escapes)."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


_CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))} | {
    ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r",
}


def utf8_safe(text: str) -> str:
    """`text` that encodes as UTF-8 (JSON over HTTP, a UTF-8 column): undecodable bytes of a file
    name shown as \\xNN, everything else unchanged."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def escape_undecodable(text: str) -> str:
    """`text` safe to print on one line: `utf8_safe`, and control characters as \\n, \\t or \\xNN
    (a newline in a name must not split a result line, nor an escape sequence reach the terminal)."""
    if text.isascii() and text.isprintable():
        return text
    return utf8_safe(text).translate(_CONTROL_ESCAPES)


def default_db_path() -> Path:
    """Where the catalog lives unless `--db` or $PHOTOSEEK_DB says otherwise."""
    override = os.environ.get(DB_ENV_VAR)
    if override:
        return Path(override).expanduser()
    folder = adopt_folder(user_data_path(OLD_NAME), user_data_path("photoseek"), "catalog.db", "catalog")
    return folder / "catalog.db"


@dataclass(frozen=True)
class ImageRecord:
    """Everything the catalog knows about one image, embedding aside."""

    id: int
    path: str
    size: int
    mtime_ns: int
    content_hash: str
    width: int
    height: int
    format: str
    taken_at: str | None
    camera: str | None
    latitude: float | None = None
    longitude: float | None = None
    rating: int | None = None
    """Stars from the file or its sidecar: 0 to 5, -1 for rejected."""
    label: str | None = None
    place: str | None = None
    """The place signal's names, one per line (town, county, region, country)."""

    @property
    def place_name(self) -> str | None:
        """The place on one line: 'Porto, Portugal'."""
        return ", ".join(self.place.splitlines()) if self.place else None


@dataclass(frozen=True)
class TextSignal:
    """Text about an image's content: where it came from (`source`) and what made it (`model`)."""

    source: str
    model: str
    text: str


@dataclass(frozen=True)
class NewImage:
    """One finished image, ready to be written."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str
    width: int
    height: int
    format: str
    taken_at: str | None
    camera: str | None
    embedding: np.ndarray
    texts: tuple[TextSignal, ...] = ()
    phash: int | None = None
    """64-bit perceptual hash of the upright picture (`photoseek.imaging.hashing`), signed."""
    latitude: float | None = None
    longitude: float | None = None
    rating: int | None = None
    label: str | None = None
    read_at: float | None = None
    """When the file and its sidecars were read (seconds since the epoch, taken before reading), kept as
    its `indexed_at`: a sidecar edited after the read, even while its batch was still being made,
    is newer and read again by the next run. None: the time of the write."""


@dataclass(frozen=True)
class Failure:
    path: str
    size: int
    mtime_ns: int
    reason: str


@dataclass(frozen=True)
class CatalogChanges:
    """Ids removed, and (ids, embeddings) added or changed, after some generation."""

    removed: np.ndarray
    ids: np.ndarray
    embeddings: np.ndarray


@dataclass(frozen=True)
class FileState:
    """What the catalog remembers of a path, to decide whether to look at it again."""

    size: int
    mtime_ns: int
    failed: bool
    indexed_at: float = 0.0
    """When it was last read (seconds since the epoch); a sidecar edited later means a re-read."""
    unhashed: bool = False
    """Indexed before perceptual hashes existed: the next run hashes it without re-embedding."""
    metadata_stale: bool = False
    """Its metadata was read before places and ratings were: the next run reads it again."""


_AT_OR_BELOW = "path = ? OR CAST(path AS TEXT) LIKE CAST(? AS TEXT) ESCAPE '\\'"
"""A path equal to or below a folder, given `_prefix_patterns`; the casts let a LIKE see BLOB paths."""

_SUBTREE = "path = ? OR (path >= ? AND path < ?) OR (path >= ? AND path < ?)"
"""A path equal to or below a folder, given `_subtree_bounds`: ranges the path index answers, case-sensitive.
Two ranges, as a path that is not UTF-8 is a BLOB, and every TEXT sorts before every BLOB."""

PLACE_SOURCE = "place"
"""The text signal that names where a photo was taken (`photoseek.places`)."""
METADATA_SOURCE = "metadata"
"""The text signal of what a file and its `.xmp` sidecars say (descriptions, keywords): read again with
the file, so a copy that now says nothing clears it."""

_RECORD_COLUMNS = (
    "id, path, size, mtime_ns, content_hash, width, height, format, taken_at, camera, latitude, longitude, "
    "rating, label, (SELECT s.text FROM text_signals s WHERE s.content_hash = images.content_hash "
    f"AND s.source = '{PLACE_SOURCE}' AND s.text != '' ORDER BY s.model LIMIT 1)"
)


READ_ONLY_ADVICE = (
    "The catalog cannot be written here: its file or folder is read-only. Give --db a catalog in a "
    "folder you can write (or set $PHOTOSEEK_DB), or make the folder writable; search and status read it as it is."
)


def is_read_only_error(exc: BaseException) -> bool:
    """Whether SQLite refused a write because the catalog's file or folder is read-only."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("readonly" in text or "read-only" in text)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection; in a folder nobody may write, where SQLite cannot make the WAL index
    beside the file, an immutable one (nothing can change the file there), unless a WAL file holds
    changes that only a writable folder lets be read."""
    uri = path.resolve().as_uri()
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30, isolation_level=None, check_same_thread=False)
    _add_functions(db)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        db.close()
        if os.access(path.parent, os.W_OK):  # a writer may be at work: never read it as immutable
            raise
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise PhotoseekError(
            f"Cannot read the catalog {path}: its last changes are in {wal.name}, and the folder is not "
            "writable. Run any photoseek command on it once where the folder is writable."
        )
    db = sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=30, isolation_level=None, check_same_thread=False)
    _add_functions(db)
    return db


def _not_writable(path: Path, exc: BaseException) -> str:
    """One line on why the catalog cannot be created or written at `path`, and what to do."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    advice = "Give --db a path in a folder you can write (or set $PHOTOSEEK_DB)"
    if not folder.is_dir():
        return f"Cannot create the catalog {path}: {folder} is a file, not a folder. {advice}."
    if not os.access(folder, os.W_OK):
        where = "its folder" if folder == path.parent else f"the folder {folder}"
        return f"Cannot write the catalog {path}: {where} is read-only for you. {advice}, or make it writable."
    if path.exists() and not os.access(path, os.W_OK):
        return f"Cannot write the catalog {path}: the file is read-only for you. {advice}, or make it writable."
    return f"Cannot open the catalog {path}: {getattr(exc, 'strerror', None) or exc}. {advice}."


class Catalog:
    """A connection to one catalog file. Not shared between threads."""

    def __init__(self, path: Path, *, create: bool = True, readonly: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists() and (readonly or not create):
            raise NotFound(
                f"No catalog at {self.path}. Index a folder first: photoseek index ~/Pictures"
                " (or point --db / $PHOTOSEEK_DB at an existing catalog)."
            )
        if readonly:
            self._db = _connect_read_only(self.path)
            return
        try:
            self._db = self._open_for_writing()
        except (OSError, sqlite3.OperationalError) as exc:
            if create or not self.path.is_file():
                raise PhotoseekError(_not_writable(self.path, exc)) from None
            self._db = _connect_read_only(self.path)  # search, status...: reading is all they need; a write
            # then fails with SQLite's "readonly database", which the CLI turns into READ_ONLY_ADVICE

    def _open_for_writing(self) -> sqlite3.Connection:
        if self.path.exists() and not os.access(self.path, os.W_OK):  # SQLite would open it read-only, silently
            raise PermissionError(errno.EACCES, "read-only file", str(self.path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        _add_functions(db)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._db = db
            if self._schema_version() != SCHEMA_VERSION:
                db.executescript(_SCHEMA)
                self._migrate()
        except BaseException:
            db.close()
            raise
        return db

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, for the sibling stores in this package (`store.text`)."""
        return self._db

    def close(self) -> None:
        self._db.close()

    def _schema_version(self) -> int | None:
        """The stored schema version, read without a write lock; None for a new file."""
        try:
            return int(self._meta("schema_version") or 1)
        except sqlite3.OperationalError:
            return None

    def _migrate(self) -> None:
        """Upgrade an older catalog in place; a new one runs every step."""
        with self.transaction():
            current = int(self._meta("schema_version") or 1)
            if current > SCHEMA_VERSION:
                raise Conflict(
                    f"The catalog {self.path} was written by a newer photoseek (schema {current}). "
                    "Upgrade photoseek: pip install -U photoseek."
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip() and not self._adds_existing_column(statement):
                        self._db.execute(statement)
            self._set_meta("schema_version", str(SCHEMA_VERSION))

    def _adds_existing_column(self, statement: str) -> bool:
        """Whether `statement` adds a column the table has already (SQLite has no ADD COLUMN IF NOT
        EXISTS), so a migration step that is run again is harmless."""
        match = _ADD_COLUMN.match(statement)
        if match is None:
            return False
        table, column = match.groups()
        return any(row[1] == column for row in self._db.execute(f"PRAGMA table_info({table})"))

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> AbstractContextManager[None]:
        """All writes inside land together or not at all."""
        return self._atomic("BEGIN IMMEDIATE", ("ROLLBACK",), "COMMIT")

    @contextmanager
    def _atomic(self, begin: str, undo: Sequence[str], end: str) -> Iterator[None]:
        """Run `begin`; on any error run the `undo` statements and re-raise, else run `end`."""
        self._db.execute(begin)
        try:
            yield
        except BaseException:
            for statement in undo:
                self._db.execute(statement)
            raise
        self._db.execute(end)

    @contextmanager
    def index_lock(self) -> Iterator[None]:
        """Hold the catalog's indexing lock, or raise: two index runs on one catalog would both do all the work.

        An advisory lock (flock) on `<catalog>.lock`, which holds the owner's pid; the system
        releases it when the owner exits, even after a crash, so it never needs cleaning up.
        """
        if fcntl is None:
            yield
            return
        with open(self._lock_path, "a+", encoding="ascii") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                owner = fh.read().strip() or "unknown"
                raise CatalogBusyError(
                    f"another index run (pid {owner}) is working on this catalog ({self.path}). "
                    "Wait for it to finish (it keeps every finished batch), or stop it, then run this again."
                ) from None
            try:
                fh.truncate(0)
                fh.write(str(os.getpid()))
                fh.flush()
                yield
            finally:
                fh.truncate(0)
                fcntl.flock(fh, fcntl.LOCK_UN)

    def indexing_pid(self) -> int | None:
        """The pid of a live index run on this catalog, or None, to explain a catalog that is still filling.

        Reads the pid `index_lock` writes (and clears on release) without touching the lock, so asking
        never makes a starting index run fail; a pid left by a crashed run counts only while it lives.
        """
        if fcntl is None:  # no lock, so no pid to read (and signal 0 is Ctrl+C on Windows)
            return None
        try:
            pid = int(self._lock_path.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return None
        return pid if _process_alive(pid) else None

    @property
    def _lock_path(self) -> Path:
        return Path(f"{self.path}.lock")

    # -- model ---------------------------------------------------------------------

    @property
    def model_id(self) -> str | None:
        return self._meta("model_id")

    @property
    def dim(self) -> int | None:
        value = self._meta("dim")
        return int(value) if value else None

    @property
    def model_source(self) -> str | None:
        """The model directory the catalog was built from, when it was not a named model."""
        return self._meta("model_source")

    def bind_model(self, model_id: str, dim: int, *, source: str | None = None) -> None:
        """Record the model on first use; refuse a different one afterwards."""
        if self.model_id is not None and self.count() > 0:
            self.check_model(model_id)
        with self.transaction():
            self._set_meta("model_id", model_id)
            self._set_meta("dim", str(dim))
            self._set_meta("model_source", source or "")

    def check_model(self, model_id: str) -> None:
        current = self.model_id
        if current is not None and current != model_id:
            raise ModelMismatchError(
                f"This catalog ({self.path}) was built with model '{current}', not '{model_id}'. "
                f"Search without --model/--model-path to use '{current}', or re-index with the new "
                f"model: photoseek index --rebuild --model {model_id} (or use another --db)."
            )

    def drop_embeddings(self) -> None:
        """Forget every image so that a new model can re-embed them all."""
        with self.transaction():
            generation = self._bump_generation()
            self._db.execute(
                "INSERT OR REPLACE INTO removed_ids(id, generation) SELECT id, ? FROM images",
                (generation,),
            )
            self._db.execute("DELETE FROM images")
            self._db.execute("DELETE FROM failures")
            self._db.execute("DELETE FROM meta WHERE key IN ('model_id', 'dim', 'model_source')")

    # -- roots ---------------------------------------------------------------------

    def add_roots(self, roots: Iterable[Path]) -> None:
        with self.transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO roots(path, added_at) VALUES (?, ?)",
                [(path_to_db(str(root)), time.time()) for root in roots],
            )

    def roots(self) -> list[str]:
        return [path_from_db(row[0]) for row in self._db.execute("SELECT path FROM roots ORDER BY path")]

    def file_roots(self) -> list[str]:
        """The roots that name one image rather than a folder (`photoseek index photo.jpg`).

        A root is a file when it is one on disk or, while its disk is away, when the catalog knows
        that exact path (indexed or failed): a folder's own path is never an image.
        """
        return [root for root in self.roots() if not os.path.isdir(root) and (
            os.path.lexists(root) or self._knows_path(root)
        )]

    def _knows_path(self, path: str) -> bool:
        """Whether this exact path is an indexed image or a failed file."""
        key = path_to_db(path)
        return self._db.execute(
            "SELECT 1 FROM images WHERE path = ? UNION ALL SELECT 1 FROM failures WHERE path = ? LIMIT 1", (key, key)
        ).fetchone() is not None

    # -- reading -------------------------------------------------------------------

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM images").fetchone()[0]

    def file_states(self, under: Sequence[Path]) -> dict[str, FileState]:
        """Size and mtime of every known path below these roots, indexed or failed."""
        states: dict[str, FileState] = {}
        for root in under:
            bounds = _subtree_bounds(root)
            for path, size, mtime, indexed_at, unhashed, stale in self._db.execute(
                "SELECT path, size, mtime_ns, indexed_at, phash IS NULL, metadata_version < ? FROM images"
                f" WHERE {_SUBTREE}", (METADATA_VERSION, *bounds)
            ):
                states[path_from_db(path)] = FileState(
                    size, mtime, failed=False, indexed_at=indexed_at, unhashed=bool(unhashed),
                    metadata_stale=bool(stale),
                )
            failed = self._db.execute(f"SELECT path, size, mtime_ns FROM failures WHERE {_SUBTREE}", bounds)
            for path, size, mtime in failed:
                states.setdefault(path_from_db(path), FileState(size, mtime, failed=True))
        return states

    def embedding_for_hash(self, content_hash: str) -> tuple[ImageRecord, np.ndarray, int | None] | None:
        """A finished image with this content (its record, embedding and perceptual hash), so a
        moved or copied file needs no model run."""
        row = self._db.execute(
            f"SELECT {_RECORD_COLUMNS}, embedding, phash FROM images WHERE content_hash = ?"
            " ORDER BY phash IS NULL LIMIT 1",
            (content_hash,),
        ).fetchone()
        if row is None:
            return None
        return _record(row[:-2]), np.frombuffer(row[-2], dtype=np.float32), row[-1]

    def get(self, image_id: int) -> ImageRecord | None:
        row = self._db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM images WHERE id = ?", (image_id,)
        ).fetchone()
        return _record(row) if row else None

    def get_by_path(self, path: str) -> ImageRecord | None:
        row = self._db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM images WHERE path = ?", (path_to_db(path),)
        ).fetchone()
        return _record(row) if row else None

    def records(self, ids: Sequence[int]) -> dict[int, ImageRecord]:
        found: dict[int, ImageRecord] = {}
        for start in range(0, len(ids), 500):
            chunk = [int(i) for i in ids[start : start + 500]]
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(
                f"SELECT {_RECORD_COLUMNS} FROM images WHERE id IN ({marks})", chunk
            ):
                found[row[0]] = _record(row)
        return found

    def perceptual_hashes(self, version: int, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, signed 64-bit perceptual hashes) of the images that have one made by `version` of the
        hash function, in id order: none while the stored ones are another version's (they do not
        compare with new ones; the next `index` re-hashes them)."""
        if not self._hashes_are(version):
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        rows = self._db.execute("SELECT id, phash FROM images WHERE phash IS NOT NULL ORDER BY id").fetchall()
        found = np.array(rows, dtype=np.int64).reshape(-1, 2)
        if ids is not None:
            found = found[np.isin(found[:, 0], ids)]
        return found[:, 0].copy(), found[:, 1].copy()

    def unhashed_count(self, version: int) -> int:
        """Images without a perceptual hash of `version`: indexed before hashes existed, or hashed by
        another version of the hash function (the next `index` run hashes them)."""
        where = "phash IS NULL" if self._hashes_are(version) else "1"
        return self._db.execute(f"SELECT COUNT(*) FROM images WHERE {where}").fetchone()[0]

    def _hashes_are(self, version: int) -> bool:
        """Whether the stored perceptual hashes were made by `version` of the hash function."""
        return self.setting("phash_version") == str(version)

    def expire_perceptual_hashes(self, version: int) -> None:
        """Forget hashes made by another version of the hash function (they do not compare with
        new ones): the next `index` re-hashes those images without re-embedding them."""
        if self._hashes_are(version):
            return
        with self.transaction():
            self._db.execute("UPDATE images SET phash = NULL WHERE phash IS NOT NULL")
            self._set_meta("setting.phash_version", str(version))

    def content_duplicates(self, ids: np.ndarray | None = None) -> list[list[int]]:
        """Ids sharing one content hash (byte-identical files), per content, two or more each."""
        by_hash: dict[str, list[int]] = {}
        for image_id, content_hash in self._db.execute(
            "SELECT id, content_hash FROM images WHERE content_hash IN "
            "(SELECT content_hash FROM images GROUP BY content_hash HAVING COUNT(*) > 1) ORDER BY id"
        ):
            by_hash.setdefault(content_hash, []).append(image_id)
        if ids is not None:
            wanted = set(ids.tolist())
            by_hash = {h: [i for i in group if i in wanted] for h, group in by_hash.items()}
        return [group for group in by_hash.values() if len(group) > 1]

    def filter_ids(self, filters: SearchFilters) -> np.ndarray:
        """Ids of the images that pass every filter, for ranking within them only."""
        clauses, params = _filter_sql(filters)
        where = " AND ".join(clauses) or "1"
        rows = self._db.execute(f"SELECT id FROM images WHERE {where} ORDER BY id", params)
        return np.fromiter((row[0] for row in rows), dtype=np.int64)

    def embedding(self, image_id: int) -> np.ndarray | None:
        row = self._db.execute("SELECT embedding FROM images WHERE id = ?", (image_id,)).fetchone()
        return np.frombuffer(row[0], dtype=np.float32) if row else None

    def all_embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) of every image, in id order."""
        return self._embeddings("", ())

    def embeddings_of_hashes(self, hashes: Sequence[str]) -> np.ndarray:
        """The stored embedding of each content hash (rows in `hashes` order; copies share one),
        read in one pass: work done per content, such as topics."""
        ids, matrix = self.all_embeddings()
        row_of_id = {int(image_id): row for row, image_id in enumerate(ids)}
        row_of_hash = {h: row_of_id[i] for i, h in self._db.execute("SELECT id, content_hash FROM images")}
        return matrix[[row_of_hash[h] for h in hashes]]

    def changes_since(self, generation: int) -> CatalogChanges:
        """What changed after `generation`, so derived indexes can update instead of rebuilding.

        A removed id that is back (SQLite may reuse the largest id) shows up in both lists:
        apply removals first, then upserts.
        """
        removed = np.fromiter(
            (row[0] for row in self._db.execute(
                "SELECT id FROM removed_ids WHERE generation > ? ORDER BY id", (generation,)
            )),
            dtype=np.int64,
        )
        ids, matrix = self._embeddings("WHERE changed_generation > ?", (generation,))
        return CatalogChanges(removed, ids, matrix)

    def located_count(self) -> int:
        """Images with GPS coordinates."""
        return self._db.execute("SELECT COUNT(*) FROM images WHERE latitude IS NOT NULL").fetchone()[0]

    def placed_count(self) -> int:
        """Images with a place name."""
        return self._db.execute(
            "SELECT COUNT(*) FROM images WHERE content_hash IN "
            "(SELECT content_hash FROM text_signals WHERE source = ? AND text != '')", (PLACE_SOURCE,)
        ).fetchone()[0]

    def located_without_place(self, model: str) -> list[tuple[str, float, float]]:
        """(content hash, latitude, longitude) of located images without a place signal from `model`."""
        rows = self._db.execute(
            """SELECT content_hash, latitude, longitude, MIN(id) FROM images
               WHERE latitude IS NOT NULL AND content_hash NOT IN
                   (SELECT content_hash FROM text_signals WHERE source = ? AND model = ?)
               GROUP BY content_hash ORDER BY content_hash""",
            (PLACE_SOURCE, model),
        )  # the coordinates of one copy (the first indexed), not a mix of several
        return [(h, float(lat), float(lon)) for h, lat, lon, _ in rows]

    def cameras_matching(self, text: str) -> list[str]:
        """Distinct camera names containing `text` (case-insensitive), as the camera filter matches."""
        rows = self._db.execute(
            "SELECT DISTINCT camera FROM images WHERE camera LIKE ? ESCAPE '\\' ORDER BY camera",
            ("%" + _escape_like(text) + "%",),
        )
        return [row[0] for row in rows]

    def setting(self, key: str) -> str | None:
        """A value other parts keep in the catalog (index backend choice, sync state)."""
        return self._meta(f"setting.{key}")

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction():
            self._set_meta(f"setting.{key}", value)

    def failures(self) -> list[Failure]:
        return [
            Failure(path_from_db(path), size, mtime_ns, reason)
            for path, size, mtime_ns, reason in self._db.execute(
                "SELECT path, size, mtime_ns, reason FROM failures ORDER BY path"
            )
        ]

    def generation(self) -> int:
        """A counter bumped by every change to the set of embeddings, for cache checks."""
        return int(self._meta("generation") or 0)

    def file_size(self) -> int:
        """Bytes on disk, write-ahead log included."""
        return sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"))
            if p.exists()
        )

    # -- writing -------------------------------------------------------------------

    def move_paths(self, moves: Sequence[tuple[str, str]]) -> None:
        """Record that files moved (old path, new path): same rows, ids and embeddings."""
        with self.transaction():
            self._db.executemany(
                "UPDATE images SET path = ? WHERE path = ?", [(path_to_db(new), path_to_db(old)) for old, new in moves]
            )

    def write_batch(
        self,
        images: Sequence[NewImage],
        failures: Sequence[Failure] = (),
        removed: Sequence[str] = (),
        phashes: Sequence[tuple[str, int]] = (),
        leaving: Collection[str] = (),
    ) -> list[Failure]:
        """Write one batch of finished work in a single transaction.

        An image whose record cannot be stored is written as a failure instead, and the
        rest of the batch (its other images, `failures` and `removed`) commits regardless.
        Returns those refused images' failures. `phashes` (path, hash) fills in the perceptual
        hash of unchanged images without touching their embedding. `leaving`: paths the run drops
        at its end (its last batch's `removed`), whose copies no longer vouch for a text.
        """
        if not (images or failures or removed or phashes):
            return []
        now = time.time()
        model_id = self.model_id
        if images and model_id is None:
            raise PhotoseekError("Bind a model to the catalog before writing embeddings.")
        with self.transaction():
            generation = self._bump_generation()
            refused = self._write_images(images, model_id, now, generation, leaving)
            self._db.executemany(
                "UPDATE images SET phash = ? WHERE path = ?", [(h, path_to_db(p)) for p, h in phashes]
            )
            self._db.executemany(
                """INSERT INTO failures(path, size, mtime_ns, reason, failed_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT(path) DO UPDATE SET size=excluded.size,
                       mtime_ns=excluded.mtime_ns, reason=excluded.reason,
                       failed_at=excluded.failed_at""",
                [
                    (path_to_db(f.path), f.size, f.mtime_ns, escape_undecodable(f.reason), now)
                    for f in [*failures, *refused]
                ],
            )
            self._delete_images([f.path for f in [*failures, *refused]], generation)
            self._delete_images(removed, generation)
            self._db.executemany("DELETE FROM failures WHERE path = ?", [(path_to_db(p),) for p in removed])
        return refused

    # -- internals -----------------------------------------------------------------

    def _embeddings(self, where: str, params: tuple[object, ...]) -> tuple[np.ndarray, np.ndarray]:
        dim = self.dim or 0
        rows = self._db.execute(f"SELECT id, embedding FROM images {where} ORDER BY id", params).fetchall()
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        matrix = np.empty((len(rows), dim), dtype=np.float32)
        for i, row in enumerate(rows):
            matrix[i] = np.frombuffer(row[1], dtype=np.float32)
        return ids, matrix

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def _bump_generation(self) -> int:
        generation = self.generation() + 1
        self._set_meta("generation", str(generation))
        return generation

    def _write_images(
        self, images: Sequence[NewImage], model_id: str | None, now: float, generation: int,
        leaving: Collection[str] = (),
    ) -> list[Failure]:
        """Insert the images, all at once when possible; one by one to isolate records that fail."""
        try:
            with self._savepoint():
                self._insert_images(images, model_id, now, generation, leaving)
            return []
        except _RECORD_ERRORS:
            pass
        refused: list[Failure] = []
        for image in images:
            try:
                with self._savepoint():
                    self._insert_images([image], model_id, now, generation, leaving)
            except _RECORD_ERRORS as exc:
                reason = f"cannot be stored in the catalog ({type(exc).__name__}: {exc})"
                refused.append(Failure(image.path, image.size, image.mtime_ns, escape_undecodable(reason)))
        return refused

    def _insert_images(
        self, images: Sequence[NewImage], model_id: str | None, now: float, generation: int,
        leaving: Collection[str] = (),
    ) -> None:
        self._db.executemany(  # a place named for other coordinates is named again (`photoseek.places`)
            f"""DELETE FROM text_signals WHERE source = '{PLACE_SOURCE}' AND content_hash = ? AND NOT EXISTS
                   (SELECT 1 FROM images WHERE content_hash = ? AND latitude IS ? AND longitude IS ?)""",
            [(img.content_hash, img.content_hash, img.latitude, img.longitude) for img in images],
        )
        self._db.executemany(
            """INSERT INTO images(path, size, mtime_ns, content_hash, width, height, format,
                   taken_at, camera, model_id, embedding, indexed_at, changed_generation, phash,
                   latitude, longitude, rating, label, metadata_version)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(path) DO UPDATE SET
                   size=excluded.size, mtime_ns=excluded.mtime_ns,
                   content_hash=excluded.content_hash, width=excluded.width,
                   height=excluded.height, format=excluded.format,
                   taken_at=excluded.taken_at, camera=excluded.camera,
                   model_id=excluded.model_id, embedding=excluded.embedding,
                   indexed_at=excluded.indexed_at,
                   changed_generation=excluded.changed_generation, phash=excluded.phash,
                   latitude=excluded.latitude, longitude=excluded.longitude, rating=excluded.rating,
                   label=excluded.label, metadata_version=excluded.metadata_version""",
            [
                (
                    path_to_db(img.path), img.size, img.mtime_ns, img.content_hash, img.width,
                    img.height, img.format, img.taken_at, img.camera, model_id,
                    np.ascontiguousarray(img.embedding, dtype=np.float32).tobytes(),
                    now if img.read_at is None else img.read_at, generation, img.phash, img.latitude,
                    img.longitude, img.rating, img.label,
                    METADATA_VERSION,
                )
                for img in images
            ],
        )
        self._db.executemany(
            "DELETE FROM failures WHERE path = ?", [(path_to_db(img.path),) for img in images]
        )
        self._db.executemany(
            """INSERT OR REPLACE INTO text_signals(content_hash, source, model, text, created_at)
               VALUES (?, ?, ?, ?, ?)""",
            [(img.content_hash, t.source, t.model, t.text, now) for img in images for t in img.texts],
        )
        silent = [img for img in images if all(t.source != METADATA_SOURCE for t in img.texts)]
        cleared = [img.content_hash for img in silent if self._clear_metadata_text(img, leaving)]
        self._db.executemany(  # their documents are rebuilt by the next TextStore.sync()
            "UPDATE image_text SET text_hash = '' WHERE content_hash = ?",
            [(img.content_hash,) for img in images if img.texts] + [(h,) for h in cleared],
        )

    def _clear_metadata_text(self, image: NewImage, leaving: Collection[str]) -> bool:
        """Drop the metadata text of a file that (its sidecar emptied) says nothing now; kept while
        another indexed copy of the same content stays (not among `leaving`), as that copy may still
        say it. Whether any went."""
        others = self._db.execute(
            "SELECT path FROM images WHERE content_hash = ? AND path != ?", (image.content_hash, path_to_db(image.path))
        )
        if any(path_from_db(path) not in leaving for (path,) in others):
            return False
        return self._db.execute(
            "DELETE FROM text_signals WHERE source = ? AND content_hash = ?", (METADATA_SOURCE, image.content_hash)
        ).rowcount > 0

    def _savepoint(self) -> AbstractContextManager[None]:
        """A nested transaction: undo only what happened inside it on error."""
        return self._atomic("SAVEPOINT record", ("ROLLBACK TO record", "RELEASE record"), "RELEASE record")

    def _delete_images(self, paths: Sequence[str], generation: int) -> None:
        """Delete rows and log their ids, so derived indexes can drop them too."""
        stored = [path_to_db(p) for p in paths]
        self._db.executemany(
            "INSERT OR REPLACE INTO removed_ids(id, generation) SELECT id, ? FROM images WHERE path = ?",
            [(generation, p) for p in stored],
        )
        self._db.executemany("DELETE FROM images WHERE path = ?", [(p,) for p in stored])


_CAPTURE_TIME_SQL = (
    "COALESCE(taken_at, strftime('%Y-%m-%dT%H:%M:%S', mtime_ns / 1000000000, 'unixepoch'))"
)


def _record(row: Sequence[object]) -> ImageRecord:
    """An ImageRecord from a row of _RECORD_COLUMNS."""
    return ImageRecord(row[0], path_from_db(row[1]), *row[2:])  # type: ignore[arg-type]


def _filter_sql(filters: SearchFilters) -> tuple[list[str], list[object]]:
    """WHERE clauses and parameters for a set of filters."""
    clauses: list[str] = []
    params: list[object] = []
    if filters.folder:
        exact, below = _prefix_patterns([Path(normalised_folder(filters.folder))])[0]
        clauses.append(f"({_AT_OR_BELOW})")
        params += [exact, below]
    if filters.after:
        clauses.append(f"{_CAPTURE_TIME_SQL} >= ?")
        params.append(filters.after)
    if filters.before:
        clauses.append(f"{_CAPTURE_TIME_SQL} < ?")
        params.append(filters.before)
    if filters.formats:
        wanted = normalised_formats(filters.formats)
        clauses.append(f"format IN ({','.join('?' * len(wanted))})")
        params += wanted
    if filters.min_width:
        clauses.append("width >= ?")
        params.append(filters.min_width)
    if filters.min_height:
        clauses.append("height >= ?")
        params.append(filters.min_height)
    if filters.camera:
        clauses.append("camera LIKE ? ESCAPE '\\'")
        params.append("%" + _escape_like(filters.camera) + "%")
    if filters.place:
        clauses.append(
            "content_hash IN (SELECT content_hash FROM text_signals WHERE source = ?"
            " AND photoseek_names_match(text, ?))"
        )
        params += [PLACE_SOURCE, filters.place]
    if filters.near:
        latitude, longitude, km = filters.near
        span = km / 111.0  # degrees of latitude; the bound lets the latitude index narrow the scan first
        clauses.append("latitude BETWEEN ? AND ? AND photoseek_distance_km(latitude, longitude, ?, ?) <= ?")
        params += [latitude - span, latitude + span, latitude, longitude, km]
    if filters.min_rating is not None:
        clauses.append("rating >= ?")
        params.append(filters.min_rating)
    if filters.label:
        clauses.append("photoseek_names_match(label, ?)")
        params.append(filters.label)
    if filters.topic:
        # The `topics` text signal holds one topic name per line.
        clauses.append(
            "content_hash IN (SELECT content_hash FROM text_signals WHERE source = 'topics'"
            " AND (char(10) || text || char(10)) LIKE ? ESCAPE '\\')"
        )
        params.append("%\n" + _escape_like(" ".join(filters.topic.split()).lower()) + "\n%")
    return clauses, params


def folded_name(text: str) -> str:
    """A name as the place and label filters compare it: case, accents and spacing aside ('São Paulo' = 'sao paulo')."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def _names_match(text: str | None, wanted: str) -> bool:
    """Whether one line of `text` (or one comma-separated part of a line) is the name `wanted`."""
    if not text:
        return False
    goal = folded_name(wanted)
    for line in text.splitlines():
        if folded_name(line) == goal or any(folded_name(part) == goal for part in line.split(",")):
            return True
    return False


def _distance_km(lat1: float | None, lon1: float | None, lat2: float, lon2: float) -> float:
    """Haversine distance for SQL; no coordinates means infinitely far."""
    if lat1 is None or lon1 is None:
        return math.inf
    return distance_km(lat1, lon1, lat2, lon2)


def _add_functions(db: sqlite3.Connection) -> None:
    """The SQL functions the filters use."""
    db.create_function("photoseek_names_match", 2, _names_match, deterministic=True)
    db.create_function("photoseek_distance_km", 4, _distance_km, deterministic=True)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def at_or_below(roots: Sequence[Path]) -> tuple[str, list[str | bytes]]:
    """A WHERE clause on `images.path`, and its parameters: the path is one of `roots` (real paths,
    as stored) or below one."""
    if not roots:
        return "0", []
    clause = " OR ".join(f"({_SUBTREE})" for _ in roots)
    return f"({clause})", [bound for root in roots for bound in _subtree_bounds(root)]


def _subtree_bounds(root: Path) -> tuple[str | bytes, ...]:
    """The root itself as stored, then the lowest and one-past-highest path below it as stored
    (TEXT, or BLOB when not UTF-8), then the same as BLOB: every path P below the root has
    root/ <= P < root0, as '0' is the byte after '/'."""
    text = str(root).rstrip("/")
    raw = os.fsencode(text)
    return path_to_db(str(root)), path_to_db(text + "/"), path_to_db(text + "0"), raw + b"/", raw + b"0"


def _prefix_patterns(roots: Sequence[Path]) -> list[tuple[str | bytes, str | bytes]]:
    """(exact path, LIKE pattern for everything below it) per root, wildcards escaped, as stored."""
    patterns = []
    for root in roots:
        text = str(root)
        patterns.append((path_to_db(text), path_to_db(_escape_like(text).rstrip("/") + "/%")))
    return patterns
