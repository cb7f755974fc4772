"""The `photoseek` command line: thin commands over `photoseek.api.ImageIndex`.

Each module registers its commands on its own Typer (`common.command_app`); `app` imports and builds
only the command that runs, from the table below (tests/cli/test_lazy_commands.py keeps it in step
with the modules), so a small command does not pay for importing the others.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from photoseek import __version__
from photoseek.cli.common import EXIT_STATUS_HELP, LazyCommandsGroup

COMMANDS: dict[str, tuple[str, str]] = {
    "caption": ("caption", "Caption images; the CSV feeds `photoseek import-captions` or fine-tuning."),
    "duplicates": (
        "duplicates", "Find duplicate photos: identical files, re-saved copies and near-identical shots."
    ),
    "eval": (
        "eval", "Measure text-to-image and image-to-text retrieval (Recall@K, ranks, nDCG, mAP) on a dataset."
    ),
    "eval-captions": (
        "eval", "Score generated captions against references: BLEU-1..4, ROUGE-L and CIDEr (pycocoevalcap)."
    ),
    "finetune": (
        "finetune", "Fine-tune CLIP on image-caption pairs; evaluates it before and after on held-out images."
    ),
    "index": ("index", "Index photo folders. Run it again any time: only new and changed files are read."),
    "search": ("search", "Search by text and example images."),
    "similar": ("search", "Find images that look like IMAGE."),
    "serve": (
        "serve", "Serve the web UI and REST API (docs at /docs). Binds to 127.0.0.1 unless told otherwise."
    ),
    "status": (
        "status",
        "Show what is indexed: folders and single files, image count, model, where it runs, size, failed files, "
        "and which index answers searches and why (a faiss graph's search depth and measured recall@10).",
    ),
    "calibrate": (
        "status", "Fit each search signal (CLIP, the text model) on this library's photos that carry text, now."
    ),
    "describe": (
        "text", "Attach your own description to an image; search finds it by meaning and by keyword."
    ),
    "tag": ("text", "Add tags to an image."),
    "import-captions": ("text", "Attach descriptions to many images at once from a caption file."),
    "topics": ("topics", "List topics with how many images have each (`search --topic NAME` filters by one)."),
    "watch": (
        "watch",
        "Index photo folders, then keep following them until Ctrl+C: new, changed, moved and deleted photos "
        "are indexed in batches a few seconds after they change.",
    ),
    "export-xmp": ("xmp", "Write notes, tags, captions, topics and places into XMP sidecars."),
    "models": ("models", "List CLIP models, download any model for offline use, export and quantize CLIP models."),
}
"""Command name -> (module under photoseek.cli, the first paragraph of its help), in `--help` order."""


class _Photoseek(LazyCommandsGroup):
    table = COMMANDS


app = typer.Typer(
    cls=_Photoseek,
    help=(
        "Find photos by describing them or by showing an example.\n\n"
        "Start with `photoseek index ~/Pictures`, then `photoseek search \"a dog on a beach\"`."
    ),
    epilog=EXIT_STATUS_HELP,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        print(f"photoseek {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit."),
    ] = None,
) -> None:
    """Find photos by describing them or by showing an example."""


__all__ = ["COMMANDS", "app"]
