"""Which vector index serves a catalog: chosen at index time, remembered in the catalog.

    exact   numpy/faiss brute force over the float16 store (exact, no extra files)
    faiss   FAISS HNSW (or IVF-PQ) with exact re-ranking (extra `faiss`); exact below 10k images,
            a scan of 4-bit codes re-ranked exactly when the graph's measured recall falls short,
            exact when the scan's does too (`describe_index` says which)
    qdrant  the Qdrant vector database, server or local mode (extra `qdrant`)
    auto    exact below AUTO_FAISS_THRESHOLD images, faiss above (when installed)
"""

from __future__ import annotations

import glob
import importlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from photoseek.durable import TEMP_SUFFIX
from photoseek.errors import BadInput, Unavailable
from photoseek.threads import load_faiss

if TYPE_CHECKING:  # the command line reads BACKENDS for its help: numpy loads when an index is opened
    from photoseek.store.catalog import Catalog
    from photoseek.store.vectors import IndexInfo, VectorIndex

BACKENDS = ("auto", "exact", "faiss", "qdrant")
FAISS_KINDS = ("hnsw", "ivfpq")
AUTO_FAISS_THRESHOLD = 50_000
"""Measured in bench/search_bench.py (docs/benchmarks.md): the exact float16 scan costs ~0.3 ms at
10k images, 7-12 ms at 100k and 44 ms at 1M on 2 cores; HNSW answers in 0.1-0.2 ms at 100k at
recall@10 >= 0.99 but costs 0.1-0.9 ms per image to build and 0.66 KB per image of RAM. Below ~50k
the scan's few milliseconds are not worth a graph."""
_SETTING = "index"
_EXTRAS = {"faiss": "faiss", "qdrant": "qdrant_client"}
"""The module each optional backend needs; its extra has the backend's name."""
_SIDE_FILES = ("-wal", "-shm", ".lock", ".vectors.", ".faiss")
"""How the names of the files kept beside a catalog continue its own: SQLite's journal, the
indexing lock, the vector store's and the FAISS index's files (with any temporary ones)."""


@dataclass(frozen=True)
class IndexConfig:
    backend: str = "auto"
    faiss_kind: str = "hnsw"
    qdrant_url: str | None = None
    qdrant_path: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise BadInput(f"Unknown index {self.backend!r}; choose one of: {', '.join(BACKENDS)}.")
        if self.faiss_kind not in FAISS_KINDS:
            raise BadInput(f"Unknown --faiss-kind {self.faiss_kind!r}; choose one of: {', '.join(FAISS_KINDS)}.")
        if self.backend == "qdrant" and not (self.qdrant_url or self.qdrant_path):
            raise BadInput(
                "--index qdrant needs --qdrant-url http://host:6333 (a server) or --qdrant-path FOLDER (local mode)."
            )


def load_config(catalog: Catalog) -> IndexConfig:
    return IndexConfig(**json.loads(catalog.setting(_SETTING) or "{}"))


def require_extra(config: IndexConfig) -> None:
    """A clear error when the chosen backend's extra is not installed; callers check before they
    change anything, so a refused choice leaves the catalog as it was."""
    module = _EXTRAS.get(config.backend)
    if module:
        try:
            importlib.import_module(module)
        except ImportError:
            raise Unavailable(
                f"--index {config.backend} needs the {config.backend} extra: pip install 'photoseek[{config.backend}]' "
                "(or choose --index exact). The catalog keeps the index it had."
            ) from None


def check_usable(config: IndexConfig) -> None:
    """`require_extra`, and a Qdrant server that answers within seconds: checked before the catalog
    switches to it, so a dead or hung server is one line and the catalog keeps the index it had."""
    require_extra(config)
    if config.backend == "qdrant" and config.qdrant_url:
        from photoseek.store.qdrant_index import check_answers

        check_answers(config.qdrant_url)


def save_config(catalog: Catalog, config: IndexConfig) -> None:
    """Remember the choice, once its extra is known to be installed: a catalog remembering a
    backend that cannot be opened would refuse every later search."""
    require_extra(config)
    catalog.set_setting(_SETTING, json.dumps(asdict(config), sort_keys=True))


def remove_catalog(db_path: Path) -> None:
    """Delete a catalog and every file kept beside it (the empty one a failed first run made);
    a Qdrant collection lives where the user chose and is left alone."""
    folder, name, length = db_path.parent, glob.escape(db_path.name), len(db_path.name)
    beside = [p for p in folder.glob(f"{name}[-.]*") if p.name[length:].startswith(_SIDE_FILES)]
    temps = [  # what a killed `durable` write of a side file left: `.<side file>.<random>.tmp`
        p for p in folder.glob(f".{name}[-.]*{TEMP_SUFFIX}") if p.name[length + 1:].startswith(_SIDE_FILES)
    ]
    for path in [db_path, *beside, *temps]:
        path.unlink(missing_ok=True)


def resolve(config: IndexConfig, count: int) -> str:
    """The concrete backend: `auto` becomes exact or faiss by collection size."""
    if config.backend != "auto":
        return config.backend
    if count < AUTO_FAISS_THRESHOLD:
        return "exact"
    try:
        load_faiss()
    except ImportError:
        return "exact"
    return "faiss"


def describe_index(catalog: Catalog) -> IndexInfo:
    """What answers this catalog's searches and why, without opening the index (for `status`)."""
    from photoseek.store.vectors import IndexInfo

    config = load_config(catalog)
    count = catalog.count()
    backend = resolve(config, count)
    if backend == "faiss":
        from photoseek.store.faiss_index import FaissParams, describe

        return describe(catalog.path, count, FaissParams(kind=config.faiss_kind))
    if backend == "qdrant":
        return IndexInfo("qdrant", "qdrant", f"Qdrant at {config.qdrant_url or config.qdrant_path}")
    if config.backend == "exact":
        return IndexInfo("exact", "exact", "chosen with --index exact")
    if count < AUTO_FAISS_THRESHOLD:
        return IndexInfo("exact", "exact", f"auto: exact below {AUTO_FAISS_THRESHOLD:,} images")
    return IndexInfo("exact", "exact", "auto: faiss is not installed (pip install 'photoseek[faiss]')")


def _open_exact(catalog: Catalog) -> VectorIndex:
    from photoseek.store.vectors import ExactIndex

    return ExactIndex.open(catalog)


def open_index(catalog: Catalog) -> VectorIndex:
    """The catalog's chosen index, brought up to date with the catalog first."""
    config = load_config(catalog)
    return _OPENERS[resolve(config, catalog.count())](catalog, config)


def _open_faiss(catalog: Catalog, config: IndexConfig) -> VectorIndex:
    from photoseek.store.faiss_index import FaissIndex, FaissParams

    return FaissIndex.open(catalog, FaissParams(kind=config.faiss_kind))


def _open_qdrant(catalog: Catalog, config: IndexConfig) -> VectorIndex:
    from photoseek.store.qdrant_index import QdrantIndex

    return QdrantIndex.open(catalog, url=config.qdrant_url, path=config.qdrant_path)


_OPENERS: dict[str, Callable[[Catalog, IndexConfig], VectorIndex]] = {
    "exact": lambda catalog, _config: _open_exact(catalog),
    "faiss": _open_faiss,
    "qdrant": _open_qdrant,
}
