"""Text about images: the signals, the per-image document built from them, BM25 and text embeddings.

Signals are keyed by (content hash, source, model): that key is the cache, so re-indexing a file
whose content is unchanged never recomputes a signal, and a note follows the picture when it is
moved or copied. Each image's signals are joined into one document (`image_text`), which feeds
the FTS5 keyword index (together with the file name) and the text embedder.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgsearch.store.catalog import Catalog, path_from_db

SOURCES = ("note", "caption", "objects", "metadata", "ocr", "topics")
"""Every signal source, in the order their texts appear in an image's document."""

USER_MODEL = "user"
"""The `model` of signals the user wrote (notes, tags, imported captions)."""

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class KeywordHit:
    image_id: int
    score: float
    """BM25, higher is better (SQLite's bm25() negated)."""
    snippet: str


@dataclass(frozen=True)
class PendingText:
    """An image document that has no up-to-date embedding for some text model."""

    content_hash: str
    text_hash: str
    body: str


class TextStore:
    """Reads and writes the text tables of one catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.db = catalog.db

    # -- signals -------------------------------------------------------------------

    def put(self, content_hash: str, source: str, model: str, text: str) -> None:
        """Store (or replace) one signal; an empty text removes it."""
        with self.catalog.transaction():
            self._put(content_hash, source, model, text)
            self._touch([content_hash])

    def put_many(self, rows: Sequence[tuple[str, str, str, str]], *, keep_empty: bool = False) -> None:
        """(content_hash, source, model, text) rows in one transaction.

        With `keep_empty`, an empty text is stored as "looked, found nothing" (an image without
        any text in it), so model-made signals are never recomputed for it either.
        """
        with self.catalog.transaction():
            for row in rows:
                self._put(*row, keep_empty=keep_empty)
            self._touch({row[0] for row in rows})

    def get(self, content_hash: str, source: str, model: str) -> str | None:
        row = self.db.execute(
            "SELECT text FROM text_signals WHERE content_hash = ? AND source = ? AND model = ?",
            (content_hash, source, model),
        ).fetchone()
        return row[0] if row else None

    def signals(self, content_hash: str) -> dict[str, str]:
        """source -> text (texts of one source from several models joined), in document order."""
        found: dict[str, list[str]] = {}
        for source, text in self.db.execute(
            "SELECT source, text FROM text_signals WHERE content_hash = ? AND text != '' ORDER BY source, model",
            (content_hash,),
        ):
            found.setdefault(source, []).append(text)
        return {s: "\n".join(found[s]) for s in SOURCES if s in found}

    def has_any(self) -> bool:
        """True when any indexed image has a text signal (hybrid search is then the default)."""
        row = self.db.execute(
            "SELECT 1 FROM image_text WHERE body != '' LIMIT 1"
        ).fetchone()
        return row is not None

    def hashes_missing(self, source: str, model: str) -> list[tuple[str, str]]:
        """(content_hash, one path) of indexed images without this signal, for enrichment passes."""
        rows = self.db.execute(
            """SELECT content_hash, MIN(path) FROM images
               WHERE content_hash NOT IN
                   (SELECT content_hash FROM text_signals WHERE source = ? AND model = ?)
               GROUP BY content_hash ORDER BY MIN(path)""",
            (source, model),
        )
        return [(content_hash, path_from_db(path)) for content_hash, path in rows]

    # -- documents and keyword search ----------------------------------------------

    def sync(self) -> int:
        """Rebuild the documents of new, changed and touched images; drop those of removed ones."""
        with self.catalog.transaction():
            self.db.execute(
                "DELETE FROM text_fts WHERE rowid NOT IN (SELECT id FROM images)"
            )
            self.db.execute("DELETE FROM image_text WHERE image_id NOT IN (SELECT id FROM images)")
            stale = self.db.execute(
                """SELECT i.id, i.path, i.content_hash FROM images i
                   LEFT JOIN image_text t ON t.image_id = i.id
                   WHERE t.image_id IS NULL OR t.content_hash != i.content_hash
                      OR t.text_hash = ''"""
            ).fetchall()
            for image_id, path, content_hash in stale:
                body = "\n".join(self.signals(content_hash).values())
                self.db.execute(
                    "INSERT OR REPLACE INTO image_text(image_id, content_hash, text_hash, body)"
                    " VALUES (?, ?, ?, ?)",
                    (image_id, content_hash, _text_hash(body), body),
                )
                self.db.execute("DELETE FROM text_fts WHERE rowid = ?", (image_id,))
                self.db.execute(
                    "INSERT INTO text_fts(rowid, name, body) VALUES (?, ?, ?)",
                    (image_id, _name_words(path_from_db(path)), body),
                )
            self._bump_version()
        return len(stale)

    def version(self) -> int:
        """A counter bumped whenever documents or their embeddings change, for in-memory caches."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'text_version'").fetchone()
        return int(row[0]) if row else 0

    def documents(self, ids: Iterable[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            for image_id, body in self.db.execute(
                f"SELECT image_id, body FROM image_text WHERE image_id IN ({marks})", chunk
            ):
                found[image_id] = body
        return found

    def keyword_search(
        self, words: Sequence[str], avoid: Sequence[str], limit: int, *, snippets: bool = True
    ) -> list[KeywordHit]:
        """BM25 over file names and documents; any word may match, more and rarer words rank higher.

        `snippets=False` skips the matched-text excerpts (most of the cost when every document is
        scored, as an evaluation does)."""
        match = _fts_query(words, avoid)
        if not match:
            return []
        snippet = "snippet(text_fts, -1, '[', ']', '…', 12)" if snippets else "''"
        rows = self.db.execute(
            f"""SELECT rowid, -bm25(text_fts), {snippet}
               FROM text_fts WHERE text_fts MATCH ? ORDER BY bm25(text_fts) LIMIT ?""",
            (match, limit),
        ).fetchall()
        return [KeywordHit(int(r[0]), float(r[1]), r[2]) for r in rows]

    # -- embeddings ----------------------------------------------------------------

    def pending_embeddings(self, model: str) -> list[PendingText]:
        """Non-empty documents whose stored embedding for `model` is missing or out of date."""
        rows = self.db.execute(
            """SELECT DISTINCT t.content_hash, t.text_hash, t.body FROM image_text t
               LEFT JOIN text_embeddings e ON e.content_hash = t.content_hash AND e.model = ?
               WHERE t.body != '' AND (e.text_hash IS NULL OR e.text_hash != t.text_hash)""",
            (model,),
        ).fetchall()
        return [PendingText(*row) for row in rows]

    def put_embeddings(self, model: str, texts: Sequence[PendingText], vectors: np.ndarray) -> None:
        with self.catalog.transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO text_embeddings(content_hash, model, text_hash, embedding)"
                " VALUES (?, ?, ?, ?)",
                [
                    (t.content_hash, model, t.text_hash, np.asarray(v, dtype=np.float32).tobytes())
                    for t, v in zip(texts, vectors)
                ],
            )
            self._bump_version()

    def embeddings(self, model: str) -> tuple[np.ndarray, np.ndarray]:
        """(image ids, matrix) of every image whose document has an up-to-date embedding."""
        rows = self.db.execute(
            """SELECT t.image_id, e.embedding FROM image_text t
               JOIN text_embeddings e ON e.content_hash = t.content_hash AND e.model = ?
                    AND e.text_hash = t.text_hash
               ORDER BY t.image_id""",
            (model,),
        ).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        if not rows:
            return ids, np.empty((0, 0), dtype=np.float32)
        return ids, np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])

    # -- internals -----------------------------------------------------------------

    def _put(self, content_hash: str, source: str, model: str, text: str, keep_empty: bool = False) -> None:
        if source not in SOURCES:
            raise ValueError(f"unknown text source {source!r}")
        if text.strip() or keep_empty:
            self.db.execute(
                "INSERT OR REPLACE INTO text_signals(content_hash, source, model, text, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (content_hash, source, model, text.strip(), time.time()),
            )
        else:
            self.db.execute(
                "DELETE FROM text_signals WHERE content_hash = ? AND source = ? AND model = ?",
                (content_hash, source, model),
            )

    def _bump_version(self) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES ('text_version', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    def _touch(self, hashes: Iterable[str]) -> None:
        """Mark these images' documents stale so the next `sync` rebuilds them."""
        self.db.executemany(
            "UPDATE image_text SET text_hash = '' WHERE content_hash = ?", [(h,) for h in hashes]
        )


def _text_hash(body: str) -> str:
    return hashlib.blake2b(body.encode("utf-8"), digest_size=8).hexdigest()


def _name_words(path: str) -> str:
    """'IMG_2041 beach-party.jpg' -> 'IMG 2041 beach party jpg', so file-name words match."""
    return " ".join(_WORD.findall(Path(path).name.replace("_", " ")))


def _fts_query(words: Sequence[str], avoid: Sequence[str]) -> str:
    """An FTS5 query: any of the words (each quoted, so no operator syntax leaks in), none of `avoid`."""
    def terms(texts: Sequence[str]) -> list[str]:
        return [f'"{w}"' for text in texts for w in _WORD.findall(text.replace("_", " ").lower())]

    wanted, unwanted = terms(words), terms(avoid)
    if not wanted:
        return ""
    query = " OR ".join(dict.fromkeys(wanted))
    return f"({query}) NOT ({' OR '.join(dict.fromkeys(unwanted))})" if unwanted else query


def _chunks(ids: list[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield [int(i) for i in ids[start : start + size]]
