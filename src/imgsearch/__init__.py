"""imgsearch: semantic search for photo folders.

`ImageIndex` is imported lazily so that `import imgsearch` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["ImageIndex", "Query"]

if TYPE_CHECKING:
    from imgsearch.api import ImageIndex
    from imgsearch.search.query import Query


def __getattr__(name: str) -> object:
    if name == "ImageIndex":
        from imgsearch.api import ImageIndex

        return ImageIndex
    if name == "Query":
        from imgsearch.search.query import Query

        return Query
    raise AttributeError(name)
