"""The Ray Data pipeline: read + decode + preprocess in CPU tasks, embed in an actor pool.

Rows carry paths (or, with `ship_bytes`, the files' bytes) out and small results back: a
content hash, the facts the catalog records as JSON, a failure reason, an embedding. Pixels
never travel back to the driver, and the driver alone touches the catalog.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from photoseek.distributed.devices import ActorDevice
from photoseek.errors import PhotoseekError, UnreadableImageError
from photoseek.ingest.discover import FoundFile
from photoseek.ingest.indexer import (
    Embedded,
    Failed,
    Hashed,
    OnSkip,
    Outcome,
    Prepared,
    Reused,
    copy_known,
    fact_fields,
    prepare_file,
    read_file_facts,
)
from photoseek.ingest.reading import open_image
from photoseek.models.clip import ClipModel
from photoseek.models.layout import CONFIG_FILE, ModelLayout
from photoseek.models.preprocess import ImagePreprocessor
from photoseek.models.runtime import Runtime
from photoseek.places.gps import Location
from photoseek.store.catalog import Catalog, NewImage
from photoseek.text.metadata import FileFacts

CHUNK_FILES = 50_000
"""Files per Ray dataset: bounds the driver's memory for the work list on very large runs."""
CHUNK_BYTES = 256 * 2**20
"""With `ship_bytes`, file bytes per dataset: bounds what the driver holds in the object store at once."""
DECODE_BATCH = 16
"""Files per decode task: large enough to amortise task overhead, small enough to spread over nodes."""
DECODE_MEMORY = 512 * 2**20
"""Reserved per decode task: a batch of large photos decoded at once (also keeps decoding a stage of its own)."""
SHARED_FS_MARKER = "cannot see"


class RayPipeline:
    """Turns the files that need work into indexer outcomes on the cluster `ray` is connected to."""

    def __init__(
        self, ray: ModuleType, model: ClipModel, roots: Sequence[Path], db_path: Path,
        *, batch_size: int, ship_bytes: bool, placement: ActorDevice,
    ) -> None:
        self.ray = ray
        self.placement = placement
        self.roots = [str(root) for root in roots]
        self.db_path = db_path
        self.batch_size = batch_size
        self.ship_bytes = ship_bytes
        self.model_id = model.model_id
        self.model_root = model.layout.root
        self.pixels = PixelPreparer(model.layout.preprocess_cfg)

    @cached_property
    def model_ref(self) -> Any:
        """The image tower in the object store: put once, when there is work; each node pulls it once."""
        return self.ray.put(model_files(self.model_root))

    def outcomes(self, files: list[FoundFile], hash_only: set[str], on_skip: OnSkip) -> Iterator[Outcome]:
        """`hash_only`: unchanged images that only lack a perceptual hash (the cluster decodes them too).
        Sidecars that could not be read, where they were read (here or on a node), go to `on_skip`."""
        lookup = Catalog(self.db_path, readonly=True)
        try:
            for chunk in self._chunks(files):
                yield from self._run(chunk, lookup, hash_only, on_skip)
        finally:
            lookup.close()

    def _chunks(self, files: list[FoundFile]) -> Iterator[list[FoundFile]]:
        chunk: list[FoundFile] = []
        held = 0
        for found in files:
            chunk.append(found)
            held += found.size if self.ship_bytes else 0
            if len(chunk) >= CHUNK_FILES or held >= CHUNK_BYTES:
                yield chunk
                chunk, held = [], 0
        if chunk:
            yield chunk

    def _run(
        self, chunk: list[FoundFile], lookup: Catalog, hash_only: set[str], on_skip: OnSkip
    ) -> Iterator[Outcome]:
        by_path = {str(found.path): found for found in chunk}
        read_at = time.time()  # on this clock, before any node reads a sidecar: an edit made later is newer
        shipped_facts: dict[str, FileFacts] = {}
        rows: list[dict[str, Any]] = []
        for found in chunk:
            if not self.ship_bytes:
                rows.append({"path": str(found.path), "data": b"", "content_hash": ""})
                continue
            read = _read_here(found, on_skip)  # the cluster cannot see the file
            if isinstance(read, Failed):
                yield read
                continue
            data, content_hash, facts = read  # sidecars live beside the file, on this machine
            known = lookup.embedding_for_hash(content_hash)
            if known is not None and known[2] is not None and str(found.path) not in hash_only:
                record, embedding, phash = known[0], known[1], known[2]
                yield Reused(found, copy_known(found, content_hash, record, embedding, phash, facts, read_at))
                continue
            shipped_facts[str(found.path)] = facts
            rows.append({"path": str(found.path), "data": data, "content_hash": content_hash})
        if not rows:
            return
        for batch in stream(self.ray, self._dataset(rows)):
            for row in _rows(batch):
                found = by_path[row["path"]]
                if not self.ship_bytes and row["path"] not in hash_only:  # as a local run reads them
                    for sidecar, reason in json.loads(row["skipped"]):
                        on_skip(Path(sidecar), reason)
                yield _outcome(found, row, lookup, shipped_facts.get(row["path"]), row["path"] in hash_only, read_at)

    def _dataset(self, rows: list[dict[str, Any]]) -> Any:
        ray = self.ray
        blocks = max(1, min(len(rows) // DECODE_BATCH, 4096))
        decoded = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            prepare_batch, batch_size=DECODE_BATCH, batch_format="numpy", num_cpus=1, memory=DECODE_MEMORY,
            fn_kwargs={"pixels": self.pixels, "roots": [] if self.ship_bytes else self.roots},
        )
        gpus = self.placement.gpus
        cpus = int(ray.cluster_resources().get("CPU", 1))
        pool = ray.data.ActorPoolStrategy(size=gpus) if gpus else ray.data.ActorPoolStrategy(
            min_size=1, max_size=max(1, cpus // 4)
        )
        return decoded.map_batches(  # a stage of its own: decoding asks for memory, so Ray Data does not fuse them
            Embedder, batch_size=self.batch_size, batch_format="numpy", compute=pool,
            num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1,
            fn_constructor_kwargs={"model": [self.model_ref], "model_id": self.model_id,
                                   "device": self.placement.for_pool(on_gpu=bool(gpus))},
        )

def stream(ray: ModuleType, dataset: Any) -> Iterator[dict[str, np.ndarray]]:
    """Result batches as they finish; a failed job becomes one clear error instead of a Ray traceback."""
    try:
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
    except ray.exceptions.RayError as exc:
        raise PhotoseekError(f"The Ray job failed: {_reason(exc)}") from exc


def ensure_roots(roots: list[str]) -> None:
    """In a task: fail with the node and path when this node cannot see a root (it joined after the check)."""
    for root in roots:
        if not os.path.isdir(root):
            raise PhotoseekError(shared_fs_message(socket.gethostname(), root))


def shared_fs_message(node: str, root: str) -> str:
    """Why a node cannot index a root, and the two ways out (told by the driver's check and by tasks)."""
    return (
        f"Ray node {node} cannot see {root}. Every node must mount the photo folders at the same path "
        "(a shared filesystem), or run with --ray-ship-bytes so this machine sends the file bytes."
    )


class PixelPreparer:
    """What the decode tasks need of the model: its input size and preprocessing, no ONNX session."""

    def __init__(self, preprocess_cfg: dict[str, Any]) -> None:
        self.preprocessor = ImagePreprocessor(preprocess_cfg)

    @property
    def image_size(self) -> int:
        return max(self.preprocessor.size)

    def preprocess(self, image: Any) -> np.ndarray:
        return self.preprocessor(image)


def prepare_batch(batch: dict[str, np.ndarray], *, pixels: PixelPreparer, roots: list[str]) -> dict[str, Any]:
    """A decode task: read (unless shipped), hash, decode and preprocess each file, as the local indexer does;
    `skipped` lists the sidecars it could not read, with why (JSON)."""
    ensure_roots(roots)
    height, width = pixels.preprocessor.size
    out: dict[str, list[Any]] = {"path": [], "content_hash": [], "info": [], "failure": [], "pixels": [], "skipped": []}
    for path, data, content_hash in zip(batch["path"], batch["data"], batch["content_hash"]):
        found = FoundFile(Path(path), 0, 0)
        skipped: list[tuple[str, str]] = []
        result = prepare_file(
            found, pixels, (bytes(data), str(content_hash)) if content_hash else None,
            on_skip=_noting(skipped),
        )
        out["path"].append(str(path))
        out["skipped"].append(json.dumps(skipped))
        if isinstance(result, Prepared):
            out["content_hash"].append(result.content_hash)
            out["info"].append(_info(result))
            out["failure"].append("")
            out["pixels"].append(result.pixels)
        else:
            out["content_hash"].append("")
            out["info"].append("")
            out["failure"].append(result.reason)
            out["pixels"].append(np.zeros((3, height, width), dtype=np.float32))
    return {key: np.stack(value) if key == "pixels" else np.array(value, dtype=object) for key, value in out.items()}


def _noting(skipped: list[tuple[str, str]]) -> OnSkip:
    """An `OnSkip` that keeps (sidecar, reason) for the driver."""
    return lambda sidecar, reason: skipped.append((str(sidecar), reason))


def _info(prepared: Prepared) -> str:
    decoded = prepared.decoded
    return json.dumps({
        "width": decoded.width, "height": decoded.height, "format": decoded.format,
        "taken_at": decoded.taken_at, "camera": decoded.camera,
        "facts": asdict(prepared.facts), "phash": prepared.phash,
    })


class Embedder:
    """An embedding actor: materialises the shipped model once per node, loads it once on `device`
    (`devices.ActorDevice`), embeds batches."""

    def __init__(self, model: list[Any], model_id: str, device: str) -> None:
        import ray

        root = materialize(ray.get(model[0]))
        self.model = ClipModel(ModelLayout(root), model_id=model_id, runtime=Runtime(device))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = batch["failure"] == ""
        embeddings = np.zeros((len(ok), self.model.dim), dtype=np.float32)
        if ok.any():
            embeddings[ok] = self.model.encode_pixels(batch["pixels"][ok])
        kept = ("path", "content_hash", "info", "failure", "skipped")
        return {key: batch[key] for key in kept} | {"embedding": embeddings}


def model_files(root: Path) -> dict[str, bytes]:
    """The files an embedding actor needs: the config and the image tower (with any external weights)."""
    return {CONFIG_FILE: (root / CONFIG_FILE).read_bytes()} | folder_files(root / "visual", prefix="visual/")


def folder_files(root: Path, prefix: str = "") -> dict[str, bytes]:
    """Every file below `root` (links followed, as in a Hub cache snapshot; dot-entries skipped), by relative path."""
    return {
        prefix + path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
    }


def materialize(files: dict[str, bytes]) -> Path:
    """Shipped model files as a directory in this node's temp folder, written once per node and content."""
    digest = hashlib.blake2b(digest_size=12)
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.blake2b(files[name], digest_size=16).digest())
    target = Path(tempfile.gettempdir()) / "photoseek-ray-models" / digest.hexdigest()
    if target.is_dir():  # only ever renamed into place complete
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    for name, data in files.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_bytes(data)
    try:
        staging.rename(target)  # atomic: another actor on this node may have won the race
    except OSError:
        if not target.is_dir():
            raise
    return target


def _reason(exc: BaseException) -> str:
    """The line of a Ray error that says what went wrong on the worker (ours when it raised one)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    ours = [line for line in lines if SHARED_FS_MARKER in line and "Ray node" in line]
    if ours:
        return ours[-1].split("PhotoseekError: ")[-1]
    return lines[-1] if lines else type(exc).__name__


def _rows(batch: dict[str, np.ndarray]) -> Iterator[dict[str, Any]]:
    for i in range(len(batch["path"])):
        yield {key: value[i] for key, value in batch.items()}


def _read_here(found: FoundFile, on_skip: OnSkip) -> tuple[bytes, str, FileFacts] | Failed:
    """With `ship_bytes`: the file's bytes, content hash and metadata, read on the driver."""
    try:
        with open_image(found.path) as opened:
            data = opened.data if opened.data is not None else found.path.read_bytes()
            return data, opened.content_hash, read_file_facts(opened.head, found.path, on_skip)
    except UnreadableImageError as exc:
        return Failed(found, str(exc))
    except OSError as exc:
        return Failed(found, f"cannot read file: {exc.strerror or exc}")


def _outcome(
    found: FoundFile, row: dict[str, Any], lookup: Catalog, shipped_facts: FileFacts | None,
    hash_only: bool, read_at: float,
) -> Outcome:
    """A cluster result as the outcome a local run would have had for this file (its sidecars read
    after `read_at`)."""
    info = json.loads(row["info"]) if not row["failure"] else None
    if hash_only:
        return Hashed(found, info["phash"] if info else None)
    if info is None:
        return Failed(found, str(row["failure"]))
    facts = shipped_facts if shipped_facts is not None else _facts(info["facts"])
    content_hash = str(row["content_hash"])
    known = lookup.embedding_for_hash(content_hash)
    if known is not None:  # moved or copied: keep the stored embedding, as a local run would
        record, embedding, phash = known
        phash = phash if phash is not None else info["phash"]
        return Reused(found, copy_known(found, content_hash, record, embedding, phash, facts, read_at))
    return Embedded(found, NewImage(
        path=str(found.path), size=found.size, mtime_ns=found.mtime_ns, content_hash=content_hash,
        width=info["width"], height=info["height"], format=info["format"], taken_at=info["taken_at"],
        camera=info["camera"], embedding=np.asarray(row["embedding"], dtype=np.float32),
        phash=info["phash"], read_at=read_at, **fact_fields(facts),  # type: ignore[arg-type]
    ))


def _facts(info: dict[str, Any]) -> FileFacts:
    """FileFacts from their JSON form (`_info`)."""
    place = info.get("location")
    return FileFacts(
        text=info.get("text", ""), location=Location(**place) if place else None,
        rating=info.get("rating"), label=info.get("label"),
    )
