"""Albums: a folder of links to chosen photos ("save as album"), never copies, never moves.

Each photo gets a symbolic link (or, when asked, a hard link) named after its file; a name
that is taken gets " (2)", " (3)"... and nothing that exists is ever replaced: the link is
created with the exclusive create of `symlink`/`link`, which fails rather than overwrites.
A photo the folder already links to is left as it is, so saving the same results twice adds
nothing. The originals are only read (their path, for the link), so there is nothing to undo
but deleting the album folder.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from photoseek.errors import BadInput, PhotoseekError

MAX_NAME_TRIES = 10_000


@dataclass
class LinkReport:
    folder: str
    linked: list[tuple[str, str]] = field(default_factory=list)
    """(photo, link made for it)."""
    already: list[tuple[str, str]] = field(default_factory=list)
    """(photo, the link to it that the folder already held)."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(photo, why no link was made)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "folder": self.folder,
            "linked": [{"path": p, "link": link} for p, link in self.linked],
            "already": [{"path": p, "link": link} for p, link in self.already],
            "failed": [{"path": p, "reason": reason} for p, reason in self.failed],
        }


def link_files(paths: Sequence[str], folder: str | Path, *, hard: bool = False) -> LinkReport:
    """Link every file in `paths` into `folder` (created if missing), names made unique."""
    target = Path(folder).expanduser()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise BadInput(f"{target} exists and is not a folder. Give a folder for the links.") from None
    except OSError as exc:
        raise PhotoseekError(f"Cannot create the folder {target}: {exc.strerror}. Choose another place.") from None
    report = LinkReport(str(target.resolve()))
    for path in paths:
        _link_one(os.path.abspath(path), target, hard, report)
    return report


def _link_one(source: str, folder: Path, hard: bool, report: LinkReport) -> None:
    if not os.path.isfile(source):
        report.failed.append((source, "the file is gone (moved or deleted); re-index its folder"))
        return
    for candidate in name_variants(os.path.basename(source)):
        link = folder / candidate
        try:
            os.link(source, link) if hard else os.symlink(source, link)
        except FileExistsError:
            if _same_file(link, source):
                report.already.append((source, str(link)))
                return
            continue
        except OSError as exc:
            report.failed.append((source, _why(exc, hard, folder)))
            return
        report.linked.append((source, str(link)))
        return
    report.failed.append((source, f"{MAX_NAME_TRIES} names for it are taken in {folder}; use an empty folder"))


def name_variants(name: str) -> Iterator[str]:
    """'a.jpg', 'a (2).jpg', 'a (3).jpg', ... (a generator: usually only the first is needed)."""
    stem, dot, suffix = name.rpartition(".")
    if not stem:
        stem, dot, suffix = name, "", ""
    yield name
    for number in range(2, MAX_NAME_TRIES + 1):
        yield f"{stem} ({number}){dot}{suffix}"


def _same_file(link: Path, source: str) -> bool:
    try:
        return os.path.samefile(link, source)
    except OSError:
        return False


def _why(exc: OSError, hard: bool, folder: Path) -> str:
    if hard and exc.errno == errno.EXDEV:
        return f"{folder} is on another file system: hard links cannot cross file systems; use symbolic links"
    return f"cannot link into {folder}: {exc.strerror}"
