"""`photoseek duplicates`: groups of copies, the suggested keeper first, and moving copies aside."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from photoseek.cli.common import DbOption, InOption, JsonOption, command_app, err, out, print_json, user_errors
from photoseek.duplicates import DEFAULT_NEAR_BITS, DEFAULT_SIMILAR_COSINE
from photoseek.errors import BadInput

app = command_app()

if TYPE_CHECKING:
    from photoseek.duplicates.finder import DuplicateGroup, Member
    from photoseek.duplicates.moves import MoveReport

TIER_CHOICES = ("all", "exact", "near", "similar")


@app.command()
def duplicates(
    tier: Annotated[
        Optional[str],
        typer.Option(
            "--tier",
            help="exact: identical files. near: the same picture re-saved (resized, recompressed, other format, "
            "rotated, framed, lightly cropped). similar: the same scene by CLIP (bursts). all: every tier. "
            "Default: all when listing; near (exact copies included) with --move-to, so merely similar "
            "shots move only when asked for.",
        ),
    ] = None,
    threshold: Annotated[
        Optional[float],
        typer.Option(
            "--threshold",
            help=f"near: differing bits of 64 (default {DEFAULT_NEAR_BITS}; lower is stricter). "
            f"similar: CLIP cosine (default {DEFAULT_SIMILAR_COSINE}; higher is stricter). Needs --tier.",
        ),
    ] = None,
    folder: InOption = None,
    move_to: Annotated[
        Optional[Path],
        typer.Option(
            "--move-to",
            help="Move every copy but each group's keeper under this folder (outside the indexed folders), "
            "keeping their folders, with a manifest there written before anything moves. Never deletes or "
            "overwrites; if interrupted, run it again (or --undo the manifest) to finish.",
        ),
    ] = None,
    undo: Annotated[
        Optional[Path],
        typer.Option("--undo", help="Move the files a --move-to manifest lists back where they were. Safe to "
                     "run again: it finishes an interrupted move or undo, then does nothing.", dir_okay=False),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find duplicate photos: identical files, re-saved copies and near-identical shots.

    Each group lists the suggested keeper first (the original: most real pixels, no added
    frame, larger file, camera EXIF, earliest capture, shortest path) with the reason.
    `--move-to ~/dupes` moves the other copies aside; `--undo
    ~/dupes/photoseek-duplicates-....json` puts them back.
    """
    from photoseek.api import ImageIndex

    with user_errors(), ImageIndex(db, create=False) as idx:
        if undo is not None:
            if move_to is not None:
                raise BadInput("Give either --move-to or --undo, not both.")
            _print_moves(idx.undo_duplicates(undo), as_json, undo=True)
            return
        tier = tier or ("near" if move_to is not None else "all")
        if tier not in TIER_CHOICES:
            raise BadInput(f"Unknown --tier {tier!r}: use one of {', '.join(TIER_CHOICES)}.")
        with err.status(f"Looking for duplicates among {idx.count()} images...", spinner="dots"):
            groups = idx.duplicates(tier=tier, threshold=threshold, folder=folder)
        unhashed = idx.unhashed_count() if tier in ("all", "near") else 0
        if unhashed:
            err.print(
                f"[yellow]{unhashed} images have no perceptual hash yet[/] (none, or an older version's, which "
                "does not compare); the near tier skips them. Run `photoseek index` on your folders once: it "
                "re-hashes them without re-embedding."
            )
        if move_to is not None:
            _print_moves(idx.move_duplicates(groups, move_to), as_json, undo=False)
        elif as_json:
            print_json({"tier": tier, "groups": [g.to_dict() for g in groups]})
        else:
            _print_groups(groups)


def _print_groups(groups: list[DuplicateGroup]) -> None:
    from photoseek.duplicates.finder import capture_time
    from photoseek.store.catalog import escape_undecodable

    if not groups:
        out.print("No duplicates found.")
        return
    table = Table(show_lines=False, header_style="bold")
    for column in ("group", "tier", "", "file", "pixels", "size", "taken"):
        table.add_column(column, overflow="fold", no_wrap=column != "file")
    for group in groups:
        for member in group.members:
            keeper = member is group.keeper
            r = member.record
            table.add_row(
                str(group.number) if keeper else "", member.tier, "[green]keep[/]" if keeper else "copy",
                escape(escape_undecodable(r.path)) + _copy_of(member, group), f"{r.width}x{r.height}",
                _size(r.size), capture_time(r)[:10],
                end_section=False,
            )
        table.add_row("", "", "", f"[dim]keeper: {escape(group.reason)}[/]", "", "", "", end_section=True)
    out.print(table)
    copies = sum(len(g.others) for g in groups)
    freed = sum(m.record.size for g in groups for m in g.others)
    counts = f"{_count(len(groups), 'group')}, {_count(copies, 'copy', 'copies')}"
    out.print(f"{counts} besides the keepers ({_size(freed)}). {_how_to_move(groups)}")


def _how_to_move(groups: list[DuplicateGroup]) -> str:
    """What --move-to would move: by default only exact and near copies, never the merely similar."""
    similar = sum(m.tier == "similar" for g in groups for m in g.others)
    undo = "(undo with --undo MANIFEST)"
    if not similar:
        return f"Move them aside with --move-to FOLDER {undo}."
    if similar == sum(len(g.others) for g in groups):
        return f"They are only similar (the same scene): --move-to FOLDER --tier similar moves them {undo}."
    return (f"--move-to FOLDER moves the exact and near copies; add --tier all to move the "
            f"{_count(similar, 'merely similar one', 'merely similar ones')} too {undo}.")


def _copy_of(member: Member, group: DuplicateGroup) -> str:
    """For a copy whose tier ties it to another copy rather than to the keeper, a line naming that copy."""
    from photoseek.store.catalog import escape_undecodable

    copied = group.copied(member)
    if copied is None or copied is group.keeper:
        return ""
    return f"\n[dim](copy of {escape(escape_undecodable(Path(copied.record.path).name))})[/]"


def _print_moves(report: MoveReport, as_json: bool, *, undo: bool) -> None:
    from photoseek.store.catalog import escape_undecodable

    if as_json:
        print_json(report.to_dict())
    else:
        for manifest in report.resumed:
            out.print(f"Finished a move a kill had interrupted: {escape(escape_undecodable(str(manifest)))}",
                      highlight=False, soft_wrap=True)
        verb = "Moved back" if undo else "Moved"
        out.print(f"{verb} {_count(len(report.moved), 'file')}." + ("" if undo or not report.moved else
                  f" Undo: photoseek duplicates --undo {escape(escape_undecodable(str(report.manifest)))}"),
                  highlight=False, soft_wrap=True)
        for path, reason in report.skipped:
            err.print(f"  [yellow]left alone[/] {escape(escape_undecodable(path))}: {escape(reason)}", highlight=False)
    if report.skipped:
        raise typer.Exit(1)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count} B"
