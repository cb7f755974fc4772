"""The text-signal pass on a Ray cluster: decode once per image in a CPU task, then one actor pool
per maker (OCR, captioner, detector), each actor building its maker once from the run's
`SignalOptions` with the model files shipped through the object store.

Decoded pixels travel only between the cluster's stages; the driver gets back a key, a failure
reason and one text per signal, and commits them as a local pass would. API captioners
(`openai:`) stay on the driver: their endpoint and key live there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image

from photoseek.distributed.devices import ActorDevice
from photoseek.distributed.pipeline import CHUNK_BYTES, CHUNK_FILES, ensure_roots, folder_files, materialize, stream
from photoseek.errors import UnreadableImageError
from photoseek.ingest.enrich import Described, SignalJob, TextMaker, signal_bytes, signal_image
from photoseek.ingest.signals import SignalOptions
from photoseek.models.runtime import Runtime
from photoseek.text.vlm import ApiCaptioner

DECODE_BATCH = 8
"""Images per decode task: decoded at 1024 px, a batch is ~30 MB of pixels in the object store."""
DECODE_MEMORY = 768 * 2**20
CPU_ACTORS_PER_CORES = 4
"""On CPU-only clusters, at most one actor per pool per this many cluster CPUs (each uses several threads)."""


class SignalPipeline:
    """A `SignalSource` for `ingest.enrich.enrich` on the cluster `ray` is connected to."""

    def __init__(
        self, ray: ModuleType, options: SignalOptions, roots: Sequence[Path], *, ship_bytes: bool,
        placement: ActorDevice,
    ) -> None:
        self.ray = ray
        self.placement = placement
        self.options = options
        self.roots = [str(root) for root in roots]
        self.ship_bytes = ship_bytes
        self._shipped: dict[str, Any] = {}

    def runs(self, maker: TextMaker) -> bool:
        return not isinstance(maker, ApiCaptioner)

    def __call__(self, jobs: list[SignalJob]) -> Iterator[Described]:
        rows: list[dict[str, Any]] = []
        held = 0
        for key, job in enumerate(jobs):
            data = b""
            if self.ship_bytes:
                try:
                    data = signal_bytes(Path(job.path), job.content_hash)
                except UnreadableImageError as exc:
                    yield Described(job, {}, str(exc))
                    continue
            rows.append({"key": key, "path": job.path, "content_hash": job.content_hash, "data": data,
                         "sources": ",".join(m.source for m in job.makers)})
            held += len(data)
            if len(rows) >= CHUNK_FILES or held >= CHUNK_BYTES:  # bounds what the driver holds at once
                yield from self._run(rows, jobs)
                rows, held = [], 0
        if rows:
            yield from self._run(rows, jobs)

    def _run(self, rows: list[dict[str, Any]], jobs: list[SignalJob]) -> Iterator[Described]:
        makers = {m.source: m for row in rows for m in jobs[row["key"]].makers}
        for batch in stream(self.ray, self._dataset(rows, makers)):
            for i, key in enumerate(batch["key"]):
                job = jobs[int(key)]
                failure = str(batch["failure"][i])
                texts = {} if failure else {m.source: str(batch[f"text_{m.source}"][i]) for m in job.makers}
                yield Described(job, texts, failure)

    def _dataset(self, rows: list[dict[str, Any]], makers: dict[str, TextMaker]) -> Any:
        ray = self.ray
        blocks = max(1, min(len(rows) // DECODE_BATCH, 4096))
        dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            decode_batch, batch_size=DECODE_BATCH, batch_format="numpy", num_cpus=1, memory=DECODE_MEMORY,
            fn_kwargs={"roots": [] if self.ship_bytes else self.roots},
        )
        gpus, cpus = self.placement.gpus, int(ray.cluster_resources().get("CPU", 1))
        on_gpu = [source for source in makers if source != "ocr"] if gpus else []
        for source, maker in makers.items():
            dataset = dataset.map_batches(
                SignalActor, batch_size=getattr(maker, "batch_size", DECODE_BATCH), batch_format="numpy",
                fn_constructor_kwargs={"options": self.options, "source": source, "files": [self._files(maker)],
                                       "device": self.placement.for_pool(source in on_gpu)},
                **actor_resources(source in on_gpu, gpus, cpus, len(on_gpu), len(makers)),
            )
        return dataset.drop_columns(["image"])

    def _files(self, maker: TextMaker) -> Any:
        """The maker's model folder in the object store (put once per run), or None (OCR ships in its package)."""
        if not hasattr(maker, "local_folder"):
            return None
        if maker.source not in self._shipped:
            self._shipped[maker.source] = self.ray.put(folder_files(maker.local_folder()))
        return self._shipped[maker.source]


def actor_resources(on_gpu: bool, gpus: int, cpus: int, gpu_pools: int, pools: int) -> dict[str, Any]:
    """One pool's actors: with GPUs, a share of every GPU per batched model (they take turns on them);
    on CPUs, up to one actor per `CPU_ACTORS_PER_CORES` CPUs, asking for less than a CPU when the
    pools would not all fit beside a decode task (a 2-CPU node still runs every stage)."""
    from ray.data import ActorPoolStrategy

    if on_gpu:
        return {"compute": ActorPoolStrategy(size=gpus), "num_gpus": 1 / gpu_pools, "num_cpus": 0}
    compute = ActorPoolStrategy(min_size=1, max_size=max(1, cpus // CPU_ACTORS_PER_CORES))
    return {"compute": compute, "num_gpus": 0, "num_cpus": min(1.0, max(1, cpus - 1) / pools)}


def decode_batch(batch: dict[str, np.ndarray], *, roots: list[str]) -> dict[str, Any]:
    """A decode task: each file read (unless shipped), checked against its content hash and decoded
    once, as the local pass does; the pixels go on to the actors, a failure's reason to the driver."""
    ensure_roots(roots)
    images: list[np.ndarray] = []
    failures: list[str] = []
    for path, content_hash, data in zip(batch["path"], batch["content_hash"], batch["data"]):
        try:
            image = signal_image(Path(path), str(content_hash), bytes(data) if len(data) else None)
            images.append(np.asarray(image.convert("RGB")))
            failures.append("")
        except UnreadableImageError as exc:
            images.append(np.zeros((1, 1, 3), dtype=np.uint8))
            failures.append(str(exc))
    image_column = np.empty(len(images), dtype=object)
    image_column[:] = images
    return {"key": batch["key"], "sources": batch["sources"], "failure": np.array(failures, dtype=object),
            "image": image_column}


class SignalActor:
    """One maker, built once per actor from the run's options (its model files materialised on this
    node), on `device` (`devices.ActorDevice`)."""

    def __init__(self, options: SignalOptions, source: str, files: list[Any], device: str) -> None:
        import ray

        folder = materialize(ray.get(files[0])) if files[0] is not None else None
        self.source = source
        self.maker = options.maker(source, folder, runtime=Runtime(device))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        wanted = [i for i, (failure, sources) in enumerate(zip(batch["failure"], batch["sources"]))
                  if not failure and self.source in str(sources).split(",")]
        texts = np.full(len(batch["key"]), "", dtype=object)
        if wanted:
            images = [Image.fromarray(np.asarray(batch["image"][i], dtype=np.uint8), "RGB") for i in wanted]
            texts[wanted] = self.maker.describe(images)
        return {**batch, f"text_{self.source}": texts}
