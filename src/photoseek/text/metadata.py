"""Descriptions and keywords people (or their photo tools) wrote into the file: EXIF, IPTC, XMP.

Read from the bytes the indexer has already loaded (and the sidecars it read), so it costs a
header parse, not a decode. Metadata is a bonus: anything malformed is ignored, it never makes an
image fail. Parsing is linear in the input and bounded: the XMP packet is found with plain
searches, and one larger than `MAX_XMP_PARSE` is not parsed whole, only its description and
subject elements are.
"""

from __future__ import annotations

import io
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, IptcImagePlugin

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
}
MAX_XMP_PARSE = 128 * 1024
"""XMP packets up to this size are parsed whole (any JPEG's packet is at most 64 KB). Parsing costs
about a second per MB of small elements, so from a larger one (a sidecar with a long edit history,
or a hostile file) only the dc:description and dc:subject elements are parsed, up to this much."""
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


def read_metadata(data: bytes, sidecar_data: Iterable[bytes] = ()) -> str:
    """Every description and keyword found in the file and its `.xmp` sidecars' content, one per line."""
    texts: list[str] = []
    camera: set[str] = set()
    try:
        with Image.open(io.BytesIO(data)) as im:
            exif_readable = _has_exif_header(im)
            texts += _exif_texts(im) if exif_readable else []
            texts += _iptc_texts(im)
            if exif_readable:
                exif = im.getexif()
                camera = set(_words(f"{_as_text(exif.get(_MAKE))} {_as_text(exif.get(_MODEL))}").split())
    except Exception:  # Pillow raises many types for odd headers; metadata is optional
        pass
    texts += _xmp_texts(data)
    for sidecar in sidecar_data:
        texts += _xmp_texts(sidecar)
    kept = (_without_placeholders(t[:MAX_TEXT_CHARS], camera) for t in texts)
    return "\n".join(dict.fromkeys(t for t in kept if t))[:MAX_TEXT_CHARS]


def is_placeholder(text: str, camera: set[str] = frozenset()) -> bool:
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


def _without_placeholders(text: str, camera: set[str]) -> str:
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


def _iptc_texts(im: Image.Image) -> list[str]:
    info = IptcImagePlugin.getiptcinfo(im) or {}
    texts = [_as_text(info.get(_IPTC_CAPTION))]
    keywords = info.get(_IPTC_KEYWORDS)
    items = keywords if isinstance(keywords, list) else [keywords]
    texts.append(", ".join(t for t in map(_as_text, items) if t))
    return [t for t in texts if t]


def _xmp_texts(data: bytes) -> list[str]:
    """dc:description and dc:subject from an XMP packet (embedded or a sidecar's whole content)."""
    packet = _xmp_packet(data)
    if packet is None:
        return []
    try:
        root = ET.fromstring(packet if len(packet) <= MAX_XMP_PARSE else _dc_fragments(packet))
    except ET.ParseError:
        return []
    description = _rdf_items(root.iter(f"{{{_NS['dc']}}}description"))
    subjects = _rdf_items(root.iter(f"{{{_NS['dc']}}}subject"))
    return [*description, ", ".join(subjects)] if subjects else description


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


def _rdf_items(elements: Iterable[ET.Element]) -> list[str]:
    """Texts of rdf:li items (rdf:Alt / rdf:Bag / rdf:Seq), or the element's own text."""
    found: list[str] = []
    for element in elements:
        items = [li.text or "" for li in element.iter(f"{{{_NS['rdf']}}}li")]
        found += [t.strip() for t in (items or [element.text or ""]) if t.strip()]
    return found


def _as_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip("\0 ")
    return str(value).strip("\0 ") if value is not None else ""
