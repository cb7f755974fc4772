"""Writing a file so that a crash or a kill leaves either the old content or the new, never half of it.

One way for every file photoseek replaces (the vector store and FAISS index, move manifests, result
pages, memory-mapped model graphs):
write a temporary file beside the target, fsync it, rename it over the target, fsync the
folder so the rename itself survives a power cut. Temporary names are hidden and end in
`TEMP_SUFFIX`: `.<name>.<random>.tmp`, so `remove_stale_temps` can find what a kill left.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"
_TOKEN_BYTES = 6
"""A temporary name's random part: 12 hex digits."""
_NEW_FILE_MODE = 0o666
"""What a new file gets, less the umask (as `open` does)."""


def write_atomically(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace `path` with `data` durably (see the module); `mode`: exact permission bits, else a new file's."""
    with replacing(path, mode=mode) as out:
        out.write(data)


@contextlib.contextmanager
def replacing(path: Path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """A temporary file beside `path` to write; renamed over `path` (fsynced, then its folder) when the
    block ends without an error, removed when it raises. `mode` as in `write_atomically`."""
    path = Path(path)
    temp = _create_temp(path)
    try:
        with open(temp, "wb") as out:
            yield out
            out.flush()
            if mode is not None:
                os.chmod(temp, mode)
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Make a rename, link or unlink in `folder` durable. Skipped where the system cannot open a folder
    (Windows) or the file system cannot sync one (EINVAL); any other failure is raised."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


STALE_AFTER_S = 15 * 60
"""A temporary file older than this is what a killed write left; a younger one may be another
process's write in progress (a server and an `index` saving the same index), so it is left alone."""


def remove_stale_temps(path: Path, now: float | None = None) -> None:
    """Delete the temporary files an interrupted write of `path` left beside it: its own temp names
    only (not those of a file whose name extends it), and only once they are stale."""
    path = Path(path)
    own = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{{_TOKEN_BYTES * 2}}}{re.escape(TEMP_SUFFIX)}")
    cutoff = (time.time() if now is None else now) - STALE_AFTER_S
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            if own.fullmatch(stale.name) and stale.stat().st_mtime < cutoff:
                stale.unlink()


def _create_temp(path: Path) -> Path:
    """A new, empty, hidden temporary file beside `path`, created exclusively (never one another writer holds)."""
    while True:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(_TOKEN_BYTES)}{TEMP_SUFFIX}")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _NEW_FILE_MODE))
        except FileExistsError:
            continue
        return temp

