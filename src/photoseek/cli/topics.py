"""`photoseek topics`: list the catalog's topics with counts, add one, or retag with a new list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from photoseek.cli.common import (
    DbOption,
    DeviceOption,
    JsonOption,
    ModelOption,
    ModelPathOption,
    TextModelOption,
    TopicsFileOption,
    command_app,
    out,
    parse_weights,
    print_json,
    user_errors,
)
from photoseek.topics import DEFAULT_THRESHOLD

app = command_app()

if TYPE_CHECKING:
    from photoseek.topics import TagReport


@app.command()
def topics(
    add: Annotated[
        Optional[str], typer.Option("--add", help='Add this topic and tag every image with it, e.g. --add "sailing".')
    ] = None,
    description: Annotated[
        str, typer.Option("--description", help="With --add: what the topic covers (helps the models).")
    ] = "",
    taxonomy_file: TopicsFileOption = None,
    threshold: Annotated[
        Optional[float],
        typer.Option(
            "--threshold", min=0.0, max=1.0,
            help=f"Confidence an image needs to get a topic (remembered; default {DEFAULT_THRESHOLD}).",
        ),
    ] = None,
    weights: Annotated[
        Optional[list[str]],
        typer.Option(
            "--weight", "-w", help="Signal weight, e.g. text=0 (CLIP only); remembered (default clip=1 text=1)."
        ),
    ] = None,
    db: DbOption = None,
    model: ModelOption = None,
    model_path: ModelPathOption = None,
    device: DeviceOption = "auto",
    text_model: TextModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """List topics with how many images have each (`search --topic NAME` filters by one).

    Topics come from the catalog's taxonomy (about 30 everyday topics until you give your own
    with `--topics-file FILE`). Adding or changing topics tags the
    indexed images from their stored embeddings: nothing is re-embedded.
    """
    from photoseek.api import ImageIndex

    with user_errors(), ImageIndex(
        db, model=model, model_path=model_path, text_model=text_model, create=False, device=device
    ) as idx:
        parsed = parse_weights(weights or [])
        report: TagReport | None = None
        if add is not None:
            report = idx.add_topic(add, description, threshold=threshold, weights=parsed)
        elif taxonomy_file is not None or weights or threshold is not None:
            report = idx.tag_topics(taxonomy_file, threshold=threshold, weights=parsed)
        listed = idx.topics()
        if as_json:
            print_json({
                "topics": [{**t.to_dict(), "images": n} for t, n in listed],
                "tagged": report.tagged if report else 0,
                "images": idx.count(),
            })
            return
        _print(listed, report, idx.count())


def _print(listed: list, report: TagReport | None, images: int) -> None:
    if report is not None:
        out.print(f"Tagged {report.tagged} images.")
    table = Table("topic", "images", "description", box=None)
    for topic, count in listed:
        table.add_row(escape(topic.name), str(count), escape(topic.description))
    out.print(table)
    if not any(n for _, n in listed):
        out.print(f"No image of {images} has a topic yet: run `photoseek index --topics FOLDER` to tag them.")
