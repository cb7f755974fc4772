"""Thumbnails of image files: decoded upright by the indexer's decoder, then shrunk
(`photoseek.imaging.encode`). For terminal previews and the HTML results page."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from photoseek.imaging.encode import shrink


def thumbnail(path: str | Path, max_side: int) -> Image.Image:
    """An upright RGB thumbnail of an image file; raises UnreadableImageError with the reason."""
    from photoseek.ingest.decode import decode_image  # its decoder plugins load only when an image is shown

    return shrink(decode_image(Path(path), min_side=max_side).image, max_side)
