"""`photoseek describe`, `tag` and `import-captions`: the user's own text about images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from photoseek.cli.common import DbOption, JsonOption, command_app, err, json_option, out, print_json, user_errors

app = command_app()

_LISTED = 10
"""Unknown files and skipped rows listed one a line; more are counted."""
ImageArgument = Annotated[Path, typer.Argument(help="An indexed image file.")]


@app.command()
def describe(
    image: ImageArgument,
    text: Annotated[str, typer.Argument(help="Your description; replaces the previous one ('' removes it).")],
    db: DbOption = None,
    as_json: Annotated[bool, json_option('{"path", "description" (null once removed)}.')] = False,
) -> None:
    """Attach your own description to an image; search finds it by meaning and by keyword."""
    from photoseek.api import ImageIndex

    with user_errors(), ImageIndex(db, create=False) as idx:
        idx.describe(image, text)
    if as_json:
        print_json({"path": str(image), "description": text if text.strip() else None})
        return
    out.print(f"Description {'saved' if text.strip() else 'removed'} for {_shown(image)}.", highlight=False)


@app.command()
def tag(
    image: ImageArgument,
    tags: Annotated[list[str], typer.Argument(help="One or more tags.")],
    db: DbOption = None,
    as_json: Annotated[bool, json_option('{"path", "tags" (all the image has now)}.')] = False,
) -> None:
    """Add tags to an image."""
    from photoseek.api import ImageIndex

    with user_errors(), ImageIndex(db, create=False) as idx:
        now = idx.tag(image, tags)
    if as_json:
        print_json({"path": str(image), "tags": now})
        return
    out.print(f"Tagged {_shown(image)}: {escape(', '.join(tags))}.", highlight=False)


@app.command("import-captions")
def import_captions(
    captions_file: Annotated[
        Path,
        typer.Argument(
            help="CSV or TSV with file,caption (or image,caption) columns, as `photoseek caption` writes, "
            "or a captions JSON that `eval` reads; paths relative to the file or absolute.",
        ),
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Attach descriptions to many images at once from a caption file.

    They are kept beside texts written with `describe` (both are searched); importing again
    replaces what the earlier import brought. A file that names no indexed image is an error.
    """
    from photoseek.api import ImageIndex

    with user_errors(), ImageIndex(db, create=False) as idx:
        report = idx.import_captions(captions_file)
    if as_json:
        print_json({
            "imported": report.imported, "unknown": report.unknown, "issues": report.issues,
            "beside_descriptions": report.beside_descriptions, "replaced": report.replaced,
        })
        return
    out.print(f"Imported {report.imported} descriptions.")
    if report.beside_descriptions:
        out.print(f"{report.beside_descriptions} of these images also have your own description "
                  "(from `describe`): both are kept and searched.")
    if report.replaced:
        out.print(f"{report.replaced} replaced the caption an earlier import gave them.")
    for label, lines in (("not in the catalog", report.unknown), ("skipped", report.issues)):
        for line in lines[:_LISTED]:
            err.print(f"  [yellow]{label}[/] {_shown(line)}", highlight=False)
        if len(lines) > _LISTED:
            err.print(f"  [yellow]{label}[/] ... and {len(lines) - _LISTED} more (--json lists them all)")


def _shown(path: object) -> str:
    """A file name as typed, safe inside Rich markup (brackets, control characters, odd bytes)."""
    from photoseek.store.catalog import escape_undecodable

    return escape(escape_undecodable(str(path)))
