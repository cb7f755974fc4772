"""Text about images: the signals, the per-image document built from them, BM25 and text embeddings.

Signals are keyed by (content hash, source, model): that key is the cache, so re-indexing a file
whose content is unchanged never recomputes a signal, and a note follows the picture when it is
moved or copied. Each image's signals are joined into one document (`image_text`), which feeds
the FTS5 keyword index (together with the file name); the text embedder embeds each signal on its
own (`piece_embeddings`), so a tag never dilutes a description.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from photoseek.store.catalog import Catalog, at_or_below, escape_undecodable, path_from_db

SOURCES = ("note", "caption", "objects", "metadata", "place", "ocr", "topics")
"""Every signal source, in the order their texts appear in an image's document."""

USER_MODEL = "user"
"""The `model` of signals the user wrote (notes, imported captions)."""

TAGS_MODEL = "user-tags"
"""The `model` of the user's tags (a `note` signal of their own)."""

STALE_TOPICS = "stale"
"""The `model` of topics whose image's text changed since they were computed (see `photoseek.topics`)."""

_WORD = re.compile(r"\w+", re.UNICODE)
_NAME_PART = re.compile(r"\d+|[^\W\d_]+", re.UNICODE)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_HASH_LIKE = re.compile(r"(?<![A-Za-z0-9])(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{8,}(?![A-Za-z0-9])")
_SWITCH = re.compile(r"\d(?=[A-Za-z])|[A-Za-z](?=\d)")
_SUBSTRING_MIN = 4
"""Query words at least this long also match inside run-together OCR text, tags and file names
(the trigram index needs 3; at 3 too many short words hide inside longer ones)."""
_LOOKUP_CHUNK = 500
"""Images per query when reading the stored texts of a batch of rows (one SQL parameter each)."""
_SCOPE_CHUNK = 100
"""Folders or files per query when finding images that lack a signal (5 SQL parameters each)."""
_MEMO_SIZE = 20_000
"""Word look-ups remembered between keyword searches (each a few ids to a few thousand)."""
_T = TypeVar("_T")
_COMMON = 0.5
"""A word in more than this share of the documents says nothing about which image is meant..."""
_COMMON_MIN_DOCUMENTS = 20
"""...once there are this many documents: in a handful, sharing a word is no evidence of that."""
_BM25_SHARE = 0.05
"""How much BM25 moves a keyword score among images covering the same query words."""

STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself no nor not of off on once only or other our ours ourselves out over own same she should so
some such than that the their theirs them themselves then there these they this those through to too
under until up very was we were what when where which while who whom why will with would you your
yours yourself yourselves
""".split())
"""English function words: alone they match nothing, and they never count towards a keyword score."""


@dataclass(frozen=True)
class KeywordHit:
    image_id: int
    score: float
    """In [0, 1]: the IDF-weighted share of the query's distinctive words the image's text contains
    (1 = all of them), nudged by BM25 among images with the same words; comparable across queries."""


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
        self._memo: dict[str, Any] = {}
        self._memo_version = -1

    # -- signals -------------------------------------------------------------------

    def put(self, content_hash: str, source: str, model: str, text: str) -> None:
        """Store (or replace) one signal; an empty text removes it."""
        self.put_many([(content_hash, source, model, text)])

    def put_many(self, rows: Sequence[tuple[str, str, str, str]], *, keep_empty: bool = False) -> None:
        """(content_hash, source, model, text) rows in one transaction.

        With `keep_empty`, an empty text is stored as "looked, found nothing" (an image without
        any text in it), so model-made signals are never recomputed for it either.
        """
        with self.catalog.transaction():
            self._put_all(rows, keep_empty)
            self._touch({row[0] for row in rows})

    def replace_source(self, rows: Sequence[tuple[str, str, str, str]]) -> None:
        """(content_hash, source, model, text) rows that replace every other model's text of their
        source for that image (a new gazetteer's place names replace the old ones); empty texts kept."""
        with self.catalog.transaction():
            self.db.executemany(
                "DELETE FROM text_signals WHERE content_hash = ? AND source = ? AND model != ?",
                [(h, source, model) for h, source, model, _ in rows],
            )
            self._put_all(rows, keep_empty=True)
            self._touch({row[0] for row in rows})

    def drop_other_models(self, source: str, model: str) -> None:
        """Delete every signal of `source` made under another model than `model` (topics tagged
        under a new key replace those of the old one, once the new ones are in)."""
        with self.catalog.transaction():
            self.db.execute("DELETE FROM text_signals WHERE source = ? AND model != ?", (source, model))

    def text_counts(self, source: str, models: Sequence[str]) -> list[tuple[str, int]]:
        """Each distinct non-empty text of `source` under these models, with how many indexed images
        carry it (a topic's size, say)."""
        marks = ", ".join("?" * len(models))
        return self.db.execute(
            f"""SELECT s.text, COUNT(*) FROM images i JOIN text_signals s
                   ON s.content_hash = i.content_hash AND s.source = ? AND s.model IN ({marks})
               WHERE s.text != '' GROUP BY s.text""",
            (source, *models),
        ).fetchall()

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

    def signal_rows(self, content_hash: str) -> list[tuple[str, str, str]]:
        """(source, model, text) of one image's non-empty signals, by source and model."""
        return self.db.execute(
            "SELECT source, model, text FROM text_signals WHERE content_hash = ? AND text != '' ORDER BY source, model",
            (content_hash,),
        ).fetchall()

    def has_any(self) -> bool:
        """True when any indexed image has a text signal (hybrid search is then the default)."""
        row = self.db.execute(
            "SELECT 1 FROM image_text WHERE body != '' LIMIT 1"
        ).fetchone()
        return row is not None

    def texts_by_image(self, limit: int | None = None) -> dict[int, list[str]]:
        """One image id per content -> its own texts (every source but topics, which are derived from
        the other signals); `limit` images at most, spread over the library."""
        return self.fit_texts(limit)[0]

    def fit_texts(self, limit: int | None = None) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
        """In one read, for fitting calibrations: `texts_by_image(limit)`, and of those images the texts
        that describe the picture (notes, captions, embedded descriptions; not tags, OCR or object counts)."""
        rows = self.db.execute(
            """SELECT i.id, s.text, s.source IN ('note', 'caption', 'metadata') AND s.model != ? FROM text_signals s
               JOIN (SELECT content_hash, MIN(id) AS id FROM images GROUP BY content_hash) i
                 ON i.content_hash = s.content_hash
               WHERE s.text != '' AND s.source != 'topics' ORDER BY i.id, s.source, s.model""",
            (TAGS_MODEL,),
        ).fetchall()
        found: dict[int, list[str]] = {}
        describing: dict[int, list[str]] = {}
        for image_id, text, describes in rows:
            found.setdefault(int(image_id), []).append(text)
            if describes:
                describing.setdefault(int(image_id), []).append(text)
        if limit is not None and len(found) > limit:
            keys = sorted(found)
            found = {keys[i]: found[keys[i]] for i in np.linspace(0, len(keys) - 1, limit).astype(np.int64)}
        return found, {i: d for i, d in describing.items() if i in found}

    def texted_count(self) -> int:
        """Images (by content) carrying any text besides topics."""
        row = self.db.execute(
            """SELECT COUNT(DISTINCT s.content_hash) FROM text_signals s
               WHERE s.text != '' AND s.source != 'topics'
                 AND EXISTS (SELECT 1 FROM images i WHERE i.content_hash = s.content_hash)"""
        ).fetchone()
        return int(row[0])

    def hashes_missing(
        self, source: str, model: str, under: Sequence[Path] | None = None
    ) -> list[tuple[str, str]]:
        """(content_hash, one path) of indexed images without this signal, for enrichment passes;
        with `under` (real paths of folders or files), only the images at or below them."""
        paths = list(under or ())
        scopes = [("1", [])] if under is None else [
            at_or_below(paths[start : start + _SCOPE_CHUNK]) for start in range(0, len(paths), _SCOPE_CHUNK)
        ]
        found: dict[str, str] = {}
        for scope, params in scopes:
            for content_hash, path in self.db.execute(
                f"""SELECT content_hash, MIN(path) FROM images
                   WHERE {scope} AND content_hash NOT IN
                       (SELECT content_hash FROM text_signals WHERE source = ? AND model = ?)
                   GROUP BY content_hash""",
                (*params, source, model),
            ):
                found[content_hash] = min(found.get(content_hash, path_from_db(path)), path_from_db(path))
        return sorted(found.items(), key=lambda item: item[1])

    # -- documents and keyword search ----------------------------------------------

    def sync(self) -> int:
        """Rebuild the documents of new, changed and touched images; drop those of removed ones."""
        with self.catalog.transaction():
            for table in ("text_fts", "text_substrings"):
                self.db.execute(f"DELETE FROM {table} WHERE rowid NOT IN (SELECT id FROM images)")
            self.db.execute("DELETE FROM image_text WHERE image_id NOT IN (SELECT id FROM images)")
            stale = self.db.execute(
                """SELECT i.id, i.path, i.content_hash FROM images i
                   LEFT JOIN image_text t ON t.image_id = i.id
                   WHERE t.image_id IS NULL OR t.content_hash != i.content_hash
                      OR t.text_hash = ''"""
            ).fetchall()
            for image_id, path, content_hash in stale:
                signals = self.signals(content_hash)
                body = "\n".join(signals.values())
                # OCR runs words and numbers together (EXIT42NORTH): split it as file names are split.
                words = "\n".join(split_words(t) if s == "ocr" else t for s, t in signals.items())
                self.db.execute(
                    "INSERT OR REPLACE INTO image_text(image_id, content_hash, text_hash, body)"
                    " VALUES (?, ?, ?, ?)",
                    (image_id, content_hash, _text_hash(body), body),
                )
                name = Path(path_from_db(path)).name
                substrings = (_without_hashes(escape_undecodable(name)), self._substring_text(content_hash))
                for table, fields in (("text_fts", (_name_words(name), words)), ("text_substrings", substrings)):
                    self.db.execute(f"DELETE FROM {table} WHERE rowid = ?", (image_id,))
                    self.db.execute(f"INSERT INTO {table}(rowid, name, body) VALUES (?, ?, ?)", (image_id, *fields))
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

    def keyword_search(self, words: Sequence[str], avoid: Sequence[str], limit: int) -> list[KeywordHit]:
        """Images whose file name or text contains the query's distinctive words, best first.

        A word counts when the word index has it (stemmed), or, for words of 4+ letters, when it
        occurs inside OCR text, tags or the file name (the trigram index: "bakery" in HARBOURBAKERY).
        Stop words and words in most documents are not distinctive; a query with none matches nothing.
        Scores are the IDF-weighted share of the distinctive words present, so a one-word tag match and
        a ten-word caption match are on one scale (see `KeywordHit.score`). `limit` -1: every match.
        """
        wanted = [w for w in _query_words(words) if w not in STOP_WORDS]
        documents = self._document_count()
        if not wanted or not documents:
            return []
        common = max(_COMMON * documents, 1.0) if documents >= _COMMON_MIN_DOCUMENTS else documents
        distinctive = {w: ids for w in wanted if len(ids := self._containing(w)) <= common}
        if not any(len(ids) for ids in distinctive.values()):
            return []
        counts = np.array([len(ids) for ids in distinctive.values()])
        idf = np.log(1.0 + (documents - counts + 0.5) / (counts + 0.5))
        found = np.concatenate(list(distinctive.values()))
        shares = np.repeat(idf / idf.sum(), counts)
        ids, where = np.unique(found, return_inverse=True)
        coverage = np.minimum(np.bincount(where, weights=shares), 1.0)
        avoided = [self._containing(w) for w in _query_words(avoid)]
        if avoided:
            keep = ~np.isin(ids, np.concatenate(avoided))
            ids, coverage = ids[keep], coverage[keep]
        bm25 = self._bm25([w for w, matched in distinctive.items() if len(matched)])
        relative = np.array([bm25.get(int(i), 0.0) for i in ids]) / (max(bm25.values(), default=0.0) or 1.0)
        scores = coverage * (1.0 - _BM25_SHARE * (1.0 - relative))
        order = np.lexsort((ids, -scores))
        if limit >= 0:
            order = order[:limit]
        return [KeywordHit(int(i), float(score)) for i, score in zip(ids[order], scores[order])]

    def snippets(self, ids: Sequence[int], words: Sequence[str]) -> dict[int, str]:
        """The matched words of these images in context ("…the [bakery] on…"), for explanations:
        from the word index, else from run-together text in the substring index."""
        wanted = [w for w in _query_words(words) if w not in STOP_WORDS]
        found: dict[int, str] = {}
        if not wanted or not ids:
            return found
        long_words = [w for w in wanted if len(w) >= _SUBSTRING_MIN]
        for table, terms in (("text_fts", wanted), ("text_substrings", long_words)):
            missing = [i for i in ids if i not in found]
            if not terms or not missing:
                continue
            for chunk in _chunks(missing):
                marks = ",".join("?" * len(chunk))
                for image_id, snippet in self.db.execute(
                    f"""SELECT rowid, snippet({table}, -1, '[', ']', '…', 12) FROM {table}
                        WHERE {table} MATCH ? AND rowid IN ({marks})""",
                    (" OR ".join(_quoted(w) for w in terms), *chunk),
                ):
                    found[int(image_id)] = snippet
        return found

    def _document_count(self) -> int:
        return self._cached("documents", lambda: int(self.db.execute("SELECT COUNT(*) FROM image_text").fetchone()[0]))

    def _containing(self, word: str) -> np.ndarray:
        """Sorted ids of images whose word index, or (long words) substring index, has `word`;
        remembered until the documents change, since common query words recur across queries."""
        def look_up() -> np.ndarray:
            query = "SELECT rowid FROM text_fts WHERE text_fts MATCH ?"
            found = {r[0] for r in self.db.execute(query, (_quoted(word),))}
            if len(word) >= _SUBSTRING_MIN:
                found.update(r[0] for r in self.db.execute(
                    "SELECT rowid FROM text_substrings WHERE text_substrings MATCH ?", (_quoted(word),)
                ))
            return np.array(sorted(found), dtype=np.int64)
        return self._cached(f"word:{word}", look_up)

    def _cached(self, key: str, compute: Callable[[], _T]) -> _T:
        """A value derived from the documents, recomputed once they change (bounded cache)."""
        version = self.version()
        if self._memo_version != version or len(self._memo) > _MEMO_SIZE:
            self._memo, self._memo_version = {}, version
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def _bm25(self, words: Sequence[str]) -> dict[int, float]:
        """BM25 (higher is better) of every image the word index finds for any of `words`."""
        if not words:
            return {}
        rows = self.db.execute(
            "SELECT rowid, -bm25(text_fts) FROM text_fts WHERE text_fts MATCH ?",
            (" OR ".join(_quoted(w) for w in words),),
        ).fetchall()
        return {int(r[0]): float(r[1]) for r in rows}

    def _substring_text(self, content_hash: str) -> str:
        """OCR text and tags: the texts where words run together or are codes, for substring search."""
        rows = self.db.execute(
            """SELECT text FROM text_signals WHERE content_hash = ? AND text != ''
               AND (source = 'ocr' OR model = ?) ORDER BY source, model""",
            (content_hash, TAGS_MODEL),
        )
        return "\n".join(r[0] for r in rows)

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

    def embeddings_by_hash(self, model: str) -> dict[str, tuple[str, np.ndarray]]:
        """content hash -> (text hash, embedding) of every text embedded under `model`, current or
        not: a caller that embeds texts of its own compares the text hash to reuse what it can."""
        rows = self.db.execute(
            "SELECT content_hash, text_hash, embedding FROM text_embeddings WHERE model = ?", (model,)
        )
        return {h: (th, np.frombuffer(e, dtype=np.float32)) for h, th, e in rows}

    def pending_pieces(self, model: str) -> list[PendingText]:
        """Distinct texts of indexed images (each signal on its own) without an embedding for `model`."""
        done = {r[0] for r in self.db.execute("SELECT text_hash FROM text_piece_embeddings WHERE model = ?", (model,))}
        pending: dict[str, PendingText] = {}
        for (text,) in self.db.execute(
            """SELECT DISTINCT s.text FROM text_signals s WHERE s.text != ''
               AND EXISTS (SELECT 1 FROM images i WHERE i.content_hash = s.content_hash)"""
        ):
            digest = _text_hash(text)
            if digest not in done:
                pending.setdefault(digest, PendingText("", digest, text))
        return list(pending.values())

    def put_piece_embeddings(self, model: str, texts: Sequence[PendingText], vectors: np.ndarray) -> None:
        with self.catalog.transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO text_piece_embeddings(model, text_hash, embedding) VALUES (?, ?, ?)",
                [(model, t.text_hash, np.asarray(v, dtype=np.float32).tobytes()) for t, v in zip(texts, vectors)],
            )
            self._bump_version()

    def piece_embeddings(self, model: str) -> tuple[np.ndarray, np.ndarray]:
        """(image id per row, matrix): one row per text of each image that has an embedding, by image id."""
        stored = self.db.execute("SELECT text_hash, embedding FROM text_piece_embeddings WHERE model = ?", (model,))
        vectors = {h: np.frombuffer(e, dtype=np.float32) for h, e in stored}
        rows = [
            (image_id, vector)
            for image_id, text in self.db.execute(
                """SELECT i.id, s.text FROM images i JOIN text_signals s ON s.content_hash = i.content_hash
                   WHERE s.text != '' ORDER BY i.id"""
            )
            if (vector := vectors.get(_text_hash(text))) is not None
        ]
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        if not rows:
            return ids, np.empty((0, 0), dtype=np.float32)
        return ids, np.stack([r[1] for r in rows])

    # -- internals -----------------------------------------------------------------

    def _put_all(self, rows: Sequence[tuple[str, str, str, str]], keep_empty: bool) -> None:
        """Write the rows as if one by one, in order (the last row of a key wins; an empty text
        removes the signal unless `keep_empty`), reading the stored texts once: an image whose text
        changes has its topics (computed from that text) marked stale before any topics the rows bring
        for it: kept until recomputed, under a key no tagging run uses, so the next run tags it again."""
        unknown = {source for _, source, _, _ in rows} - set(SOURCES)
        if unknown:
            raise ValueError(f"unknown text source {sorted(unknown)[0]!r}")
        stored = self._texts_of({(h, source) for h, source, _, _ in rows if source != "topics"})
        retag: set[str] = set()
        topics: set[str] = set()
        writes: dict[tuple[str, str, str], str | None] = {}
        for content_hash, source, model, text in rows:
            key, text = (content_hash, source, model), text.strip()
            if source != "topics" and stored.get(key, "") != text:
                if content_hash in topics:  # topics the rows wrote earlier go stale too: write them first
                    self._write(retag, writes)
                    retag, topics, writes = set(), set(), {}
                retag.add(content_hash)
            if source == "topics":
                topics.add(content_hash)
            stored[key] = text
            writes[key] = text if text or keep_empty else None
        self._write(retag, writes)

    def _texts_of(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str, str], str]:
        """(content_hash, source, model) -> stored text, of these (content_hash, source) pairs (any model)."""
        found: dict[tuple[str, str, str], str] = {}
        hashes, sources = sorted({h for h, _ in keys}), sorted({source for _, source in keys})
        in_sources = f"source IN ({', '.join('?' * len(sources))})"
        for start in range(0, len(hashes), _LOOKUP_CHUNK):
            chunk = hashes[start : start + _LOOKUP_CHUNK]
            for content_hash, source, model, text in self.db.execute(
                "SELECT content_hash, source, model, text FROM text_signals"
                f" WHERE {in_sources} AND content_hash IN ({', '.join('?' * len(chunk))})",
                [*sources, *chunk],
            ):
                found[(content_hash, source, model)] = text
        return found

    def _write(self, retag: set[str], writes: dict[tuple[str, str, str], str | None]) -> None:
        """Mark the topics of the `retag` images stale, then store the texts (None: delete the signal)."""
        self.db.executemany(
            "UPDATE OR REPLACE text_signals SET model = ? WHERE content_hash = ? AND source = 'topics'",
            [(STALE_TOPICS, content_hash) for content_hash in sorted(retag)],
        )
        now = time.time()
        self.db.executemany(
            "INSERT OR REPLACE INTO text_signals(content_hash, source, model, text, created_at) VALUES (?, ?, ?, ?, ?)",
            [(*key, text, now) for key, text in writes.items() if text is not None],
        )
        self.db.executemany(
            "DELETE FROM text_signals WHERE content_hash = ? AND source = ? AND model = ?",
            [key for key, text in writes.items() if text is None],
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


def split_words(text: str) -> str:
    """'IMG_2041 beachParty.jpg' -> 'IMG 2041 beach Party jpg', 'EXIT42NORTH' -> 'EXIT 42 NORTH':
    file names and OCR text split into words and numbers for the word index, as queries are split."""
    return " ".join(_NAME_PART.findall(_CAMEL.sub(" ", text)))


def _name_words(name: str) -> str:
    """'IMG_2041 beachParty.jpg' -> 'IMG 2041 beach Party jpg': file names split into words and numbers,
    without hash-like parts ('3fa9e0c1'), whose digits would match any number asked for."""
    return split_words(_without_hashes(name))


def _without_hashes(name: str) -> str:
    """The name without hash-like runs: 8+ letters and digits mixing both, with 4+ letter/digit switches
    ('3fa9e0c1', 'a1b2c3d4e5'); 'IMG2041' and 'DSC01234' are kept."""
    return _HASH_LIKE.sub(lambda m: " " if len(_SWITCH.findall(m.group())) >= 4 else m.group(), name)


def _query_words(texts: Sequence[str]) -> list[str]:
    """Lower-cased words of the texts, in order, each once; letters and digits split as in file names."""
    words = (w.lower() for text in texts for w in _NAME_PART.findall(text))
    return list(dict.fromkeys(words))


def _quoted(word: str) -> str:
    """One FTS5 string token, so no query syntax (AND, NEAR, *, quotes) leaks in."""
    return '"' + word.replace('"', '""') + '"'


def _chunks(ids: list[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield [int(i) for i in ids[start : start + size]]
