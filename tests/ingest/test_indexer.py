"""Indexing through the CLI and the Python API: incremental runs, failures, interruption."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photoseek import ImageIndex
from tests.helpers import catalog_of, draw_photo, run_cli, run_json, shared_data


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for i, colour in enumerate(["red", "green", "blue", "yellow"]):
        draw_photo(root / f"{colour}.jpg", colour, seed=i)
    draw_photo(root / "nested" / "deeper" / "purple.png", "purple", shape="square")
    return root


def _paths(index_json: dict) -> set[str]:
    return {f["path"] for f in index_json["failed"]}


def _indexed(db: Path) -> set[str]:
    with sqlite3.connect(db) as con:
        return {Path(row[0]).name for row in con.execute("SELECT path FROM images")}


def test_first_index_embeds_everything_and_second_reads_nothing(photos, tmp_path, tiny_clip_dir):
    db = tmp_path / "c.db"
    first = run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    assert (first["scanned"], first["embedded"], first["failed"]) == (5, 5, [])
    second = run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    assert (second["embedded"], second["unchanged"], second["reused"]) == (0, 5, 0)


def test_a_file_linked_from_outside_the_folder_is_unchanged_on_a_rerun(tmp_path, tiny_clip_dir):
    library, elsewhere = tmp_path / "library", tmp_path / "elsewhere"
    draw_photo(library / "here.png", "red")
    draw_photo(elsewhere / "there.png", "blue")
    (library / "linked.png").symlink_to(elsewhere / "there.png")
    db = tmp_path / "c.db"
    first = run_json("index", library, "--db", db, "--model-path", tiny_clip_dir)
    assert (first["embedded"], first["failed"]) == (2, [])
    again = run_json("index", library, "--db", db, "--model-path", tiny_clip_dir)
    assert (again["unchanged"], again["embedded"], again["reused"], again["removed"]) == (2, 0, 0, 0)


def test_incremental_add_modify_delete_move(photos, tmp_path, tiny_clip_dir):
    db = tmp_path / "c.db"
    run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)

    draw_photo(photos / "orange.jpg", "orange")
    draw_photo(photos / "red.jpg", "red", shape="square", seed=9)
    os.utime(photos / "red.jpg", ns=(1, 1))
    (photos / "green.jpg").unlink()
    (photos / "moved").mkdir()
    shutil.move(photos / "blue.jpg", photos / "moved" / "blue-renamed.jpg")
    shutil.copy(photos / "yellow.jpg", photos / "yellow-copy.jpg")

    run = run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    assert run["embedded"] == 2, "only the new and the modified file need the model"
    assert run["reused"] == 2, "the moved and the copied file reuse stored embeddings"
    assert run["removed"] == 2, "the deleted file and the old path of the moved one"
    assert _indexed(db) == {
        "red.jpg", "yellow.jpg", "yellow-copy.jpg", "blue-renamed.jpg", "purple.png", "orange.jpg",
    }


def test_other_roots_are_kept_when_indexing_one(photos, tmp_path, tiny_clip_dir):
    db = tmp_path / "c.db"
    other = tmp_path / "other"
    draw_photo(other / "x.png", "orange")
    run_json("index", photos, other, "--db", db, "--model-path", tiny_clip_dir)
    run_json("index", other, "--db", db, "--model-path", tiny_clip_dir)
    assert len(_indexed(db)) == 6


def test_bad_files_are_reported_and_the_run_goes_on(photos, tmp_path, tiny_clip_dir):
    (photos / "empty.jpg").write_bytes(b"")
    (photos / "notes.png").write_text("not an image at all")
    good = (photos / "red.jpg").read_bytes()
    (photos / "cut.jpg").write_bytes(good[: len(good) // 2])
    db = tmp_path / "c.db"
    run = run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    failed = {Path(p).name for p in _paths(run)}
    assert failed == {"empty.jpg", "notes.png", "cut.jpg"}
    assert run["embedded"] == 5
    status = run_json("status", "--db", db)
    assert {Path(f["path"]).name for f in status["failures"]} == failed
    assert all(f["reason"] for f in status["failures"])
    unchanged_rerun = run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    assert unchanged_rerun["embedded"] == 0 and unchanged_rerun["failed"] == []


def test_missing_folder_is_a_clear_error(tmp_path, tiny_clip_dir):
    output = run_cli("index", tmp_path / "nope", "--db", tmp_path / "c.db",
                     "--model-path", tiny_clip_dir, expect=3)
    assert "No such folder" in output


def test_kill_mid_run_keeps_finished_batches_and_resume_completes(tmp_path, tiny_clip_dir):
    root = tmp_path / "many"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(240):
        noise = rng.integers(0, 255, size=(300, 400, 3), dtype=np.uint8)
        Image.fromarray(noise).save(root / f"{i:03d}.png")
    db = tmp_path / "c.db"
    command = [sys.executable, "-m", "photoseek", "index", str(root), "--db", str(db),
               "--model-path", str(tiny_clip_dir), "--batch-size", "4", "--json"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _count(db) < 8:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = _count(db)
    assert 8 <= saved < 240, f"kill landed at {saved} images; the test needs a mid-run kill"
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    resumed = run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    assert resumed["unchanged"] == saved
    assert resumed["embedded"] == 240 - saved
    assert _count(db) == 240


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.skipif(not shared_data("formats").is_dir(), reason="needs the shared test data (formats/)")
def test_index_real_world_formats(tmp_path, tiny_clip_dir):
    db = tmp_path / "c.db"
    formats = shared_data("formats")
    run = run_json("index", formats, "--db", db, "--model-path", tiny_clip_dir)
    failed = {Path(f["path"]).name: f["reason"] for f in run["failed"]}
    for broken in ("truncated.jpg", "truncated.png", "corrupt-header.jpg"):
        assert broken in failed, f"{broken} must be reported"
    skipped_by_name = {name for name, reason in failed.items() if "not supported" in reason}
    assert {"check.svg", "8bit-sRGB.jxl"} <= skipped_by_name, "unsupported formats are listed, not silent"
    assert run["embedded"] + run["reused"] + len(run["failed"]) - len(skipped_by_name) == run["scanned"]
    with ImageIndex(db) as index:
        ids, _ = catalog_of(index).all_embeddings()
        by_name = {Path(r.path).name: r for r in index.records(ids.tolist()).values()}
    landscapes = {by_name[f"Landscape_{i}.jpg"] for i in range(1, 9) if f"Landscape_{i}.jpg" in by_name}
    portraits = {by_name[f"Portrait_{i}.jpg"] for i in range(1, 9) if f"Portrait_{i}.jpg" in by_name}
    assert len(landscapes) == 8 and len(portraits) == 8
    assert {(r.width, r.height) for r in landscapes} == {(600, 450)}
    assert {(r.width, r.height) for r in portraits} == {(450, 600)}
    for kind in ("heic", "avif"):
        assert any(r.format in {kind, "heif"} for r in by_name.values()), f"no {kind} indexed"


@pytest.mark.parametrize("empty", [False, True], ids=["missing", "empty-mount-point"])
def test_index_of_a_vanished_root_keeps_its_images(tmp_path, tiny_clip_dir, empty):
    root = tmp_path / "disk"
    draw_photo(root / "a.jpg", "red")
    draw_photo(root / "b.jpg", "blue")
    db = tmp_path / "c.db"
    run_cli("index", root, "--db", db, "--model-path", tiny_clip_dir)
    root.rename(tmp_path / "unplugged")
    if empty:
        root.mkdir()
        report = run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
        assert report["removed"] == 0 and report["empty_roots"] == [str(root.resolve())]
        assert "is empty" in run_cli("index", root, "--db", db, "--model-path", tiny_clip_dir)
    else:
        assert "No such folder" in run_cli("index", root, "--db", db, "--model-path", tiny_clip_dir, expect=3)
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 2


def _odd_named_photo(folder: Path) -> str:
    """A photo whose name is not UTF-8 (an old Samba/FAT copy), sorted before the others; returns its str path."""
    made = draw_photo(folder / "made.jpg", "orange", seed=7)
    odd = os.fsdecode(os.fsencode(folder) + b"/0caf\xe9.jpg")
    os.rename(made, odd)
    return odd


def test_file_name_that_is_not_utf8_is_indexed_searchable_and_printed_safely(photos, tmp_path, tiny_clip_dir):
    odd = _odd_named_photo(photos)
    db = tmp_path / "c.db"
    first = run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir, "--batch-size", "2")
    assert (first["scanned"], first["embedded"], first["failed"]) == (6, 6, [])
    again = run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    assert (again["unchanged"], again["embedded"], again["reused"], again["removed"]) == (6, 0, 0, 0)

    found = run_json("search", "an orange circle", "--db", db, "--mode", "clip", "--min-score", "-1", "-k", "10")
    paths = [hit["path"] for hit in found["results"]]
    assert len(paths) == 6 and odd in paths, "JSON carries the name losslessly (\\udcNN escapes)"
    assert os.fsencode(odd) in {os.fsencode(p) for p in paths}
    text = run_cli("search", "an orange circle", "--db", db, "--mode", "clip", "--min-score", "-1", "-k", "10")
    assert "0caf\\xe9.jpg" in text, "text output shows the undecodable byte as \\xNN"
    page = tmp_path / "results.html"
    run_cli("search", "an orange circle", "--db", db, "--mode", "clip", "--min-score", "-1", "--html", page)
    assert "0caf\\xe9.jpg" in page.read_text(encoding="utf-8")
    with ImageIndex(db) as index:
        assert index.find(odd).path == odd


def test_control_characters_in_names_never_split_or_drive_the_output(photos, tmp_path, tiny_clip_dir):
    """A newline, tab or terminal escape in a file name is printed escaped: one line per result or failure."""
    os.rename(photos / "red.jpg", photos / "new\nline.jpg")
    os.rename(photos / "green.jpg", photos / "tab\there \x1b[31m.jpg")
    (photos / "broken\nname.jpg").write_text("not an image")
    db = tmp_path / "c.db"
    run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    text = run_cli("search", "a circle", "--db", db, "--mode", "clip", "--min-score", "-1", "-k", "10")
    lines = text.splitlines()
    assert len(lines) == 5 and all(line.count("\t") == 1 for line in lines), text
    assert "new\\nline.jpg" in text and "tab\\there \\x1b[31m.jpg" in text and "\x1b" not in text
    status = run_cli("status", "--db", db)
    assert "broken\\nname.jpg" in "".join(status.split()) and "\x1b" not in status


def test_odd_name_among_bad_files_never_costs_the_batch(photos, tmp_path, tiny_clip_dir):
    _odd_named_photo(photos)
    (photos / "0-empty.jpg").write_bytes(b"")
    odd_broken = os.fsdecode(os.fsencode(photos) + b"/0-\xff.png")
    Path(odd_broken).write_text("not an image")
    db = tmp_path / "c.db"
    run = run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    assert run["embedded"] == 6
    assert _paths(run) == {str(photos / "0-empty.jpg"), odd_broken}
    (photos / "red.jpg").unlink()
    rerun = run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    assert (rerun["removed"], rerun["embedded"], rerun["failed"]) == (1, 0, [])
    status = "".join(run_cli("status", "--db", db).split())  # unwrapped
    assert "0-\\xff.png:notanimage" in status and "0-empty.jpg:emptyfile" in status
    assert {f["path"] for f in run_json("status", "--db", db)["failures"]} == _paths(run)


def _index_in_subprocess(*args: object) -> tuple[dict, int]:
    """`photoseek index ... --json` in a fresh process: (report, peak RSS in MB)."""
    # VmHWM is this process's own peak; ru_maxrss would carry over the (large) pytest parent's
    # peak through fork and exec.
    script = (
        "import re, runpy, sys\n"
        "sys.argv = ['photoseek', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('photoseek', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "status = open('/proc/self/status').read()\n"
        "print(re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "index", *map(str, args), "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), int(result.stderr.split()[-1]) // 1024


def test_huge_non_image_is_refused_from_its_first_bytes(photos, tmp_path, tiny_clip_dir):
    """A 3 GB file named huge.jpg that is not an image must not be read (it once took 3.2 GB of RAM)."""
    huge = photos / "huge.jpg"
    with huge.open("wb") as fh:
        fh.truncate(3 * 1024**3)  # sparse: costs no disk, reads back as zeros
    report, peak_mb = _index_in_subprocess(photos, "--db", tmp_path / "c.db", "--model-path", tiny_clip_dir)
    assert report["embedded"] == 5
    assert {f["path"]: f["reason"] for f in report["failed"]} == {str(huge): "not an image (unrecognised format)"}
    assert peak_mb < 1500, f"peak RSS {peak_mb} MB: the file was read"  # wall time is too noisy on shared CI


def test_fifo_swapped_in_after_discovery_does_not_block(photos, tmp_path, tiny_clip_dir, monkeypatch):
    from photoseek.ingest import indexer

    victim = photos / "green.jpg"
    real_discover = indexer.discover

    def discover_then_swap(*args, **kwargs):
        yield from real_discover(*args, **kwargs)
        victim.unlink()
        os.mkfifo(victim)  # the file is now a pipe nobody writes to

    monkeypatch.setattr(indexer, "discover", discover_then_swap)
    outcome: dict = {}

    def run() -> None:
        with ImageIndex(tmp_path / "c.db", model_path=tiny_clip_dir) as index:
            outcome["report"] = index.index([photos])

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=120)
    if worker.is_alive():  # unblock the reader before failing, so the test run can end
        os.close(os.open(victim, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("indexing blocked on a FIFO")
    report = outcome["report"]
    assert report.embedded == 4
    assert [(f.path, f.reason) for f in report.failures] == [(str(victim), "named pipe (FIFO), not a regular file")]


def test_special_and_unsupported_files_are_listed_with_reasons(photos, tmp_path, tiny_clip_dir):
    os.mkfifo(photos / "pipe.jpg")
    os.mkfifo(photos / "nested" / "fifo")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(photos / "app.sock"))
    server.close()
    (photos / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (photos / "photo.jxl").write_bytes(b"\xff\x0a" + bytes(100))
    (photos / "notes.txt").write_text("not a photo, never listed")
    (photos / "README").write_text("no extension, not an image: sniffed and left out silently")
    db = tmp_path / "c.db"
    run = run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    reasons = {Path(f["path"]).name: f["reason"] for f in run["failed"]}
    assert reasons == {
        "pipe.jpg": "named pipe (FIFO), not a regular file",
        "fifo": "named pipe (FIFO), not a regular file",
        "app.sock": "socket, not a regular file",
        "logo.svg": "SVG is not supported",
        "photo.jxl": "JPEG XL is not supported (no decoder installed)",
    }
    assert run["embedded"] == 5
    status = {Path(f["path"]).name: f["reason"] for f in run_json("status", "--db", db)["failures"]}
    assert status == reasons
    text = "".join(run_cli("index", photos, "--db", db, "--model-path", tiny_clip_dir).split())
    assert "nothingtodo" in text or "5unchanged" in text
    assert run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)["failed"] == [], (
        "skips already listed are not repeated by every run"
    )
    (photos / "logo.svg").unlink()
    run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    assert "logo.svg" not in {Path(f["path"]).name for f in run_json("status", "--db", db)["failures"]}


def test_images_are_found_by_content_when_the_extension_says_nothing(photos, tmp_path, tiny_clip_dir):
    jpeg = (photos / "red.jpg").read_bytes()
    draw_photo(photos / "scan.jfif", "orange", seed=3)
    (photos / "IMG_0001").write_bytes(draw_photo(tmp_path / "x.jpg", "purple", seed=4).read_bytes())
    (photos / "photo.jpg.1").write_bytes(jpeg)
    (photos / "camera.THM").write_bytes(jpeg)  # a video's thumbnail: a known companion, not a photo
    db = tmp_path / "c.db"
    run = run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    assert run["failed"] == []
    assert _indexed(db) == {
        "red.jpg", "green.jpg", "blue.jpg", "yellow.jpg", "purple.png", "scan.jfif", "IMG_0001", "photo.jpg.1",
    }
    assert run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)["unchanged"] == 8


def test_image_larger_than_the_in_memory_limit_is_decoded_from_the_file(tmp_path, tiny_clip_dir):
    from photoseek.ingest.reading import IN_MEMORY_LIMIT

    folder = tmp_path / "big"
    folder.mkdir()
    side = int((IN_MEMORY_LIMIT / 3) ** 0.5) + 64
    big = folder / "big.bmp"
    Image.new("RGB", (side, side), (200, 30, 30)).save(big)
    assert big.stat().st_size > IN_MEMORY_LIMIT
    db = tmp_path / "c.db"
    first = run_json("index", folder, "--db", db, "--model-path", tiny_clip_dir)
    assert (first["embedded"], first["failed"]) == (1, [])
    shutil.copy(big, folder / "copy.bmp")
    second = run_json("index", folder, "--db", db, "--model-path", tiny_clip_dir)
    assert (second["reused"], second["embedded"]) == (1, 0), "the streamed hash of an equal file agrees"
    with ImageIndex(db) as index:
        assert index.find(folder / "copy.bmp").width == side


def test_second_index_run_on_a_busy_catalog_exits_naming_the_first(tmp_path, tiny_clip_dir):
    root = tmp_path / "many"
    root.mkdir()
    rng = np.random.default_rng(1)
    for i in range(160):
        Image.fromarray(rng.integers(0, 255, size=(480, 640, 3), dtype=np.uint8)).save(root / f"{i:03d}.png")
    db = tmp_path / "c.db"
    first = subprocess.Popen(
        [sys.executable, "-m", "photoseek", "index", str(root), "--db", str(db),
         "--model-path", str(tiny_clip_dir), "--batch-size", "2", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _count(db) < 2:
        time.sleep(0.02)
    try:
        assert _count(db) < 160, "the first run finished before the second could start"
        second = subprocess.run(
            [sys.executable, "-m", "photoseek", "index", str(root), "--db", str(db),
             "--model-path", str(tiny_clip_dir), "--json"],
            capture_output=True, text=True, timeout=120,
        )
        assert second.returncode == 5
        refusal = json.loads(second.stdout)["detail"]  # under --json the error is a JSON object on stdout
        assert f"another index run (pid {first.pid}) is working on this catalog" in " ".join(refusal.split())
    finally:
        output, _ = first.communicate(timeout=300)
    assert json.loads(output)["embedded"] == 160, "the first run was not disturbed"
    after = run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    assert (after["unchanged"], after["embedded"]) == (160, 0), "the lock is released when a run ends"


def test_a_first_run_interrupted_before_any_batch_leaves_no_catalog_files(photos, tmp_path, tiny_clip_dir, monkeypatch):
    from photoseek.ingest import indexer

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt  # Ctrl+C before the first batch is written

    db = tmp_path / "catalogs" / "new.db"
    db.parent.mkdir()
    with monkeypatch.context() as patch:
        patch.setattr(indexer._BatchWriter, "flush", interrupted)
        output = run_cli("index", photos, "--db", db, "--model-path", tiny_clip_dir, expect=130)
    said = " ".join(output.split())
    assert "nothing was indexed and no catalog was created" in said and "run the same command again" in said
    assert "holds 0 images" not in said
    assert list(db.parent.iterdir()) == []
    rerun = run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    assert rerun["embedded"] == 5


SIDECAR = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{}</rdf:li></rdf:Alt></dc:description>
</rdf:Description></rdf:RDF></x:xmpmeta>"""


def test_a_sidecar_edited_while_its_batch_is_made_is_read_by_the_next_run(photos, tmp_path, tiny_clip_dir, monkeypatch):
    """The time a file counts as indexed is when it and its sidecar were read, not when its batch was
    written: an edit landing in between is newer, and the next incremental run reads it."""
    from photoseek.store.catalog import Catalog

    sidecar = photos / "red.jpg.xmp"
    sidecar.write_text(SIDECAR.format("a lighthouse"), encoding="utf-8")
    db = tmp_path / "c.db"
    real_write = Catalog.write_batch

    def edit_then_write(self: Catalog, images, *args, **kwargs):  # the user saves in digiKam meanwhile
        if any(Path(image.path).name == "red.jpg" for image in images):
            sidecar.write_text(SIDECAR.format("a funicular"), encoding="utf-8")
        return real_write(self, images, *args, **kwargs)

    monkeypatch.setattr(Catalog, "write_batch", edit_then_write)
    run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    monkeypatch.setattr(Catalog, "write_batch", real_write)
    found = run_json("search", "lighthouse", "--mode", "keyword", "--db", db)["results"]
    assert [Path(h["path"]).name for h in found] == ["red.jpg"]  # what was read, before the edit

    again = run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    assert (again["embedded"], again["unchanged"]) == (0, 4)  # red.jpg read again, nothing re-embedded
    found = run_json("search", "funicular", "--mode", "keyword", "--db", db)["results"]
    assert [Path(h["path"]).name for h in found] == ["red.jpg"]
    assert run_json("search", "lighthouse", "--mode", "keyword", "--db", db)["results"] == []
    assert run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)["unchanged"] == 5
