"""`photoseek export-xmp`: write what photoseek knows into the XMP sidecars photo managers read."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape

from photoseek.cli.common import DbOption, JsonOption, command_app, err, out, print_json, user_errors

app = command_app()

if TYPE_CHECKING:
    from photoseek.sidecars import ExportReport


@app.command("export-xmp")
def export_xmp(
    folder: Annotated[
        Optional[Path], typer.Argument(help="Only images in this folder (and below); default: all indexed images.")
    ] = None,
    style: Annotated[str, typer.Option(
        "--style", help="Sidecar names: digikam: IMG_1.jpg.xmp (digiKam, darktable); lightroom: IMG_1.xmp "
        "(Lightroom, Bridge); auto: the one each photo has, else digikam.",
    )] = "auto",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would change; write nothing.")] = False,
    remove: Annotated[bool, typer.Option(
        "--remove", help="Take out everything photoseek wrote (undo); sidecars it created go when left empty "
        "(one you edited meanwhile stays).",
    )] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write notes, tags, captions, topics and places into XMP sidecars.

    Your photo manager then shows them: the description (dc:description) gets your notes and the
    captions, the keywords (dc:subject, lr:hierarchicalSubject) your tags, the topics
    (Topics|beach) and the place (Places|Portugal|Porto). An existing sidecar is merged into:
    what you or another tool wrote stays. Photos are never touched; each sidecar is replaced
    whole or not at all, so if it is interrupted, run it again to finish; running it again
    otherwise changes nothing; the next `photoseek index` reads the sidecars back.
    """
    from photoseek.api import ImageIndex

    with user_errors(), ImageIndex(db, create=False) as idx:
        report = idx.export_xmp(folder, style=style, dry_run=dry_run, remove=remove)
    if as_json:
        print_json(report.to_dict())
        return
    _print_report(report)


def _print_report(report: ExportReport) -> None:
    verb = "Would write" if report.dry_run else "Wrote"
    if report.dry_run or len(report.changes) <= 20:
        for change in report.changes:
            what = [f"+ {', '.join(change.added)}" if change.added else "", f"- {', '.join(change.removed)}"
                    if change.removed else "", "description" if change.description else ""]
            detail = "; ".join(w for w in what if w)
            out.print(f"{change.action:6} {escape(change.sidecar)}" + (f"  ({escape(detail)})" if detail else ""),
                      highlight=False, soft_wrap=True)
    created = sum(c.action == "create" for c in report.changes)
    out.print(f"{verb} {len(report.changes)} sidecar(s) ({created} new, {report.style} style); "
              f"{report.unchanged} already up to date or with nothing to write.", highlight=False, soft_wrap=True)
    if report.skipped:
        err.print(f"Left alone ({len(report.skipped)}):", highlight=False)
        for path, reason in report.skipped:
            err.print(f"  {escape(path)}: {escape(reason)}", highlight=False, soft_wrap=True)
