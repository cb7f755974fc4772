"""`export-xmp`: notes, tags, captions, topics and places written into the XMP sidecars photo
managers read, so what photoseek learned shows up in digiKam, darktable and Lightroom.

Only sidecars are written, never a photo. Each write is atomic: the new content goes to a
temporary file in the same folder, is flushed to disk, and replaces the sidecar with one rename
(then the folder is synced and the content read back), so a crash leaves the old sidecar or the
new one, whole. A sidecar that changed while it was being merged, is a link, is not XMP or is
not UTF-8 is reported and left alone. Running it again changes nothing; `remove=True` takes out
what photoseek wrote (and the sidecars it created, when nothing else is left in them).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from photoseek.sidecars.xmp import OwnedFields, XmpDocument, XmpError
from photoseek.store.catalog import PLACE_SOURCE, ImageRecord, escape_undecodable
from photoseek.store.text import TAGS_MODEL, USER_MODEL, TextStore

STYLES = ("auto", "digikam", "lightroom")
"""digikam: IMG_1.jpg.xmp (digiKam, darktable, RawTherapee); lightroom: IMG_1.xmp (Lightroom, Bridge);
auto: the sidecar the photo has (IMG_1.jpg.xmp first), else a new one named as digiKam does."""
MAX_SIDECAR_BYTES = 16 * 1024 * 1024
"""A bigger 'sidecar' is not one photoseek edits (real ones are a few kilobytes)."""
TOPICS_BRANCH = "Topics"
PLACES_BRANCH = "Places"
TEMP_SUFFIX = ".photoseek-tmp"
_NOT_XML = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot hold (control characters, lone surrogates): written, they would make the
sidecar unreadable to every tool."""


@dataclass(frozen=True)
class SidecarChange:
    """What an export does (or, in a dry run, would do) to one sidecar."""

    image: str
    sidecar: str
    action: str
    """'create', 'update' or 'delete' (a sidecar photoseek created, emptied by `remove`)."""
    description: str
    """photoseek's part of the description after the change."""
    added: list[str]
    """Keywords (dc:subject and lr:hierarchicalSubject) it adds."""
    removed: list[str]
    """Keywords it takes out: ones photoseek wrote before that no longer apply."""


@dataclass
class ExportReport:
    style: str
    dry_run: bool
    changes: list[SidecarChange] = field(default_factory=list)
    unchanged: int = 0
    """Images whose sidecar already says everything (or that have nothing to say)."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason) of sidecars left alone."""

    def to_dict(self) -> dict[str, object]:
        return {
            "style": self.style, "dry_run": self.dry_run, "written": 0 if self.dry_run else len(self.changes),
            "unchanged": self.unchanged, "changes": [asdict(c) for c in self.changes],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }


def sidecar_path(image: Path, style: str) -> Path:
    """Where the photo managers of `style` look for the image's sidecar."""
    if style not in STYLES:
        raise ValueError(f"unknown sidecar style {style!r}: use {', '.join(STYLES)}")
    whole, stem = image.with_name(image.name + ".xmp"), image.with_suffix(".xmp")
    if style == "auto":
        return stem if os.path.lexists(stem) and not os.path.lexists(whole) else whole
    return whole if style == "digikam" else stem


def owned_fields(texts: TextStore, content_hash: str) -> OwnedFields:
    """What photoseek says about one picture: notes and captions as the description; tags, topics
    and places as keywords (topics and places also in a hierarchy: Topics|beach, Places|Portugal|Porto)."""
    rows = [(source, model, _xml_text(text)) for source, model, text in texts.signal_rows(content_hash)]
    notes = [text for source, model, text in rows if source == "note" and model == USER_MODEL]
    notes += [text for source, model, text in rows if source == "note" and model not in (USER_MODEL, TAGS_MODEL)]
    captions = [text for source, _, text in rows if source == "caption"]
    tags = [tag.strip() for text in _texts(rows, "note", TAGS_MODEL) for tag in text.split(", ")]
    topics = [line.strip() for text in _texts(rows, "topics") for line in text.splitlines()]
    places = [line.strip() for text in _texts(rows, PLACE_SOURCE) for line in text.splitlines()]
    description = "\n\n".join(dict.fromkeys(t.strip() for t in [*notes, *captions] if t.strip()))
    hierarchy = [*tags, *(f"{TOPICS_BRANCH}|{t}" for t in topics), *([_place_path(places)] if places else [])]
    return OwnedFields(
        description=description,
        subjects=tuple(dict.fromkeys(k for k in [*tags, *topics, *places] if k)),
        hierarchical=tuple(dict.fromkeys(h for h in hierarchy if h)),
    )


def export_sidecars(
    texts: TextStore, records: Sequence[ImageRecord], *, style: str = "digikam", dry_run: bool = False,
    remove: bool = False,
) -> ExportReport:
    """Merge photoseek's fields into the sidecar of each image (or take them out, with `remove`)."""
    report = ExportReport(style, dry_run)
    targets = [(record, sidecar_path(Path(record.path), style)) for record in records]
    shared = {path for path, n in Counter(str(s) for _, s in targets).items() if n > 1}
    for record, sidecar in targets:
        reason = _refusal(Path(record.path), sidecar, shared)
        if reason:
            report.skipped.append((escape_undecodable(str(sidecar)), reason))
            continue
        ours = OwnedFields() if remove else owned_fields(texts, record.content_hash)
        try:
            change = _export_one(Path(record.path), sidecar, ours, dry_run)
        except (OSError, XmpError, UnicodeError) as exc:
            report.skipped.append((escape_undecodable(str(sidecar)), _reason(exc)))
            continue
        if change is None:
            report.unchanged += 1
        else:
            report.changes.append(change)
    return report


def _export_one(image: Path, sidecar: Path, ours: OwnedFields, dry_run: bool) -> SidecarChange | None:
    """Merge into one sidecar; the change made, or None when there was nothing to change."""
    before = _existing(sidecar)
    if before is None and ours == OwnedFields():
        return None
    document = XmpDocument(before[1] if before else None)
    old = document.owned()
    if not document.merge(ours):
        return None
    emptied = ours == OwnedFields() and document.is_blank()
    action = "delete" if emptied else "update" if before else "create"
    change = SidecarChange(
        image=escape_undecodable(str(image)), sidecar=escape_undecodable(str(sidecar)), action=action,
        description=ours.description,
        added=[k for k in _keywords(ours) if k not in _keywords(old)],
        removed=[k for k in _keywords(old) if k not in _keywords(ours)],
    )
    if not dry_run:
        expected = before[0] if before else None
        if emptied:
            _check_unchanged(sidecar, expected)
            sidecar.unlink()
            _sync_folder(sidecar.parent)
        else:
            _write_atomically(sidecar, document.text(), expected)
    return change


def _refusal(image: Path, sidecar: Path, shared: set[str]) -> str:
    """Why this image's sidecar is not written, or ''."""
    if sidecar == image:
        return "the image itself has the .xmp suffix"
    if str(sidecar) in shared:
        return (f"several indexed images share the sidecar name {sidecar.name} (named after the file without its "
                "suffix, as Lightroom does); use --style digikam, which names it after the whole file name")
    if not image.is_file():
        return f"the photo {image} is not there (moved, or its disk is not mounted); index again, then export"
    return ""


def _existing(sidecar: Path) -> tuple[os.stat_result, str] | None:
    """The sidecar's state and text, or None when there is none; raises for one photoseek must not edit."""
    try:
        info = sidecar.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        raise XmpError("it is a symbolic link; photoseek writes only regular files")
    if not stat.S_ISREG(info.st_mode):
        raise XmpError("it is not a regular file")
    if info.st_size > MAX_SIDECAR_BYTES:
        raise XmpError(f"it is {info.st_size / 1e6:.0f} MB, too big for a sidecar")
    return info, sidecar.read_bytes().decode("utf-8")


def _write_atomically(path: Path, text: str, expected: os.stat_result | None) -> None:
    """Temp file in the same folder, fsync, rename over `path` (only if it is still as read), fsync
    the folder, read back."""
    data = text.encode("utf-8")
    _remove_stale_temps(path)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes the file 0600: keep an existing sidecar's mode, give a new one what a new file gets
        # (0666 less the umask), so photo managers running as another user can read it
        os.chmod(temp, stat.S_IMODE(expected.st_mode) if expected is not None else 0o666 & ~_umask())
        _check_unchanged(path, expected)
        if expected is None:
            _link_new(temp, path)
        else:
            os.replace(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    _sync_folder(path.parent)
    if path.read_bytes() != data:
        raise OSError(f"{path} does not read back as written; check the disk")


def _umask() -> int:
    """The process's file-creation mask (read by setting it, so set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _link_new(temp: str, path: Path) -> None:
    """Put a new sidecar in place without replacing one that appeared meanwhile."""
    try:
        os.link(temp, path)
    except FileExistsError:
        raise XmpError("another program created it while photoseek was writing; run export-xmp again") from None
    except OSError:  # a file system without hard links (FAT, some network shares)
        if os.path.lexists(path):
            raise XmpError("another program created it while photoseek was writing; run export-xmp again") from None
        os.replace(temp, path)


def _check_unchanged(path: Path, expected: os.stat_result | None) -> None:
    """Refuse to replace a sidecar another program changed since it was read."""
    try:
        now = path.lstat()
    except FileNotFoundError:
        now = None
    same = (now is None and expected is None) or (
        now is not None and expected is not None
        and (now.st_ino, now.st_size, now.st_mtime_ns) == (expected.st_ino, expected.st_size, expected.st_mtime_ns)
    )
    if not same:
        raise XmpError("another program changed it while photoseek was merging; run export-xmp again")


def _remove_stale_temps(path: Path) -> None:
    """Temp files an interrupted export left beside this sidecar (never anything else)."""
    for stale in path.parent.glob(f".{_glob_escape(path.name)}.*{TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            stale.unlink()


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def _sync_folder(folder: Path) -> None:
    """Make a rename durable: fsync the folder (where the platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _place_path(places: Sequence[str]) -> str:
    """Places|Country|Region|Town from the place lines (town, ..., region, country)."""
    if len(places) == 1:
        return f"{PLACES_BRANCH}|{places[0]}"
    middle = [places[-2]] if len(places) >= 3 else []
    return "|".join([PLACES_BRANCH, places[-1], *middle, places[0]])


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnicodeError):
        return "it is not UTF-8 text, so not an XMP sidecar photoseek can edit"
    if isinstance(exc, XmpError):
        return str(exc)
    return f"cannot be written ({getattr(exc, 'strerror', None) or exc})"


def _xml_text(text: str) -> str:
    """`text` as a sidecar can hold it and read it back the same: line ends as XML parsers report
    them (\n), characters XML cannot hold left out."""
    return _NOT_XML.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _keywords(fields: OwnedFields) -> list[str]:
    return list(dict.fromkeys((*fields.subjects, *fields.hierarchical)))


def _texts(rows: Iterable[tuple[str, str, str]], source: str, model: str | None = None) -> list[str]:
    return [text for s, m, text in rows if s == source and (model is None or m == model)]
