"""Approximate search with FAISS: HNSW (or IVF-PQ) over the store's rows, exact re-ranking.

The graph holds 8-bit scalar-quantised vectors (about half the memory of float16); the
top candidates it finds are re-scored from the float16 store, so scores and order are
those of the exact index. Row numbers are the faiss labels: new and changed embeddings
are appended to the graph, dead rows (deleted or superseded) are masked out with a
selector, and once `FaissParams.dead_fraction` of the rows are dead the store is compacted
(a new epoch), which rebuilds the graph. The index file and its stamp are written to
temporary names and renamed, stamp last, and the stamp names the epoch and row count the
file reflects, so a killed update is detected and repaired, never trusted.

A graph is never trusted blind either: when it is built or has grown, recall@10 is measured
on a sample of stored vectors against exact search, the search depth (efSearch, nprobe) is
raised until it reaches `TARGET_RECALL`, and if no depth cheaper than a scan gets there the
graph is replaced by a scan (below). The depth and recall are kept in the stamp, shown by `status`.
Collections below `FaissParams.graph_from` are searched exactly: a scan costs no more there.

Where no graph reaches its recall (vectors spread evenly, such as random ones, defeat HNSW and
IVF alike), the index becomes a scan of 4-bit codes of every row (faiss fast-scan PQ, one 4-bit code per
pair of dimensions: 128 bytes per 512-d image, SIMD table look-ups) whose best `depth` candidates are
re-ranked exactly from the float16 store: ~1.5 ms per query at 100k images against ~10 ms for the
exact float16 scan (docs/benchmarks.md, "exactscan"). Its depth is checked like a graph's, against a
stricter target (`SCAN_TARGET_RECALL`), then doubled; if no depth reaches it, searches are exact.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from photoseek.durable import remove_stale_temps, replacing, write_atomically
from photoseek.errors import Unavailable
from photoseek.store.catalog import Catalog
from photoseek.store.filters import SearchFilters
from photoseek.store.vectors import (
    ExactIndex,
    FaissObject,
    IndexInfo,
    VectorIndex,
    VectorStore,
    bitmap_selector,
    rank,
    score_rows,
)
from photoseek.threads import blas_threads, load_faiss

EF_SEARCH_BY_SIZE: tuple[tuple[int, int], ...] = (
    (10_000, 24),
    (30_000, 24),
    (100_000, 24),
    (300_000, 64),
    (1_000_000, 384),
)
"""(collection size, efSearch): the smallest efSearch that gave recall@10 >= 0.95 at that size in
bench/search_bench.py (clustered 512-d vectors, M=16, docs/benchmarks.md "ANN settings that follow
the collection"). Harder to search as it grows: 24 suffices up to 100k, 300k needs 64, 1M 384.
Only a starting point: the graph searches at least `FaissParams.rerank` (40) deep, since faiss
raises efSearch to the number of candidates asked for, and the recall check (`measure`) raises it
further where the collection's own vectors need it."""


def ef_search_for(count: int) -> int:
    """The measured efSearch for a graph of `count` vectors: the setting of the next measured size up, so a
    collection between two measured sizes gets at least the recall measured at the larger."""
    for size, ef in EF_SEARCH_BY_SIZE:
        if count <= size:
            return ef
    return EF_SEARCH_BY_SIZE[-1][1]


TARGET_RECALL = 0.95
"""recall@10 against exact search that a graph must reach on the sample to be used."""
RECALL_QUERIES = 200
"""Stored vectors used as queries when recall is measured (the exact side costs 200 scans)."""
REMEASURE_AFTER = 0.05
"""Measure again once the graph's rows or the live images changed by this share since."""
EF_LADDER = (40, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
NPROBE_LADDER = (24, 48, 96, 192, 384, 768)
"""Depths tried in turn, from the measured default up, until recall is reached."""
SCAN_ROWS_PER_DEPTH = 64
"""A graph search at efSearch e costs about a scan of 60-80·e vectors at 64 dimensions, 30·e at 512
(bench/ann_recall_bench.py --depths): deeper than rows / 64 the graph is no cheaper than exact
search, so the ladder stops there."""
IVF_FROM = 10_000
"""IVF-PQ needs this many vectors to train its centroids; smaller sets get HNSW."""
SCAN = "scan"
"""The index that replaces a graph that misses: 4-bit codes of every row, scanned in full."""
SCAN_LADDER = (256, 512, 1024, 2048, 4096)
"""Candidates the scan hands to the exact re-ranking, tried in turn by the recall check."""
SCAN_TARGET_RECALL = 0.999
"""recall@10 the scan must reach on the sample (at most 2 misses in 2,000); the depth that reaches it
is then doubled, since a query is not a stored vector: at 100k 512-d vectors, uniform or clustered,
512 candidates found 0.999-1.0 of the sampled top 10s, 1,024 all of them, for stored vectors and fresh
ones alike (docs/benchmarks.md, "exactscan")."""
SCAN_ROWS_PER_CANDIDATE = 10
"""Re-ranking a candidate (a float16 row read and scored alone) costs about what scanning 10 rows
does: a depth past rows / 10 is no cheaper than exact search."""
TRAIN_ROWS = {"scan": 20_000}
"""Rows sampled to train each kind (default 100,000): 16 centroids per pair of dimensions need few."""


@dataclass(frozen=True)
class FaissParams:
    """Knobs measured in bench/search_bench.py (docs/benchmarks.md). The depth starts at
    `ef_search_for(size)` (or `nprobe`) and is raised by the recall check unless `ef_search` is set.
    Re-ranking more than the top 40 graph candidates changed no result: the 8-bit codes already
    order them well; the graph always searches at least that deep."""

    kind: str = "hnsw"
    m: int = 16
    ef_construction: int = 80
    ef_search: int | None = None
    rerank: int = 40
    nprobe: int = 24
    exact_below: int = 4_000
    """Filtered sets this small are scored exactly (cheaper than walking the graph)."""
    graph_from: int = 10_000
    """Catalogs with fewer live images are searched exactly: a scan of 10k float16 vectors costs
    about what the graph does with its re-ranking (docs/benchmarks.md), and needs no graph."""
    dead_fraction: float = 0.10
    """Compact the store and rebuild the graph once this share of its rows is dead: dead nodes
    stay in the graph, cost search time and steer results away from a clean build's."""


@dataclass(frozen=True)
class Tuning:
    """The outcome of a recall check: the depth chosen (None: exact search) and what was measured."""

    depth: int | None
    recall: float
    tried: int
    """The deepest depth tried (the one whose recall is kept when none reached the target)."""
    queries: int
    rows: int
    alive: int
    """The graph's rows and the live ones when measured: a change of 5% measures again."""

    def outgrown(self, store: VectorStore) -> bool:
        grown = len(store.ids) > (1 + REMEASURE_AFTER) * self.rows
        return grown or abs(store.live_count - self.alive) > REMEASURE_AFTER * self.alive


def import_faiss() -> ModuleType:
    try:
        faiss = load_faiss()
    except ImportError:
        raise Unavailable(
            "The faiss index needs the faiss extra: pip install 'photoseek[faiss]' "
            "(or index with --index exact)."
        ) from None
    return faiss


def graph_kind(params: FaissParams, count: int) -> str:
    """The index a build makes for `count` rows: IVF-PQ only once there is enough to train it."""
    return "ivfpq" if params.kind == "ivfpq" and count >= IVF_FROM else "hnsw"


def new_index(dim: int, count: int, params: FaissParams, kind: str | None = None) -> FaissObject:
    """An empty, untrained index of `kind` (default: the graph `params` ask for) sized for `count` vectors."""
    faiss = import_faiss()
    kind = kind or graph_kind(params, count)
    if kind == SCAN:
        pairs = dim // 2 if dim % 2 == 0 else dim
        return faiss.index_factory(dim, f"PQ{pairs}x4fs", faiss.METRIC_INNER_PRODUCT)
    if kind == "ivfpq":
        nlist = int(np.clip(4 * np.sqrt(count), 64, 65536))
        return faiss.index_factory(dim, f"IVF{nlist},PQ{dim // 8}x8", faiss.METRIC_INNER_PRODUCT)
    index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, params.m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = params.ef_construction
    return index


def build(matrix: np.ndarray, params: FaissParams, kind: str | None = None) -> FaissObject:
    """Train on a sample and add every row, in float32 chunks to bound memory."""
    index = new_index(matrix.shape[1], len(matrix), params, kind)
    sample_rows = min(len(matrix), TRAIN_ROWS.get(kind or "", 100_000))
    sample = np.random.default_rng(0).choice(len(matrix), sample_rows, replace=False)
    index.train(np.asarray(matrix[np.sort(sample)], dtype=np.float32))
    add_rows(index, matrix, 0)
    return index


def add_rows(index: FaissObject, matrix: np.ndarray, start: int) -> None:
    for begin in range(start, len(matrix), 65536):
        index.add(np.asarray(matrix[begin : begin + 65536], dtype=np.float32))


def is_hnsw(index: FaissObject) -> bool:
    return isinstance(index, import_faiss().IndexHNSW)


def is_scan(index: FaissObject) -> bool:
    return isinstance(index, import_faiss().IndexFastScan)


def built_kind(index: FaissObject) -> str:
    return SCAN if is_scan(index) else "hnsw" if is_hnsw(index) else "ivfpq"


def default_depth(index: FaissObject, params: FaissParams) -> int:
    """The depth searched before any recall check: efSearch by size (never below the re-ranking
    request, which faiss would raise it to anyway), or nprobe."""
    if is_scan(index):
        return SCAN_LADDER[0]
    if not is_hnsw(index):
        return params.nprobe
    return max(params.ef_search or ef_search_for(index.ntotal), params.rerank)


def depths(index: FaissObject, live: int, params: FaissParams) -> list[int]:
    """Depths the recall check tries, shallowest first, none deeper than a scan is worth."""
    first = default_depth(index, params)
    if is_scan(index):
        return [n for n in SCAN_LADDER if n <= live // SCAN_ROWS_PER_CANDIDATE]
    if is_hnsw(index):
        if params.ef_search:
            return [first]
        cap = max(first, live // SCAN_ROWS_PER_DEPTH)
        return [first, *(ef for ef in EF_LADDER if first < ef <= cap)]
    return [first, *(n for n in NPROBE_LADDER if first < n <= import_faiss().extract_index_ivf(index).nlist // 4)]


def candidates(index: FaissObject, query: np.ndarray, k: int, depth: int, selector: FaissObject | None) -> np.ndarray:
    """Row numbers of the approximate top-`k`, best first, searching `depth` deep."""
    faiss = import_faiss()
    if is_hnsw(index):
        search_params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(depth, k))
    else:
        search_params = faiss.SearchParametersIVF(sel=selector, nprobe=depth)
    _, rows = index.search(np.asarray(query, dtype=np.float32)[None], k, params=search_params)
    return rows[0][rows[0] >= 0]


class FaissIndex:
    """The faiss graph (or scan) plus the store it was built over, searched `depth` deep."""

    filters_inside = False

    def __init__(self, store: VectorStore, index: FaissObject, params: FaissParams, depth: int | None = None) -> None:
        self.store = store
        self.index = index
        self.params = params
        self.depth = depth or default_depth(index, params)
        self._scan = is_scan(index)
        self._alive = np.flatnonzero(store.ids >= 0)
        has_dead = len(self._alive) < len(store.ids)
        self._alive_selector = bitmap_selector(self._alive, len(store.ids)) if has_dead and not self._scan else None

    def __len__(self) -> int:
        return len(self._alive)

    @classmethod
    def open(cls, catalog: Catalog, params: FaissParams | None = None) -> VectorIndex:
        """Bring the graph up to date with the catalog (incrementally when it can) and check its
        recall; an exact index where the graph would not pay off or misses too much."""
        params = params or FaissParams()
        store = VectorStore.sync(catalog, compact_above=params.dead_fraction)
        if store.live_count < params.graph_from:
            return ExactIndex(store)
        import_faiss()
        files = _IndexFiles(catalog.path)
        index, tuning = files.load(store, params)
        grown = index is None or index.ntotal < len(store.ids)
        if index is None:
            index = build(store.matrix, params)
            files.trained_rows = len(store.ids)
        elif grown:
            add_rows(index, store.matrix, index.ntotal)
        stale = tuning is None or tuning.outgrown(store)  # built, or changed by 5% since measured
        if tuning is None or stale:
            tuning = measure(index, store, params)
        if tuning.depth is None and not is_scan(index):  # no graph depth reaches the target: scan instead
            files.missed = {"built": built_kind(index), "recall": tuning.recall, "tried": tuning.tried}
            index = build(store.matrix, params, SCAN)
            files.trained_rows = len(store.ids)
            tuning = measure(index, store, params)
            grown = True
        if grown or stale:
            files.save(index, store, params, tuning, changed=grown)
        if tuning.depth is None:
            return ExactIndex(store)
        return cls(store, index, params, tuning.depth)

    def close(self) -> None:
        """Nothing to release: the graph is an in-memory copy."""

    def search(
        self,
        query: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | None = None,
        filters: SearchFilters | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        with blas_threads(single=True):
            return self._search(query, k, allowed_ids)

    def _search(self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        rows, selector = self._alive, self._alive_selector
        if allowed_ids is not None:
            rows = self.store.rows_of(allowed_ids)
            if len(rows) <= self.params.exact_below:
                return self._exact(query, k, rows)
            selector = None if self._scan else bitmap_selector(rows, len(self.store.ids))
        if k <= 0:
            return self._exact(query, 0, rows)
        if self._scan:
            found = self._scanned(query, max(k, self.depth), rows)
        else:
            found = candidates(self.index, query, max(k, self.params.rerank), self.depth, selector)
        if len(found) < min(k, len(rows)):
            # The graph ran dry inside a narrow filter: score the filtered set exactly, never return fewer.
            return self._exact(query, k, rows)
        return self._exact(query, k, found)

    def _scanned(self, query: np.ndarray, want: int, rows: np.ndarray) -> np.ndarray:
        """At least `want` of the best of these rows by their 4-bit codes, in row order. A fast-scan
        index takes no selector, so it is asked for as many more as the rows left out (dead or
        filtered) would take on average, and those are dropped; where the query's best lie mostly
        outside `rows` (a filter on another part of the library), it is asked again, deeper, until
        `want` remain; once that is most of the index, all `rows` (scored exactly)."""
        total = len(self.store.ids)
        keep = None
        if len(rows) < total:
            keep = np.zeros(total, dtype=bool)
            keep[rows] = True
        ask = want * total // len(rows) + 1
        vector = np.asarray(query, dtype=np.float32)[None]
        while ask * SCAN_ROWS_PER_CANDIDATE <= total:
            _, found = self.index.search(vector, ask)
            found = np.sort(found[0][found[0] >= 0])
            if keep is not None:
                found = found[keep[found]]
            if len(found) >= want:
                return found
            ask *= max(2, -(-want // max(len(found), 1)))
        return rows

    def _exact(self, query: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The k best of these rows by their float16 vectors, as every backend ranks them."""
        return rank(self.store.ids[rows], score_rows(self.store.matrix, query, rows), k)


def measure(index: FaissObject, store: VectorStore, params: FaissParams, k: int = 10) -> Tuning:
    """recall@k of searches through the graph for stored vectors spread over the collection,
    against exact search, at each depth in turn until `TARGET_RECALL`: the shallowest depth that
    reaches it, or None (search exactly) with the recall of the deepest one tried. A scan's target is
    `SCAN_TARGET_RECALL`, and the depth that reaches it is doubled (within what a scan is worth)."""
    queries = store.sample(RECALL_QUERIES)
    alive = store.live_count
    truth = exact_top(store, queries, k)
    scan = is_scan(index)
    recall, depth = 0.0, 0
    for depth in depths(index, alive, params):
        graph = FaissIndex(store, index, params, depth)
        hits = sum(len(np.intersect1d(graph.search(q, k)[0], want)) for q, want in zip(queries, truth))
        recall = hits / sum(len(want) for want in truth)
        if recall >= (SCAN_TARGET_RECALL if scan else TARGET_RECALL):
            chosen = max(depth, min(2 * depth, alive // SCAN_ROWS_PER_CANDIDATE)) if scan else depth
            return Tuning(chosen, recall, depth, len(queries), len(store.ids), alive)
    return Tuning(None, recall, depth, len(queries), len(store.ids), alive)


_TRUTH_CHUNK_ROWS = 16384


def exact_top(store: VectorStore, queries: np.ndarray, k: int) -> list[np.ndarray]:
    """The exact top-k ids of each query, ranked as every backend ranks them; the store is read in
    chunks, so memory stays bounded at any size (an exact index would copy all of it)."""
    keep = k + 8  # a margin, so float rounding in the block product cannot change the final top k
    best_rows = np.empty((len(queries), 0), dtype=np.int64)
    best = np.empty((len(queries), 0), dtype=np.float32)
    for start in range(0, len(store.ids), _TRUTH_CHUNK_ROWS):
        stop = min(start + _TRUTH_CHUNK_ROWS, len(store.ids))
        scores = queries @ np.asarray(store.matrix[start:stop], dtype=np.float32).T
        scores[:, store.ids[start:stop] < 0] = -np.inf
        best = np.concatenate([best, scores], axis=1)
        best_rows = np.concatenate([best_rows, np.broadcast_to(np.arange(start, stop), scores.shape)], axis=1)
        if best.shape[1] > keep:
            top = np.argpartition(-best, keep - 1, axis=1)[:, :keep]
            best, best_rows = np.take_along_axis(best, top, 1), np.take_along_axis(best_rows, top, 1)
    return [rank(store.ids[rows], score_rows(store.matrix, q, rows), k)[0] for q, rows in zip(queries, best_rows)]


def describe(db_path: Path, live: int, params: FaissParams) -> IndexInfo:
    """What answers this faiss catalog's searches and why, from the stamp (faiss is not loaded)."""
    if live < params.graph_from:
        return IndexInfo("faiss", "exact", f"{live:,} images: below {params.graph_from:,} a scan is as fast as a graph")
    try:
        stamp = json.loads(_IndexFiles(db_path).stamp_path.read_text())
        built, tuning = stamp["built"], Tuning(**stamp["tuning"])
        if stamp["kind"] != params.kind:
            raise KeyError("kind")
        if built == SCAN:
            return _describe_scan(tuning, stamp["missed"])
    except (OSError, ValueError, KeyError, TypeError):
        kind = graph_kind(params, live)
        return IndexInfo("faiss", kind, "the graph is built and checked by the next index or search")
    setting = _SETTINGS[built]
    measured = f"recall@10 {tuning.recall:.3f} on {tuning.queries} sample queries"
    if tuning.depth is None:
        return IndexInfo("faiss", "exact", f"the {built} index missed: {measured} at {setting} {tuning.tried}, "
                         f"below {TARGET_RECALL}; searching exactly", None, setting, tuning.recall)
    note = "" if built == params.kind else f"; IVF-PQ from {IVF_FROM:,} images"
    return IndexInfo("faiss", built, f"{measured} at {setting} {tuning.depth}{note}", tuning.depth, setting,
                     tuning.recall)


_SETTINGS = {"hnsw": "efSearch", "ivfpq": "nprobe", SCAN: "candidates"}
"""What each built kind's depth sets (a scan's: the candidates re-ranked exactly)."""


def _describe_scan(tuning: Tuning, missed: dict[str, object]) -> IndexInfo:
    """Why a faiss catalog scans: its graph missed; and what the scan's own check measured."""
    built = str(missed["built"])
    graph = f"the {built} index missed (recall@10 {missed['recall']:.3f} at {_SETTINGS[built]} {missed['tried']})"
    measured = f"recall@10 {tuning.recall:.3f} on {tuning.queries} sample queries at {tuning.tried:,} candidates"
    if tuning.depth is None:
        return IndexInfo("faiss", "exact", f"{graph}, and so did a scan of 4-bit codes ({measured}); searching exactly",
                         None, "candidates", tuning.recall)
    return IndexInfo("faiss", SCAN, f"{graph}; scanning 4-bit codes of every image and re-ranking the best "
                     f"{tuning.depth:,} exactly ({measured})", tuning.depth, "candidates", tuning.recall)


class _IndexFiles:
    def __init__(self, db_path: Path) -> None:
        self.index_path = db_path.with_name(db_path.name + ".faiss")
        self.stamp_path = db_path.with_name(db_path.name + ".faiss.json")
        self.trained_rows = 0
        self.missed: dict[str, object] | None = None
        """What the graph a scan replaced measured (kind, recall, deepest depth tried), for `status`."""

    def load(self, store: VectorStore, params: FaissParams) -> tuple[FaissObject | None, Tuning | None]:
        """The saved index and its last recall check, if it was built over this store's epoch and
        is not outgrown."""
        faiss = import_faiss()
        try:
            stamp = json.loads(self.stamp_path.read_text())
            if (stamp["epoch"], stamp["kind"]) != (store.epoch, params.kind):
                return None, None
            if not stamp["rows"] <= len(store.ids) <= 2 * max(stamp["trained_rows"], 1000):
                return None, None  # quantiser ranges and IVF centroids were fitted to far fewer rows
            tuning = Tuning(**stamp["tuning"]) if stamp.get("tuning") else None
            index = faiss.read_index(str(self.index_path))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError):
            return None, None
        if index.ntotal != stamp["rows"] or index.d != store.matrix.shape[1]:
            return None, None
        self.trained_rows = stamp["trained_rows"]
        self.missed = stamp.get("missed")
        return index, tuning

    def save(self, index: FaissObject, store: VectorStore, params: FaissParams, tuning: Tuning, changed: bool) -> None:
        """Write the index (when `changed`) and then its stamp, each durably (`photoseek.durable`)."""
        faiss = import_faiss()
        stamp = {"epoch": store.epoch, "kind": params.kind, "built": built_kind(index), "rows": int(index.ntotal),
                 "trained_rows": self.trained_rows, "tuning": asdict(tuning), "missed": self.missed}
        try:
            if changed:
                remove_stale_temps(self.index_path)  # what a run killed while writing left
                with replacing(self.index_path) as out:
                    faiss.write_index(index, faiss.PyCallbackIOWriter(out.write))
            write_atomically(self.stamp_path, json.dumps(stamp).encode())
        except (OSError, RuntimeError):
            return  # read-only folder: the index lives in memory for this process
