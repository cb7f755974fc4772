"""Run a dataset through the product's own pipeline and measure how well it retrieves.

Images are indexed with `ImageIndex` into a catalog kept per (model, gallery) under a
cache folder, so a second run, another mode or another metric costs no image embedding.
Text queries are ranked by the same code users' searches go through: the catalog's
`VectorIndex` for CLIP, `ImageIndex.search(mode=...)` for the text-signal modes.
Image-to-text (captions ranked for each image) is measured for the CLIP mode only, as
the product has no caption search of its own.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from platformdirs import user_cache_path

from photoseek.api import ImageIndex
from photoseek.errors import BadInput, NotFound
from photoseek.eval import signals
from photoseek.eval.metrics import query_metrics, ranking_order, summarize
from photoseek.ingest.indexer import Progress
from photoseek.legacy import OLD_NAME, adopt_folder
from photoseek.models import DEFAULT_MODEL
from photoseek.search.modes import MODE_NAMES
from photoseek.text.caption_files import Dataset

MODES = MODE_NAMES
TEXT_TO_IMAGE = "text_to_image"
IMAGE_TO_TEXT = "image_to_text"
_CHUNK = 256


def default_cache_dir() -> Path:
    cache = adopt_folder(user_cache_path(OLD_NAME), user_cache_path("photoseek"), "eval", "evaluation cache")
    return cache / "eval"


@dataclass(frozen=True)
class RunSpec:
    """One model and one mode to evaluate."""

    mode: str = "clip"
    model: str | None = None
    model_path: Path | None = None
    text_model: str | None = None
    weights: tuple[tuple[str, float], ...] = ()
    """Signal weights of the fused modes (text, keyword, hybrid), as `search --weight` takes them."""

    @property
    def model_name(self) -> str:
        return self.model_path.name if self.model_path else (self.model or DEFAULT_MODEL)

    @property
    def label(self) -> str:
        weights = ", ".join(f"{s}={w:g}" for s, w in self.weights) if self.mode in signals.TEXT_MODES else ""
        return f"{self.model_name} / {self.mode}" + (f" ({weights})" if weights else "")

    def catalog_dir(self, cache_dir: Path) -> Path:
        """One folder per model, named so that a person can tell which is which."""
        key = str(self.model_path.resolve()) if self.model_path else self.model_name
        digest = hashlib.blake2b(key.encode(), digest_size=4).hexdigest()
        return cache_dir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', self.model_name)}-{digest}"


@dataclass(frozen=True)
class Gallery:
    """The dataset's images found on disk, and the caption queries with what is relevant to each."""

    names: tuple[str, ...]
    paths: tuple[Path, ...]
    notes: tuple[str, ...]
    queries: tuple[str, ...]
    relevance: tuple[dict[int, float], ...]
    """Per query: gallery index -> grade."""


@dataclass
class DirectionResult:
    """Per-query outcomes of one direction, for the summary and the per-query CSV."""

    queries: list[str]
    relevant: list[str]
    top: list[str]
    metrics: dict[str, np.ndarray]

    @property
    def summary(self) -> dict[str, float]:
        return summarize(self.metrics)


@dataclass
class RunResult:
    spec: RunSpec
    model_id: str
    directions: dict[str, DirectionResult]
    embedded: int
    reused: int
    seconds: float
    unreadable: list[str]
    calibration: list[str] = field(default_factory=list)
    """How each signal's curve came out on this gallery (`photoseek calibrate`), beside its R@K."""


@dataclass
class Evaluation:
    dataset: Dataset
    dataset_path: str
    split: str | None
    oracle_captions: int
    images_found: int
    missing: list[str]
    runs: list[RunResult] = field(default_factory=list)

    @property
    def unreadable(self) -> list[str]:
        """Images found on disk that a run could not decode (the same for every model)."""
        return sorted({name for run in self.runs for name in run.unreadable})


def locate_images(dataset: Dataset, images_dir: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """(name, file) of each image present under `images_dir`, and the names not found.

    A name is looked up as given, then by its base name, since Karpathy's COCO file names
    carry a `val2014/` folder that users do not always keep.
    """
    found: list[tuple[str, Path]] = []
    missing: list[str] = []
    for name in dataset.images:
        for candidate in (images_dir / name, images_dir / Path(name).name):
            if candidate.is_file():
                found.append((name, Path(os.path.realpath(candidate))))
                break
        else:
            missing.append(name)
    if not found:
        example = images_dir / dataset.images[0]
        raise NotFound(
            f"None of the dataset's {len(dataset.images)} images is under {images_dir} "
            f"(looked for {example}, for example). Point --images at the folder that holds them."
        )
    return found, missing


def build_gallery(dataset: Dataset, present: Iterable[tuple[str, Path]], oracle_captions: int) -> Gallery:
    """The first `oracle_captions` captions of an image become its note, the rest queries."""
    present = list(present)
    index_of = {name: i for i, (name, _) in enumerate(present)}
    captions = dict(zip(dataset.images, dataset.captions, strict=True))
    queries: list[str] = []
    relevance: list[dict[int, float]] = []
    for i, (name, _) in enumerate(present):
        for caption in captions[name][oracle_captions:]:
            graded = dataset.grades.get(caption)
            grades = (
                {index_of[n]: g for n, g in graded.items() if n in index_of and g > 0} if graded else {i: 1.0}
            )
            if grades:
                queries.append(caption)
                relevance.append(grades)
    if not queries:
        most = max(len(c) for c in dataset.captions)
        raise BadInput(
            f"No captions are left to query with: --oracle-captions {oracle_captions} uses them up "
            f"(images have at most {most}). Use a smaller --oracle-captions."
        )
    return Gallery(
        names=tuple(n for n, _ in present),
        paths=tuple(p for _, p in present),
        notes=tuple(" ".join(captions[n][:oracle_captions]) for n, _ in present),
        queries=tuple(queries),
        relevance=tuple(relevance),
    )


def evaluate(
    dataset: Dataset,
    images_dir: Path,
    runs: list[RunSpec],
    *,
    dataset_path: str = "",
    split: str | None = None,
    oracle_captions: int = 0,
    cache_dir: Path | None = None,
    on_progress: Callable[[RunSpec, Progress], None] | None = None,
    device: str | None = None,
) -> Evaluation:
    """Evaluate each run on the dataset's images under `images_dir`, its models on `device` (`ImageIndex`'s)."""
    for spec in runs:
        if spec.mode not in MODES:
            raise BadInput(f"Unknown mode {spec.mode!r}; use one of {', '.join(MODES)}.")
    present, missing = locate_images(dataset, Path(images_dir).expanduser())
    evaluation = Evaluation(
        dataset, dataset_path, split, oracle_captions, images_found=len(present), missing=missing
    )
    cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    with ExitStack() as closing:
        # One index per catalog: the modes of one model share its loaded models and query cache.
        opened: dict[Path, ImageIndex] = {}
        for spec in runs:
            db = _catalog_path(spec, cache_dir, present)
            if db not in opened:
                opened[db] = closing.enter_context(signals.open_index(
                    db, model=spec.model, model_path=spec.model_path, text_model=spec.text_model, device=device
                ))
            progress = (lambda p, s=spec: on_progress(s, p)) if on_progress else None
            evaluation.runs.append(_run(spec, opened[db], dataset, present, oracle_captions, progress))
    return evaluation


def _run(
    spec: RunSpec,
    idx: ImageIndex,
    dataset: Dataset,
    present: list[tuple[str, Path]],
    oracle_captions: int,
    on_progress: Callable[[Progress], None] | None,
) -> RunResult:
    started = time.perf_counter()
    report = idx.index([p for _, p in present], on_progress=on_progress)
    if report.interrupted:
        raise KeyboardInterrupt
    found = {p: record for _, p in present if (record := idx.find(p)) is not None}
    unreadable = [n for n, p in present if p not in found]
    readable = [(n, p) for n, p in present if p in found]
    gallery = build_gallery(dataset, readable, oracle_captions)
    image_ids = np.array([found[p].id for p in gallery.paths], dtype=np.int64)
    directions = _rank_directions(spec, idx, gallery, image_ids)
    model_id = idx.model_id or spec.model_name
    seconds = time.perf_counter() - started
    calibration = idx.calibration_summary()
    return RunResult(spec, model_id, directions, report.embedded, report.reused, seconds, unreadable, calibration)


def _catalog_path(spec: RunSpec, cache_dir: Path, present: list[tuple[str, Path]]) -> Path:
    """A catalog holding exactly this gallery, so scores and fused ranks see no other images.

    Modes and --oracle-captions settings share it: text modes rewrite every image's note.
    """
    files = sorted(str(p) for _, p in present)
    key = "\n".join([f"text_model={spec.text_model}", *files])
    digest = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    return spec.catalog_dir(cache_dir) / f"gallery-{digest}.db"


def _rank_directions(
    spec: RunSpec, idx: ImageIndex, gallery: Gallery, image_ids: np.ndarray
) -> dict[str, DirectionResult]:
    if spec.mode != "clip":
        signals.describe_all(idx, dict(zip(gallery.paths, gallery.notes, strict=True)))
        blocks = (
            signals.score_gallery(
                idx, list(gallery.queries[start : start + _CHUNK]), spec.mode, image_ids, dict(spec.weights) or None
            )
            for start in range(0, len(gallery.queries), _CHUNK)
        )
        return {TEXT_TO_IMAGE: _text_to_image(gallery, blocks)}
    text_vectors = idx.model.encode_texts(list(gallery.queries))
    gallery_vectors = idx.image_vectors(image_ids)  # the float16 rows searches score
    blocks = (text_vectors[start : start + _CHUNK] @ gallery_vectors.T for start in range(0, len(text_vectors), _CHUNK))
    image_vectors = idx.image_vectors(image_ids, exact=True)
    return {
        TEXT_TO_IMAGE: _text_to_image(gallery, blocks),
        IMAGE_TO_TEXT: _image_to_text(gallery, image_vectors, text_vectors),
    }


def _text_to_image(gallery: Gallery, blocks: Iterable[np.ndarray]) -> DirectionResult:
    """Queries rank the gallery by score rows that arrive in blocks of queries (one matrix product each)."""
    rows = (row for block in blocks for row in block)
    relevant = [";".join(gallery.names[i] for i in grades) for grades in gallery.relevance]
    return _measure(list(gallery.queries), relevant, gallery.names, gallery.relevance, rows)


def _image_to_text(gallery: Gallery, image_vectors: np.ndarray, text_vectors: np.ndarray) -> DirectionResult:
    """Each image ranks all caption queries; its relevant ones are those relevant to it."""
    inverted: list[dict[int, float]] = [{} for _ in gallery.names]
    for q, grades in enumerate(gallery.relevance):
        for image, grade in grades.items():
            inverted[image][q] = grade
    keep = [i for i, grades in enumerate(inverted) if grades]
    rows = (
        row
        for start in range(0, len(keep), _CHUNK)
        for row in image_vectors[keep[start : start + _CHUNK]] @ text_vectors.T
    )
    names = [gallery.names[i] for i in keep]
    relevant = [f"{len(inverted[i])} captions" for i in keep]
    return _measure(names, relevant, gallery.queries, [inverted[i] for i in keep], rows)


def _measure(
    queries: list[str],
    relevant: list[str],
    items: tuple[str, ...],
    relevance: list[dict[int, float]] | tuple[dict[int, float], ...],
    rows: Iterator[np.ndarray],
) -> DirectionResult:
    """Metrics for score rows in chunks, so a 25k x 5k score matrix never sits in memory."""
    parts: list[dict[str, np.ndarray]] = []
    top: list[str] = []
    for start in range(0, len(queries), _CHUNK):
        block = [next(rows) for _ in range(min(_CHUNK, len(queries) - start))]
        grades = np.zeros((len(block), len(items)))
        for r, judged in enumerate(relevance[start : start + len(block)]):
            grades[r, list(judged)] = list(judged.values())
        order = ranking_order(np.stack(block), grades)
        parts.append(query_metrics(np.take_along_axis(grades, order, axis=1)))
        top += [items[o] for o in order[:, 0]]
    metrics = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return DirectionResult(queries, relevant, top, metrics)
