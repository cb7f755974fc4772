"""Duplicates through the CLI and the Python API: tiers, keeper rule, moving aside and undo, migration."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from typer.testing import CliRunner

from photoseek import ImageIndex
from photoseek.cli import app
from photoseek.duplicates import finder
from photoseek.duplicates.finder import choose_keeper
from photoseek.store.catalog import SCHEMA_VERSION, ImageRecord
from tests.helpers import draw_scene, run_cli, run_json


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """Two byte-identical files, one picture saved three ways (as taken, half size as PNG, a little
smaller and turned a quarter), and two unrelated pictures."""
    root = tmp_path / "photos"
    draw_scene(root / "a.jpg", 1)
    (root / "backup").mkdir()
    shutil.copy(root / "a.jpg", root / "backup" / "a-copy.jpg")
    b = draw_scene(root / "b.jpg", 2, size=(320, 240))
    with Image.open(b) as image:
        image.resize((160, 120)).save(root / "b-small.png")
        image.resize((300, 225)).transpose(Image.Transpose.ROTATE_90).save(root / "b-turned.jpg")
    draw_scene(root / "c.jpg", 3)
    draw_scene(root / "d.jpg", 4)
    return root


def _names(groups: list[dict]) -> list[set[str]]:
    return sorted(({Path(m["path"]).name for m in [g["keeper"], *g["others"]]} for g in groups), key=sorted)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def indexed(library: Path, tmp_path: Path, tiny_clip_dir: Path) -> Path:
    db = tmp_path / "c.db"
    run_json("index", library, "--db", db, "--model-path", tiny_clip_dir)
    return db


def test_each_tier_through_the_cli(indexed):
    exact = run_json("duplicates", "--tier", "exact", "--db", indexed)["groups"]
    assert _names(exact) == [{"a.jpg", "a-copy.jpg"}]
    assert exact[0]["tier"] == "exact"

    near = run_json("duplicates", "--tier", "near", "--db", indexed)["groups"]
    assert _names(near) == [{"a.jpg", "a-copy.jpg"}, {"b.jpg", "b-small.png", "b-turned.jpg"}]
    assert {g["tier"] for g in near} == {"exact", "near"}  # identical files say so in any tier

    # Identical files have identical embeddings, so they pass any cosine threshold.
    similar = run_json("duplicates", "--tier", "similar", "--threshold", "0.99999", "--db", indexed)["groups"]
    assert {"a.jpg", "a-copy.jpg"} in _names(similar)

    table = run_cli("duplicates", "--tier", "near", "--db", indexed)
    assert "keep" in table and "copy" in table and "largest" in table
    assert "2 groups, 3 copies besides the keepers" in table.replace("\n", " ")


def test_all_tiers_label_each_copy(indexed):
    """Random CLIP weights may join everything as `similar`; copies still say how they match the keeper."""
    groups = run_json("duplicates", "--db", indexed)["groups"]
    by_name = {Path(m["path"]).name: m["tier"] for g in groups for m in g["others"]}
    assert by_name["b-small.png"] == "near" and by_name["b-turned.jpg"] == "near"
    members = [m["path"] for g in groups for m in [g["keeper"], *g["others"]]]
    assert len(members) == len(set(members))  # every image in one group at most


@pytest.mark.parametrize("tier", ["near", "all"])
def test_identical_copies_of_a_lesser_copy_say_exact(library, tmp_path, tiny_clip_dir, tier):
    """b-small.png and its byte-identical backup are tied to the keeper b.jpg only as near copies, but to each
    other exactly: each says `exact`, copy of the other, while b-turned.jpg is a near copy of the keeper."""
    shutil.copy(library / "b-small.png", library / "backup" / "b-small-copy.png")
    db = tmp_path / "c.db"
    run_json("index", library, "--db", db, "--model-path", tiny_clip_dir)
    groups = run_json("duplicates", "--tier", tier, "--db", db)["groups"]
    group = next(g for g in groups if Path(g["keeper"]["path"]).name == "b.jpg")
    ids = {Path(m["path"]).name: m["id"] for m in [group["keeper"], *group["others"]]}
    ties = {Path(m["path"]).name: (m["tier"], m["copy_of"]) for m in group["others"]}
    assert ties["b-small.png"] == ("exact", ids["b-small-copy.png"])
    assert ties["b-small-copy.png"] == ("exact", ids["b-small.png"])
    assert ties["b-turned.jpg"][1] == ids["b.jpg"] and group["keeper"]["copy_of"] is None
    if tier == "near":
        assert group["tier"] == "near" and ties["b-turned.jpg"][0] == "near"
        table = "".join(run_cli("duplicates", "--tier", tier, "--db", db).replace("│", "").split())
        assert "(copyofb-small-copy.png)" in table and "(copyofb-small.png)" in table


def test_exact_copies_are_decoded_once_and_still_grouped_and_counted(library, tmp_path, tiny_clip_dir, monkeypatch):
    """Choosing a keeper measures each large copy's frame; byte-identical copies are one picture, decoded once."""
    for number in (2, 3):
        shutil.copy(library / "a.jpg", library / "backup" / f"a-copy{number}.jpg")
    shutil.copy(library / "b.jpg", library / "backup" / "b-copy.jpg")
    db = tmp_path / "c.db"
    run_json("index", library, "--db", db, "--model-path", tiny_clip_dir)
    decoded: list[str] = []
    real_decode = finder.decode_image

    def counting_decode(path: Path, **kwargs: object) -> object:
        decoded.append(hashlib.sha256(Path(path).read_bytes()).hexdigest())
        return real_decode(path, **kwargs)

    monkeypatch.setattr(finder, "decode_image", counting_decode)
    groups = run_json("duplicates", "--tier", "near", "--db", db)["groups"]
    assert _names(groups) == [
        {"a.jpg", "a-copy.jpg", "a-copy2.jpg", "a-copy3.jpg"}, {"b.jpg", "b-copy.jpg", "b-small.png", "b-turned.jpg"}
    ]
    a_group = next(g for g in groups if Path(g["keeper"]["path"]).name.startswith("a"))
    assert a_group["tier"] == "exact" and [m["tier"] for m in a_group["others"]] == ["exact"] * 3
    assert sorted(Counter(decoded).values()) == [1, 1], "a.jpg's content and b.jpg's, once each"
    table = run_cli("duplicates", "--tier", "near", "--db", db)
    assert "2 groups, 6 copies besides the keepers" in table.replace("\n", " ")


def test_api_groups_and_keeper(indexed, library):
    with ImageIndex(indexed, create=False) as index:
        groups = index.duplicates(tier="near")
        folder_only = index.duplicates(tier="near", folder=library / "backup")
    b_group = next(g for g in groups if len(g.members) == 3)
    assert Path(b_group.keeper.record.path).name == "b.jpg"
    assert b_group.reason == "largest: 320x240 pixels"
    assert folder_only == []  # the copy's original lies outside --in


def test_keeper_rule_order():
    def rec(i: int, path: str, w: int, taken: str | None, mtime_s: int = 100, size: int = 1,
            camera: str | None = None) -> ImageRecord:
        return ImageRecord(i, path, size, mtime_s * 10**9, "h", w, 10, "jpeg", taken, camera)

    assert choose_keeper([rec(1, "/a.jpg", 10, None), rec(2, "/b.jpg", 20, None)]) == (1, "largest: 20x10 pixels")
    # Equal pixels: the larger file, then camera EXIF, before any date or path.
    assert choose_keeper([rec(1, "/a.jpg", 10, None, size=5), rec(2, "/long/b.jpg", 10, None, 50, size=9)]) == (
        1, "largest picture (10x10), as large as 1 other copy; then the largest file (9 bytes)")
    with_camera = rec(2, "/long/b.jpg", 10, "2022-01-01T00:00:00", camera="Canon EOS R6")
    assert choose_keeper([rec(1, "/a.jpg", 10, "2020-01-01T00:00:00"), with_camera])[0] == 1
    later, earlier = rec(1, "/a.jpg", 10, "2021-01-02T00:00:00"), rec(2, "/b.jpg", 10, "2020-05-01T00:00:00")
    index, reason = choose_keeper([later, earlier])
    assert (index, reason) == (
        1, "largest picture (10x10), as large as 1 other copy; same file size; earliest capture (2020-05-01T00:00:00)")
    assert choose_keeper([rec(1, "/long/a.jpg", 10, None), rec(2, "/a.jpg", 10, None)])[0] == 1
    assert "shortest path" in choose_keeper([rec(1, "/long/a.jpg", 10, None), rec(2, "/a.jpg", 10, None)])[1]
    # No EXIF date: the file's modification time counts as the capture time.
    assert choose_keeper([rec(1, "/a.jpg", 10, None, 200), rec(2, "/bb.jpg", 10, None, 100)])[0] == 1
    # A frame is not picture: 20 px wide of which a fifth is frame is smaller than 18 px of picture.
    share = {"/framed.jpg": 0.8, "/plain.jpg": 1.0}
    assert choose_keeper([rec(1, "/framed.jpg", 20, None), rec(2, "/plain.jpg", 18, None)],
                         lambda r: share[r.path]) == (1, "largest: 18x10 pixels")


def test_the_original_is_kept_over_a_framed_copy_and_a_lower_quality_resave(tmp_path, tiny_clip_dir):
    """Framed copies have more pixels and re-saves the same; both are newer here by name only: their
    files are given older dates and shorter paths, so only the real rules can keep the original."""
    from tests.helpers import shared_data

    photos = sorted(shared_data("coco-mini").rglob("*.jpg"))[:6]
    if len(photos) < 6:
        pytest.skip("needs the shared COCO photos")
    root = tmp_path / "photos"
    (root / "originals-from-camera").mkdir(parents=True)
    for number, photo in enumerate(photos):
        original = root / "originals-from-camera" / f"IMG_{number:04d}.jpg"
        shutil.copy(photo, original)
        with Image.open(original) as image:
            image = image.convert("RGB")
            ImageOps.expand(image, max(8, image.width // 40), fill=(255, 255, 255)).save(
                root / f"f{number}.jpg", quality=95)
            image.save(root / f"q{number}.jpg", quality=60)
        for copy in (root / f"f{number}.jpg", root / f"q{number}.jpg"):
            os.utime(copy, (original.stat().st_mtime - 86400,) * 2)
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    groups = run_json("duplicates", "--tier", "near", "--db", db)["groups"]
    assert len(groups) == len(photos)
    for group in groups:
        assert Path(group["keeper"]["path"]).parent.name == "originals-from-camera", group
        assert {Path(m["path"]).name[0] for m in group["others"]} == {"f", "q"}, group
    moved = run_json("duplicates", "--move-to", tmp_path / "dupes", "--db", db)
    assert {Path(m["from"]).name[0] for m in moved["moved"]} == {"f", "q"}
    assert len(list((root / "originals-from-camera").iterdir())) == len(photos)


def test_move_manifest_undo_roundtrip_never_deletes(indexed, library, tmp_path):
    before = _files(library)
    target = tmp_path / "dupes"
    moved = run_json("duplicates", "--move-to", target, "--db", indexed)  # moving defaults to the near tier
    assert len(moved["moved"]) == 3 and moved["skipped"] == []
    manifest = json.loads(Path(moved["manifest"]).read_text())
    assert sorted(e["tier"] for e in manifest["moves"]) == ["exact", "near", "near"]
    assert {e["group"] for e in manifest["moves"]} == {1, 2}
    for entry in manifest["moves"]:
        assert not Path(entry["from"]).exists() and Path(entry["to"]).is_file()
        assert Path(entry["to"]).relative_to(target).parts[0] == "photos"  # folders kept under the target
    assert len(_files(library)) + len(_files(target)) - 1 == len(before)  # nothing lost; +1 is the manifest

    with sqlite3.connect(indexed) as con:  # the catalog follows the files
        paths = {row[0] for row in con.execute("SELECT path FROM images")}
    assert {e["to"] for e in manifest["moves"]} <= paths
    assert run_json("duplicates", "--tier", "near", "--db", indexed)["groups"] == []

    undone = run_json("duplicates", "--undo", moved["manifest"], "--db", indexed)
    assert len(undone["moved"]) == 3
    assert _files(library) == before
    assert _names(run_json("duplicates", "--tier", "near", "--db", indexed)["groups"]) == [
        {"a.jpg", "a-copy.jpg"}, {"b.jpg", "b-small.png", "b-turned.jpg"}
    ]
    again = run_json("duplicates", "--undo", moved["manifest"], "--db", indexed)
    assert again["moved"] == []  # a second undo does nothing


def test_move_and_undo_keep_odd_file_names(indexed, library, tmp_path):
    """Names that are not UTF-8, hold a newline or start with a dash move, follow in the catalog, and come back."""
    odd = [os.fsdecode(b"caf\xe9.jpg"), "new\nline.jpg", "-dash.jpg"]
    for name in odd:
        shutil.copy(library / "c.jpg", library / "backup" / name)
    run_json("index", library, "--db", indexed)
    table = run_cli("duplicates", "--tier", "exact", "--db", indexed)
    files = "".join(line.split("│")[4].strip() for line in table.splitlines() if line.count("│") > 4)
    assert "caf\\xe9.jpg" in files and "new\\nline.jpg" in files  # shown escaped, as the other commands do

    moved = run_json("duplicates", "--tier", "exact", "--move-to", tmp_path / "dupes", "--db", indexed)
    assert moved["skipped"] == [] and len(moved["moved"]) == 4
    with ImageIndex(indexed, create=False) as index:
        for entry in moved["moved"]:
            assert index.find(entry["to"]) is not None, entry
    assert run_json("duplicates", "--tier", "exact", "--db", indexed)["groups"] == []
    rerun = run_cli("duplicates", "--tier", "exact", "--move-to", tmp_path / "dupes", "--db", indexed)
    assert "Moved 0 files." in rerun

    undone = run_json("duplicates", "--undo", moved["manifest"], "--db", indexed)
    assert undone["skipped"] == [] and len(undone["moved"]) == 4
    assert all((library / "backup" / name).is_file() for name in odd)
    assert len(run_json("duplicates", "--tier", "exact", "--db", indexed)["groups"]) == 2


def test_move_prints_the_undo_command_whole(indexed, tmp_path):
    printed = run_cli("duplicates", "--move-to", tmp_path / "dupes", "--db", indexed)
    manifest = next((tmp_path / "dupes").glob("photoseek-duplicates-*.json"))
    assert "Moved 3 files." in printed and f"Undo: photoseek duplicates --undo {manifest}" in printed


def test_move_never_overwrites(indexed, library, tmp_path):
    target = tmp_path / "dupes"
    blocker = target / "photos" / "b-small.png"
    blocker.parent.mkdir(parents=True)
    blocker.write_bytes(b"someone else's file")
    result = run_cli("duplicates", "--tier", "near", "--move-to", target, "--db", indexed, expect=1)
    assert "already exists" in result
    assert blocker.read_bytes() == b"someone else's file"
    assert (library / "b-small.png").is_file()


def test_bad_arguments_say_what_to_do(indexed, tmp_path, library):
    assert "Unknown --tier" in run_cli("duplicates", "--tier", "fuzzy", "--db", indexed, expect=2)
    assert "needs one tier" in run_cli("duplicates", "--threshold", "5", "--db", indexed, expect=2)
    assert "0 to 32" in run_cli("duplicates", "--tier", "near", "--threshold", "0.5", "--db", indexed, expect=2)
    assert "inside the indexed folder" in run_cli(
        "duplicates", "--move-to", library / "dupes", "--db", indexed, expect=2
    )
    assert "not an photoseek duplicates manifest" in run_cli(
        "duplicates", "--undo", _write(tmp_path / "x.json", "{}"), "--db", indexed, expect=2
    )


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_v3_catalog_gets_hashes_on_next_index_without_reembedding(indexed, library, tiny_clip_dir):
    with sqlite3.connect(indexed) as con:
        hashes = dict(con.execute("SELECT path, phash FROM images"))
        embeddings = dict(con.execute("SELECT path, embedding FROM images"))
        con.execute("ALTER TABLE images DROP COLUMN phash")
        con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    assert all(h is not None for h in hashes.values())

    run = run_json("index", library, "--db", indexed, "--model-path", tiny_clip_dir)
    assert (run["embedded"], run["reused"], run["unchanged"]) == (0, 0, len(hashes))
    with sqlite3.connect(indexed) as con:
        assert dict(con.execute("SELECT path, phash FROM images")) == hashes
        assert dict(con.execute("SELECT path, embedding FROM images")) == embeddings
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert run_json("index", library, "--db", indexed, "--model-path", tiny_clip_dir)["unchanged"] == len(hashes)


def test_similar_tier_through_an_approximate_index(library, tmp_path, tiny_clip_dir):
    """With faiss HNSW serving the catalog, the similar tier asks it for neighbours instead of scanning."""
    pytest.importorskip("faiss")
    db = tmp_path / "faiss.db"
    run_json("index", library, "--db", db, "--model-path", tiny_clip_dir, "--index", "faiss")
    similar = run_json("duplicates", "--tier", "similar", "--threshold", "0.99999", "--db", db)["groups"]
    assert {"a.jpg", "a-copy.jpg"} in _names(similar)


def test_hashes_of_an_older_hash_version_are_redone_on_index_without_reembedding(indexed, library, tiny_clip_dir):
    """Hashes from another version of the hash function do not compare with new ones: the near tier
    stops using them and says what to do, without writing (listing duplicates only reads the
    catalog), and the next index re-hashes them, embeddings untouched."""
    with sqlite3.connect(indexed) as con:
        hashes = dict(con.execute("SELECT path, phash FROM images"))
        embeddings = dict(con.execute("SELECT path, embedding FROM images"))
        con.execute("UPDATE images SET phash = phash + 12345")
        con.execute("UPDATE meta SET value = '1' WHERE key = 'setting.phash_version'")
        old = dict(con.execute("SELECT path, phash FROM images"))
    def catalog_files() -> dict[str, bytes]:  # the shared-memory index of the WAL changes on any read
        return {p.name: p.read_bytes() for p in indexed.parent.glob(indexed.name + "*") if p.suffix != ".db-shm"}

    before = catalog_files()
    assert indexed.name in before
    for tier in ("near", "all"):
        result = CliRunner().invoke(app, ["duplicates", "--tier", tier, "--db", str(indexed)])
        assert result.exit_code == 0 and f"{len(hashes)} images have no perceptual hash yet" in result.output
        assert "Run `photoseek index` on your folders once: it re-hashes them" in result.output
        listed = run_json("duplicates", "--tier", tier, "--db", indexed)["groups"]
        if tier == "near":  # no hash of this version to compare
            assert listed == []
        else:  # the other tiers still work
            assert any({"a.jpg", "a-copy.jpg"} <= group for group in _names(listed))
    assert catalog_files() == before
    with sqlite3.connect(indexed) as con:
        assert dict(con.execute("SELECT path, phash FROM images")) == old
    run = run_json("index", library, "--db", indexed, "--model-path", tiny_clip_dir)
    assert run["embedded"] == 0
    with sqlite3.connect(indexed) as con:
        assert dict(con.execute("SELECT path, phash FROM images")) == hashes
        assert dict(con.execute("SELECT path, embedding FROM images")) == embeddings
    assert len(run_json("duplicates", "--tier", "near", "--db", indexed)["groups"]) == 2


def test_the_listing_says_what_move_to_would_move(indexed, tmp_path, tiny_clip_dir):
    """--move-to takes exact and near copies by default: a listing with merely similar copies says so,
    with the flag that takes them too, instead of promising a move that moves nothing."""
    groups = run_json("duplicates", "--tier", "all", "--db", indexed)["groups"]
    similar = sum(m["tier"] == "similar" for g in groups for m in g["others"])
    assert similar  # the tiny random CLIP finds every scene alike
    said = " ".join(run_cli("duplicates", "--tier", "all", "--db", indexed).split())
    assert f"add --tier all to move the {similar} merely similar" in said
    near_only = " ".join(run_cli("duplicates", "--tier", "near", "--db", indexed).split())
    assert near_only.endswith("Move them aside with --move-to FOLDER (undo with --undo MANIFEST).")

    scenes, db = tmp_path / "scenes", tmp_path / "scenes.db"
    for seed in (5, 6, 7):
        draw_scene(scenes / f"s{seed}.jpg", seed)
    run_json("index", scenes, "--db", db, "--model-path", tiny_clip_dir)
    alike = run_json("duplicates", "--tier", "similar", "--threshold", "0.0001", "--db", db)["groups"]
    assert alike and all(m["tier"] == "similar" for g in alike for m in g["others"])
    said = " ".join(run_cli("duplicates", "--tier", "similar", "--threshold", "0.0001", "--db", db).split())
    assert "They are only similar (the same scene): --move-to FOLDER --tier similar moves them" in said
    assert "Moved 0" not in run_cli("duplicates", "--tier", "similar", "--threshold", "0.0001", "--db", db,
                                    "--move-to", tmp_path / "aside")
