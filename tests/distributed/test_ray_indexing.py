"""Indexing through a real local Ray cluster: same catalog as a local run, and the failure modes."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from photoseek import ImageIndex
from photoseek.ingest.reading import MAX_SIDECAR_BYTES
from photoseek.store.catalog import Catalog
from tests.distributed.conftest import free_port, join_node
from tests.helpers import draw_photo, render_sign, run_cli, run_json, shared_data

pytestmark = pytest.mark.ray
COCO_MINI = shared_data("coco-mini")


def _catalog(db: Path) -> dict[str, tuple[tuple, np.ndarray]]:
    """Every image row (without ids and times) and its embedding, by path."""
    with Catalog(db, create=False, readonly=True) as catalog:
        ids, vectors = catalog.all_embeddings()
        records = catalog.records([int(i) for i in ids])
    out = {}
    for image_id, vector in zip(ids, vectors):
        r = records[int(image_id)]
        out[r.path] = ((r.size, r.mtime_ns, r.content_hash, r.width, r.height, r.format, r.taken_at, r.camera), vector)
    return out


def _index(db: Path, root: Path, model: Path, **options) -> object:
    with ImageIndex(db, model_path=model) as index:
        return index.index([root], **options)


def _assert_same(ray_db: Path, local_db: Path) -> None:
    ray_rows, local_rows = _catalog(ray_db), _catalog(local_db)
    assert ray_rows.keys() == local_rows.keys()
    for path, (row, vector) in ray_rows.items():
        local_row, local_vector = local_rows[path]
        assert row == local_row, path
        cosine = float(vector @ local_vector / np.linalg.norm(vector) / np.linalg.norm(local_vector))
        assert cosine >= 0.99999, (path, cosine)
    query = "SELECT path, phash FROM images ORDER BY path"
    with sqlite3.connect(ray_db) as con, sqlite3.connect(local_db) as local_con:
        phashes = con.execute(query).fetchall()
        assert phashes == local_con.execute(query).fetchall(), "the same perceptual hashes"
        assert all(phash is not None for _, phash in phashes)


@pytest.fixture(scope="module")
def local_coco(tmp_path_factory, tiny_clip_dir) -> Path:
    if not COCO_MINI.is_dir():
        pytest.skip(f"shared data not found at {COCO_MINI} (set PHOTOSEEK_SHARED_DATA)")
    db = tmp_path_factory.mktemp("local") / "local.db"
    _index(db, COCO_MINI, tiny_clip_dir)
    return db


def test_ray_run_matches_a_local_run(ray_cluster, local_coco, tmp_path, tiny_clip_dir):
    db = tmp_path / "ray.db"
    output = run_cli("index", COCO_MINI, "--db", db, "--model-path", tiny_clip_dir, "--ray", ray_cluster)
    assert "embedded" in output
    _assert_same(db, local_coco)
    again = _index(db, COCO_MINI, tiny_clip_dir, ray=ray_cluster)
    assert (again.embedded, again.unchanged) == (0, len(_catalog(local_coco)))


@pytest.mark.parametrize("ship_bytes", [False, True], ids=["shared-fs", "ship-bytes"])
def test_failures_sidecars_and_moves_come_back_as_in_a_local_run(ray_cluster, tmp_path, tiny_clip_dir, ship_bytes):
    photos = tmp_path / "photos"
    for i, colour in enumerate(["red", "green", "blue"]):
        draw_photo(photos / f"{colour}.jpg", colour, seed=i)
    (photos / "red.xmp").write_text(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        ' xmlns:exif="http://ns.adobe.com/exif/1.0/" xmp:Rating="4" xmp:Label="Red"'
        ' exif:GPSLatitude="41,8.9766N" exif:GPSLongitude="8,36.6594W"><dc:description><rdf:Alt>'
        '<rdf:li xml:lang="x-default">a red ball</rdf:li></rdf:Alt></dc:description></rdf:Description>'
        "</rdf:RDF></x:xmpmeta>"
    )
    with open(photos / "blue.xmp", "wb") as huge:  # sparse: no disk space; read where the photo is read
        huge.truncate(2 * MAX_SIDECAR_BYTES)
    (photos / "empty.jpg").write_bytes(b"")
    (photos / "notes.png").write_text("not an image at all")
    local = _index(tmp_path / "local.db", photos, tiny_clip_dir)
    remote = _index(tmp_path / "ray.db", photos, tiny_clip_dir, ray=ray_cluster, ray_ship_bytes=ship_bytes)
    assert sorted((f.path, f.reason) for f in remote.failures) == sorted((f.path, f.reason) for f in local.failures)
    assert len(remote.failures) == 3 and remote.embedded == 3
    [skipped] = [f for f in remote.failures if f.path == str(photos.resolve() / "blue.xmp")]
    assert skipped.reason.startswith("sidecar skipped:") and "limit" in skipped.reason
    _assert_same(tmp_path / "ray.db", tmp_path / "local.db")
    with sqlite3.connect(tmp_path / "ray.db") as con, sqlite3.connect(tmp_path / "local.db") as local_con:
        query = "SELECT content_hash, source, text FROM text_signals ORDER BY 1, 2"
        texts = con.execute(query).fetchall()
        assert texts == local_con.execute(query).fetchall()
        assert any("a red ball" in text for _, _, text in texts), "the sidecar was read"
        facts = "SELECT path, rating, label, latitude, longitude FROM images ORDER BY path"
        assert con.execute(facts).fetchall() == local_con.execute(facts).fetchall()
        assert (photos.resolve() / "red.jpg").as_posix() in {
            path for path, rating, *_ in con.execute(facts) if rating == 4
        }, "the sidecar's rating came back from the cluster"

    shutil.move(photos / "green.jpg", photos / "green-moved.jpg")
    moved = _index(tmp_path / "ray.db", photos, tiny_clip_dir, ray=ray_cluster, ray_ship_bytes=ship_bytes)
    assert (moved.embedded, moved.reused, moved.removed) == (0, 1, 1)


def test_a_killed_embedding_actor_is_replaced_and_every_image_lands_once(
    ray_cluster, local_coco, tmp_path, tiny_clip_dir
):
    from ray._private.state import actors  # the GCS actor table (the state API needs the dashboard)

    killed: list[int] = []

    def kill_one_actor(progress) -> None:
        if killed:
            return
        table = actors().values()
        embedders = [a for a in table if "Embedder" in a["ActorClassName"] and a["State"] == "ALIVE"]
        assert embedders, [(a["ActorClassName"], a["State"]) for a in table]
        os.kill(embedders[0]["Pid"], signal.SIGKILL)  # a crash: Ray restarts the actor and retries its batches
        killed.append(progress.done)

    db = tmp_path / "ray.db"
    report = _index(db, COCO_MINI, tiny_clip_dir, ray=ray_cluster, batch_size=4, on_progress=kill_one_actor)
    total = len(_catalog(local_coco))
    assert killed and killed[0] < total, "the actor was killed while work remained"
    assert (report.embedded, report.failures, report.interrupted) == (total, [], False)
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM images").fetchone() == (total, total)
    _assert_same(db, local_coco)


def test_a_killed_driver_loses_no_committed_batch_and_the_next_run_continues(
    ray_cluster, local_coco, tmp_path, tiny_clip_dir
):
    db = tmp_path / "ray.db"
    driver = subprocess.Popen(
        [sys.executable, "-m", "photoseek", "index", str(COCO_MINI), "--db", str(db),
         "--model-path", str(tiny_clip_dir), "--ray", ray_cluster, "--batch-size", "4", "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)},
    )
    committed = 0
    deadline = time.monotonic() + 120
    while committed == 0 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    committed = con.execute("SELECT COUNT(*) FROM images").fetchone()[0]
            except sqlite3.OperationalError:
                pass  # the schema is not there yet
    driver.kill()
    driver.wait()
    total = len(_catalog(local_coco))
    assert 0 < committed < total, "the driver was killed mid-run"

    resumed = _index(db, COCO_MINI, tiny_clip_dir, ray=ray_cluster)
    assert 0 < resumed.embedded <= total - committed
    assert resumed.unchanged >= committed
    _assert_same(db, local_coco)


def test_ray_without_the_extra_says_how_to_install_it(monkeypatch, tmp_path, tiny_clip_dir):
    draw_photo(tmp_path / "photos" / "red.jpg", "red")
    monkeypatch.setitem(sys.modules, "ray", None)
    output = run_cli(
        "index", tmp_path / "photos", "--db", tmp_path / "c.db", "--model-path", tiny_clip_dir, "--ray", "auto",
        expect=4,
    )
    assert "pip install 'photoseek[ray]'" in " ".join(output.split())


def test_a_node_that_cannot_see_the_folder_fails_the_run_at_once(ray_cluster, ray_temp, tmp_path, tiny_clip_dir):
    """A second node joins inside a mount namespace where the photo folder is an empty tmpfs... or absent."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
        pytest.skip("needs user and mount namespaces (unshare -rm) to give one node a different filesystem")
    photos = tmp_path / "photos"
    draw_photo(photos / "red.jpg", "red")
    hidden = tmp_path / "elsewhere"
    hidden.mkdir()
    # The node sees an empty folder over tmp_path: `photos` does not exist there.
    prefix = ["unshare", "-rm", "sh", "-c", f'mount -t tmpfs none "{tmp_path}" && exec "$0" "$@"']
    node = join_node(ray_cluster, tmp_path / "node.log", prefix)
    try:
        started = time.monotonic()
        output = run_cli(
            "index", photos, "--db", tmp_path / "c.db", "--model-path", tiny_clip_dir, "--ray", ray_cluster, expect=1
        )
        assert time.monotonic() - started < 60
    finally:
        node.stop()
    message = " ".join(output.split())
    assert "cannot see" in message and str(photos) in message and "--ray-ship-bytes" in message
    with sqlite3.connect(tmp_path / "c.db") as con:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "images" not in tables or con.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 0


def _text_signals(db: Path) -> list[tuple[str, str, str, str]]:
    """Every stored text signal: content hash, source, model, text."""
    with sqlite3.connect(db) as con:
        return con.execute("SELECT content_hash, source, model, text FROM text_signals ORDER BY 1, 2").fetchall()


@pytest.fixture
def signal_photos(tmp_path) -> Path:
    """Three COCO photos (one a copy of its own), a shop sign (so OCR reads words) and a corrupt JPEG."""
    if not COCO_MINI.is_dir():
        pytest.skip(f"shared data not found at {COCO_MINI} (set PHOTOSEEK_SHARED_DATA)")
    photos = tmp_path / "photos"
    photos.mkdir()
    first, *others = sorted((COCO_MINI / "val2017").glob("*.jpg"))[:3]
    shutil.copy(first, photos / "copied.jpg")
    for path in others:
        (photos / path.name).symlink_to(path)
    render_sign(photos / "sign.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 200)
    return photos


def _index_json(photos: Path, db: Path, model: Path, *args: object) -> dict:
    return run_json("index", photos, "--db", db, "--model-path", model, *args)


@pytest.mark.parametrize("ship_bytes", [False, True], ids=["shared-fs", "ship-bytes"])
def test_ocr_captions_and_objects_are_made_on_the_cluster_as_in_a_local_run(
    ray_cluster, signal_photos, tmp_path, tiny_clip_dir, tiny_blip_dir, tiny_detr_dir, ship_bytes
):
    """OCR in the same run as the embedding pass; then captions and object counts for images indexed
    before, one of which changed behind the catalog's back (same size and mtime): its reason comes back."""
    pytest.importorskip("rapidocr_onnxruntime")
    local_db, ray_db = tmp_path / "local.db", tmp_path / "ray.db"
    on_ray = ["--ray", ray_cluster, *(["--ray-ship-bytes"] if ship_bytes else [])]
    local = _index_json(signal_photos, local_db, tiny_clip_dir, "--ocr")
    remote = _index_json(signal_photos, ray_db, tiny_clip_dir, "--ocr", *on_ray)
    assert remote["signals"] == local["signals"] == {"ocr": 4}
    assert remote["failed"] == local["failed"] and len(local["failed"]) == 1
    _assert_same(ray_db, local_db)
    assert _text_signals(ray_db) == _text_signals(local_db)
    ocr = [text for _, source, _, text in _text_signals(ray_db) if source == "ocr"]
    assert any({"HARBOUR", "BAKERY"} <= set(text.split()) for text in ocr), ocr

    changed = signal_photos / "copied.jpg"
    stat = changed.stat()
    data = bytearray(changed.read_bytes())
    data[len(data) // 2] ^= 0xFF
    changed.write_bytes(bytes(data))
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    more = ["--caption-model", tiny_blip_dir, "--objects", "--detector", tiny_detr_dir]
    local = _index_json(signal_photos, local_db, tiny_clip_dir, *more)
    remote = _index_json(signal_photos, ray_db, tiny_clip_dir, *more, *on_ray)
    assert remote["signals"] == local["signals"] == {"caption": 3, "objects": 3}
    assert remote["failed"] == local["failed"]
    assert any(f["path"] == str(changed) and "changed since it was indexed" in f["reason"] for f in remote["failed"])
    texts = _text_signals(ray_db)
    assert texts == _text_signals(local_db)
    assert {source for _, source, _, text in texts if text} == {"ocr", "caption", "objects"}
    assert _index_json(signal_photos, ray_db, tiny_clip_dir, "--ocr", *on_ray)["signals"] == {}


def test_a_missing_signal_model_fails_on_the_driver_before_the_cluster_is_asked(tmp_path, tiny_clip_dir):
    """The same error as a local run, before any connection: no cluster answers at this address."""
    draw_photo(tmp_path / "photos" / "red.jpg", "red")
    args = ["index", tmp_path / "photos", "--db", tmp_path / "c.db", "--model-path", tiny_clip_dir,
            "--objects", "--detector", tmp_path / "no-such-detector"]
    local = run_cli(*args, expect=4)
    remote = run_cli(*args, "--ray", f"127.0.0.1:{free_port()}", expect=4)
    assert remote == local and "no-such-detector" in local


def test_signal_actors_ask_for_gpus_only_on_a_cluster_that_has_them():
    pytest.importorskip("ray")
    from photoseek.distributed.signals import actor_resources

    on_gpus = actor_resources(True, gpus=4, cpus=64, gpu_pools=2, pools=3)
    assert (on_gpus["num_gpus"], on_gpus["num_cpus"], on_gpus["compute"].min_size) == (0.5, 0, 4)
    small = actor_resources(False, gpus=0, cpus=2, gpu_pools=0, pools=3)  # this test cluster: decode + 3 pools fit
    assert (small["num_gpus"], small["compute"].max_size) == (0, 1) and 3 * small["num_cpus"] + 1 <= 2
    big = actor_resources(False, gpus=0, cpus=64, gpu_pools=0, pools=3)
    assert (big["num_cpus"], big["compute"].max_size) == (1.0, 16)


def test_a_sidecar_edited_while_the_cluster_works_is_read_by_the_next_run(
    ray_cluster, tmp_path, tiny_clip_dir, monkeypatch
):
    """As in a local run (tests/ingest/test_indexer.py), a photo counts as indexed from before its
    sidecar was read, on the driver's clock: an edit saved while the cluster works is read next time."""
    photos = tmp_path / "photos"
    draw_photo(photos / "red.jpg", "red")
    sidecar = photos / "red.jpg.xmp"
    described = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                 '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description><rdf:Alt>'
                 '<rdf:li xml:lang="x-default">{}</rdf:li></rdf:Alt></dc:description></rdf:Description>'
                 "</rdf:RDF></x:xmpmeta>")
    sidecar.write_text(described.format("a lighthouse"), encoding="utf-8")
    db = tmp_path / "c.db"
    real_write = Catalog.write_batch

    def edit_then_write(self: Catalog, images, *args, **kwargs):  # the user saves in digiKam meanwhile
        if images:
            sidecar.write_text(described.format("a funicular"), encoding="utf-8")
            time.sleep(0.1)  # past the 20 ms a file system's clock may lag
        return real_write(self, images, *args, **kwargs)

    monkeypatch.setattr(Catalog, "write_batch", edit_then_write)
    run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir, "--ray", ray_cluster)
    monkeypatch.setattr(Catalog, "write_batch", real_write)
    run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir, "--ray", ray_cluster)
    found = run_json("search", "funicular", "--mode", "keyword", "--db", db)["results"]
    assert [Path(h["path"]).name for h in found] == ["red.jpg"]
