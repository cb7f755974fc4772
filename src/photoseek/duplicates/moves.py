"""Move duplicate copies aside, keeping their folders, as a journal that a kill cannot break.

Nothing is ever deleted or overwritten, and a kill at any point leaves every photo whole in
exactly one of its two places once the move (or its undo) is run again:

1. Everything is checked first: each source is a regular file in a folder it can be removed
   from (a read-only folder is refused before anything is copied), each destination is free,
   and the target has room for the copies that must cross filesystems.
2. The manifest (the journal) is written, fsynced and given its name exclusively (O_EXCL, so
   two moves in the same second get two manifests) before any file moves. It names every
   planned move; its `state` says which way the files were going when it was last written.
3. Each file moves without overwriting: on one filesystem by a hard link and unlink (or a
   rename where links are not supported); across filesystems by a copy to a hidden partial
   name beside the destination, fsync, rename, a size and SHA-256 check of the result, and
   only then the source's unlink. The catalog row follows each file.
4. Where each file is tells how far the journal got, so a move or undo that finds an
   unfinished manifest (state `moving` or `undoing`) settles each half-done file in the
   direction it was going (a partial copy is removed; a file at both places, the same bytes,
   keeps the new one), puts the catalog where the files are, and carries on. Undo is the same
   journal run backwards, and running it twice does nothing the second time.
A folder lock serialises moves into one target, so two at once cannot settle each other's work.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from photoseek.duplicates.finder import DuplicateGroup
from photoseek.durable import TEMP_SUFFIX, sync_folder, write_atomically
from photoseek.errors import BadInput, NotFound, PhotoseekError
from photoseek.store.catalog import Catalog

try:
    import fcntl
except ImportError:  # Windows: no advisory lock
    fcntl = None  # type: ignore[assignment]

MANIFEST_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST_PREFIX = "photoseek-duplicates-"
PARTIAL_PREFIX = ".photoseek-partial-"
"""Hidden name of a copy in progress, beside its destination; never an image extension, so never indexed."""
SPACE_MARGIN = 16 * 1024 * 1024
"""Room left free on a filesystem that receives copies, beyond the copies themselves."""
CHUNK = 1024 * 1024
IN_FLIGHT = {"moving": "forward", "undoing": "back"}


@dataclass
class MoveReport:
    """What a move or an undo did: files moved (from, to), files left alone (path, reason)."""

    manifest: Path | None
    moved: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    resumed: list[Path] = field(default_factory=list)
    """Manifests of earlier moves a kill had interrupted, finished first."""

    def to_dict(self) -> dict[str, object]:
        return {
            "manifest": str(self.manifest) if self.manifest else None,
            "resumed": [str(path) for path in self.resumed],
            "moved": [{"from": a, "to": b} for a, b in self.moved],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }


def move_copies(
    catalog: Catalog, groups: Sequence[DuplicateGroup], target: str | Path, only_ids: set[int] | None = None
) -> MoveReport:
    """Move every copy but each group's keeper (or only `only_ids`, keepers included if asked)
    under `target`, mirroring the indexed folders, journalled in a manifest there."""
    target = Path(os.path.realpath(Path(target).expanduser()))
    roots = [Path(r) for r in catalog.roots()]
    check_move_target(target, roots)
    with _locked(target):
        resumed = _unfinished(target, catalog)
        gone = set().union(*(_resume(catalog, path) for path in resumed))
        entries, skipped = _plan(groups, only_ids, target, roots, gone)
        report = MoveReport(None, skipped=skipped, resumed=resumed)
        if not entries:
            return report
        _check_space([(Path(e["from"]), Path(e["to"]), e["size"]) for e in entries])
        data = {"version": MANIFEST_VERSION, "catalog": str(Path(catalog.path).resolve()),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "state": "moving", "moves": entries}
        report.manifest = _create_manifest(target, data)
        _run(catalog, report.manifest, data, report)
    return report


def undo_moves(catalog: Catalog, manifest: str | Path) -> MoveReport:
    """Move the files a manifest lists back where they came from; a second undo does nothing.
    An interrupted move or undo is settled first, whichever way it was going."""
    path = Path(manifest).expanduser()
    if not path.parent.is_dir():
        _read_manifest(path)  # says it cannot be read, without creating its folder
    with _locked(path.parent):
        _unfinished(path.parent)  # tidies what a kill left in the folder
        report = MoveReport(path)
        if not path.exists() and path.name.startswith(MANIFEST_PREFIX):
            return report  # an empty one, claimed by a move killed before it planned anything
        data = _read_manifest(path)
        if data["state"] == "moving":
            for entry in data["moves"]:
                _settle(Path(entry["from"]), Path(entry["to"]))
        if data["state"] != "undone":
            data["state"] = "undoing"
            _write_manifest(path, data)
            _run(catalog, path, data, report)
    return report


def _resume(catalog: Catalog, path: Path) -> set[str]:
    """Finish a manifest a kill interrupted, in the direction it was going; the paths it moved away."""
    data = _read_manifest(path)
    forward = IN_FLIGHT[data["state"]] == "forward"
    _run(catalog, path, data, MoveReport(path))
    return {entry["from"] for entry in data["moves"]} if forward else set()


def check_move_target(target: Path, roots: list[Path]) -> None:
    """Refuse a folder for moved copies inside (or around) an indexed folder: they would be indexed again."""
    for root in roots:
        if target == root or root in target.parents:
            raise BadInput(
                f"--move-to {target} is inside the indexed folder {root}: the copies would be indexed "
                "again. Choose a folder outside the indexed folders."
            )
        if target in root.parents:
            raise BadInput(f"--move-to {target} contains the indexed folder {root}. Choose another folder.")


# --- planning -----------------------------------------------------------------------------


def _plan(
    groups: Sequence[DuplicateGroup], only_ids: set[int] | None, target: Path, roots: list[Path], gone: set[str]
) -> tuple[list[dict], list[tuple[str, str]]]:
    """The moves to make, each checked before anything happens, and the files refused (path, reason).
    Files in `gone` were just moved by a resumed manifest and are passed over."""
    entries: list[dict] = []
    skipped: list[tuple[str, str]] = []
    taken: set[Path] = set()
    for group in groups:
        chosen = group.others if only_ids is None else [m for m in group.members if m.record.id in only_ids]
        for member in (m for m in chosen if m.record.path not in gone):
            source = Path(member.record.path)
            destination = target / _relative(source, roots)
            reason = _refusal(source, destination, taken)
            if reason:
                skipped.append((str(source), reason))
                continue
            taken.add(destination)
            copied = group.copied(member)
            entries.append({"from": str(source), "to": str(destination), "size": source.lstat().st_size,
                            "group": group.number, "tier": member.tier, "keeper": group.keeper.record.path,
                            "copy_of": copied.record.path if copied else None})
    return entries, skipped


def _refusal(source: Path, destination: Path, taken: set[Path]) -> str | None:
    """Why this file cannot be moved, or None."""
    try:
        info = source.lstat()
    except OSError:
        return "file not found (moved or deleted since indexing)"
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link: move the file it points to instead"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if destination in taken or os.path.lexists(destination):
        return f"not moved: {destination} already exists"
    if not _removable(source, info):
        return (f"cannot move: its folder {source.parent} is read-only, so the file could be copied but never "
                "removed. Make the folder writable (or mount it read-write) and run again.")
    return None


def _removable(source: Path, info: os.stat_result) -> bool:
    """Whether this process may unlink `source` (write access to its folder, sticky bit honoured)."""
    folder = source.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    folder_info = folder.stat()
    uid = os.geteuid() if hasattr(os, "geteuid") else 0
    sticky = folder_info.st_mode & stat.S_ISVTX
    return not sticky or uid in (0, info.st_uid, folder_info.st_uid)


def _check_space(moves: Sequence[tuple[Path, Path, int]]) -> None:
    """Refuse up front when a filesystem that receives copies (not renames) lacks room for them."""
    needed: dict[int, tuple[Path, int]] = {}
    for source, destination, size in moves:
        landing = _existing_ancestor(destination.parent)
        device = landing.stat().st_dev
        if source.parent.stat().st_dev != device:
            where, total = needed.get(device, (landing, 0))
            needed[device] = (where, total + size)
    for where, total in needed.values():
        free = shutil.disk_usage(where).free
        if total + SPACE_MARGIN > free:
            raise PhotoseekError(
                f"Not enough free space in {where}: the copies need {_mb(total + SPACE_MARGIN)} and "
                f"{_mb(free)} is free. Nothing was moved; free some space or choose another folder."
            )


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _mb(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


def _relative(source: Path, roots: list[Path]) -> Path:
    """Where a file goes below the target: its root folder's name, then its path inside it."""
    for root in sorted(roots, key=lambda r: len(str(r)), reverse=True):
        if root in source.parents:
            return Path(root.name or "root") / source.relative_to(root)
    return source.relative_to(source.anchor)


# --- the journal --------------------------------------------------------------------------


def _run(catalog: Catalog, path: Path, data: dict, report: MoveReport) -> None:
    """Carry a manifest in flight (moving or undoing) through to its end, one file at a time."""
    forward = IN_FLIGHT[data["state"]] == "forward"
    done: list[dict] = []
    for entry in data["moves"]:
        old, new = (entry["from"], entry["to"]) if forward else (entry["to"], entry["from"])
        place = _settle(Path(old), Path(new))
        if place == "old":
            reason = _move_file(Path(old), Path(new))
            place = "old" if reason else "new"
            if reason:
                report.skipped.append((old, reason))
            else:
                report.moved.append((old, new))
        elif place != "new":
            report.skipped.append((old, place))
        if place in ("old", "new"):
            _follow(catalog, entry, at_destination=(place == "new") == forward)
        if not forward or place == "new":
            done.append(entry)
    data["state"] = "moved" if forward else "undone"
    if forward:  # a copy that never moved has nothing to undo: the manifest lists what did
        data["moves"] = done
        data["skipped"] = [{"path": p, "reason": r} for p, r in report.skipped]
    try:
        _write_manifest(path, data)
    except OSError as exc:
        raise PhotoseekError(
            f"{len(report.moved)} files moved, but the manifest {path} could not be brought up to date "
            f"({exc.strerror or exc}). Make room and run the same command again: it finishes from the manifest."
        ) from exc


def _follow(catalog: Catalog, entry: dict, *, at_destination: bool) -> None:
    """Point the catalog row at wherever the file is (idempotent)."""
    move = (entry["from"], entry["to"]) if at_destination else (entry["to"], entry["from"])
    catalog.move_paths([move])


def _settle(old: Path, new: Path) -> str:
    """Finish a half-done move of one file from `old` to `new`: 'old' or 'new' (where the file is
    now), else the reason it is neither (missing, or two different files)."""
    _discard(_partial(new))
    at_old, at_new = os.path.lexists(old), os.path.lexists(new)
    if at_old and at_new:
        if not (_is_regular(old) and _is_regular(new)):  # a link could point at the only copy: never settle through it
            return f"not moved: {new if _is_regular(old) else old} is not a regular file"
        if not (os.path.samefile(old, new) or _same_bytes(old, new)):
            return f"not moved: {new} already exists and differs"
        os.unlink(old)
        sync_folder(old.parent)
        return "new"
    if at_new:
        return "new"
    return "old" if at_old else "file not found (moved or deleted since)"


def _move_file(source: Path, destination: Path) -> str | None:
    """Move one file, never overwriting; the reason when it was left where it was."""
    if not source.is_file() or source.is_symlink():
        return "file not found (moved or deleted since)"
    if os.path.lexists(destination):
        return f"not moved: {destination} already exists"
    try:
        _make_folders(destination.parent)
        if not _link_or_rename(source, destination):
            return _copy_across(source, destination)
        sync_folder(destination.parent)
        if os.path.lexists(source):  # a hard link: now drop the old name
            _drop_old_name(source, destination)
        sync_folder(source.parent)
    except FileExistsError:
        return f"not moved: {destination} already exists"
    except OSError as exc:
        return f"could not move: {exc.strerror or exc}"
    return None


def _is_regular(path: Path) -> bool:
    """A regular file itself, not a link to one (lstat)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _drop_old_name(source: Path, destination: Path) -> None:
    """Remove the source's name after hard-linking it to `destination`; if that fails, remove the new
    link instead, so the file stays in one place and the move is reported as not done."""
    try:
        os.unlink(source)
    except OSError:
        os.unlink(destination)
        sync_folder(destination.parent)
        raise


def _link_or_rename(source: Path, destination: Path) -> bool:
    """Give the file its new name on the same filesystem without ever replacing one (a hard link;
    a rename after a check where links are unsupported). False when the two are on different
    filesystems. A hard link leaves the old name for the caller to remove."""
    try:
        os.link(source, destination)  # both regular files: symlinks are refused when planning
        return True
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            return False
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
    if os.path.lexists(destination):
        raise FileExistsError(errno.EEXIST, "exists", str(destination))
    try:
        os.rename(source, destination)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            return False
        raise
    return True


def _copy_across(source: Path, destination: Path) -> str | None:
    """Copy to a partial name beside `destination`, fsync, rename, verify size and SHA-256, and
    only then unlink the source. On any failure nothing is left but the source."""
    partial = _partial(destination)
    _discard(partial)
    renamed = False
    try:
        digest, size = _copy_bytes(source, partial)
        if not _link_or_rename(partial, destination):
            raise OSError(errno.EXDEV, "the partial copy and its destination are on different filesystems")
        renamed = True
        _discard(partial)
        sync_folder(destination.parent)
        if (destination.stat().st_size, _sha256(destination)) != (size, digest):
            _discard(destination)
            return "not moved: the copy did not match the original (size or SHA-256); the original is untouched"
        os.unlink(source)
        sync_folder(source.parent)
    except OSError as exc:
        _discard(partial)
        if renamed and os.path.lexists(source):
            _discard(destination)
        return f"could not copy to {destination.parent}: {exc.strerror or exc}. The original is untouched."
    return None


def _copy_bytes(source: Path, partial: Path) -> tuple[str, int]:
    """Copy `source` to a new file `partial` (exclusively), fsynced, with its times and mode."""
    digest, size = hashlib.sha256(), 0
    out = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with open(source, "rb") as reader:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                _write_all(out, chunk)
        os.fsync(out)
    finally:
        os.close(out)
    shutil.copystat(source, partial)
    return digest.hexdigest(), size


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as reader:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _same_bytes(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and _sha256(a) == _sha256(b)


def _partial(destination: Path) -> Path:
    """The one partial name a copy to `destination` uses, so a later run finds what a kill left."""
    tag = hashlib.sha256(os.fsencode(destination.name)).hexdigest()[:16]
    return destination.parent / f"{PARTIAL_PREFIX}{tag}"


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _make_folders(folder: Path) -> None:
    """Create `folder` and its missing parents, each made durable in its parent."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(created)
        sync_folder(created.parent)


# --- manifests ----------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an advisory lock on `folder` itself (made if missing) so moves into it run one at a time."""
    _make_folders(folder)
    if fcntl is None:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _create_manifest(folder: Path, data: dict) -> Path:
    """Claim a fresh manifest name exclusively, then fill it atomically; the name it got."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 10_000):
        path = folder / f"{MANIFEST_PREFIX}{stamp}{'' if attempt == 1 else f'-{attempt}'}.json"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            continue
        _write_manifest(path, data)
        return path
    raise PhotoseekError(f"No free manifest name in {folder}: tidy the old photoseek-duplicates files there.")


def _write_manifest(path: Path, data: dict) -> None:
    """Replace the manifest atomically, durable before the caller goes on."""
    # ASCII escapes keep file names that are not valid UTF-8 (surrogate-escaped) intact.
    write_atomically(path, json.dumps(data, indent=2, ensure_ascii=True).encode("ascii"))


def _unfinished(folder: Path, catalog: Catalog | None = None) -> list[Path]:
    """Manifests of `catalog` in `folder` a kill interrupted; leftovers of one that never got written
    are removed (another catalog's moves are left to it)."""
    found = []
    for tmp in folder.glob(f".{MANIFEST_PREFIX}*{TEMP_SUFFIX}"):
        _discard(tmp)
    for path in sorted(folder.glob(f"{MANIFEST_PREFIX}*.json")):
        if path.stat().st_size == 0:  # claimed, killed before its plan was written: nothing moved
            _discard(path)
            continue
        with contextlib.suppress(PhotoseekError):
            data = _read_manifest(path)
            mine = catalog is not None and Path(str(data.get("catalog"))).resolve() == Path(catalog.path).resolve()
            if data["state"] in IN_FLIGHT and mine:
                found.append(path)
    return found


def _read_manifest(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        kind = NotFound if isinstance(exc, FileNotFoundError) else BadInput
        raise kind(f"Cannot read the manifest {path}: {exc}. Give the JSON file --move-to wrote.") from exc
    if (not isinstance(data, dict) or data.get("version") not in READABLE_VERSIONS
            or not isinstance(data.get("moves"), list)):
        raise BadInput(f"{path} is not an photoseek duplicates manifest.")
    if data["version"] == 1:  # before the journal: every listed file had moved, `undone` marks those back
        undone = all(entry.get("undone") for entry in data["moves"])
        data.update(version=MANIFEST_VERSION, state="undone" if undone else "moved")
    return data
