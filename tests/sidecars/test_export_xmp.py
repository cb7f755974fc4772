"""export-xmp: photoseek's notes, tags, captions, topics and places merged into XMP sidecars that
digiKam, darktable and Lightroom read, losing nothing else, atomically, idempotently, and read back
unchanged by the next index run."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from photoseek import ImageIndex
from photoseek.places import place_namer
from photoseek.sidecars.xmp import DC, LR, PHOTOSEEK, RDF, XML
from tests.helpers import draw_scene, run_cli, run_json, texts_of
from tests.places.test_gps import located
from tests.sidecars.shapes import Shape, shapes, sidecar

OWNED = {f"{{{DC}}}description", f"{{{DC}}}subject", f"{{{LR}}}hierarchicalSubject"}
PACKET = re.compile(r"<x:xmpmeta\b.*</x:xmpmeta>", re.S)


def parse(text: str) -> ET.Element:
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True, insert_pis=True))
    parser.feed(PACKET.search(text).group(0))
    return parser.close()


def foreign_facts(text: str) -> set[tuple]:
    """Every element, attribute, text and comment of a sidecar outside the three properties photoseek
    edits and its own namespace, with its position among its kept siblings: what must never change."""
    found: set[tuple] = set()

    def walk(element: ET.Element, path: tuple) -> None:
        kept = [c for c in element if c.tag not in OWNED and not str(c.tag).startswith(f"{{{PHOTOSEEK}}}")]
        for position, child in enumerate(kept):
            tag = "#comment" if child.tag is ET.Comment else child.tag
            here = (*path, (tag, position))
            found.add((here, tuple(sorted(child.attrib.items())), (child.text or "").strip()))
            walk(child, here)

    root = parse(text)
    found.add(((root.tag,), tuple(sorted(root.attrib.items())), ""))
    walk(root, (root.tag,))
    return found


def items(text: str, namespace: str, name: str) -> list[str]:
    element = parse(text).find(f".//{{{namespace}}}{name}")
    return [] if element is None else [li.text or "" for li in element.iter(f"{{{RDF}}}li")]


def descriptions(text: str) -> dict[str, str]:
    element = parse(text).find(f".//{{{DC}}}description")
    return {} if element is None else {li.get(f"{{{XML}}}lang"): li.text or "" for li in element.iter(f"{{{RDF}}}li")}


def outside_packet(text: str) -> tuple[str, str]:
    match = PACKET.search(text)
    return text[: match.start()], text[match.end() :]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sidecar_name(image: Path, shape: Shape) -> Path:
    """digiKam and darktable name the sidecar IMG.jpg.xmp, Lightroom IMG.xmp (read by the indexer either way)."""
    return image.with_name(image.name + ".xmp") if shape.tool != "lightroom" else image.with_suffix(".xmp")


@pytest.fixture
def fifty(tmp_path, tiny_clip_dir) -> tuple[Path, Path, list[tuple[Path, Path, Shape]]]:
    """50 photos, each with a sidecar as digiKam, darktable or Lightroom left it, indexed; some with
    GPS in the file; photoseek's own notes, tags, captions and topics on most of them."""
    root = tmp_path / "photos"
    root.mkdir()
    made = []
    for i, shape in enumerate(shapes(50)):
        image = root / f"DSC_{i:04d}.jpg"
        draw_scene(image, i)
        if i % 7 == 3:
            Image.open(image).save(image, exif=located(41.1496, -8.6110))
        path = sidecar_name(image, shape)
        path.write_text(sidecar(shape), encoding="utf-8")
        made.append((image, path, shape))
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    with ImageIndex(db) as index:
        for i, (image, _, _) in enumerate(made):
            if i % 4 != 2:
                index.describe(image, f"my note {i}: the harbour, at dusk" if i % 3 else "")
            if i % 2:
                index.tag(image, ["sailing", f"trip {i % 5}"] + (["Family"] if i % 6 == 1 else []))
            content_hash = index.find(image).content_hash
            if i % 3 == 0:
                texts_of(index).put(content_hash, "caption", "a-captioner", "a boat in a harbour at sunset")
            if i % 5 < 2:
                texts_of(index).put(content_hash, "topics", "a-topic-model", "boats\nsea")
        texts_of(index).sync()
    return root, db, made


def _state(db: Path, made: list[tuple[Path, Path, Shape]]) -> dict[str, tuple]:
    """What the catalog holds of each image: its own signals (not the metadata one), rating, label, location."""
    with ImageIndex(db) as index:
        state = {}
        for image, _, _ in made:
            record = index.find(image)
            rows = [r for r in texts_of(index).signal_rows(record.content_hash) if r[0] != "metadata"]
            state[image.name] = (rows, record.rating, record.label, record.latitude, record.longitude)
        return state


def test_fifty_real_world_sidecars_round_trip_and_lose_no_field(fifty, tiny_clip_dir):
    root, db, made = fifty
    photos = {image: digest(image) for image, _, _ in made}
    before = {path: path.read_text(encoding="utf-8") for _, path, _ in made}
    state = _state(db, made)

    report = run_json("export-xmp", root, "--db", db, "--json")
    assert report["skipped"] == [] and report["written"] == len(report["changes"]) >= 45
    assert all(c["action"] == "update" for c in report["changes"])
    assert sorted(Path(p).name for p in os.listdir(root) if p.endswith(".photoseek-tmp")) == []

    placed: set[str] = set()
    with ImageIndex(db) as index:
        for image, path, shape in made:
            old, new = before[path], path.read_text(encoding="utf-8")
            assert digest(image) == photos[image], "a photo was touched"
            assert foreign_facts(new) == foreign_facts(old), f"{shape.tool} sidecar lost a field: {path.name}"
            assert outside_packet(new) == outside_packet(old)
            for namespace, name in ((DC, "subject"), (LR, "hierarchicalSubject")):
                theirs = items(old, namespace, name)
                assert items(new, namespace, name)[: len(theirs)] == theirs  # kept, in their order, first
            old_text, new_text = descriptions(old), descriptions(new)
            assert new_text.get("x-default", "").startswith(old_text.get("x-default", ""))
            assert {k: v for k, v in new_text.items() if k != "x-default"} == {
                k: v for k, v in old_text.items() if k != "x-default"}
            record = index.find(image)
            rows = texts_of(index).signal_rows(record.content_hash)
            own = {(s, m): t for s, m, t in rows}
            tags = own.get(("note", "user-tags"), "")
            for tag in filter(None, tags.split(", ")):
                assert tag in items(new, DC, "subject") and tag in items(new, LR, "hierarchicalSubject")
            for topic in filter(None, own.get(("topics", "a-topic-model"), "").splitlines()):
                assert topic in items(new, DC, "subject") and f"Topics|{topic}" in items(new, LR, "hierarchicalSubject")
            note = own.get(("note", "user"), "")
            caption = own.get(("caption", "a-captioner"), "")
            for text in filter(None, (note, caption)):
                assert text in new_text["x-default"]
            for place in (t.splitlines() for (s, _), t in own.items() if s == "place"):  # Porto, or the sidecar's
                assert set(place) <= set(items(new, DC, "subject"))
                assert any(h.startswith(f"Places|{place[-1]}|") and h.endswith(f"|{place[0]}")
                           for h in items(new, LR, "hierarchicalSubject"))
                placed.add(place[-1])
    if place_namer() is not None:  # the places extra (in the dev extra) names them
        assert placed == {"Portugal"}  # the photos with GPS in the file or the sidecar got their place written

    # The next index run reads the sidecars back: what was written, unchanged; nothing else moved.
    reindexed = run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    assert reindexed["embedded"] == 0 and reindexed["failed"] == []
    assert _state(db, made) == state
    with ImageIndex(db) as index:
        for image, path, _ in made:
            text = path.read_text(encoding="utf-8")
            record = index.find(image)
            metadata = texts_of(index).get(record.content_hash, "metadata", "exif-iptc-xmp") or ""
            for keyword in items(text, DC, "subject"):
                assert keyword in metadata, (path.name, keyword)
            description = descriptions(text).get("x-default", "")
            assert description in metadata

    # Idempotent: a second export (after the round trip) changes nothing, not even a time stamp.
    stamps = {path: (path.stat().st_mtime_ns, path.read_bytes()) for _, path, _ in made}
    again = run_json("export-xmp", root, "--db", db, "--json")
    assert again["changes"] == [] and again["unchanged"] == len(made)
    assert {path: (path.stat().st_mtime_ns, path.read_bytes()) for _, path, _ in made} == stamps


def test_a_changed_note_or_tag_replaces_only_photoseeks_part_and_remove_undoes_it(fifty):
    root, db, made = fifty
    image, path, shape = next(m for m in made if m[2].keywords and m[2].description and m[2].tool == "digikam")
    original = path.read_text(encoding="utf-8")
    run_json("export-xmp", root, "--db", db, "--json")
    run_cli("describe", image, "a second thought", "--db", db)
    report = run_json("export-xmp", image.parent, "--db", db, "--json")
    [change] = [c for c in report["changes"] if c["image"] == str(image)]
    assert change["action"] == "update" and change["description"].startswith("a second thought")
    text = path.read_text(encoding="utf-8")
    assert descriptions(text)["x-default"].startswith(shape.description + "\n\na second thought")
    assert "my note" not in descriptions(text)["x-default"]
    assert items(text, DC, "subject")[: len(shape.keywords)] == list(shape.keywords)

    undone = run_json("export-xmp", root, "--remove", "--db", db, "--json")
    assert undone["skipped"] == []
    text = path.read_text(encoding="utf-8")
    assert foreign_facts(text) == foreign_facts(original)
    assert items(text, DC, "subject") == items(original, DC, "subject")
    assert items(text, LR, "hierarchicalSubject") == items(original, LR, "hierarchicalSubject")
    assert descriptions(text) == descriptions(original)
    assert parse(text).find(f".//{{{PHOTOSEEK}}}subjects") is None


def test_new_sidecars_in_both_styles_dry_run_and_remove(tmp_path, tiny_clip_dir):
    root = tmp_path / "photos"
    root.mkdir()
    for i, name in enumerate(("IMG_1.jpg", "IMG_2.png", "IMG_2.jpg", "IMG_3.jpg")):
        draw_scene(root / name, i)
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    run_cli("tag", root / "IMG_1.jpg", "lighthouse", "--db", db)
    run_cli("describe", root / "IMG_2.jpg", "the old mill", "--db", db)
    run_cli("tag", root / "IMG_2.png", "mill", "--db", db)

    dry = run_json("export-xmp", "--dry-run", "--db", db, "--json")
    assert dry["dry_run"] and dry["written"] == 0
    assert sorted((Path(c["sidecar"]).name, c["action"]) for c in dry["changes"]) == [
        ("IMG_1.jpg.xmp", "create"), ("IMG_2.jpg.xmp", "create"), ("IMG_2.png.xmp", "create")]
    assert not list(root.glob("*.xmp"))
    listed = run_cli("export-xmp", "--dry-run", "--db", db)
    assert "create" in listed and "IMG_1.jpg.xmp" in listed and "+ lighthouse" in listed

    lightroom = run_json("export-xmp", "--style", "lightroom", "--db", db, "--json")
    assert [Path(c["sidecar"]).name for c in lightroom["changes"]] == ["IMG_1.xmp"]
    skipped = {Path(p["path"]).name: p["reason"] for p in lightroom["skipped"]}
    assert set(skipped) == {"IMG_2.xmp"} and "--style digikam" in skipped["IMG_2.xmp"]
    assert items((root / "IMG_1.xmp").read_text(encoding="utf-8"), DC, "subject") == ["lighthouse"]
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE((root / "IMG_1.xmp").stat().st_mode) == 0o666 & ~mask  # as any new file: others can read it

    run_json("export-xmp", "--db", db, "--json")
    text = (root / "IMG_2.jpg.xmp").read_text(encoding="utf-8")
    assert descriptions(text) == {"x-default": "the old mill"}
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    assert run_json("search", "mill", "--mode", "keyword", "--db", db)["results"]
    with ImageIndex(db) as index:
        record = index.find(root / "IMG_2.jpg")
        assert texts_of(index).get(record.content_hash, "metadata", "exif-iptc-xmp") == "the old mill"

    removed = run_json("export-xmp", "--remove", "--db", db, "--json")
    assert sorted(c["action"] for c in removed["changes"]) == ["delete"] * 3
    run_json("export-xmp", "--remove", "--style", "lightroom", "--db", db, "--json")
    assert not list(root.glob("*.xmp"))  # every sidecar photoseek created is gone again


def test_sidecars_it_cannot_edit_safely_are_left_alone(tmp_path, tiny_clip_dir):
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(5):
        draw_scene(root / f"P{i}.jpg", i)
    (root / "P0.jpg.xmp").write_text("this is not XML <<<", encoding="utf-8")
    (root / "P1.jpg.xmp").write_bytes(b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>\xff\xfe</x:xmpmeta>")
    (tmp_path / "elsewhere.xmp").write_text(sidecar(shapes(1)[0]), encoding="utf-8")
    (root / "P2.jpg.xmp").symlink_to(tmp_path / "elsewhere.xmp")
    (root / "P3.jpg.xmp").mkdir()
    (root / "P4.jpg.xmp").write_text("<x:xmpmeta xmlns:x='adobe:ns:meta/'><nothing/></x:xmpmeta>", encoding="utf-8")
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    for i in range(5):
        run_cli("tag", root / f"P{i}.jpg", "harbour", "--db", db)
    untouched = {p: (p.lstat().st_mtime_ns, p.read_bytes() if p.is_file() else b"") for p in root.glob("*.xmp")}
    elsewhere = (tmp_path / "elsewhere.xmp").read_bytes()
    report = run_json("export-xmp", "--db", db, "--json")
    reasons = {Path(p["path"]).name: p["reason"] for p in report["skipped"]}
    assert "not well-formed XML" in reasons["P0.jpg.xmp"] or "no XMP packet" in reasons["P0.jpg.xmp"]
    assert "UTF-8" in reasons["P1.jpg.xmp"]
    assert "symbolic link" in reasons["P2.jpg.xmp"]
    assert "not a regular file" in reasons["P3.jpg.xmp"]
    assert "rdf:RDF" in reasons["P4.jpg.xmp"]
    assert report["changes"] == []
    assert {p: (p.lstat().st_mtime_ns, p.read_bytes() if p.is_file() else b"") for p in root.glob("*.xmp")} == untouched
    assert (tmp_path / "elsewhere.xmp").read_bytes() == elsewhere
    human = run_cli("export-xmp", "--db", db)
    assert "Left alone (5)" in human


def test_a_failed_rename_leaves_the_old_sidecar_whole(fifty, monkeypatch):
    root, db, made = fifty
    image, path, _ = made[1]
    original = path.read_bytes()
    (root / f".{path.name}.abc123.photoseek-tmp").write_text("left by an export that was killed")

    def refuse(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with ImageIndex(db) as index:
        report = index.export_xmp(root)
    assert path.read_bytes() == original
    assert any(p == str(path) and "No space left" in r for p, r in report.skipped)
    assert not list(root.glob("*.photoseek-tmp"))  # its own temp file and the stale one are gone


def test_a_sidecar_edited_during_the_merge_is_not_overwritten(fifty, monkeypatch):
    root, db, made = fifty
    _, path, _ = made[1]
    from photoseek.sidecars import xmp

    real_text = xmp.XmpDocument.text

    def meanwhile(self: xmp.XmpDocument) -> str:
        path.write_text(path.read_text(encoding="utf-8") + "\n<!-- edited in digiKam -->", encoding="utf-8")
        return real_text(self)

    monkeypatch.setattr(xmp.XmpDocument, "text", meanwhile)
    with ImageIndex(db) as index:
        report = index.export_xmp(path.parent)
    assert any(p == str(path) and "changed it while" in r for p, r in report.skipped)
    assert path.read_text(encoding="utf-8").endswith("<!-- edited in digiKam -->")


def test_bad_style_and_unknown_folder_are_one_line_errors(fifty, tmp_path):
    _, db, _ = fifty
    error = run_cli("export-xmp", "--style", "picasa", "--db", db, expect=2)
    assert "--style picasa" in error and len(error.strip().splitlines()) == 1
    error = run_cli("export-xmp", tmp_path / "nowhere", "--db", db, expect=3)
    assert "No such folder" in error and "Index it first" not in error  # indexing it would fail too
    (tmp_path / "empty").mkdir()
    error = run_cli("export-xmp", tmp_path / "empty", "--db", db, expect=3)
    assert "No indexed image is in" in error and "photoseek index" in error


def test_png_photos_get_sidecars_and_their_own_xmp_is_kept(tmp_path, tiny_clip_dir):
    """A PNG with embedded XMP: the sidecar is written beside it, the file keeps its bytes."""
    root = tmp_path / "photos"
    root.mkdir()
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(out, "PNG")
    (root / "chart.png").write_bytes(out.getvalue())
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    run_cli("tag", root / "chart.png", "diagram", "--db", db)
    before = digest(root / "chart.png")
    run_json("export-xmp", "--db", db, "--json")
    assert digest(root / "chart.png") == before
    assert items((root / "chart.png.xmp").read_text(encoding="utf-8"), DC, "subject") == ["diagram"]


def test_text_xml_cannot_hold_is_cleaned_so_the_sidecar_stays_readable_and_stable(tmp_path, tiny_clip_dir):
    root = tmp_path / "photos"
    root.mkdir()
    draw_scene(root / "odd.jpg", 1)
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    with ImageIndex(db) as index:
        index.describe(root / "odd.jpg", "line one\r\nline two\x07 & <more>\x00")
        index.tag(root / "odd.jpg", ["bell\x07", "ünïcödé"])
        first = index.export_xmp()
        assert first.skipped == [] and len(first.changes) == 1
        text = (root / "odd.jpg.xmp").read_text(encoding="utf-8")
        assert descriptions(text) == {"x-default": "line one\nline two & <more>"}
        assert items(text, DC, "subject") == ["bell", "ünïcödé"]
        again = index.export_xmp()
        assert again.changes == [] and again.unchanged == 1


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="needs exiftool (apt-get install libimage-exiftool-perl)")
def test_exiftool_reads_every_tag_of_the_fifty_sidecars_unchanged_after_export(fifty):
    """A second, independent XMP implementation (ExifTool) sees every tag it saw before, with the same
    value, and photoseek's keywords and description after the photographer's."""
    root, db, made = fifty
    paths = [str(path) for _, path, _ in made]

    def tags() -> dict[str, dict[str, object]]:
        out = subprocess.run(["exiftool", "-j", "-G1", "-a", "-n", *paths], check=True, capture_output=True).stdout
        return {Path(t["SourceFile"]).name: t for t in json.loads(out)}

    ours = ("XMP-dc:Subject", "XMP-lr:HierarchicalSubject", "XMP-dc:Description")
    before = tags()
    run_json("export-xmp", root, "--db", db, "--json")
    after = tags()
    for name, old in before.items():
        new = after[name]
        kept = {k: v for k, v in old.items() if not k.startswith(("System:", "XMP-photoseek:")) and k not in ours}
        assert {k: new.get(k) for k in kept} == kept, name
        for key in ("XMP-dc:Subject", "XMP-lr:HierarchicalSubject"):
            theirs = old.get(key, [])
            theirs = theirs if isinstance(theirs, list) else [theirs]
            mine = new.get(key, [])
            assert (mine if isinstance(mine, list) else [mine])[: len(theirs)] == theirs, (name, key)
        assert str(new.get("XMP-dc:Description", "")).startswith(str(old.get("XMP-dc:Description", ""))), name
