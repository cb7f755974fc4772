"""Watched roots that may go away (an unmounted disk, a renamed folder) and come back."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

Identity = tuple[int, int]
"""(device, inode) of a folder: a disk mounted on, or unmounted from, the same path changes it."""


class RootChange(Enum):
    SAME = "same"
    GONE = "gone"
    """Missing, or replaced by an empty folder (the mount point an unmounted disk leaves)."""
    BACK = "back"
    """Present again (or replaced by a different folder with something in it): catch up with it."""


@dataclass
class Root:
    path: Path
    identity: Identity | None = None
    online: bool = False

    def check(self) -> RootChange:
        """Look at the folder now and say what changed since the last look."""
        now = identity_of(self.path)
        if self.online:
            if now == self.identity:
                return RootChange.SAME
            if now is None or _is_empty(self.path):
                self.online = False
                return RootChange.GONE
            self.identity = now
            return RootChange.BACK
        if now is not None and (now == self.identity or self.identity is None or not _is_empty(self.path)):
            self.identity, self.online = now, True
            return RootChange.BACK
        return RootChange.SAME


def identity_of(path: Path) -> Identity | None:
    """The folder's (device, inode), None when it is missing or not a folder."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if os.path.isdir(path) else None


def _is_empty(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:
        return True
