"""Open a candidate image file safely: never block, never read a non-image, never hold a huge file.

Between discovery and reading a file can be replaced by anything. So a file is opened
with O_NONBLOCK (opening a FIFO then returns at once instead of waiting for a writer),
checked with fstat to be a regular file, and its first bytes are sniffed before any more
is read: a 3 GB file that is not an image costs one 512-byte read. An image is hashed in
a stream; its bytes are kept in memory only up to `IN_MEMORY_LIMIT`, beyond which the
decoder reads the open file itself.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from photoseek.errors import UnreadableImageError
from photoseek.ingest.decode import SNIFF_BYTES, image_format, not_an_image_reason, open_regular

IN_MEMORY_LIMIT = 64 * 1024 * 1024
"""Files up to this size are read once into memory; larger ones are decoded from the file."""
_CHUNK = 1024 * 1024
MAX_SIDECAR_BYTES = 16 * 1024 * 1024
"""Largest `.xmp` sidecar read: real ones are a few KB to a few hundred (with a long edit history)."""


@dataclass(frozen=True)
class OpenedImage:
    """A regular file whose first bytes look like an image, hashed."""

    file: BinaryIO
    content_hash: str
    head: bytes
    """The first bytes (at most IN_MEMORY_LIMIT): enough for embedded metadata."""
    data: bytes | None
    """The whole content, or None when the file is over IN_MEMORY_LIMIT."""

    def source(self) -> bytes | BinaryIO:
        """What to hand to `decode_image`: the bytes when held, else the open file."""
        return self.data if self.data is not None else self.file


@contextmanager
def open_image(path: Path) -> Iterator[OpenedImage]:
    """Open, check, sniff and hash `path`; raises UnreadableImageError with a reason the user can act on."""
    with open_regular(path) as fp:
        head = fp.read(SNIFF_BYTES)
        if image_format(head) is None:
            raise UnreadableImageError(not_an_image_reason(head))
        yield _hashed(fp, head)


def read_sidecar(path: Path) -> bytes:
    """An `.xmp` sidecar's content, opened as images are (never blocks, regular files only) and
    refused over `MAX_SIDECAR_BYTES`; raises UnreadableImageError with the reason."""
    with open_regular(path) as fp:
        size = os.fstat(fp.fileno()).st_size
        if size > MAX_SIDECAR_BYTES:
            raise UnreadableImageError(
                f"XMP sidecar of {size / 1e6:.0f} MB, over the {MAX_SIDECAR_BYTES // 2**20} MB limit "
                "(its description and keywords are not read)"
            )
        data = fp.read(MAX_SIDECAR_BYTES + 1)
    if len(data) > MAX_SIDECAR_BYTES:
        raise UnreadableImageError(f"XMP sidecar grew past the {MAX_SIDECAR_BYTES // 2**20} MB limit while read")
    return data


def looks_like_image(path: Path) -> bool:
    """True when `path` is a regular file whose first bytes an image decoder accepts (for content discovery)."""
    try:
        with open_regular(path) as fp:
            return image_format(fp.read(32)) is not None
    except UnreadableImageError:
        return False


def _hashed(fp: BinaryIO, head: bytes) -> OpenedImage:
    """Hash the rest of the file in chunks, keeping the bytes only while they stay under the limit."""
    digest = hashlib.blake2b(head, digest_size=16)
    chunks: list[bytes] | None = [head]
    size = len(head)
    while chunk := fp.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if chunks is not None:
            chunks.append(chunk)
            if size > IN_MEMORY_LIMIT:
                head, chunks = b"".join(chunks)[:IN_MEMORY_LIMIT], None
    data = b"".join(chunks) if chunks is not None else None
    return OpenedImage(fp, digest.hexdigest(), data if data is not None else head, data)
