"""Camera and tool boilerplate in EXIF/IPTC/XMP is not image text; real descriptions and keywords are.

The rows are strings found in real camera files and photo tools' output. A photo whose only
"text" is boilerplate must stay text-less, or the default search would switch to hybrid for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from photoseek.text.metadata import read_facts
from tests.helpers import draw_photo, run_json

# (description, EXIF Make, EXIF Model)
DROPPED = [
    ("KONICA MINOLTA DIGITAL CAMERA", "KONICA MINOLTA", "DiMAGE Z3"),
    ("SANYO DIGITAL CAMERA", "SANYO Electric Co.,Ltd.", "VPC-E1"),
    ("OLYMPUS DIGITAL CAMERA         ", "OLYMPUS IMAGING CORP.", "u700,S700"),
    ("MINOLTA DIGITAL CAMERA", "", ""),
    ("KODAK Digital Still Camera", "EASTMAN KODAK COMPANY", "KODAK EASYSHARE C713 ZOOM DIGITAL CAMERA"),
    ("Samsung digital camera", "", ""),
    ("SONY DSC", "SONY", "DSC-W55"),
    ("DSC", "", ""),
    ("NIKON D750", "NIKON CORPORATION", "NIKON D750"),
    ("<KENOX S630  / Samsung S630>", "Samsung Techwin", "<KENOX S630  / Samsung S630>"),
    ("Canon PowerShot SD1100 IS", "Canon", "Canon PowerShot SD1100 IS"),
    ("d41d8cd98f00b204e9800998ecf8427e", "", ""),
    ("3F2504E0-4F89-11D3-9A0C-0305E82C3301", "", ""),
    ("IMG_1234", "", ""),
    ("DSC01234.JPG", "", ""),
    ("P1010001", "", ""),
    ("DSCN0042", "", ""),
    ("PXL_20230405_123456789", "", ""),
    ("holiday-photo.jpeg", "", ""),
    ("Untitled", "", ""),
    ("untitled-3", "", ""),
    ("Image-Description", "", ""),
    ("2004:05:06 12:00:00", "", ""),
    ("Created with GIMP", "", ""),
    ("default", "", ""),
]
KEPT = [
    ("Mongol Els", "Canon", "Canon EOS 500D"),
    ("Rochester and the Medway - Nov 2010", "", ""),
    ("lighthouse on a rocky coast", "NIKON CORPORATION", "NIKON D750"),
    ("Nikon D750 at the beach", "NIKON CORPORATION", "NIKON D750"),
    ("Adult female prairie falcon flying from a nest", "Canon", "Canon EOS R5"),
    ("2010", "", ""),
    ("Route 66", "", ""),
    ("A380 landing at dusk", "", ""),
    ("Boeing 747", "", ""),
    ("my camera bag", "", ""),
    ("Steve A.", "", ""),
]


def _photo(path: Path, description: str, make: str, model: str) -> bytes:
    draw_photo(path, "red")
    exif = Image.Exif()
    exif[0x010E] = description
    if make:
        exif[0x010F], exif[0x0110] = make, model
    Image.open(path).save(path, exif=exif)
    return path.read_bytes()


@pytest.mark.parametrize(("description", "make", "model"), DROPPED, ids=[d for d, _, _ in DROPPED])
def test_boilerplate_is_dropped(tmp_path, description, make, model):
    assert read_facts(_photo(tmp_path / "a.jpg", description, make, model)).text == ""


@pytest.mark.parametrize(("description", "make", "model"), KEPT, ids=[d for d, _, _ in KEPT])
def test_real_descriptions_are_kept(tmp_path, description, make, model):
    assert read_facts(_photo(tmp_path / "a.jpg", description, make, model)).text == description


def test_keyword_lists_lose_only_their_boilerplate(tmp_path):
    path = draw_photo(tmp_path / "k.jpg", "blue")
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:subject><rdf:Bag>'
        "<rdf:li>OLYMPUS DIGITAL CAMERA</rdf:li><rdf:li>beach</rdf:li><rdf:li>IMG_0042</rdf:li><rdf:li>dog</rdf:li>"
        "</rdf:Bag></dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    Image.open(path).save(path, xmp=xmp.encode())
    assert read_facts(path.read_bytes()).text == "beach, dog"


def test_camera_boilerplate_does_not_make_images_text_bearing(tmp_path, tiny_clip_dir):
    root = tmp_path / "photos"
    _photo(root / "a.jpg", "KONICA MINOLTA DIGITAL CAMERA", "KONICA MINOLTA", "DiMAGE Z3")
    _photo(root / "b.jpg", "SANYO DIGITAL CAMERA", "", "")
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    results = run_json("search", "a red circle", "--explain", "--db", db)["results"]
    assert len(results) == 2 and all(r["signals"] == {"clip": r["score"]} for r in results)  # plain clip mode
