"""GPS coordinates read from what cameras and tools write, and never a crash or a guess on garbage."""

from __future__ import annotations

import io
import math
import struct

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from PIL.TiffImagePlugin import IFDRational

import photoseek.ingest.decode  # noqa: F401  (registers the HEIF opener, as indexing does)
from photoseek.ingest.indexer import read_file_facts
from photoseek.places import distance_km
from photoseek.text.metadata import read_facts

XMP = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/"
  exif:GPSLatitude="{lat}" exif:GPSLongitude="{lon}"/></rdf:RDF></x:xmpmeta>"""


def dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    """Degrees, minutes and seconds as EXIF rationals (seconds to 1/100)."""
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60 * 100)
    return IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 100)


def gps_exif(**tags: object) -> Image.Exif:
    """EXIF whose GPS block holds `tags` (lat_ref, lat, lon_ref, lon, status)."""
    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)
    for name, tag in (("lat_ref", 1), ("lat", 2), ("lon_ref", 3), ("lon", 4), ("status", 9)):
        if name in tags:
            gps[tag] = tags[name]
    return exif


def jpeg(exif: Image.Exif) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "teal").save(out, "JPEG", exif=exif)
    return out.getvalue()


def located(lat: float, lon: float) -> Image.Exif:
    return gps_exif(
        lat_ref="N" if lat >= 0 else "S", lat=dms(abs(lat)), lon_ref="E" if lon >= 0 else "W", lon=dms(abs(lon))
    )


@pytest.mark.parametrize("lat, lon", [
    (41.1496, -8.6110),  # Porto: north, west
    (-33.8688, 151.2093),  # Sydney: south, east
    (-22.9711, -43.1822),  # Rio: south, west
    (64.1466, -21.9426),  # Reykjavik
    (35.6812, 139.7671),  # Tokyo: north, east
])
def test_every_hemisphere_reads_back_signed(lat, lon):
    place = read_facts(jpeg(located(lat, lon))).location
    assert place is not None
    assert place.latitude == pytest.approx(lat, abs=1e-5) and place.longitude == pytest.approx(lon, abs=1e-5)


def test_references_as_padded_bytes_or_lower_case_are_understood():
    exif = gps_exif(lat_ref=b"S\0", lat=dms(33.5), lon_ref="w", lon=dms(70.25))
    place = read_facts(jpeg(exif)).location
    assert (place.latitude, place.longitude) == (pytest.approx(-33.5), pytest.approx(-70.25))


@pytest.mark.parametrize("tags", [
    pytest.param({"lat": dms(41.15), "lon_ref": "W", "lon": dms(8.61)}, id="no-latitude-ref"),
    pytest.param({"lat_ref": "N", "lat": dms(41.15), "lon": dms(8.61)}, id="no-longitude-ref"),
    pytest.param({"lat_ref": "X", "lat": dms(41.15), "lon_ref": "W", "lon": dms(8.61)}, id="unknown-ref"),
    pytest.param({"lat_ref": "N", "lat_ref_only": 1}, id="no-coordinates"),
    pytest.param({"lat_ref": "N", "lat": (IFDRational(41, 0), IFDRational(8, 1), IFDRational(0, 1)),
                  "lon_ref": "W", "lon": dms(8.61)}, id="zero-denominator"),
    pytest.param({"lat_ref": "N", "lat": (IFDRational(0, 0),) * 3, "lon_ref": "W", "lon": (IFDRational(0, 0),) * 3},
                 id="all-zero-denominators"),
    pytest.param({"lat_ref": "N", "lat": (95.0, 0.0, 0.0), "lon_ref": "W", "lon": dms(8.61)}, id="latitude-95"),
    pytest.param({"lat_ref": "N", "lat": dms(41.15), "lon_ref": "E", "lon": (200.0, 0.0, 0.0)}, id="longitude-200"),
    pytest.param({"lat_ref": "N", "lat": (41.0, 75.0, 0.0), "lon_ref": "W", "lon": dms(8.61)}, id="minutes-75"),
    pytest.param({"lat_ref": "N", "lat": (41.0, 8.0, 0.0, 1.0), "lon_ref": "W", "lon": dms(8.61)}, id="four-parts"),
    pytest.param({"lat_ref": "N", "lat": (0.0, 0.0, 0.0), "lon_ref": "E", "lon": (0.0, 0.0, 0.0)}, id="null-island"),
    pytest.param({"lat_ref": "N", "lat": dms(41.15), "lon_ref": "W", "lon": dms(8.61), "status": "V"}, id="void-fix"),
])
def test_garbage_gps_is_no_location_and_no_crash(tags):
    tags.pop("lat_ref_only", None)
    facts = read_facts(jpeg(gps_exif(**tags)))
    assert facts.location is None


def raw_exif(gps_entries: list[tuple[int, int, int, bytes]], gps_offset: int | None = None) -> bytes:
    """EXIF bytes (little-endian TIFF) with IFD0 pointing at a GPS IFD of (tag, type, count, data)
    entries, written by hand so that types and offsets can be wrong the way broken writers get them."""
    header = b"II*\0" + (8).to_bytes(4, "little")
    ifd0 = (1).to_bytes(2, "little") + struct.pack("<HHII", 0x8825, 4, 1, gps_offset or 26) + b"\0\0\0\0"
    data_start = 26 + 2 + 12 * len(gps_entries) + 4
    entries, blobs = b"", b""
    for tag, kind, count, data in gps_entries:
        if len(data) <= 4:
            entries += struct.pack("<HHI", tag, kind, count) + data.ljust(4, b"\0")
        else:
            entries += struct.pack("<HHII", tag, kind, count, data_start + len(blobs))
            blobs += data
    return b"Exif\0\0" + header + ifd0 + len(gps_entries).to_bytes(2, "little") + entries + b"\0\0\0\0" + blobs


def rationals(*pairs: tuple[int, int], signed: bool = False) -> bytes:
    return b"".join(struct.pack("<ii" if signed else "<II", n, d) for n, d in pairs)


ASCII, RATIONAL, SRATIONAL = 2, 5, 10
LON_W = [(3, ASCII, 2, b"W\0"), (4, RATIONAL, 3, rationals((8, 1), (36, 1), (3960, 100)))]


@pytest.mark.parametrize("exif", [
    pytest.param(raw_exif([(1, ASCII, 2, b"N\0"), (2, ASCII, 10, b"forty-one\0"), *LON_W]), id="latitude-as-text"),
    pytest.param(raw_exif([(1, ASCII, 2, b"N\0"), (2, SRATIONAL, 3, rationals((-41, 1), (8, 1), (0, 1), signed=True)),
                           *LON_W]), id="negative-degrees"),
    pytest.param(raw_exif([(1, ASCII, 2, b"N\0"), (2, RATIONAL, 1, rationals((4115, 0))), *LON_W]),
                 id="one-part-over-0"),
    pytest.param(raw_exif([(1, ASCII, 2, b"N\0"), (2, RATIONAL, 3, rationals((41, 1), (8, 1), (0, 1))), *LON_W],
                          gps_offset=4000), id="gps-ifd-past-the-end"),
    pytest.param(raw_exif([(1, ASCII, 2, b"N\0"), (2, RATIONAL, 300, b"\xff" * 8), *LON_W]), id="count-past-the-end"),
])
def test_broken_gps_blocks_written_by_hand(exif):
    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, "JPEG", exif=exif)
    assert read_facts(out.getvalue()).location is None


def test_the_hand_written_exif_reads_when_it_is_right():
    """The control for the test above: the same builder, with sane values, gives a location."""
    exif = raw_exif([(1, ASCII, 2, b"S\0"), (2, RATIONAL, 3, rationals((33, 1), (52, 1), (768, 100))), *LON_W])
    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, "JPEG", exif=exif)
    place = read_facts(out.getvalue()).location
    assert (place.latitude, place.longitude) == (pytest.approx(-33.8688, abs=1e-4), pytest.approx(-8.611, abs=1e-4))


def test_a_broken_gps_block_leaves_the_rest_of_the_metadata_alone():
    exif = gps_exif(lat_ref="N", lat=(IFDRational(1, 0),) * 3, lon_ref="W", lon=dms(8.61))
    exif[0x010E] = "harbour at dusk"
    facts = read_facts(jpeg(exif))
    assert facts.location is None and facts.text == "harbour at dusk"


@pytest.mark.parametrize("lat, lon, expected", [
    ("41,8.9766N", "8,36.6594W", (41.14961, -8.61099)),
    ("41,8,58.596N", "8,36,39.564W", (41.14961, -8.61099)),
    ("33.8688S", "151.2093E", (-33.8688, 151.2093)),
    ("91,0N", "8,36W", None),  # out of range
    ("41,8.9W", "8,36.6E", None),  # a longitude letter on the latitude
    ("41.15", "-8.61", None),  # no hemisphere letter
    ("", "", None),
])
def test_xmp_coordinates(lat, lon, expected):
    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, "JPEG", xmp=XMP.format(lat=lat, lon=lon).encode())
    place = read_facts(out.getvalue()).location
    if expected is None:
        assert place is None
    else:
        assert (place.latitude, place.longitude) == (pytest.approx(expected[0], abs=1e-5),
                                                     pytest.approx(expected[1], abs=1e-5))


def test_png_webp_and_heic_carry_gps_too():
    image = Image.new("RGB", (16, 16), "navy")
    xmp = XMP.format(lat="22,58.266S", lon="43,10.932W")
    png_info = PngInfo()
    png_info.add_itxt("XML:com.adobe.xmp", xmp, zip=True)  # compressed: not findable in the raw bytes
    files = {}
    for name, options in (("png-xmp", {"format": "PNG", "pnginfo": png_info}),
                          ("webp-xmp", {"format": "WEBP", "xmp": xmp.encode()}),
                          ("png-exif", {"format": "PNG", "exif": located(-22.9711, -43.1822).tobytes()}),
                          ("webp-exif", {"format": "WEBP", "exif": located(-22.9711, -43.1822)}),
                          ("heic-exif", {"format": "HEIF", "exif": located(-22.9711, -43.1822).tobytes()})):
        out = io.BytesIO()
        image.save(out, **options)
        files[name] = read_facts(out.getvalue()).location
    for name, place in files.items():
        assert place is not None, name
        assert (place.latitude, place.longitude) == (pytest.approx(-22.9711, abs=1e-4),
                                                     pytest.approx(-43.1822, abs=1e-4)), name


def test_a_sidecar_location_wins_over_the_file(tmp_path):
    photo = tmp_path / "IMG_1.jpg"
    photo.write_bytes(jpeg(located(41.1496, -8.6110)))
    (tmp_path / "IMG_1.jpg.xmp").write_text(XMP.format(lat="38,43.338N", lon="9,8.358W"))  # geotagged: Lisbon
    place = read_file_facts(photo.read_bytes(), photo).location
    assert (place.latitude, place.longitude) == (pytest.approx(38.7223, abs=1e-4), pytest.approx(-9.1393, abs=1e-4))


def test_distance():
    assert distance_km(41.1496, -8.6110, 38.7223, -9.1393) == pytest.approx(274, abs=3)  # Porto to Lisbon
    assert distance_km(0, 179.9, 0, -179.9) == pytest.approx(22.2, abs=0.2)  # across the date line
    assert math.isclose(distance_km(10, 10, 10, 10), 0)
