"""One behavioural suite for every vector-index backend, driven through the CLI.

Each backend (exact, faiss, qdrant in local mode) must give the same answers on the same
data: additions, changes and deletions show up, filters return k matches when k exist,
pages are stable, an empty catalog and a wrong model give clear errors.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers import COLOURS, draw_photo, run_cli, run_json
from tests.search.test_filters import _set_mtime, _with_exif

BACKENDS = ["exact", "faiss", "qdrant"]
SIDECAR = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:exif="http://ns.adobe.com/exif/1.0/"
 {attributes}/></rdf:RDF></x:xmpmeta>"""


def _index_args(backend: str, where: Path) -> list[str]:
    pytest.importorskip({"exact": "numpy", "faiss": "faiss", "qdrant": "qdrant_client"}[backend])
    args = ["--index", backend]
    if backend == "qdrant":
        args += ["--qdrant-path", str(where / "qdrant")]
    return args


def _paths(payload: dict) -> list[str]:
    return [Path(r["path"]).name for r in payload["results"]]


@pytest.fixture(scope="module", params=BACKENDS)
def library(request, tmp_path_factory, tiny_clip_dir) -> tuple[Path, Path, str]:
    backend = request.param
    root = tmp_path_factory.mktemp(f"library-{backend}")
    photos = root / "photos"
    for i in range(14):
        draw_photo(photos / "bulk" / f"{i:02d}.jpg", list(COLOURS)[i % 6], seed=i)
        _set_mtime(photos / "bulk" / f"{i:02d}.jpg", 2015)
    draw_photo(photos / "trip" / "a.jpg", "red", size=(1200, 900))
    _with_exif(photos / "trip" / "a.jpg", "2021:07:04 10:00:00", ("Google", "Pixel 7"))
    draw_photo(photos / "trip" / "b.png", "green", size=(300, 200))
    _set_mtime(photos / "trip" / "b.png", 2019)
    draw_photo(photos / "trip" / "c.jpg", "yellow", size=(1600, 1200))
    _with_exif(photos / "trip" / "c.jpg", "2019:12:31 23:59:00", ("Canon", "Canon EOS 5D"))
    (photos / "trip" / "a.jpg.xmp").write_text(SIDECAR.format(
        attributes='xmp:Rating="4" exif:GPSLatitude="41,8.9766N" exif:GPSLongitude="8,36.6594W"'))
    (photos / "trip" / "c.jpg.xmp").write_text(SIDECAR.format(attributes='xmp:Rating="2" xmp:Label="Red"'))
    db = root / "catalog.db"
    report = run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir, *_index_args(backend, root))
    assert report["vector_index"] == backend
    return photos, db, backend


def _search(db: Path, *args: str) -> dict:
    return run_json("search", "--image", str(args[0]), "--db", db, *args[1:])


def test_filters_run_on_every_backend(library):
    photos, db, _ = library
    query = photos / "trip" / "a.jpg"

    def names(*args: str) -> set[str]:
        return set(_paths(_search(db, query, "-k", "50", *args)))

    assert names("--in", str(photos / "trip")) == {"a.jpg", "b.png", "c.jpg"}
    assert names("--format", "png") == {"b.png"}
    assert names("--format", "jpg", "--in", str(photos / "trip")) == {"a.jpg", "c.jpg"}
    assert names("--min-size", "800") == {"a.jpg", "c.jpg"}
    assert names("--camera", "pixel") == {"a.jpg"}
    assert names("--camera", "nikon") == set()
    assert names("--after", "2020-01-01") == {"a.jpg"}
    assert names("--after", "2019-01-01", "--before", "2020-01-01") == {"b.png", "c.jpg"}
    assert names("--min-rating", "2") == {"a.jpg", "c.jpg"}
    assert names("--min-rating", "3") == {"a.jpg"}
    assert names("--label", "red") == {"c.jpg"}
    assert names("--near", "41.15,-8.61,5") == {"a.jpg"}
    assert names("--near", "41.15,-8.61,5", "--format", "png") == set()
    if importlib.util.find_spec("reverse_geocode"):  # the places extra names it
        assert names("--place", "Portugal") == {"a.jpg"}
    bulk = _search(db, query, "-k", "5", "--in", str(photos / "bulk"))
    assert len(bulk["results"]) == 5 and all("/bulk/" in r["path"] for r in bulk["results"])


def test_pages_are_stable_and_match_the_exact_backend(library, tmp_path, tiny_clip_dir):
    photos, db, backend = library
    query = photos / "bulk" / "03.jpg"
    full = _search(db, query, "-k", "12")["results"]
    pages = [_search(db, query, "-k", "4", "--offset", str(o))["results"] for o in (0, 4, 8)]
    assert [r["path"] for page in pages for r in page] == [r["path"] for r in full]
    assert [r["rank"] for page in pages for r in page] == list(range(1, 13))
    exact_db = tmp_path / "exact.db"
    run_json("index", photos, "--db", exact_db, "--model-path", tiny_clip_dir, "--index", "exact")
    exact = _search(exact_db, query, "-k", "12")["results"]
    assert [r["path"] for r in full] == [r["path"] for r in exact]
    assert [r["score"] for r in full] == pytest.approx([r["score"] for r in exact], abs=2e-3)


def test_model_mismatch_is_refused(library):
    photos, db, _ = library
    output = run_cli("search", "a dog", "--db", db, "--model", "ViT-B-32__openai", expect=5)
    assert "was built with model" in output


@pytest.mark.parametrize("backend", BACKENDS)
def test_add_change_delete_follow_the_files(backend, tmp_path, tiny_clip_dir):
    photos = tmp_path / "photos"
    for i, colour in enumerate(COLOURS):
        draw_photo(photos / f"{colour}.jpg", colour, seed=i)
    db = tmp_path / "c.db"
    args = ["--db", db, "--model-path", tiny_clip_dir]
    run_json("index", photos, *args, *_index_args(backend, tmp_path))

    draw_photo(photos / "new.jpg", "red", shape="square", size=(200, 100), seed=42)
    draw_photo(photos / "green.jpg", "purple", shape="square", size=(120, 160), seed=7)
    os.utime(photos / "green.jpg", (1e9, 1e9))
    (photos / "blue.jpg").unlink()
    report = run_json("index", photos, *args)  # the backend choice is remembered
    assert report["vector_index"] == backend and report["removed"] == 1

    everything = _paths(_search(db, photos / "new.jpg", "-k", "20"))
    assert everything[0] == "new.jpg" and "blue.jpg" not in everything and len(everything) == len(COLOURS)
    changed = _search(db, photos / "green.jpg", "-k", "1")["results"][0]
    assert Path(changed["path"]).name == "green.jpg" and changed["score"] == pytest.approx(1.0, abs=2e-3)
    assert (changed["width"], changed["height"]) == (120, 160)
    assert _paths(_search(db, photos / "new.jpg", "--min-size", "150")) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_catalog_gives_a_clear_error(backend, tmp_path, tiny_clip_dir):
    (tmp_path / "empty").mkdir()
    db = tmp_path / "c.db"
    run_json("index", tmp_path / "empty", "--db", db, "--model-path", tiny_clip_dir, *_index_args(backend, tmp_path))
    output = run_cli("search", "anything", "--db", db, expect=5)
    assert "no images" in " ".join(output.split())


def test_qdrant_needs_a_place(tmp_path, tiny_clip_dir):
    output = run_cli("index", tmp_path, "--db", tmp_path / "c.db", "--index", "qdrant", expect=2)
    assert "--qdrant-url" in output


def test_unknown_backend_is_refused(tmp_path):
    output = run_cli("index", tmp_path, "--db", tmp_path / "c.db", "--index", "annoy", expect=2)
    assert "auto, exact, faiss, qdrant" in output


@pytest.mark.parametrize("rebuild", [[], ["--rebuild"]], ids=["update", "rebuild"])
@pytest.mark.parametrize(("backend", "module"), [("faiss", "faiss"), ("qdrant", "qdrant_client")])
def test_a_backend_whose_extra_is_missing_is_refused_and_not_remembered(
    backend, module, rebuild, tmp_path, tiny_clip_dir, monkeypatch
):
    photos = tmp_path / "photos"
    draw_photo(photos / "a.jpg", "red")
    db = tmp_path / "c.db"
    run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir, "--index", "exact")
    chosen = _index_args(backend, tmp_path)
    monkeypatch.setitem(sys.modules, module, None)  # the extra is not installed
    output = run_cli("index", photos, "--db", db, *rebuild, *chosen, expect=4)  # --rebuild keeps its embeddings too
    assert f"pip install 'photoseek[{backend}]'" in " ".join(output.split())
    assert run_json("status", "--db", db)["vector_index"] == "exact"  # the catalog keeps what works
    assert len(run_json("search", "red", "--db", db, "--mode", "clip", "--min-score", "-1")["results"]) == 1


def test_status_shows_the_backend(library):
    _, db, backend = library
    status = run_json("status", "--db", db)
    assert status["vector_index"] == status["vector_search"]["backend"] == backend
    # 17 photos: a faiss catalog this small is scanned, and status says so and why
    want = {"exact": ("exact", "chosen with --index exact"), "faiss": ("exact", "below 10,000 a scan"),
            "qdrant": ("qdrant", "Qdrant at")}[backend]
    assert status["vector_search"]["kind"] == want[0] and want[1] in status["vector_search"]["reason"]
    assert f"Index: {backend}" in " ".join(run_cli("status", "--db", db).split())


def test_moving_the_catalog_folder_keeps_working(library, tmp_path):
    photos, db, backend = library
    if backend == "qdrant":
        pytest.skip("the qdrant collection lives outside the catalog folder")
    copy = tmp_path / "copy"
    shutil.copytree(db.parent, copy, ignore=shutil.ignore_patterns("photos"))
    assert _paths(_search(copy / "catalog.db", photos / "trip" / "c.jpg", "-k", "1")) == ["c.jpg"]
