"""The `imgsearch` command line: thin commands over `imgsearch.api.ImageIndex`.

Each module registers its commands on the shared Typer `app` when imported.
"""

from imgsearch.cli import caption, index, models, search, status, text  # noqa: F401  (registers commands)
from imgsearch.cli.common import app

__all__ = ["app"]
