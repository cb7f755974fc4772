"""Find duplicate groups in a catalog, in three tiers, and suggest which copy to keep.

    exact    byte-identical files (same content hash) at different paths
    near     the same picture re-saved: resized, recompressed, re-encoded, rotated, framed,
             lightly cropped or brightened (perceptual hashes within a Hamming distance)
    similar  the same scene (bursts, the same spot): CLIP cosine above a threshold

A group is a connected component of one tier's matches; with the tier `all`, of all
three. Each copy is labelled with the strongest tier that ties it to any member, and
`copy_of` names that member (the keeper whenever the keeper ties it as strongly): a
byte-identical pair inside a group of similar shots says `exact`, copy of each other,
not `similar`. The group's tier is the strongest tie any copy has to the keeper.
Only images under the catalog's indexed folders take part, so copies moved aside with
`--move-to` are no longer reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from photoseek.duplicates import DEFAULT_NEAR_BITS, DEFAULT_SIMILAR_COSINE
from photoseek.duplicates.components import component_labels, components
from photoseek.duplicates.near import near_edges
from photoseek.duplicates.similar import similar_pairs
from photoseek.errors import BadInput, NotFound, UnreadableImageError
from photoseek.imaging.hashing import HASH_VERSION, content_share, from_signed
from photoseek.ingest.decode import decode_image
from photoseek.store.catalog import Catalog, ImageRecord
from photoseek.store.filters import SearchFilters, normalised_folder

TIERS = ("exact", "near", "similar")


@dataclass(frozen=True)
class Member:
    """One image of a group: the strongest `tier` tying it to another member, and which (`copy_of`, an id).

    The keeper's `tier` is the group's and its `copy_of` is None.
    """

    record: ImageRecord
    tier: str
    copy_of: int | None = None

    def to_dict(self) -> dict[str, object]:
        r = self.record
        return {
            "id": r.id, "path": r.path, "width": r.width, "height": r.height, "bytes": r.size,
            "format": r.format, "taken_at": r.taken_at, "tier": self.tier, "copy_of": self.copy_of,
        }


@dataclass(frozen=True)
class DuplicateGroup:
    """Copies of one picture: the suggested keeper first, then the others."""

    number: int
    tier: str
    keeper: Member
    others: tuple[Member, ...]
    reason: str
    """Why the keeper was chosen, in words."""

    @property
    def members(self) -> tuple[Member, ...]:
        return (self.keeper, *self.others)

    def copied(self, member: Member) -> Member | None:
        """The member that `member` is a copy of (its `copy_of`); None for the keeper."""
        return next((m for m in self.members if m.record.id == member.copy_of), None)

    def to_dict(self) -> dict[str, object]:
        return {
            "group": self.number, "tier": self.tier, "reason": self.reason,
            "keeper": self.keeper.to_dict(), "others": [m.to_dict() for m in self.others],
        }


def find_duplicates(
    catalog: Catalog,
    *,
    tier: str = "all",
    threshold: float | None = None,
    folder: str | Path | None = None,
) -> list[DuplicateGroup]:
    """Duplicate groups among the indexed images (under `folder` when given), largest first.

    Only reads the catalog: perceptual hashes made by another version of the hash function are not
    used (nor forgotten: that is `index`'s work, which re-hashes them)."""
    tiers = _tiers(tier, threshold)
    ids = _candidate_ids(catalog, folder)
    edges = {name: _edges(catalog, name, ids, threshold) for name in tiers}
    groups = components(len(ids), np.concatenate(list(edges.values())))
    if "exact" not in edges:  # byte-identical copies are labelled exact in any tier
        edges = {"exact": _edges(catalog, "exact", ids, None), **edges}
    labels = {name: component_labels(len(ids), rows) for name, rows in edges.items()}
    records = catalog.records(ids[np.concatenate(groups)] if groups else [])
    share = _SharePerContent()
    built = [_group(ids, rows, labels, records, share) for rows in groups]
    built.sort(key=lambda g: (-len(g.members), g.keeper.record.path))
    return [DuplicateGroup(n, g.tier, g.keeper, g.others, g.reason) for n, g in enumerate(built, start=1)]


def _tiers(tier: str, threshold: float | None) -> tuple[str, ...]:
    if tier == "all":
        if threshold is not None:
            raise BadInput("--threshold needs one tier: --tier near (bits, 0-32) or --tier similar (cosine).")
        return TIERS
    if tier not in TIERS:
        raise BadInput(f"Unknown tier {tier!r}: use exact, near, similar or all.")
    if threshold is not None:
        if tier == "exact":
            raise BadInput("The exact tier takes no --threshold: files are identical or not.")
        if tier == "near" and not (threshold == int(threshold) and 0 <= threshold <= 32):
            raise BadInput(
                f"--threshold for near is a number of differing bits, 0 to 32 (default {DEFAULT_NEAR_BITS})."
            )
        if tier == "similar" and not 0 < threshold <= 1:
            raise BadInput(
                f"--threshold for similar is a cosine between 0 and 1 (default {DEFAULT_SIMILAR_COSINE})."
            )
    return (tier,)


def _candidate_ids(catalog: Catalog, folder: str | Path | None) -> np.ndarray:
    """Ids of the images under the indexed folders, and under `folder` when given."""
    if folder is not None:
        if not Path(normalised_folder(str(folder))).is_dir():
            raise NotFound(f"No such folder: {folder}. Give a folder that holds indexed images.")
        return catalog.filter_ids(SearchFilters(folder=str(folder)))
    roots = catalog.roots()
    if not roots:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.concatenate([catalog.filter_ids(SearchFilters(folder=root)) for root in roots]))


def _edges(catalog: Catalog, tier: str, ids: np.ndarray, threshold: float | None) -> np.ndarray:
    """(k, 2) positions in `ids` of the pairs this tier matches."""
    if tier == "exact":
        groups = catalog.content_duplicates(ids)
        return _star_edges([np.searchsorted(ids, group) for group in groups])
    if tier == "near":
        hashed_ids, signed = catalog.perceptual_hashes(HASH_VERSION, ids)  # another version's: none
        bits = DEFAULT_NEAR_BITS if threshold is None else int(threshold)
        pairs = near_edges(from_signed(signed), bits)
        return np.searchsorted(ids, hashed_ids[pairs]) if len(pairs) else pairs
    cosine = DEFAULT_SIMILAR_COSINE if threshold is None else float(threshold)
    found = similar_pairs(catalog, ids, cosine)
    return np.searchsorted(ids, found) if len(found) else found


def _star_edges(groups: list[np.ndarray]) -> np.ndarray:
    """Edges tying every member of each group to its first member."""
    edges = [np.stack([np.full(len(g) - 1, g[0]), g[1:]], axis=1) for g in groups if len(g) > 1]
    return np.concatenate(edges).astype(np.int64) if edges else np.empty((0, 2), dtype=np.int64)


def _group(
    ids: np.ndarray, rows: np.ndarray, labels: dict[str, np.ndarray], records: dict[int, ImageRecord],
    share: Callable[[ImageRecord], float],
) -> DuplicateGroup:
    members = [records[int(ids[row])] for row in rows]
    keeper_at, reason = choose_keeper(members, share)
    keeper_row = int(rows[keeper_at])
    peers = {tier: _rows_by_label(label, rows) for tier, label in labels.items()}
    weakest = list(labels)[-1]
    tier = next((t for t in labels if len(peers[t][int(labels[t][keeper_row])]) > 1), weakest)
    others = []
    for row, record in zip(rows.tolist(), members):
        if row != keeper_row:
            tie, tied_row = _tie(row, keeper_row, labels, peers)
            others.append(Member(record, tie or weakest, int(ids[tied_row])))
    return DuplicateGroup(0, tier, Member(members[keeper_at], tier), tuple(others), reason)


def _rows_by_label(label: np.ndarray, rows: np.ndarray) -> dict[int, list[int]]:
    """The group's rows under each of one tier's component labels, in order."""
    found: dict[int, list[int]] = {}
    for row in rows.tolist():
        found.setdefault(int(label[row]), []).append(row)
    return found


def _tie(
    row: int, keeper_row: int, labels: dict[str, np.ndarray], peers: dict[str, dict[int, list[int]]]
) -> tuple[str | None, int]:
    """The strongest tier whose groups put this image with another member, and that member: the keeper
    when it shares the tier, else the first other (labels go strongest first). (None, keeper) when the
    image joined only through a chain that no single tier spans."""
    for tier, label in labels.items():
        if label[row] == label[keeper_row]:
            return tier, keeper_row
        same = peers[tier][int(label[row])]
        if len(same) > 1:
            return tier, next(other for other in same if other != row)
    return None, keeper_row


def _measured_share(record: ImageRecord) -> float | None:
    """The share of a file's picture inside an added frame (see `hashing.content_share`); None when
    the file cannot be read now. Decoded at a reduced size: the frame is looked for at 256 px."""
    try:
        return content_share(decode_image(Path(record.path), min_side=_FRAME_SIDE).image)
    except (UnreadableImageError, OSError):
        return None


class _SharePerContent:
    """`_measured_share` decoded once per content: byte-identical copies share the answer. A copy that
    cannot be read now counts as all picture (1.0), and its content is tried again through the next copy."""

    def __init__(self) -> None:
        self.known: dict[str, float] = {}

    def __call__(self, record: ImageRecord) -> float:
        if record.content_hash not in self.known:
            share = _measured_share(record)
            if share is None:
                return 1.0
            self.known[record.content_hash] = share
        return self.known[record.content_hash]


_FRAME_SIDE = 256


def capture_time(record: ImageRecord) -> str:
    """EXIF capture time, else the file's modification time (as search filters use), ISO-8601."""
    if record.taken_at:
        return record.taken_at
    return datetime.fromtimestamp(record.mtime_ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


SAME_PICTURE_SIZE = 0.05
"""Real pixel counts this close are one picture size: frames are measured on a 256-px copy, a
pixel or so short on each side."""


def choose_keeper(
    records: list[ImageRecord], content_share: Callable[[ImageRecord], float] | None = None
) -> tuple[int, str]:
    """Index of the copy to keep and why: the original, as far as the files tell.

    The most real pixels first (`content_share` says how much of a file is picture rather than an
    added frame; by default all of it), then no added frame, then the larger file (a re-save at a
    lower quality is smaller), then camera EXIF (editors and messengers strip it), then the earliest
    capture, then the shortest path. Frames are measured only for copies big enough to matter.
    """
    measure = content_share or (lambda record: 1.0)
    pixels = [r.width * r.height for r in records]
    shares: dict[int, float] = {}
    most = 0.0
    for i in sorted(range(len(records)), key=lambda i: -pixels[i]):
        if pixels[i] < most * (1 - SAME_PICTURE_SIZE):
            break  # smaller than the best picture even if it were all picture
        shares[i] = measure(records[i])
        most = max(most, pixels[i] * shares[i])
    contenders = [i for i in shares if pixels[i] * shares[i] >= most * (1 - SAME_PICTURE_SIZE)]

    def rank(i: int) -> tuple[bool, int, bool, str, int, str]:
        r = records[i]
        return (shares[i] < 1.0, -r.size, not r.camera, capture_time(r), len(r.path), r.path)

    order = sorted(contenders, key=rank)
    best = records[order[0]]
    if len(order) == 1:
        framed = " inside its frame" if shares[order[0]] < 1.0 else ""
        return order[0], f"largest: {best.width}x{best.height} pixels{framed}"
    tied = f"{len(order) - 1} other cop{'y' if len(order) == 2 else 'ies'}"
    return order[0], (f"largest picture ({best.width}x{best.height}), as large as {tied}; "
                      + _tie_break(rank(order[0]), rank(order[1]), best))


def _tie_break(best: tuple, runner_up: tuple, record: ImageRecord) -> str:
    """The reason for the keeper among copies of one picture size: the first rule that told them apart."""
    reasons = [
        "the others have an added frame",
        f"then the largest file ({record.size:,} bytes)",
        f"same file size; camera EXIF ({record.camera})",
        f"same file size; earliest capture ({capture_time(record)})",
        "same file size and capture time; shortest path",
        "same file size, capture time and path length; first by name",
    ]
    return reasons[next((k for k in range(len(reasons) - 1) if best[k] != runner_up[k]), len(reasons) - 1)]
