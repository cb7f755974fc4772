"""Move duplicate copies aside, keeping their folders, with a manifest that undoes it.

Nothing is ever deleted or overwritten: a copy whose destination exists is left where it
is and reported. The catalog follows each file (its row gets the new path, embedding and
id unchanged), so search results never point at a missing file and `undo` restores the
rows as they were; the finder ignores images outside the indexed folders, so moved copies
stop being reported.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from photoseek.duplicates.finder import DuplicateGroup
from photoseek.errors import PhotoseekError
from photoseek.store.catalog import Catalog

MANIFEST_VERSION = 1


@dataclass
class MoveReport:
    """What a move or an undo did: files moved (from, to), files left alone (path, reason)."""

    manifest: Path
    moved: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "manifest": str(self.manifest),
            "moved": [{"from": a, "to": b} for a, b in self.moved],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }


def move_copies(
    catalog: Catalog, groups: Sequence[DuplicateGroup], target: str | Path, only_ids: set[int] | None = None
) -> MoveReport:
    """Move every copy but each group's keeper (or only `only_ids`, keepers included if asked)
    under `target`, mirroring the indexed folders, and write the manifest there."""
    target = Path(os.path.realpath(Path(target).expanduser()))
    roots = [Path(r) for r in catalog.roots()]
    check_move_target(target, roots)
    report = MoveReport(target / time.strftime("photoseek-duplicates-%Y%m%d-%H%M%S.json"))
    entries: list[dict[str, object]] = []
    try:
        for group in groups:
            chosen = group.others if only_ids is None else [m for m in group.members if m.record.id in only_ids]
            for member in chosen:
                source = Path(member.record.path)
                destination = target / _relative(source, roots)
                reason = _move(source, destination)
                if reason:
                    report.skipped.append((str(source), reason))
                    continue
                report.moved.append((str(source), str(destination)))
                copied = group.copied(member)
                entries.append({"from": str(source), "to": str(destination), "group": group.number,
                                "tier": member.tier, "keeper": group.keeper.record.path,
                                "copy_of": copied.record.path if copied else None})
    finally:  # the manifest first: files that moved can always be put back, whatever the catalog does
        if entries:
            _write_manifest(report.manifest, {"version": MANIFEST_VERSION, "catalog": str(catalog.path),
                                              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "moves": entries})
        catalog.move_paths(report.moved)
    return report


def undo_moves(catalog: Catalog, manifest: str | Path) -> MoveReport:
    """Move the files a manifest lists back where they came from; a second undo does nothing."""
    path = Path(manifest).expanduser()
    data = _read_manifest(path)
    report = MoveReport(path)
    try:
        for entry in data["moves"]:
            if entry.get("undone"):
                continue
            source, destination = Path(entry["to"]), Path(entry["from"])
            reason = _move(source, destination)
            if reason:
                report.skipped.append((str(source), reason))
                continue
            entry["undone"] = True
            report.moved.append((str(source), str(destination)))
    finally:
        _write_manifest(path, data)
        catalog.move_paths(report.moved)
    return report


def check_move_target(target: Path, roots: list[Path]) -> None:
    """Refuse a folder for moved copies inside (or around) an indexed folder: they would be indexed again."""
    for root in roots:
        if target == root or root in target.parents:
            raise PhotoseekError(
                f"--move-to {target} is inside the indexed folder {root}: the copies would be indexed "
                "again. Choose a folder outside the indexed folders."
            )
        if target in root.parents:
            raise PhotoseekError(f"--move-to {target} contains the indexed folder {root}. Choose another folder.")


def _relative(source: Path, roots: list[Path]) -> Path:
    """Where a file goes below the target: its root folder's name, then its path inside it."""
    for root in sorted(roots, key=lambda r: len(str(r)), reverse=True):
        if root in source.parents:
            return Path(root.name or "root") / source.relative_to(root)
    return source.relative_to(source.anchor)


def _move(source: Path, destination: Path) -> str | None:
    """Move one file, never overwriting; the reason when it was left alone."""
    if not source.is_file():
        return "file not found (moved or deleted since indexing)"
    if destination.exists() or destination.is_symlink():
        return f"not moved: {destination} already exists"
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), str(destination))
    except OSError as exc:
        return f"could not move: {exc.strerror or exc}"
    return None


def _write_manifest(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    # ASCII escapes keep file names that are not valid UTF-8 (surrogate-escaped) intact.
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=True), encoding="utf-8")
    os.replace(tmp, path)


def _read_manifest(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PhotoseekError(f"Cannot read the manifest {path}: {exc}. Give the JSON file --move-to wrote.") from exc
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION or not isinstance(data.get("moves"), list):
        raise PhotoseekError(f"{path} is not an photoseek duplicates manifest.")
    return data
