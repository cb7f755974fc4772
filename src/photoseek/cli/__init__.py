"""The `photoseek` command line: thin commands over `photoseek.api.ImageIndex`.

Each module registers its commands on the shared Typer `app` when imported.
"""

from photoseek.cli import (  # noqa: F401  (each module registers its commands)
    caption,
    duplicates,
    eval,
    finetune,
    index,
    models,
    search,
    serve,
    status,
    text,
    topics,
    watch,
    xmp,
)
from photoseek.cli.common import app

__all__ = ["app"]
