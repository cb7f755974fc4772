"""Hostile metadata: sidecars that are huge or FIFOs, and XMP built to make a parser quadratic.

Sidecars are opened as images are (never blocking, regular files only, a size cap) and reported
with a reason; metadata parsing is linear and bounded, whatever the file holds. The time bound
asserted here is generous (it catches quadratic behaviour, not a slow machine); the measured
figures are in bench/xmp_limits_bench.py and docs/benchmarks.md.
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from photoseek import ImageIndex
from photoseek.ingest.reading import MAX_SIDECAR_BYTES
from photoseek.text.metadata import MAX_XMP_PARSE, read_facts
from tests.helpers import catalog_of, draw_photo, run_json
from tests.hubcache import run_photoseek

XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">{padding}'
    '<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{description}</rdf:li></rdf:Alt></dc:description>'
    "<dc:subject><rdf:Bag><rdf:li>harbour</rdf:li><rdf:li>boats</rdf:li></rdf:Bag></dc:subject>"
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
)
TEN_MB = 10 * 1024 * 1024
BOUND_S = 2.0
"""A linear parse of 10 MB takes milliseconds; the quadratic one took 49 s for 230 KB."""


def _photo_with_metadata(path: Path, metadata: bytes) -> Path:
    """A small JPEG followed by `metadata` (what a hostile file can carry after its image data)."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 140, 200)).save(buffer, format="JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue() + metadata)
    return path


def _metadata(db: Path, path: Path) -> str | None:
    with ImageIndex(db) as index:
        record = index.find(path)
        row = catalog_of(index).db.execute(
            "SELECT text FROM text_signals WHERE content_hash = ? AND source = 'metadata'", (record.content_hash,)
        ).fetchone()
    return row[0] if row else None


def test_a_huge_sidecar_is_reported_and_skipped_and_the_other_read(tmp_path: Path, tiny_clip_dir: Path) -> None:
    root = tmp_path / "photos"
    photo = draw_photo(root / "boat.jpg", "blue")
    with open(root / "boat.xmp", "wb") as huge:  # sparse: no disk space, and never read
        huge.truncate(4 * MAX_SIDECAR_BYTES)
    (root / "boat.jpg.xmp").write_text(XMP.format(padding="", description="fishing boats at dawn"))
    db = tmp_path / "c.db"
    report = run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    assert report["embedded"] == 1
    [failure] = report["failed"]
    assert failure["path"] == str((root / "boat.xmp").resolve())
    assert "sidecar skipped" in failure["reason"] and "over the 16 MB limit" in failure["reason"]
    assert _metadata(db, photo) == "fishing boats at dawn\nharbour, boats"
    assert run_json("status", "--db", db)["failures"] == []  # the photo is fine: nothing is kept as failed


def test_a_fifo_sidecar_never_blocks_and_is_reported(tmp_path: Path, tiny_clip_dir: Path) -> None:
    """The photo is indexed as a single file, so the folder walk never meets the FIFO beside it:
    only the sidecar reader does (as when a sidecar is swapped for a FIFO after the walk)."""
    root = tmp_path / "photos"
    photo = draw_photo(root / "boat.jpg", "blue")
    os.mkfifo(root / "boat.xmp")  # no writer ever comes: a blocking open would wait forever
    db = tmp_path / "c.db"
    done = run_photoseek("index", str(photo), "--db", str(db), "--model-path", str(tiny_clip_dir), "--json",
                         env=dict(os.environ), timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["embedded"] == 1
    assert report["failed"] == [{"path": str((root / "boat.xmp").resolve()),
                                 "reason": "sidecar skipped: named pipe (FIFO), not a regular file"}]


ADVERSARIAL = {
    "open tags, never closed": b"<x:xmpmeta " * (TEN_MB // 11),
    "open tags, closed at the end": b"<x:xmpmeta " * (TEN_MB // 11) + b"</x:xmpmeta>",
    "word-joined tags": b"<x:xmpmetax" * (TEN_MB // 11) + b"<x:xmpmeta>",
    "dc tags never closed": b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + b"<dc:subject " * (TEN_MB // 12)
    + b"</x:xmpmeta>",
    "dc tags closed at the end": b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + b"<dc:description>" * (TEN_MB // 16)
    + b"</dc:description>" * 3 + b"</x:xmpmeta>",
    "many small dc elements": b'<x:xmpmeta xmlns:x="adobe:ns:meta/">'
    + b"<dc:subject><rdf:li>a</rdf:li></dc:subject>" * (TEN_MB // 45) + b"</x:xmpmeta>",
    "deep nesting": b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + b"<a>" * (TEN_MB // 8) + b"</a>" * (TEN_MB // 8)
    + b"</x:xmpmeta>",
}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_ten_megabytes_of_adversarial_xmp_parse_in_bounded_time(name: str) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buffer, format="JPEG")
    started = time.perf_counter()
    text = read_facts(buffer.getvalue() + ADVERSARIAL[name], [ADVERSARIAL[name]]).text
    assert time.perf_counter() - started < BOUND_S
    assert isinstance(text, str)


def test_a_large_packet_keeps_its_description_and_keywords() -> None:
    padding = '<x:History rdf:parseType="Resource"><x:when>2024</x:when></x:History>' * (TEN_MB // 70)
    packet = XMP.format(padding=padding, description="lighthouse in a storm").encode()
    assert len(packet) > 50 * MAX_XMP_PARSE
    started = time.perf_counter()
    assert read_facts(b"", [packet]).text == "lighthouse in a storm\nharbour, boats"
    assert time.perf_counter() - started < BOUND_S


def test_the_quadratic_jpeg_of_the_issue_indexes_at_once(tmp_path: Path, tiny_clip_dir: Path) -> None:
    root = tmp_path / "photos"
    photo = _photo_with_metadata(root / "tags.jpg", b"<x:xmpmeta " * 20_000)
    (root / "tags.xmp").write_text(XMP.format(padding="", description="a sailing regatta"))
    started = time.perf_counter()
    report = run_json("index", root, "--db", tmp_path / "c.db", "--model-path", tiny_clip_dir)
    assert time.perf_counter() - started < 30  # 49 s in the metadata parse alone before
    assert report["embedded"] == 1 and report["failed"] == []
    assert _metadata(tmp_path / "c.db", photo) == "a sailing regatta\nharbour, boats"
