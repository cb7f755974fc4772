"""Places end to end: photos whose GPS the test writes, indexed, named offline, found by place,
by distance and by words, through the CLI, the Python API and the REST API."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from photoseek import ImageIndex
from photoseek.store.filters import SearchFilters
from tests.helpers import catalog_of, draw_scene, run_cli, run_json
from tests.places.test_gps import XMP, gps_exif, located

pytest.importorskip("reverse_geocode")

# File names that say nothing of the place, so only the place signal can match a place name.
PORTO, SYDNEY, TOKYO, REYKJAVIK, RIO, NO_GPS, BROKEN, AT_SEA = (
    "IMG_0001.jpg", "IMG_0002.jpg", "IMG_0003.jpg", "IMG_0004.jpg", "IMG_0005.webp", "IMG_0006.png", "IMG_0007.jpg",
    "IMG_0008.jpg",
)
PLACES = {
    PORTO: (41.1496, -8.6110),
    SYDNEY: (-33.8688, 151.2093),
    TOKYO: (35.6812, 139.7671),
    REYKJAVIK: (64.1466, -21.9426),
}


def _library(root: Path) -> None:
    root.mkdir()
    for seed, (name, (lat, lon)) in enumerate(PLACES.items()):
        draw_scene(root / name, seed)
        Image.open(root / name).save(root / name, exif=located(lat, lon))
    draw_scene(root / RIO, 10)
    Image.open(root / RIO).save(root / RIO, xmp=XMP.format(lat="22,58.266S", lon="43,10.932W").encode())
    draw_scene(root / NO_GPS, 11)  # no GPS at all
    draw_scene(root / BROKEN, 12)  # GPS with zero denominators: no place, no failure
    broken = gps_exif(lat_ref="N", lat=(IFDRational(41, 0),) * 3, lon_ref="W", lon=(IFDRational(8, 0),) * 3)
    Image.open(root / BROKEN).save(root / BROKEN, exif=broken)
    draw_scene(root / AT_SEA, 13)  # mid-Atlantic: located, but near no town
    Image.open(root / AT_SEA).save(root / AT_SEA, exif=located(30.0, -40.0))


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_clip_dir) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("places")
    root = base / "photos"
    _library(root)
    db = base / "c.db"
    report = run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    assert report["failed"] == [] and report["embedded"] == 8
    return root, db


def names(payload: dict) -> list[str]:
    return [Path(r["path"]).name for r in payload["results"]]


def test_status_counts_photos_with_a_location(library):
    _, db = library
    status = run_json("status", "--db", db)
    assert status["images"] == 8
    assert status["located"] == 6  # four cities, Rio from XMP, the one at sea; not the broken one
    assert status["placed"] == 5  # the one at sea has no name
    assert status["places_hint"] is None
    assert "Places:  6 with a location, 5 of them named" in run_cli("status", "--db", db)


def test_places_are_named_offline_as_a_text_signal(library):
    root, db = library
    with ImageIndex(db) as index:
        def place(name: str) -> str | None:
            return index.find(root / name).place_name
        assert place(PORTO) == "Porto, Portugal"
        assert place(RIO) == "Rio de Janeiro, Brazil"
        assert "Reykjavík" in place(REYKJAVIK) and "Iceland" in place(REYKJAVIK)
        assert "Tokyo" in place(TOKYO) and "Japan" in place(TOKYO)
        assert place(NO_GPS) is None and place(BROKEN) is None and place(AT_SEA) is None
        record = index.find(root / SYDNEY)
        assert index.text_signals(record.id)["place"] == "Sydney\nNew South Wales\nAustralia"


def test_place_filter_matches_town_region_or_country_without_case_or_accents(library):
    _, db = library
    def found(*flags: str) -> list[str]:
        return sorted(names(run_json("search", "a photo", "--min-score", "0", "-k", "20", "--db", db, *flags)))
    assert found("--place", "portugal") == [PORTO]
    assert found("--place", "PORTO") == [PORTO]
    assert found("--place", "reykjavik") == [REYKJAVIK]  # Reykjavík, accent aside
    assert found("--place", "New South Wales") == [SYDNEY]
    assert found("--place", "brazil") == [RIO]
    assert found("--place", "tokyo", "--mode", "clip", "--min-score", "-1") == [TOKYO]
    assert found("--place", "port") == []  # a whole name, not a part of one
    out = run_cli("search", "a photo", "--place", "Atlantis", "--db", db)
    assert "No image matches the filters (--place Atlantis)" in out


def test_near_filter_by_distance(library):
    _, db = library
    def found(*flags: str) -> list[str]:
        return sorted(names(run_json("search", "a photo", "--min-score", "0", "-k", "20", "--db", db, *flags)))
    assert found("--near", "41.16,-8.62") == [PORTO]  # 10 km by default
    assert found("--near", "38.7223,-9.1393,250") == []  # Lisbon: Porto is 274 km away
    assert found("--near", "38.7223,-9.1393,300") == [PORTO]
    assert found("--near", "-33.9,151.2,5") == [SYDNEY]
    everywhere = found("--near", "0,0,20040")  # everything located, nothing without coordinates
    assert everywhere == sorted([AT_SEA, PORTO, REYKJAVIK, RIO, SYDNEY, TOKYO])
    for bad in ("41.1", "north,west", "95,0", "41,-8,0", "41,-8,nan"):
        error = run_cli("search", "a photo", "--near", bad, "--db", db, expect=2)
        assert "--near" in error and len(error.strip().splitlines()) == 1, error


def test_keyword_and_hybrid_search_find_photos_by_where_they_were_taken(library, text_model_cache):
    _, db = library
    assert names(run_json("search", "porto", "--mode", "keyword", "--db", db)) == [PORTO]
    assert names(run_json("search", "iceland", "--mode", "keyword", "--db", db)) == [REYKJAVIK]
    hybrid = run_json("search", "beach in Porto", "--explain", "--db", db)
    first = hybrid["results"][0]
    assert Path(first["path"]).name == PORTO
    assert first["place"] == "Porto, Portugal"
    assert (first["latitude"], first["longitude"]) == (pytest.approx(41.1496, 1e-5), pytest.approx(-8.611, 1e-5))
    assert "[Porto]" in first["matched_text"]  # the place signal, not the file name
    explained = run_cli("search", "porto", "--mode", "keyword", "--explain", "--db", db)
    assert "taken in Porto, Portugal" in explained


def test_python_api_filters(library):
    _, db = library
    with ImageIndex(db) as index:
        hits = index.search("a photo", k=20, min_score=-1, mode="clip", filters=SearchFilters(place="japan"))
        assert [Path(h.path).name for h in hits] == [TOKYO] and hits[0].place.endswith("Japan")
        near = SearchFilters(near=(64.1, -21.9, 25.0))
        assert [Path(h.path).name for h in index.search("a photo", k=20, min_score=0, filters=near)] == [REYKJAVIK]


def test_rest_filters_and_details(library):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from photoseek.server import ServerConfig, create_app

    root, db = library
    with TestClient(create_app(ServerConfig(db=db)), base_url="http://127.0.0.1:8000") as client:
        page = client.get("/api/search", params={"q": "a photo", "min_score": 0, "place": "australia"}).json()
        assert [h["name"] for h in page["results"]] == [SYDNEY]
        assert page["results"][0]["place"] == "Sydney, New South Wales, Australia"
        page = client.get("/api/search", params={"q": "a photo", "min_score": 0, "near": "35.68,139.77,3"}).json()
        assert [h["name"] for h in page["results"]] == [TOKYO]
        body = {"texts": ["a photo"], "min_score": 0, "filters": {"place": "brazil"}}
        page = client.post("/api/search", json=body).json()
        assert [h["name"] for h in page["results"]] == [RIO]
        bad = client.get("/api/search", params={"q": "a photo", "near": "91,0"})
        assert bad.status_code == 422 and "--near" in bad.json()["detail"]
        status = client.get("/api/status").json()
        assert (status["located"], status["placed"]) == (6, 5)
        detail = client.get(f"/api/images/{page['results'][0]['id']}").json()
        assert detail["place"] == "Rio de Janeiro, Brazil" and detail["latitude"] == pytest.approx(-22.9711, abs=1e-4)
        assert "Rio de Janeiro" in detail["text_signals"]["place"]


def test_moved_coordinates_are_named_again(library, tmp_path, tiny_clip_dir):
    """A sidecar that geotags the photo somewhere else renames its place on the next index run."""
    root, db = library
    copy = tmp_path / "c.db"
    copy.write_bytes(db.read_bytes())
    (root / f"{PORTO}.xmp").write_text(XMP.format(lat="38,43.338N", lon="9,8.358W"))  # Lisbon
    try:
        run_json("index", root, "--db", copy, "--model-path", tiny_clip_dir)
        with ImageIndex(copy) as index:
            assert "Lisbon" in index.find(root / PORTO).place_name
    finally:
        (root / f"{PORTO}.xmp").unlink()


def test_an_older_catalog_reads_its_photos_metadata_again_without_re_embedding(tmp_path, tiny_clip_dir):
    root = tmp_path / "photos"
    root.mkdir()
    draw_scene(root / PORTO, 1)
    Image.open(root / PORTO).save(root / PORTO, exif=located(41.1496, -8.6110))
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    with sqlite3.connect(db) as con:  # back to schema 5: no columns for coordinates, ratings, labels
        con.execute("DROP INDEX images_latitude")
        for column in ("latitude", "longitude", "rating", "label", "metadata_version"):
            con.execute(f"ALTER TABLE images DROP COLUMN {column}")
        con.execute("DELETE FROM text_signals WHERE source = 'place'")
        con.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    report = run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    assert report["embedded"] == 0
    assert run_json("status", "--db", db)["placed"] == 1
    assert run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)["unchanged"] == 1


def test_bytes_never_change(library):
    """Reading places never writes to a photo."""
    root, _ = library
    data = (root / PORTO).read_bytes()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)


def test_names_from_an_older_gazetteer_are_replaced(library, tmp_path, tiny_clip_dir):
    root, db = library
    copy = tmp_path / "c.db"
    copy.write_bytes(db.read_bytes())
    with sqlite3.connect(copy) as con:
        con.execute("UPDATE text_signals SET model = 'geonames-cities1000/reverse-geocode-0.1', text = 'Oldtown'"
                    " WHERE source = 'place'")
    run_json("index", root, "--db", copy, "--model-path", tiny_clip_dir)
    with ImageIndex(copy) as index:
        assert index.find(root / PORTO).place_name == "Porto, Portugal"
        assert not catalog_of(index).db.execute("SELECT 1 FROM text_signals WHERE text = 'Oldtown'").fetchall()
    assert names(run_json("search", "oldtown", "--mode", "keyword", "--db", copy)) == []
