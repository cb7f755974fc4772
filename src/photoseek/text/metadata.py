"""What people (or their photo tools) wrote into the file or its XMP sidecar: descriptions and
keywords (EXIF, IPTC, XMP), GPS coordinates, star ratings and colour labels.

Read from the bytes the indexer has already loaded (and the sidecars it read), so it costs a
header parse, not a decode. Metadata is a bonus: anything malformed is ignored, it never makes an
image fail. Parsing is linear in the input and bounded: the XMP packet is found with plain
searches, and one larger than `MAX_XMP_PARSE` is not parsed whole, only its description and
subject elements are. A sidecar is what a photo manager (digiKam, darktable, Lightroom) edits, so
its rating, label and location win over the file's own.
"""

from __future__ import annotations

import io
import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from PIL import Image, ImageFile, IptcImagePlugin

from photoseek.places.gps import Location, exif_location, xmp_location

T = TypeVar("T")

MODEL = "exif-iptc-xmp"
"""The `model` recorded for metadata signals."""

_EXIF_IFD = 0x8769
_IMAGE_DESCRIPTION = 0x010E
_USER_COMMENT = 0x9286
_IPTC_CAPTION = (2, 120)
_IPTC_KEYWORDS = (2, 25)
_XMP_START = re.compile(rb"<x:xmpmeta(?!\w)")
"""A literal and a one-byte look-ahead: each position costs O(1), unlike a lazy `.*?` to the end tag."""
_XMP_END = b"</x:xmpmeta>"
_NS = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "darktable": "http://darktable.sf.net/",
    "MicrosoftPhoto": "http://ns.microsoft.com/photo/1.0/",
    "MicrosoftPhoto-bare": "http://ns.microsoft.com/photo/1.0",  # both spellings are in the wild
}
_WINDOWS_RATING, _WINDOWS_RATING_PERCENT = 0x4746, 0x4749
_DARKTABLE_COLOURS = ("Red", "Yellow", "Green", "Blue", "Purple")
"""darktable's colour labels by number (darktable:colorlabels), in the names other tools use."""
_LABEL_MAX = 100
MAX_XMP_PARSE = 128 * 1024
"""XMP packets up to this size are parsed whole (any JPEG's packet is at most 64 KB). Parsing costs
about a second per MB of small elements, so from a larger one (a sidecar with a long edit history,
or a hostile file) only the dc:description and dc:subject elements are parsed, up to this much
(its rating, label and coordinates are then not read)."""
_DC_ELEMENTS = (b"dc:description", b"dc:subject")
_FRAGMENT_ROOT = (
    f'<x:xmpmeta xmlns:x="adobe:ns:meta/" xmlns:dc="{_NS["dc"]}" xmlns:rdf="{_NS["rdf"]}">'.encode(),
    _XMP_END,
)
MAX_TEXT_CHARS = 64 * 1024
"""Metadata text kept per image: far more than any real description and keyword list."""
_USER_COMMENT_CODECS = {b"ASCII\0\0\0": "ascii", b"UNICODE\0": "utf-16", b"JIS\0\0\0\0\0": "shift_jis"}
_MAKE, _MODEL = 0x010F, 0x0110

# Text cameras and tools write on their own, compared after lower-casing and turning punctuation
# into spaces: it says nothing about the picture, and would make every photo "match" it.
_PLACEHOLDERS = {
    "", "default", "image", "picture", "photo", "untitled", "no title", "none", "null", "n a", "na",
    "description", "image description", "no description", "caption", "title", "exif", "jpeg",
}
_BOILERPLATE = [re.compile(p) for p in (
    r"^(?:[a-z]+ ){0,3}digital (?:still )?camera$",  # KONICA MINOLTA DIGITAL CAMERA, Kodak Digital Still Camera
    r"^(?:[a-z]+ )?(?:dsc|dsc image|digicam)$",  # SONY DSC
    r"^untitled(?: \d+)?$",
    r"^(?:created|edited|processed) with [\w.]+(?: [\w.]+)?$",  # Created with GIMP
    r"^\d+(?: \d+)+$|^\d{6,}$",  # dates, times, serial numbers (a year alone is kept)
    r"^(?:0x)?[0-9a-f]{12,}$",  # hashes
    r"^[0-9a-f]{8}(?: [0-9a-f]{4}){3} [0-9a-f]{12}$",  # UUIDs
)]
_FILE_NAMES = [re.compile(p, re.I) for p in (
    r"^\S+\.(?:jpe?g|png|heic|heif|tiff?|dng|raw|cr2|cr3|nef|arw|orf|rw2|webp|gif|bmp)$",  # DSC01234.JPG
    r"^[a-z]{1,6}[_-]?\d{4,}(?:[_-]\d+)*$",  # IMG_1234, P1010001, PXL_20230405_123456
)]


@dataclass(frozen=True)
class FileFacts:
    """What the file and its sidecars say about the picture."""

    text: str = ""
    """Every description and keyword, one per line."""
    location: Location | None = None
    rating: int | None = None
    """Stars, 0 to 5, or -1 for rejected (Lightroom's and digiKam's convention)."""
    label: str | None = None
    """The colour or text label (xmp:Label; darktable's colour labels as names, comma-separated)."""


def read_facts(data: bytes, sidecar_data: Iterable[bytes] = ()) -> FileFacts:
    """Texts, location, rating and label from the file (`data`: its first bytes) and the content of
    its sidecars (read by the caller, which bounds and reports them)."""
    texts: list[str] = []
    camera: set[str] = set()
    exif_place: Location | None = None
    exif_rating: int | None = None
    packet = b""
    try:
        with Image.open(io.BytesIO(data)) as im:
            exif_readable = _has_exif_header(im)
            texts += _exif_texts(im) if exif_readable else []
            texts += _iptc_texts(im)
            if exif_readable:
                exif = im.getexif()
                camera = set(_words(f"{_as_text(exif.get(_MAKE))} {_as_text(exif.get(_MODEL))}").split())
                exif_place, exif_rating = exif_location(exif), _windows_rating(exif)
            packet = _pillow_xmp(im.info)
    except Exception:  # Pillow raises many types for odd headers; metadata is optional
        pass
    embedded = _xmp_root(packet) if packet else None
    embedded = embedded if embedded is not None else _xmp_root(data)
    found = (_xmp_root(data) for data in sidecar_data)
    side = [root for root in found if root is not None]
    texts += _xmp_texts(embedded)
    for root in side:
        texts += _xmp_texts(root)
    kept = (_without_placeholders(t[:MAX_TEXT_CHARS], camera) for t in texts)
    packets = [*side, *([embedded] if embedded is not None else [])]
    return FileFacts(
        text="\n".join(dict.fromkeys(t for t in kept if t))[:MAX_TEXT_CHARS],
        location=_first([*map(xmp_location, side), exif_place, *map(xmp_location, packets[len(side):])]),
        rating=_first([*map(_xmp_rating, packets), exif_rating]),
        label=_first(map(_xmp_label, packets)),
    )


def is_placeholder(text: str, camera: Set[str] = frozenset()) -> bool:
    """Whether a description or keyword is camera or tool boilerplate, not words about the picture.

    `camera` holds the lower-case words of the file's EXIF Make and Model: a text made only of
    them ("NIKON D70", "<KENOX S630 / Samsung S630>") is the camera naming itself.
    """
    if any(p.match(text.strip()) for p in _FILE_NAMES):
        return True
    words = _words(text)
    if words in _PLACEHOLDERS or any(p.match(words) for p in _BOILERPLATE):
        return True
    return bool(camera) and set(words.split()) <= camera


def _without_placeholders(text: str, camera: Set[str]) -> str:
    """The text without boilerplate; a keyword list ('a, b, c') loses only its boilerplate items."""
    text = text.strip()
    if is_placeholder(text, camera):
        return ""
    if ", " not in text:
        return text
    return ", ".join(item for item in text.split(", ") if not is_placeholder(item, camera))


def _words(text: str) -> str:
    """Lower case, punctuation as single spaces: 'KONICA-MINOLTA  Camera.' -> 'konica minolta camera'."""
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def sidecars(path: Path) -> list[Path]:
    """The `.xmp` sidecars of an image that exist (photo.xmp and photo.jpg.xmp conventions), whatever
    they are: the reader refuses, with a reason, those that are not regular files."""
    return [p for p in (path.with_suffix(".xmp"), path.with_name(path.name + ".xmp")) if os.path.lexists(p)]


def _has_exif_header(im: Image.Image) -> bool:
    """False for a PNG without an eXIf chunk before its pixels: Pillow's getexif would decode
    every pixel (of a 200 MP picture) to look for one after them."""
    return im.format != "PNG" or "exif" in im.info


def _exif_texts(im: Image.Image) -> list[str]:
    exif = im.getexif()
    texts = [_as_text(exif.get(_IMAGE_DESCRIPTION))]
    comment = exif.get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    if isinstance(comment, bytes):
        codec = _USER_COMMENT_CODECS.get(comment[:8])
        texts.append(comment[8:].decode(codec, "replace") if codec else _as_text(comment))
    else:
        texts.append(_as_text(comment))
    return [t.strip("\0 ") for t in texts if t]


def _iptc_texts(im: ImageFile.ImageFile) -> list[str]:
    info = IptcImagePlugin.getiptcinfo(im) or {}
    texts = [_as_text(info.get(_IPTC_CAPTION))]
    keywords = info.get(_IPTC_KEYWORDS)
    items = keywords if isinstance(keywords, list) else [keywords]
    texts.append(", ".join(t for t in map(_as_text, items) if t))
    return [t for t in texts if t]


def _xmp_root(data: bytes) -> ET.Element | None:
    """The parsed XMP packet in `data` (embedded in a file, or a sidecar's whole content)."""
    packet = _xmp_packet(data)
    if packet is None:
        return None
    try:
        return ET.fromstring(packet if len(packet) <= MAX_XMP_PARSE else _dc_fragments(packet))
    except ET.ParseError:
        return None


def _xmp_packet(data: bytes) -> bytes | None:
    """The first `<x:xmpmeta ...>...</x:xmpmeta>`, found in one pass: the end tag is looked for once,
    after the first start tag (a lazy regex looked for it after every start: quadratic)."""
    start = _XMP_START.search(data)
    end = data.find(_XMP_END, start.start()) if start is not None else -1
    return data[start.start(): end + len(_XMP_END)] if start is not None and end >= 0 else None


def _dc_fragments(packet: bytes) -> bytes:
    """The packet's dc:description and dc:subject elements under one root, at most `MAX_XMP_PARSE`."""
    parts: list[bytes] = []
    budget = MAX_XMP_PARSE
    for name in _DC_ELEMENTS:
        start = packet.find(b"<" + name)
        while start >= 0:
            end = packet.find(b"</" + name + b">", start)
            if end < 0 or end + len(name) + 3 - start > budget:
                break
            end += len(name) + 3
            parts.append(packet[start:end])
            budget -= end - start
            start = packet.find(b"<" + name, end)
    return _FRAGMENT_ROOT[0] + b"".join(parts) + _FRAGMENT_ROOT[1]


def _pillow_xmp(info: Mapping[str | tuple[int, int], object]) -> bytes:
    """The XMP packet Pillow found (PNG iTXt, even compressed; WebP and JPEG chunks), as bytes."""
    value = info.get("xmp") or info.get("XML:com.adobe.xmp") or b""
    return value.encode("utf-8", "replace") if isinstance(value, str) else value if isinstance(value, bytes) else b""


def _xmp_texts(root: ET.Element | None) -> list[str]:
    """dc:description and dc:subject of an XMP packet."""
    if root is None:
        return []
    description = _rdf_items(root.iter(f"{{{_NS['dc']}}}description"))
    subjects = _rdf_items(root.iter(f"{{{_NS['dc']}}}subject"))
    return [*description, ", ".join(subjects)] if subjects else description


def _rdf_items(elements: Iterable[ET.Element]) -> list[str]:
    """Texts of rdf:li items (rdf:Alt / rdf:Bag / rdf:Seq), or the element's own text."""
    found: list[str] = []
    for element in elements:
        items = [li.text or "" for li in element.iter(f"{{{_NS['rdf']}}}li")]
        found += [t.strip() for t in (items or [element.text or ""]) if t.strip()]
    return found


def _xmp_property(root: ET.Element, namespace: str, name: str) -> str | None:
    """A simple XMP property, written as an attribute of rdf:Description or as an element."""
    tag = f"{{{_NS[namespace]}}}{name}"
    for element in root.iter():
        if tag in element.attrib:
            return element.attrib[tag]
        if element.tag == tag:
            return element.text or ""
    return None


def _xmp_rating(root: ET.Element) -> int | None:
    """xmp:Rating (-1 to 5), else Windows' MicrosoftPhoto:Rating (a percentage)."""
    stars = _rating(_xmp_property(root, "xmp", "Rating"), 5)
    if stars is not None:
        return stars
    percent = _xmp_property(root, "MicrosoftPhoto", "Rating") or _xmp_property(root, "MicrosoftPhoto-bare", "Rating")
    return _stars(_rating(percent, 100))


def _windows_rating(exif: Image.Exif) -> int | None:
    """The rating Windows writes into EXIF: Rating (0 to 5), else RatingPercent (0 to 100)."""
    stars = _rating(exif.get(_WINDOWS_RATING), 5)
    return stars if stars is not None else _stars(_rating(exif.get(_WINDOWS_RATING_PERCENT), 100))


def _rating(value: object, most: int) -> int | None:
    """An integer in -1..most from a number or its text, else None."""
    try:
        number = float(_as_text(value) if isinstance(value, (str, bytes)) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(number) or not -1 <= round(number) <= most:
        return None
    return int(round(number))


def _stars(percent: int | None) -> int | None:
    """Windows' percentages (1, 25, 50, 75, 99) as stars (1 to 5)."""
    if percent is None or percent < 0:
        return percent
    return 0 if percent == 0 else 5 if percent >= 99 else 1 + percent // 25


def _xmp_label(root: ET.Element) -> str | None:
    """xmp:Label, else darktable's colour labels by name ('Red, Blue')."""
    label = " ".join((_xmp_property(root, "xmp", "Label") or "").split())[:_LABEL_MAX]
    if label:
        return label
    colours = [
        _DARKTABLE_COLOURS[int(text)]
        for element in root.iter(f"{{{_NS['darktable']}}}colorlabels")
        for li in element.iter(f"{{{_NS['rdf']}}}li")
        if (text := (li.text or "").strip()) in ("0", "1", "2", "3", "4")
    ]
    return ", ".join(dict.fromkeys(colours)) or None


def _first(values: Iterable[T | None]) -> T | None:
    return next((v for v in values if v is not None), None)


def _as_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip("\0 ")
    return str(value).strip("\0 ") if value is not None else ""

