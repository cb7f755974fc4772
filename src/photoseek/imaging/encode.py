"""Small re-encodings of decoded images: shrunk copies and JPEG data URLs.

Shared by what sends or shows pictures outside the index: captioning APIs, terminal previews and
the HTML results page.
"""

from __future__ import annotations

import base64
import io

from PIL import Image

JPEG_QUALITY = 85


def shrink(image: Image.Image, max_side: int) -> Image.Image:
    """An RGB copy whose longest side is at most `max_side` (never enlarged)."""
    picture = image.convert("RGB")
    if picture is image:
        picture = image.copy()
    picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return picture


def encoded(image: Image.Image, fmt: str = "JPEG", quality: int = JPEG_QUALITY) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def jpeg_data_url(image: Image.Image, max_side: int, quality: int = JPEG_QUALITY) -> str:
    """The image, shrunk to `max_side`, as a `data:image/jpeg;base64,...` URL."""
    data = encoded(shrink(image, max_side), "JPEG", quality)
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
