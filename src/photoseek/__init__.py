"""photoseek: semantic search for photo folders.

`ImageIndex` is imported lazily so that `import photoseek` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from photoseek.legacy import adopt_environment
from photoseek.threads import idle_blas_sleeps

__version__ = "0.1.0"
__all__ = ["ImageIndex", "Query"]

if TYPE_CHECKING:
    from photoseek.api import ImageIndex
    from photoseek.search.query import Query

adopt_environment()  # before any $PHOTOSEEK_* is read: users of the old name keep their settings
idle_blas_sleeps()  # before numpy starts OpenBLAS's threads


def __getattr__(name: str) -> object:
    if name == "ImageIndex":
        from photoseek.api import ImageIndex

        return ImageIndex
    if name == "Query":
        from photoseek.search.query import Query

        return Query
    raise AttributeError(name)
