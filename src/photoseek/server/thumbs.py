"""On-demand WebP thumbnails, cached on disk beside the catalog, and safe file lookup."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from photoseek.ingest.decode import decode_image

THUMB_SIZES = (256, 512, 1280)
"""The only sizes made, so that clients cannot fill the disk with odd sizes."""
WEBP_QUALITY = 80

MEDIA_TYPES = {
    "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif",
    "heif": "image/heic", "avif": "image/avif", "tiff": "image/tiff", "bmp": "image/bmp",
    "jpeg2000": "image/jp2", "ico": "image/x-icon",
}


class ThumbnailCache:
    """Thumbnails keyed by content hash and size, so a moved file keeps its thumbnail
    and a changed file gets a new one."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def beside(cls, db_path: Path) -> ThumbnailCache:
        return cls(db_path.with_name(db_path.name + ".thumbs"))

    def path_for(self, content_hash: str, size: int) -> Path:
        return self.folder / content_hash[:2] / f"{content_hash}-{size}.webp"

    def cached(self, content_hash: str, size: int) -> Path | None:
        target = self.path_for(content_hash, size)
        return target if target.is_file() else None

    def make(self, source: Path, content_hash: str, size: int) -> Path:
        """Make and keep the thumbnail (upright, longest side `size`); returns its path.

        Raises UnreadableImageError when the original can no longer be decoded.
        """
        target = self.path_for(content_hash, size)
        image = decode_image(source, min_side=size).image
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                image.save(out, format="WEBP", quality=WEBP_QUALITY)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target


def servable_path(indexed_path: str, roots: Sequence[str]) -> Path | None:
    """The real file behind an indexed path, or None unless it is a regular file that
    still lies under one of the indexed roots once every symlink is resolved."""
    real = Path(os.path.realpath(indexed_path))
    if not real.is_file():
        return None
    for root in roots:
        if real.is_relative_to(Path(os.path.realpath(root))):
            return real
    return None
