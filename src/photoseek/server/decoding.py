"""Decoding pictures for requests (uploads, thumbnails) on two threads, within a pixel budget.

What a decode costs is known from the header before any pixel is decoded: JPEGs decode at
1/2 to 1/8 scale when only a small picture is needed (Pillow's draft mode), other formats
decode whole. Uploads are refused above their own decoded-pixel limit; thumbnails of big
originals wait until they can decode alone. So the memory that decoding takes stays near
`DECODE_BUDGET_PIXELS` x `PEAK_BYTES_PER_PIXEL`, however many requests arrive at once.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import warnings
from pathlib import Path

from PIL import Image

from photoseek.errors import UnreadableImageError
from photoseek.ingest.decode import DEFAULT_MAX_PIXELS, decode_image
from photoseek.server.thumbs import ThumbnailCache
from photoseek.server.workers import DaemonWorkers, PixelBudget

DECODE_THREADS = 2
DECODE_BUDGET_PIXELS = 24_000_000
"""Decoded pixels in memory at once, over all requests (a larger original decodes alone)."""
MAX_THUMB_DECODED_PIXELS = 64_000_000
"""Originals that would decode to more get no thumbnail (JPEGs decode reduced, so only huge
PNG/TIFF/HEIF/WebP files): one such decode could take gigabytes."""
PEAK_BYTES_PER_PIXEL = 18
"""Measured peak while a decoded pixel is converted to RGB: 5 for greyscale and palette PNGs,
8 for RGB, 13 for RGBA, 18 for 16-bit greyscale."""
UNKNOWN_SIZE = sys.maxsize


class TooLargeToDecode(UnreadableImageError):
    """The picture is fine but would take too much memory to decode on request."""

# Our per-request limits replace Pillow's process-wide bomb warning, which would only add noise.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def decoded_pixels(source: bytes | Path, min_side: int) -> int | None:
    """Pixels that `decode_image(source, min_side=min_side)` holds at once, read from the header.

    None when the header cannot be read (decoding then says why); `UNKNOWN_SIZE` for images past
    Pillow's own bomb limit, so that they count as too large.
    """
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            image.draft("RGB", (min_side, min_side))
            return image.width * image.height
    except Image.DecompressionBombError:
        return UNKNOWN_SIZE
    except Exception:  # any unreadable header: decode_image gives the reason
        return None


class Decoder:
    """The threads and the pixel budget shared by every upload and thumbnail decode."""

    def __init__(self, threads: int = DECODE_THREADS, budget_pixels: int = DECODE_BUDGET_PIXELS) -> None:
        self._workers = DaemonWorkers("photoseek-decode", threads)
        self.budget = PixelBudget(budget_pixels)

    async def upload(self, data: bytes, *, min_side: int, max_pixels: int) -> Path:
        """Decode an uploaded picture (refused when it would decode to over `max_pixels`) and
        keep a small PNG of it: the engine reads only this copy. The caller deletes the file."""

        def work() -> Path:
            pixels = decoded_pixels(data, min_side)
            if pixels is not None and pixels > max_pixels:
                raise TooLargeToDecode(
                    f"over the pixel limit: it would decode to {_megapixels(pixels)}, over the "
                    f"{_megapixels(max_pixels)} limit for uploads (send a smaller picture, or a JPEG)"
                )
            with self.budget.hold(pixels or max_pixels):
                header_limit = max_pixels if pixels is None else DEFAULT_MAX_PIXELS
                return _save_small_png(data, min_side=min_side, max_pixels=header_limit)

        return await self._workers.run(work)

    async def thumbnail(self, cache: ThumbnailCache, source: Path, content_hash: str, size: int) -> Path:
        def work() -> Path:
            pixels = decoded_pixels(source, size)
            if pixels is not None and pixels > MAX_THUMB_DECODED_PIXELS:
                raise TooLargeToDecode(
                    f"it would decode to {_megapixels(pixels)}, over the {_megapixels(MAX_THUMB_DECODED_PIXELS)} "
                    "limit for thumbnails made on request"
                )
            with self.budget.hold(self.budget.pixels if pixels is None else pixels):
                return cache.make(source, content_hash, size)

        return await self._workers.run(work)

    def close(self) -> None:
        self._workers.stop()


def _save_small_png(data: bytes, *, min_side: int, max_pixels: int) -> Path:
    decoded = decode_image(data, min_side=min_side, max_pixels=max_pixels)
    fd, name = tempfile.mkstemp(suffix=".png", prefix="photoseek-upload-")
    with os.fdopen(fd, "wb") as out:
        decoded.image.save(out, format="PNG")
    return Path(name)


def _megapixels(pixels: int) -> str:
    return "more than Pillow's 179 MP safety limit" if pixels == UNKNOWN_SIZE else f"{pixels / 1e6:.1f} MP"
