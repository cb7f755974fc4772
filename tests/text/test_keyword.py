"""Keyword search: one score scale for every query length, substrings, file-name words, no noise."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from photoseek import ImageIndex
from photoseek.search.fusion import DEFAULT_MIN_SCORE, PRIOR
from photoseek.store.catalog import SCHEMA_VERSION, Catalog
from tests.helpers import draw_photo, run_cli, run_json, texts_of

OCR_MODEL = "rapidocr"


@pytest.fixture
def shop(tmp_path, tiny_clip_dir) -> tuple[Path, Path]:
    """Five photos: a shop sign read as one run-together word, a tagged one, notes, a camera file name."""
    root = tmp_path / "photos"
    for seed, (name, colour) in enumerate([("sign.png", "red"), ("granny.png", "green"), ("dog.png", "blue"),
                                           ("beach.png", "yellow"), ("IMG2041.png", "purple")]):
        draw_photo(root / name, colour, seed=seed)
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    with ImageIndex(db) as index:
        sign = index.find(root / "sign.png")
        texts_of(index).put(sign.content_hash, "ocr", OCR_MODEL, "HARBOURBAKERY\nOPEN 7-19")
        texts_of(index).sync()
    run_cli("tag", root / "granny.png", "Grandma Rosa 12", "--db", db)
    run_cli("describe", root / "dog.png", "a brown dog asleep on the red sofa in the living room", "--db", db)
    run_cli("describe", root / "beach.png", "the family on the beach at sunset with a kite", "--db", db)
    return root, db


def _keyword(db: Path, query: str, *extra: str) -> list[dict]:
    return run_json("search", query, "--mode", "keyword", "--db", db, *extra)["results"]


def test_a_word_inside_run_together_ocr_text_is_found(shop):
    root, db = shop
    results = _keyword(db, "bakery", "--explain")
    assert [Path(r["path"]).name for r in results] == ["sign.png"]
    assert "[BAKERY]" in results[0]["matched_text"].upper()
    assert Path(_keyword(db, "harbour")[0]["path"]).name == "sign.png"


def test_file_names_split_into_words_and_numbers(shop):
    _, db = shop
    assert [Path(r["path"]).name for r in _keyword(db, "2041")] == ["IMG2041.png"]
    assert [Path(r["path"]).name for r in _keyword(db, "img 2041")] == ["IMG2041.png"]


def test_scores_share_one_scale_for_short_and_long_queries(shop):
    _, db = shop
    tag = _keyword(db, "Rosa 12")[0]
    caption = _keyword(db, "a brown dog asleep on the red sofa in the living room")[0]
    assert Path(tag["path"]).name == "granny.png" and Path(caption["path"]).name == "dog.png"
    assert tag["score"] == pytest.approx(caption["score"], abs=0.02) and tag["score"] > 0.9
    partial = _keyword(db, "dog kite")
    assert {Path(r["path"]).name for r in partial} == {"dog.png", "beach.png"}
    assert all(DEFAULT_MIN_SCORE < r["score"] < tag["score"] - 0.3 for r in partial)


@pytest.mark.parametrize("query", ["the", "a", "the and of", "SELECT * FROM users", "xyzzy plugh"])
def test_stop_words_and_unknown_words_match_nothing(shop, query):
    _, db = shop
    assert _keyword(db, query, "--min-score", "0") == []
    assert f"No image text contains the words of {query!r}" in run_cli("search", query, "--mode", "keyword", "--db", db)


def test_a_word_in_most_documents_is_not_distinctive_in_a_large_catalog(shop, monkeypatch):
    from photoseek.store import text

    root, db = shop
    for name in ("sign.png", "granny.png", "IMG2041.png"):
        run_cli("tag", root / name, "holiday", "--db", db)
    holiday = sorted(Path(r["path"]).name for r in _keyword(db, "holiday", "--min-score", "0"))
    assert holiday == ["IMG2041.png", "granny.png", "sign.png"]  # 5 documents are too few to call it common
    monkeypatch.setattr(text, "_COMMON_MIN_DOCUMENTS", 5)
    assert _keyword(db, "holiday", "--min-score", "0") == []  # in 3 of 5 images: says nothing


def test_keyword_evidence_alone_carries_a_result_above_the_cut_off(shop, text_model_cache):
    _, db = shop
    payload = run_json("search", "Rosa 12", "--explain", "--db", db)
    first = payload["results"][0]
    assert Path(first["path"]).name == "granny.png"
    assert first["signals"]["keyword"] >= DEFAULT_MIN_SCORE  # above the cut-off on its own


def test_a_version_4_catalog_gets_the_substring_index(shop):
    root, db = shop
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE text_substrings")
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    Catalog(db).close()
    assert [Path(r["path"]).name for r in _keyword(db, "bakery")] == ["sign.png"]


def test_a_version_5_catalog_splits_its_ocr_text_on_the_next_index(shop, tiny_clip_dir):
    root, db = shop
    with ImageIndex(db) as index:
        sign = index.find(root / "sign.png")
        texts_of(index).put(sign.content_hash, "ocr", OCR_MODEL, "EXIT42NORTH")
        texts_of(index).sync()
    with sqlite3.connect(db) as conn:  # as a version 5 catalog indexed it: the OCR text in one piece
        conn.execute("UPDATE text_fts SET body = 'EXIT42NORTH' WHERE rowid = ?", (sign.id,))
        conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    assert [Path(r["path"]).name for r in _keyword(db, "exit 42")] == ["sign.png"]


def test_a_one_word_query_finds_the_note_that_mentions_it(shop, text_model_cache):
    _, db = shop
    for mode in ("text", "hybrid", "keyword"):
        results = run_json("search", "dog", "--mode", mode, "--db", db)["results"]
        assert results and Path(results[0]["path"]).name == "dog.png", mode


@pytest.mark.parametrize("mode", ["keyword", "text", "hybrid"])
def test_score_matrix_gives_the_scores_search_ranks_by(shop, text_model_cache, mode):
    """The evaluation's batched scores (`score_matrix`) are exactly those `search` ranks by."""
    _, db = shop
    queries = ["bakery", "Rosa 12", "dog", "a brown dog asleep on the sofa", "family kite at the beach"]
    with ImageIndex(db) as index:
        ids = np.array(sorted(r.id for r in index.search_many(["x"], mode="clip", k=100, min_score=-1)[0]))
        matrix = index.score_matrix(queries, ids, mode=mode)
        for row, results in zip(matrix, index.search_many(queries, mode=mode, k=len(ids), min_score=0)):
            found = {r.id: r.score for r in results}
            assert found == pytest.approx({i: s for i, s in zip(ids.tolist(), row) if i in found}, abs=1e-6)
            # An image no signal brought in has no evidence for it: the prior probability of a match.
            assert all(s == pytest.approx(PRIOR, abs=1e-6) for i, s in zip(ids.tolist(), row) if i not in found)


def test_numbers_do_not_match_inside_hash_like_file_names(tmp_path, tiny_clip_dir):
    root = tmp_path / "photos"
    draw_photo(root / "a3f9c2d17be0.png", "red", seed=1)
    draw_photo(root / "IMG2041.png", "blue", seed=2)
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    run_cli("tag", root / "a3f9c2d17be0.png", "Grandma Rosa", "--db", db)
    run_cli("tag", root / "IMG2041.png", "Grandma Rosa 0", "--db", db)
    assert [Path(r["path"]).name for r in _keyword(db, "Rosa 0")][0] == "IMG2041.png"
    assert [Path(r["path"]).name for r in _keyword(db, "0", "--min-score", "0")] == ["IMG2041.png"]
    assert [Path(r["path"]).name for r in _keyword(db, "2041")] == ["IMG2041.png"]  # a camera's number stays
    assert _keyword(db, "9c2d", "--min-score", "0") == [] and _keyword(db, "17", "--min-score", "0") == []


def test_a_version_5_catalog_embeds_each_text_on_its_own(shop, text_model_cache):
    root, db = shop
    run_cli("tag", root / "dog.png", "holiday", "Grandma Rosa 12", "--db", db)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE IF EXISTS text_piece_embeddings")
        conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    Catalog(db).close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    first = run_json("search", "a dog asleep on a sofa", "--mode", "text", "--db", db)["results"][0]
    assert Path(first["path"]).name == "dog.png"
    with sqlite3.connect(db) as conn:  # the note and both tags, each embedded once
        assert conn.execute("SELECT COUNT(*) FROM text_piece_embeddings").fetchone()[0] >= 3
