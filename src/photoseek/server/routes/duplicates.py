"""Duplicate groups, and moving chosen copies aside (reversibly) into the server's duplicates folder.

Clients name image ids, never paths: copies go to the folder the server was started with
(`serve --duplicates-dir`, by default a `duplicates` folder beside the catalog), and only
members of a current duplicate group can be moved, never every member of one group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from photoseek.api import ImageIndex
from photoseek.duplicates.finder import DuplicateGroup, capture_time
from photoseek.errors import BadInput, NotFound
from photoseek.server.deps import BackendDep, ConfigDep
from photoseek.server.schemas import ErrorOut, FileText

router = APIRouter(tags=["duplicates"])
ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorOut} for status in (400, 404, 409, 422)}
MAX_MOVE_IDS = 10_000

Tier = Literal["all", "exact", "near", "similar"]
MOVED_BY_DEFAULT = ("exact", "near")
"""Copies offered for moving at first; similar shots (bursts) only when picked by hand."""


class MemberOut(BaseModel):
    id: int
    path: FileText
    name: FileText
    width: int
    height: int
    bytes: int
    format: str
    taken: str
    """EXIF capture time, else the file's modification time."""
    tier: str
    """The strongest tier tying this image to another member (the keeper's: the group's)."""
    copy_of: Optional[int]
    """Id of that member: the keeper whenever it ties as strongly; None for the keeper."""
    keeper: bool
    suggested: bool
    """Whether to offer it for moving at first (the web UI pre-checks it): a copy tied exactly or
    near, as `duplicates --move-to` moves by default; never the keeper or a merely similar shot."""


class GroupOut(BaseModel):
    group: int
    tier: str
    reason: str
    members: list[MemberOut]
    """Keeper first."""


class DuplicatesOut(BaseModel):
    tier: str
    groups: list[GroupOut]
    move_to: str
    """Where POST /api/duplicates/move puts copies."""


class MoveIn(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=MAX_MOVE_IDS)
    tier: Tier = "all"
    threshold: Optional[float] = None


class MovedOut(BaseModel):
    manifest: Optional[str]
    moved: list[dict[str, FileText]]
    skipped: list[dict[str, FileText]]


class UndoIn(BaseModel):
    manifest: str = Field(description="File name of a manifest in the duplicates folder.")


@router.get("/api/duplicates", response_model=DuplicatesOut, responses=ERRORS)
async def duplicates(
    backend: BackendDep,
    config: ConfigDep,
    tier: Tier = "all",
    threshold: Annotated[Optional[float], Query(description="near: bits of 64; similar: cosine.")] = None,
) -> DuplicatesOut:
    """Groups of copies, keeper first, with the tier that matched and why the keeper was chosen."""
    groups = await backend.call(lambda index: index.duplicates(tier=tier, threshold=threshold))
    target = await _target(backend, config)
    return DuplicatesOut(tier=tier, groups=[_group_out(g) for g in groups], move_to=str(target))


@router.post("/api/duplicates/move", response_model=MovedOut, responses=ERRORS)
async def move(backend: BackendDep, config: ConfigDep, body: MoveIn) -> MovedOut:
    """Move the chosen copies into the duplicates folder, keeping their folders; writes a manifest."""
    target = await _target(backend, config)
    wanted = set(body.ids)

    def run(index: ImageIndex) -> MovedOut:
        groups = index.duplicates(tier=body.tier, threshold=body.threshold)
        members = {m.record.id for g in groups for m in g.members}
        unknown = wanted - members
        if unknown:
            raise BadInput(f"Images {sorted(unknown)[:10]} are in no duplicate group (any more). "
                           "Reload the duplicates and choose again.")
        for group in groups:
            if {m.record.id for m in group.members} <= wanted:
                raise BadInput(f"That would move every copy of group {group.number}; "
                               "leave at least one (the keeper is suggested).")
        report = index.move_duplicates(groups, target, only_ids=wanted)
        manifest = report.manifest.name if report.moved and report.manifest else None
        return MovedOut(manifest=manifest, **_lists(report.to_dict()))

    return await backend.call(run)


@router.post("/api/duplicates/undo", response_model=MovedOut, responses=ERRORS)
async def undo(backend: BackendDep, config: ConfigDep, body: UndoIn) -> MovedOut:
    """Move the files of one manifest in the duplicates folder back where they were."""
    target = await _target(backend, config)
    manifest = target / Path(body.manifest).name
    if not manifest.is_file() or manifest.suffix != ".json":
        raise NotFound(f"No manifest {body.manifest!r} in the duplicates folder.")
    report = await backend.call(lambda index: index.undo_duplicates(manifest))
    return MovedOut(manifest=manifest.name, **_lists(report.to_dict()))


async def _target(backend: BackendDep, config: ConfigDep) -> Path:
    if config.duplicates_dir is not None:
        return config.duplicates_dir
    return backend.db_path.parent / "duplicates"


def _lists(report: dict) -> dict[str, list[dict[str, str]]]:
    return {"moved": report["moved"], "skipped": report["skipped"]}


def _group_out(group: DuplicateGroup) -> GroupOut:
    members = [
        MemberOut(
            id=m.record.id, path=m.record.path, name=Path(m.record.path).name, width=m.record.width,
            height=m.record.height, bytes=m.record.size, format=m.record.format, taken=capture_time(m.record),
            tier=m.tier, copy_of=m.copy_of, keeper=m is group.keeper,
            suggested=m is not group.keeper and m.tier in MOVED_BY_DEFAULT,
        )
        for m in group.members
    ]
    return GroupOut(group=group.number, tier=group.tier, reason=group.reason, members=members)
