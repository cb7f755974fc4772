"""TextStore.put_many: one read of the stored texts per batch, and the same outcome as writing row by row."""

from __future__ import annotations

from pathlib import Path

from photoseek.store.catalog import Catalog
from photoseek.store.text import STALE_TOPICS, TextStore

KEY = "topics-key"


def _signals(catalog: Catalog) -> list[tuple[str, str, str, str]]:
    return catalog.db.execute(
        "SELECT content_hash, source, model, text FROM text_signals ORDER BY 1, 2, 3"
    ).fetchall()


def _seeded(path: Path) -> tuple[Catalog, TextStore]:
    catalog = Catalog(path)
    texts = TextStore(catalog)
    texts.put_many([
        ("a", "caption", "blip", "a dog"), ("a", "topics", KEY, "dogs"),
        ("b", "caption", "blip", "a cat"), ("b", "topics", KEY, "cats"),
        ("c", "caption", "blip", "a car"), ("c", "topics", KEY, "cars"),
        ("d", "ocr", "tesseract", "EXIT"), ("e", "topics", KEY, "boats"),
    ])
    return catalog, texts


BATCH = [
    ("a", "caption", "blip", "  a dog  "),  # unchanged once stripped: a's topics stay
    ("b", "topics", KEY, "cats, pets"),  # new topics, then b's caption changes: they go stale
    ("b", "caption", "blip", "a sleeping cat"),
    ("c", "caption", "blip", "a red car"),  # c's caption changes, then new topics: those stay
    ("c", "topics", KEY, "cars, red"),
    ("d", "ocr", "tesseract", "EXIT 42"),  # the same key twice: the last row wins
    ("d", "ocr", "tesseract", ""),
    ("e", "note", "user", "at the harbour"),  # a new text: e's topics go stale
]


def test_a_batch_ends_as_the_same_rows_written_one_by_one(tmp_path):
    bulk, bulk_texts = _seeded(tmp_path / "bulk.db")
    single, single_texts = _seeded(tmp_path / "single.db")
    with bulk, single:
        bulk_texts.put_many(BATCH)
        for row in BATCH:
            single_texts.put_many([row])
        assert _signals(bulk) == _signals(single)
        assert _signals(bulk) == [
            ("a", "caption", "blip", "a dog"), ("a", "topics", KEY, "dogs"),
            ("b", "caption", "blip", "a sleeping cat"), ("b", "topics", STALE_TOPICS, "cats, pets"),
            ("c", "caption", "blip", "a red car"), ("c", "topics", STALE_TOPICS, "cars"),
            ("c", "topics", KEY, "cars, red"),
            ("e", "note", "user", "at the harbour"), ("e", "topics", STALE_TOPICS, "boats"),
        ]


def test_an_empty_text_is_kept_as_looked_and_found_nothing_when_asked(tmp_path):
    catalog, texts = _seeded(tmp_path / "c.db")
    with catalog:
        texts.put_many([("d", "ocr", "tesseract", ""), ("f", "ocr", "tesseract", " ")], keep_empty=True)
        assert [row for row in _signals(catalog) if row[1] == "ocr"] == [
            ("d", "ocr", "tesseract", ""), ("f", "ocr", "tesseract", "")
        ]


def test_a_batch_reads_the_stored_texts_once(tmp_path):
    catalog = Catalog(tmp_path / "c.db")
    texts = TextStore(catalog)
    rows = [(f"h{i}", "caption", "blip", f"photo {i}") for i in range(300)]
    with catalog:
        texts.put_many(rows)
        statements: list[str] = []
        catalog.db.set_trace_callback(statements.append)
        texts.put_many([(h, source, model, text + (" again" if i % 2 else "")) for i, (h, source, model, text)
                        in enumerate(rows)])
        catalog.db.set_trace_callback(None)
        reads = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "text_signals" in s]
        assert len(reads) == 1, reads
        assert len(_signals(catalog)) == 300
        assert texts.get("h1", "caption", "blip") == "photo 1 again"
