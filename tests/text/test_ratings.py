"""Star ratings and labels from XMP (embedded and sidecars, digiKam/darktable/Lightroom shapes) and
Windows' EXIF rating tags, and the --min-rating / --label filters through the CLI, API and REST."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from photoseek import ImageIndex
from photoseek.ingest.indexer import read_file_facts
from photoseek.store.filters import SearchFilters
from photoseek.text.metadata import read_facts
from tests.helpers import draw_scene, run_cli, run_json

RDF = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
{body}</rdf:RDF></x:xmpmeta>"""
ATTRIBUTES = RDF.format(body="""<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
 {attributes}/>""")
ELEMENTS = RDF.format(body="""<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">
 {elements}</rdf:Description>""")
DARKTABLE = RDF.format(body="""<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
 xmlns:darktable="http://darktable.sf.net/" xmp:Rating="{rating}" darktable:xmp_version="5">
 <darktable:colorlabels><rdf:Seq>{labels}</rdf:Seq></darktable:colorlabels></rdf:Description>""")

WINDOWS_XMP = RDF.format(body="""<rdf:Description rdf:about="" xmlns:MicrosoftPhoto="{uri}">
 <MicrosoftPhoto:Rating>75</MicrosoftPhoto:Rating></rdf:Description>""")


def jpeg(exif: Image.Exif | None = None, xmp: str | None = None) -> bytes:
    out = io.BytesIO()
    options = {"exif": exif} if exif is not None else {}
    Image.new("RGB", (16, 16), "olive").save(out, "JPEG", **options, **({"xmp": xmp.encode()} if xmp else {}))
    return out.getvalue()


def windows(**tags: int) -> Image.Exif:
    exif = Image.Exif()
    for name, tag in (("rating", 0x4746), ("percent", 0x4749)):
        if name in tags:
            exif[tag] = tags[name]
    return exif


@pytest.mark.parametrize("data, rating, label", [
    (jpeg(xmp=ATTRIBUTES.format(attributes='xmp:Rating="4" xmp:Label="Red"')), 4, "Red"),
    (jpeg(xmp=ELEMENTS.format(elements="<xmp:Rating>2</xmp:Rating><xmp:Label>To print</xmp:Label>")), 2, "To print"),
    (jpeg(xmp=ATTRIBUTES.format(attributes='xmp:Rating="-1"')), -1, None),  # Lightroom's "rejected"
    (jpeg(xmp=ATTRIBUTES.format(attributes='xmp:Rating="3.0"')), 3, None),  # a Real, as the spec has it
    (jpeg(windows(rating=5)), 5, None),
    (jpeg(windows(percent=50)), 3, None),  # Windows: 1, 25, 50, 75, 99 percent for one to five stars
    (jpeg(windows(percent=99)), 5, None),
    (jpeg(windows(percent=1)), 1, None),
    (jpeg(windows(rating=2), ATTRIBUTES.format(attributes='xmp:Rating="4"')), 4, None),  # XMP over EXIF
    (jpeg(xmp=DARKTABLE.format(rating=1, labels="<rdf:li>0</rdf:li><rdf:li>3</rdf:li>")), 1, "Red, Blue"),
    (jpeg(xmp=WINDOWS_XMP.format(uri="http://ns.microsoft.com/photo/1.0/")), 4, None),  # Windows' XMP percentage
    (jpeg(xmp=WINDOWS_XMP.format(uri="http://ns.microsoft.com/photo/1.0")), 4, None),  # its other spelling
])
def test_ratings_and_labels_are_read(data, rating, label):
    facts = read_facts(data)
    assert (facts.rating, facts.label) == (rating, label)


@pytest.mark.parametrize("data", [
    jpeg(xmp=ATTRIBUTES.format(attributes='xmp:Rating="seven" xmp:Label="  "')),
    jpeg(xmp=ATTRIBUTES.format(attributes='xmp:Rating="NaN"')),
    jpeg(xmp=ATTRIBUTES.format(attributes='xmp:Rating="9"')),
    jpeg(xmp=ATTRIBUTES.format(attributes='xmp:Rating="-5"')),
    jpeg(windows(rating=40)),
    jpeg(windows(percent=1000)),
    jpeg(xmp=DARKTABLE.format(rating="", labels="<rdf:li>7</rdf:li><rdf:li>red</rdf:li>")),
    jpeg(xmp="<x:xmpmeta xmlns:x='adobe:ns:meta/'><unclosed></x:xmpmeta>"),
])
def test_garbage_ratings_and_labels_are_none(data):
    facts = read_facts(data)
    assert (facts.rating, facts.label) == (None, None)


def test_a_sidecar_rating_and_label_win_over_the_file(tmp_path):
    photo = tmp_path / "DSC_0001.jpg"
    photo.write_bytes(jpeg(windows(rating=1), ATTRIBUTES.format(attributes='xmp:Rating="2" xmp:Label="Green"')))
    (tmp_path / "DSC_0001.xmp").write_text(ATTRIBUTES.format(attributes='xmp:Rating="5" xmp:Label="Purple"'))
    facts = read_file_facts(photo.read_bytes(), photo)
    assert (facts.rating, facts.label) == (5, "Purple")


@pytest.fixture(scope="module")
def rated(tmp_path_factory, tiny_clip_dir) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("rated") / "photos"
    root.mkdir()
    shapes = {
        "a.jpg": (None, ATTRIBUTES.format(attributes='xmp:Rating="5" xmp:Label="Red"')),
        "b.jpg": (windows(percent=75), None),  # four stars, the Windows way
        "c.jpg": (None, None),  # rated in its darktable sidecar below
        "d.jpg": (None, ATTRIBUTES.format(attributes='xmp:Rating="-1"')),  # rejected
        "e.jpg": (None, None),  # never rated
    }
    for seed, (name, (exif, xmp)) in enumerate(shapes.items()):
        draw_scene(root / name, seed)
        (root / name).write_bytes(jpeg_scene(root / name, exif, xmp))
    (root / "c.jpg.xmp").write_text(DARKTABLE.format(rating=3, labels="<rdf:li>2</rdf:li>"))
    db = root.parent / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    return root, db


def jpeg_scene(path: Path, exif: Image.Exif | None, xmp: str | None) -> bytes:
    out = io.BytesIO()
    options = {**({"exif": exif} if exif is not None else {}), **({"xmp": xmp.encode()} if xmp else {})}
    Image.open(path).save(out, "JPEG", **options)
    return out.getvalue()


def found(db: Path, *flags: str) -> list[str]:
    payload = run_json("search", "a photo", "--min-score", "-1", "-k", "20", "--db", db, *flags)  # all that pass
    return sorted(Path(r["path"]).name for r in payload["results"])


def test_min_rating_and_label_filters_in_the_cli(rated):
    _, db = rated
    assert found(db, "--min-rating", "3") == ["a.jpg", "b.jpg", "c.jpg"]
    assert found(db, "--min-rating", "4") == ["a.jpg", "b.jpg"]
    assert found(db, "--min-rating", "0") == ["a.jpg", "b.jpg", "c.jpg"]  # rejected and unrated never pass
    assert found(db, "--label", "red") == ["a.jpg"]
    assert found(db, "--label", "GREEN") == ["c.jpg"]
    assert found(db, "--label", "green", "--min-rating", "4") == []
    results = run_json("search", "a photo", "--min-score", "-1", "--label", "Red", "--db", db)["results"]
    assert (results[0]["rating"], results[0]["label"]) == (5, "Red")
    error = run_cli("search", "a photo", "--min-rating", "7", "--db", db, expect=2)
    assert "--min-rating" in error


def test_min_rating_and_label_filters_in_the_api_and_rest(rated):
    root, db = rated
    with ImageIndex(db) as index:
        hits = index.search("a photo", k=20, min_score=-1, filters=SearchFilters(min_rating=5))
        assert [Path(h.path).name for h in hits] == ["a.jpg"]
        assert index.find(root / "d.jpg").rating == -1
        with pytest.raises(Exception, match="--min-rating"):
            SearchFilters(min_rating=9)
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from photoseek.server import ServerConfig, create_app

    with TestClient(create_app(ServerConfig(db=db)), base_url="http://127.0.0.1:8000") as client:
        page = client.get("/api/search", params={"q": "a photo", "min_score": -1, "min_rating": 4}).json()
        assert sorted(h["name"] for h in page["results"]) == ["a.jpg", "b.jpg"]
        page = client.post("/api/search", json={"texts": ["a photo"], "min_score": -1,
                                                "filters": {"label": "green"}}).json()
        assert [h["name"] for h in page["results"]] == ["c.jpg"]
        assert page["results"][0]["rating"] == 3
        assert client.get("/api/search", params={"q": "a photo", "min_rating": 6}).status_code in (400, 422)
        detail = client.get(f"/api/images/{page['results'][0]['id']}").json()
        assert (detail["rating"], detail["label"]) == (3, "Green")


def test_editing_a_sidecar_rating_shows_on_the_next_index_run(rated, tmp_path, tiny_clip_dir):
    root, db = rated
    copy = tmp_path / "copy.db"
    copy.write_bytes(db.read_bytes())
    sidecar = root / "e.xmp"
    sidecar.write_text(ATTRIBUTES.format(attributes='xmp:Rating="4" xmp:Label="Yellow"'))
    try:
        report = run_json("index", root, "--db", copy, "--model-path", tiny_clip_dir)
        assert report["embedded"] == 0
        assert found(copy, "--label", "yellow", "--min-rating", "4") == ["e.jpg"]
    finally:
        sidecar.unlink()
