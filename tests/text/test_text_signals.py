"""User notes, tags, embedded metadata, keyword search, explain and the no-good-match cut-off."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photoseek import ImageIndex
from photoseek.search.fusion import PRIOR
from photoseek.store.catalog import SCHEMA_VERSION, Catalog
from tests.helpers import catalog_of, draw_photo, run_cli, run_json, texts_of

XMP = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{description}</rdf:li></rdf:Alt></dc:description>
<dc:subject><rdf:Bag><rdf:li>{tag1}</rdf:li><rdf:li>{tag2}</rdf:li></rdf:Bag></dc:subject>
</rdf:Description></rdf:RDF></x:xmpmeta>"""


def _iptc(caption: str, keyword: str) -> bytes:
    def field(number: int, value: str) -> bytes:
        data = value.encode()
        return bytes([0x1C, 2, number]) + len(data).to_bytes(2, "big") + data
    return field(120, caption) + field(25, keyword)


def _write_metadata_photos(root: Path) -> None:
    exif = Image.Exif()
    exif[0x010E] = "lighthouse on a rocky coast"
    exif.get_ifd(0x8769)[0x9286] = b"ASCII\0\0\0stormy weather"
    draw_photo(root / "exif.jpg", "red").with_suffix(".jpg")
    Image.open(root / "exif.jpg").save(root / "exif.jpg", exif=exif)
    draw_photo(root / "iptc.tif", "green")
    Image.open(root / "iptc.tif").save(root / "iptc.tif", tiffinfo={33723: _iptc("birthday cake", "candles")})
    draw_photo(root / "xmp.jpg", "blue")
    xmp = XMP.format(description="kayak on a glacier lake", tag1="paddling", tag2="norway")
    Image.open(root / "xmp.jpg").save(root / "xmp.jpg", xmp=xmp.encode())
    draw_photo(root / "side.png", "yellow")
    (root / "side.xmp").write_text(XMP.format(description="vintage tram", tag1="lisbon", tag2="yellow"))
    draw_photo(root / "plain.png", "purple")


@pytest.fixture
def library(tmp_path, tiny_clip_dir) -> tuple[Path, Path]:
    root = tmp_path / "photos"
    _write_metadata_photos(root)
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    return root, db


def test_embedded_metadata_is_stored_with_source_and_model(library):
    root, db = library
    with ImageIndex(db) as index:
        def meta(name: str) -> str:
            record = index.find(root / name)
            return index.text_signals(record.id).get("metadata", "")
        assert meta("exif.jpg") == "lighthouse on a rocky coast\nstormy weather"
        assert meta("iptc.tif") == "birthday cake\ncandles"
        assert meta("xmp.jpg") == "kayak on a glacier lake\npaddling, norway"
        assert meta("side.png") == "vintage tram\nlisbon, yellow"
        assert meta("plain.png") == ""
        rows = catalog_of(index).db.execute("SELECT DISTINCT source, model FROM text_signals").fetchall()
    assert rows == [("metadata", "exif-iptc-xmp")]


def test_keyword_search_finds_metadata_notes_tags_and_file_names(library):
    root, db = library
    run_cli("describe", root / "plain.png", "my grandmother's violet scarf", "--db", db)
    run_cli("tag", root / "plain.png", "knitting", "family", "--db", db)
    def top(query: str) -> str:
        results = run_json("search", query, "--mode", "keyword", "--db", db)["results"]
        return Path(results[0]["path"]).name
    assert top("glacier") == "xmp.jpg"
    assert top("candles") == "iptc.tif"
    assert top("lisbon tram") == "side.png"
    assert top("scarf") == "plain.png" and top("knitting") == "plain.png"
    assert top("exif") == "exif.jpg"  # file name


def test_describe_replaces_and_tags_accumulate(library):
    root, db = library
    run_cli("describe", root / "plain.png", "first text", "--db", db)
    run_cli("describe", root / "plain.png", "second text", "--db", db)
    run_cli("tag", root / "plain.png", "a", "b", "--db", db)
    run_cli("tag", root / "plain.png", "b", "c", "--db", db)
    with ImageIndex(db) as index:
        record = index.find(root / "plain.png")
        assert index.text_signals(record.id)["note"] == "second text\na, b, c"
    assert "not in the catalog" in run_cli("describe", root / "nope.png", "x", "--db", db, expect=3)


def test_notes_and_tags_are_echoed_as_typed_and_an_empty_note_is_removed(library):
    root, db = library
    assert "Tagged" in run_cli("tag", root / "plain.png", "[bold]x", "[/]", "--db", db)
    echoed = " ".join(run_cli("tag", root / "plain.png", "[bold]x", "[/]", "--db", db).split())
    assert "plain.png: [bold]x, [/]." in echoed  # not read as markup
    run_cli("describe", root / "plain.png", "a note", "--db", db)
    assert "Description removed" in run_cli("describe", root / "plain.png", "", "--db", db)
    with ImageIndex(db) as index:
        record = index.find(root / "plain.png")
        assert "a note" not in index.text_signals(record.id).get("note", "")


def test_hybrid_explain_and_no_good_match(library, text_model_cache):
    root, db = library
    run_cli("describe", root / "plain.png", "a woman knitting a purple scarf by the fire", "--db", db)
    payload = run_json("search", "knitting a scarf", "--explain", "--db", db, "-k", "3")
    first = payload["results"][0]
    assert Path(first["path"]).name == "plain.png"
    assert set(first["signals"]) == {"clip", "text", "keyword"}
    log_odds = np.log(PRIOR / (1 - PRIOR)) + sum(first["signals"].values())  # evidence added to the prior odds
    assert first["score"] == pytest.approx(1 / (1 + np.exp(-log_odds)), abs=1e-4)
    assert first["signals"]["text"] > 0 and first["signals"]["keyword"] > 0
    assert any(line.startswith("Text, 1-3 words") for line in payload["calibration"])
    assert "[scarf]" in first["matched_text"] or "[knitting]" in first["matched_text"]
    output = run_cli("search", "quantum chromodynamics lecture", "--mode", "text", "--db", db)
    assert "No good match" in output
    shown = run_json("search", "quantum chromodynamics lecture", "--mode", "text", "--min-score", "0", "--db", db)
    assert shown["results"]


def test_text_mode_needs_text_and_bad_weights_are_clear(library):
    root, db = library
    output = run_cli("search", "--image", root / "plain.png", "--mode", "text", "--db", db, expect=2)
    assert "needs a text query" in output
    assert "unknown signal" in run_cli("search", "x", "--mode", "hybrid", "-w", "colour=1", "--db", db, expect=2)


def test_version_1_catalog_is_upgraded_in_place(tmp_path):
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                           "INSERT INTO meta VALUES ('schema_version', '1'), ('model_id', 'm');")
    with Catalog(db) as catalog:
        assert catalog.model_id == "m"
        tables = {r[0] for r in catalog.db.execute("SELECT name FROM sqlite_master")}
        version = catalog.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert {"text_signals", "text_fts", "text_embeddings", "image_text", "removed_ids"} <= tables
    assert version == str(SCHEMA_VERSION)


def test_an_edited_sidecar_is_read_again_on_reindex(library, tiny_clip_dir):
    root, db = library
    image_stat = (root / "side.png").stat()
    sidecar = root / "side.xmp"
    sidecar.write_text(XMP.format(description="funicular railway", tag1="porto", tag2="hill"))
    now = time.time()  # after the first run; not in the future, or the next run would see it as edited again
    os.utime(sidecar, (now, now))
    time.sleep(0.05)  # the run that reads it records a later time, even with a coarse clock
    report = run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    assert report["embedded"] == 0 and report["unchanged"] == 4  # only the image with the edited sidecar is read
    assert (root / "side.png").stat().st_mtime_ns == image_stat.st_mtime_ns
    hits = run_json("search", "funicular", "--mode", "keyword", "--db", db)["results"]
    assert [Path(h["path"]).name for h in hits] == ["side.png"]
    again = run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    assert again["unchanged"] == 5


def test_a_description_emptied_in_the_sidecar_is_no_longer_found(library, tiny_clip_dir):
    """The metadata text follows the sidecar: words taken out of it (or all of them) stop finding the
    photo after the next index run."""
    root, db = library

    def found(word: str) -> list[str]:
        return [Path(h["path"]).name for h in run_json("search", word, "--mode", "keyword", "--db", db)["results"]]

    assert found("tram") == ["side.png"] and found("lisbon") == ["side.png"]
    sidecar = root / "side.xmp"
    sidecar.write_text(XMP.format(description="", tag1="lisbon", tag2="yellow"))
    assert run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)["embedded"] == 0
    assert found("tram") == [] and found("lisbon") == ["side.png"]

    sidecar.write_text(XMP.format(description="", tag1="", tag2=""))
    time.sleep(0.05)  # a later modification time than the run above recorded, even with a coarse clock
    os.utime(sidecar)
    assert run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)["embedded"] == 0
    assert found("lisbon") == [] and found("yellow") == []
    with ImageIndex(db) as index:
        record = index.find(root / "side.png")
        assert texts_of(index).get(record.content_hash, "metadata", "exif-iptc-xmp") is None


def test_a_copy_without_a_sidecar_keeps_the_text_another_copy_has(library, tiny_clip_dir):
    """Text belongs to the picture's content: a byte-identical copy that says nothing does not wipe
    what the other copy's sidecar says; once that sidecar is emptied and the other copy deleted, the
    text goes with the next run."""
    root, db = library
    (root / "backup").mkdir()
    (root / "backup" / "side.png").write_bytes((root / "side.png").read_bytes())
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    hits = run_json("search", "tram", "--mode", "keyword", "--db", db)["results"]
    assert {Path(h["path"]).name for h in hits} == {"side.png"} and len(hits) == 2
    (root / "backup" / "side.png").unlink()
    (root / "side.xmp").write_text(XMP.format(description="", tag1="", tag2=""))
    time.sleep(0.05)  # an edit within a clock tick of the read is read once more by the run after
    run = run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)  # the copy goes at the run's end
    assert (run["embedded"], run["unchanged"], run["removed"]) == (0, 4, 1)
    assert run_json("search", "tram", "--mode", "keyword", "--db", db)["results"] == []
    assert run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)["unchanged"] == 5
