"""Descriptions and keywords people (or their photo tools) wrote into the file: EXIF, IPTC, XMP.

Read from the bytes the indexer has already loaded, so it costs a header parse, not a decode.
Metadata is a bonus: anything malformed is ignored, it never makes an image fail.
"""

from __future__ import annotations

import io
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
_XMP_PACKET = re.compile(rb"<x:xmpmeta\b.*?</x:xmpmeta>", re.S)
_NS = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
}
_USER_COMMENT_CODECS = {b"ASCII\0\0\0": "ascii", b"UNICODE\0": "utf-16", b"JIS\0\0\0\0\0": "shift_jis"}
_PLACEHOLDERS = {"", "default", "image", "picture", "olympus digital camera", "sony dsc"}


def read_metadata(data: bytes, path: Path | None = None) -> str:
    """Every description and keyword found in the file and its `.xmp` sidecar, one per line."""
    texts: list[str] = []
    try:
        with Image.open(io.BytesIO(data)) as im:
            texts += _exif_texts(im)
            texts += _iptc_texts(im)
    except Exception:  # Pillow raises many types for odd headers; metadata is optional
        pass
    texts += _xmp_texts(data)
    for sidecar in sidecars(path) if path is not None else ():
        texts += _xmp_texts(_read(sidecar))
    unique = dict.fromkeys(t.strip() for t in texts)
    return "\n".join(t for t in unique if t.lower() not in _PLACEHOLDERS)


def sidecars(path: Path) -> list[Path]:
    """The `.xmp` sidecar files of an image that exist (photo.xmp and photo.jpg.xmp conventions)."""
    return [p for p in (path.with_suffix(".xmp"), path.with_name(path.name + ".xmp")) if p.is_file()]


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
    match = _XMP_PACKET.search(data)
    if match is None:
        return []
    try:
        root = ET.fromstring(match.group(0))
    except ET.ParseError:
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


def _as_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip("\0 ")
    return str(value).strip("\0 ") if value is not None else ""


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
