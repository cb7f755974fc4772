"""`export-xmp`: notes, tags, captions, topics and places written into the XMP sidecars photo
managers read, so what photoseek learned shows up in digiKam, darktable and Lightroom.

Only sidecars are written, never a photo. Each write is atomic: the new content goes to a
temporary file in the same folder, is flushed to disk and read back from it, and replaces the
sidecar with one rename (then the folder is synced and the sidecar read back: one that reads back
wrong gets its previous content again), so a kill at any step leaves the old sidecar or the new
one, whole; the next run clears what a killed one left. A sidecar that changed while it was being
merged, is a link, is not XMP or is not UTF-8 is reported and left alone. Running it again changes
nothing; `remove=True` takes out what photoseek wrote, and deletes a sidecar it created, once
nothing else is left in it, only while it holds exactly the bytes that were read (it is renamed
aside, compared, then deleted, or put back when it was edited meanwhile).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
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
ASIDE_SUFFIX = ".photoseek-removing"
"""A sidecar `remove` renamed aside to delete it (.IMG_1.jpg.xmp.<token>.photoseek-removing)."""
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
    if not dry_run:
        report.skipped.extend(clear_leftovers(sidecar for _, sidecar in targets))
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
    document = XmpDocument(before[1].decode("utf-8") if before else None)
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
        if emptied and before is not None:
            _delete_if_unchanged(sidecar, *before)
        else:
            _write_atomically(sidecar, document.text().encode("utf-8"), before)
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


def _existing(sidecar: Path) -> tuple[os.stat_result, bytes] | None:
    """The sidecar's state and bytes, or None when there is none; raises for one photoseek must not edit."""
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
    return info, sidecar.read_bytes()


def _write_atomically(path: Path, data: bytes, before: tuple[os.stat_result, bytes] | None) -> None:
    """A verified temp file in the same folder renamed over `path` (only if it is still as read at
    `before`), the folder synced, the result read back; a result that reads back wrong is undone."""
    expected = before[0] if before else None
    temp, written = _verified_temp(path, data, stat.S_IMODE(expected.st_mode) if expected else None)

    def put_in_place() -> None:
        _check_unchanged(path, expected)
        if expected is None:
            _link_new(temp, path)
        else:
            os.replace(temp, path)

    _settle(temp, path, put_in_place)
    if _read_back(path) != data:
        _undo_bad_write(path, written, before[1] if before else None)


def _settle(temp: Path, path: Path, put_in_place: Callable[[], None]) -> None:
    """Run `put_in_place` (a rename or link of `temp` to `path`), never leave `temp` behind, and make
    the result durable by syncing the folder."""
    try:
        put_in_place()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    _sync_folder(path.parent)


def _verified_temp(path: Path, data: bytes, mode: int | None) -> tuple[Path, os.stat_result]:
    """`data` in a new temp file beside `path`, on disk (fsynced) and read back from it; its path and
    state. `mode`: an existing sidecar's permissions; a new one gets a new file's (0666 less the
    umask), so photo managers running as another user can read it."""
    while True:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        try:
            if mode is not None:
                os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            written = os.fstat(fd)
        finally:
            os.close(fd)
        if _read_back(temp) != data:
            raise OSError(f"{path.name} did not read back as written from a temporary file; check the disk "
                          "(the sidecar is unchanged)")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return temp, written


def _read_back(path: Path) -> bytes:
    """The file's bytes as the disk holds them: its cached pages are dropped first where the platform
    allows it (they are clean after an fsync), so the read is not merely the memory just written."""
    with open(path, "rb") as fh:
        if hasattr(os, "posix_fadvise"):
            with contextlib.suppress(OSError):
                os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        return fh.read()


def _undo_bad_write(path: Path, written: os.stat_result, previous: bytes | None) -> None:
    """The sidecar just put in place reads back wrong: put the previous content back (or take a new
    sidecar away), unless another program has replaced it since (then it is theirs, left alone)."""
    if not _same_state(_lstat(path), written):
        raise XmpError("another program changed it just after photoseek wrote it; run export-xmp again")
    if previous is None:
        if not _delete_unless_changed(path, lambda aside: _same_state(_lstat(aside), written)):
            raise XmpError("another program changed it just after photoseek wrote it; run export-xmp again")
        what = "it was taken away again"
    else:
        temp, _ = _verified_temp(path, previous, stat.S_IMODE(written.st_mode))
        _settle(temp, path, lambda: os.replace(temp, path))
        what = "its previous content was put back"
    raise OSError(f"{path.name} did not read back as written, so {what}; check the disk")


def _delete_if_unchanged(path: Path, expected: os.stat_result, data: bytes) -> None:
    """Delete a sidecar photoseek created, now empty again, only while it holds exactly the bytes read."""
    _check_unchanged(path, expected)

    def still_as_read(aside: Path) -> bool:
        return stat.S_ISREG(aside.lstat().st_mode) and aside.read_bytes() == data

    if not _delete_unless_changed(path, still_as_read):
        raise XmpError("another program changed it while photoseek was removing its fields; it was left as is; "
                       "run export-xmp --remove again")


def _delete_unless_changed(path: Path, unchanged: Callable[[Path], bool]) -> bool:
    """Delete `path` if `unchanged` says so of it: it is renamed aside first, so an edit made after the
    look cannot land in a file about to go, then deleted, or put back in place (False)."""
    aside = path.with_name(f".{path.name}.{secrets.token_hex(4)}{ASIDE_SUFFIX}")
    os.rename(path, aside)
    try:
        same = unchanged(aside)
    except OSError:
        same = False
    if not same:
        _put_back(aside, path)
        return False
    os.unlink(aside)
    _sync_folder(path.parent)
    return True


def _put_back(aside: Path, path: Path) -> bool:
    """Move a sidecar set aside back to its name, unless a new one took the name meanwhile (then both
    stay); whether it went back."""
    try:
        os.link(aside, path)
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links (FAT, some network shares)
        if os.path.lexists(path):
            return False
        os.rename(aside, path)
    else:
        os.unlink(aside)
    _sync_folder(path.parent)
    return True


def clear_leftovers(sidecars: Iterable[Path]) -> list[tuple[str, str]]:
    """Finish what an interrupted export left beside these sidecars (never anything else): its temp
    files are deleted; a sidecar it had set aside to delete is deleted when it still holds only
    photoseek's fields, else put back. Returns (path, reason) of ones that must stay where they are."""
    kept: list[tuple[str, str]] = []
    wanted: dict[Path, set[str]] = {}
    for sidecar in sidecars:
        wanted.setdefault(sidecar.parent, set()).add(sidecar.name)
    for folder, names in wanted.items():
        try:
            with os.scandir(folder) as entries:
                leftovers = [(e.name, e.is_file(follow_symlinks=False)) for e in entries if e.name.startswith(".")]
        except OSError:
            continue
        for name, regular in leftovers:
            owner = _leftover_owner(name)
            if owner is None or owner[0] not in names or not regular:
                continue
            try:
                if owner[1] == TEMP_SUFFIX:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(folder / name)
                    continue
                if _finish_removal(folder / name, folder / owner[0]):
                    continue
                reason = (f"photoseek set this copy of {owner[0]} aside while removing its fields, and a new "
                          f"{owner[0]} appeared meanwhile; both were kept: keep the one you want")
            except OSError as exc:
                reason = (f"left by an interrupted export-xmp, and it cannot be cleared ({exc.strerror or exc}); "
                          "give photoseek write access to its folder, or remove it by hand")
            kept.append((escape_undecodable(str(folder / name)), reason))
    return kept


def _leftover_owner(name: str) -> tuple[str, str] | None:
    """(the sidecar's name, the suffix) for a temp or set-aside file of photoseek's, else None."""
    for suffix in (TEMP_SUFFIX, ASIDE_SUFFIX):
        if name.endswith(suffix):
            owner, dot, token = name[1 : -len(suffix)].rpartition(".")
            if dot and owner and re.fullmatch(r"[0-9a-z_]+", token):
                return owner, suffix
    return None


def _finish_removal(aside: Path, path: Path) -> bool:
    """A sidecar set aside by an interrupted `remove`: deleted when it holds nothing but photoseek's
    fields, else put back; False when it could not go back (another sidecar took its name)."""
    try:
        document = XmpDocument(aside.read_bytes().decode("utf-8"))
        document.merge(OwnedFields())
        blank = document.is_blank()
    except (OSError, XmpError, UnicodeError):
        blank = False
    if blank:
        os.unlink(aside)
        _sync_folder(path.parent)
        return True
    return _put_back(aside, path)


def _link_new(temp: Path, path: Path) -> None:
    """Put a new sidecar in place without replacing one that appeared meanwhile."""
    try:
        os.link(temp, path)
    except FileExistsError:
        raise XmpError("another program created it while photoseek was writing; run export-xmp again") from None
    except OSError:  # a file system without hard links (FAT, some network shares)
        if os.path.lexists(path):
            raise XmpError("another program created it while photoseek was writing; run export-xmp again") from None
        os.replace(temp, path)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def _same_state(now: os.stat_result | None, then: os.stat_result | None) -> bool:
    """The same file, unchanged (inode, size, modification time), or absent both times."""
    if now is None or then is None:
        return now is None and then is None
    return (now.st_ino, now.st_size, now.st_mtime_ns) == (then.st_ino, then.st_size, then.st_mtime_ns)


def _check_unchanged(path: Path, expected: os.stat_result | None) -> None:
    """Refuse to replace a sidecar another program changed since it was read."""
    if not _same_state(_lstat(path), expected):
        raise XmpError("another program changed it while photoseek was merging; run export-xmp again")


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
