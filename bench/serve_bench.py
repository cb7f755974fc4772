"""Load test for `photoseek serve`: one client against 20 concurrent ones, in the same run.

Builds (once, cached in the benchmarks' per-user folder, outside the checkout; see benchpaths.py)
a full-size random-weight ViT-B-32 model and a catalog of 100k random unit vectors written
straight into SQLite, plus a few real photos for thumbnails; starts the real server in a
subprocess; then measures, each for --seconds of closed-loop load against `GET /api/search?k=24`:

1. one client (requests/s, p50);
2. --rounds times: --clients concurrent clients (requests/s, p50, p99, errors, 503s; clients
   that get 503 wait as its Retry-After says), then one client again, so each many-client phase
   is compared with the one-client phases on either side of it (the load of a shared machine drifts);
3. many clients while a prober fetches a not-yet-cached thumbnail and an image's details every
   100 ms (their latency while searches queue; making thumbnails costs CPU, so the throughput
   ratio comes from step 2).

Each phase also records the server process's CPU time per request, which a busy shared machine
disturbs far less than requests/s.

Queries are distinct COCO captions when the shared data is there, never repeated, so no cache
can help. `--model DIR` serves another model directory (repeatable: each gets its own catalog,
server and the four phases, one after the other); `--before-after` serves the same weights
exported for a fixed 77-token text input first, then with the dynamic sequence axis, so the
comparison shares one run. `--photos DIR` serves a catalog of real photos instead (DIR indexed
once with the model, cached beside the other catalogs; the probed pictures are its first 64).
`--src DIR` serves with another checkout's `src` (repeatable, in order; `--src src` is this one), so a
baseline commit and the working tree are measured in one run on the same machine load. Prints JSON
and writes it to --out (default: serve_bench.json in that per-user folder). Records the load average
and the wall time and CPU seconds of the whole run (bench/measure.py).

    PYTHONPATH=src python bench/serve_bench.py [--images 100000 | --photos DIR] [--clients 20]
        [--seconds 20] [--model DIR ... | --before-after] [--src DIR ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import REPO, random_model_dir, results_dir, shared_data, write_results  # noqa: E402
from measure import cpu_seconds, measured_run  # noqa: E402

CAPTIONS = shared_data("coco-captions", "captions_val2017.json")
PHOTOS = 64
"""Real photos in the catalog, for thumbnails made while searches queue."""
PROBE_EVERY_S = 0.1


def write_photos(folder: Path) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(PHOTOS):
        path = folder / f"photo-{i:03d}.jpg"
        if not path.exists():
            base = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            Image.fromarray(base).resize((2048, 1536), Image.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def build_catalog(db: Path, model: Path, count: int, photos: list[Path], clustered: bool = False) -> None:
    """`count` random unit vectors with plausible metadata (one transaction per 10k), plus `photos`
    as real files under an indexed folder. Uniform directions are a faiss graph's worst case;
    `clustered` draws them around 200 centres instead, closer to how photo embeddings lie
    (as bench/ann_recall_bench.py does)."""
    from photoseek.models import load_clip
    from photoseek.store.catalog import Catalog, NewImage

    if db.exists():
        with Catalog(db) as catalog:
            if catalog.count() == count + len(photos):
                return
        for path in db.parent.glob(db.name + "*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    clip = load_clip(path=model)
    rng = np.random.default_rng(0)
    centres = np.random.default_rng(99).standard_normal((200, clip.dim))

    def unit(n: int) -> np.ndarray:
        vectors = rng.standard_normal((n, clip.dim))
        if clustered:
            vectors = centres[rng.integers(0, len(centres), n)] + 0.5 * vectors
        vectors = vectors.astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    with Catalog(db) as catalog:
        catalog.bind_model(clip.model_id, clip.dim, source=str(model.resolve()))
        for start in range(0, count, 10_000):
            catalog.write_batch([
                NewImage(f"/bench/photos/{start + i:06d}.jpg", 1000, 0, f"{start + i:032x}", 640, 480, "jpeg",
                         None, None, vector)
                for i, vector in enumerate(unit(min(10_000, count - start)))
            ])
        catalog.add_roots([photos[0].parent])
        catalog.write_batch([
            NewImage(str(path), path.stat().st_size, path.stat().st_mtime_ns, f"photo{i:027x}", 2048, 1536, "jpeg",
                     None, None, vector)
            for i, (path, vector) in enumerate(zip(photos, unit(len(photos))))
        ])


def index_photos(db: Path, model: Path, folder: Path) -> int:
    """A catalog of the real photos under `folder`, embedded with `model` (once; reruns add nothing)."""
    from photoseek.api import ImageIndex

    with ImageIndex(db, model_path=model) as index:
        index.index([folder])
        return index.count()


def queries(n: int) -> list[str]:
    if CAPTIONS.exists():
        captions = [a["caption"].strip() for a in json.loads(CAPTIONS.read_text())["annotations"]]
        random.Random(0).shuffle(captions)
        return list(dict.fromkeys(captions))[:n]
    words = "dog cat beach sunset mountain car red blue people table cake snow tree city night".split()
    rng = random.Random(0)
    return [" ".join(rng.sample(words, 4)) + f" {i}" for i in range(n)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_ready(base: str, server: subprocess.Popen) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(900):
            if server.poll() is not None:
                raise RuntimeError("the server exited; run it by hand to see why")
            try:
                if (await client.get(f"{base}/api/status")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the server did not start in 180 s")


class Phase:
    """Closed-loop search clients for a while, and optionally a picture prober beside them."""

    def __init__(self, base: str, texts: list[str]) -> None:
        self.base = base
        self.texts = iter(texts)
        """Each query once; a phase that runs out of them is an error (give it more)."""
        self.latencies: list[float] = []
        self.errors = 0
        self.busy = 0
        self.thumbs: list[float] = []
        self.details: list[float] = []

    async def search(self, client: httpx.AsyncClient) -> None:
        started = time.perf_counter()
        try:
            response = await client.get(f"{self.base}/api/search", params={"q": next(self.texts), "k": 24})
        except httpx.HTTPError:
            self.errors += 1
            return
        if response.status_code == 503:  # queue full: wait as told, as a well-behaved client does
            self.busy += 1
            await asyncio.sleep(float(response.headers.get("retry-after", 1)))
        elif response.status_code != 200 or len(response.json()["results"]) != 24:
            self.errors += 1
        else:
            self.latencies.append(time.perf_counter() - started)

    async def probe(self, client: httpx.AsyncClient, photo_ids: list[int], deadline: float) -> None:
        for image_id in photo_ids:
            if time.perf_counter() >= deadline:
                return
            pictures = ((f"/thumbs/{image_id}?size=256", self.thumbs), (f"/api/images/{image_id}", self.details))
            for path, into in pictures:
                started = time.perf_counter()
                response = await client.get(f"{self.base}{path}")
                if response.status_code == 200:
                    into.append(time.perf_counter() - started)
                else:
                    self.errors += 1
            await asyncio.sleep(PROBE_EVERY_S)

    async def run(self, clients: int, seconds: float, photo_ids: list[int] = ()) -> float:
        deadline = time.perf_counter() + seconds

        async def loop(client: httpx.AsyncClient) -> None:
            while time.perf_counter() < deadline:
                await self.search(client)

        limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
        started = time.perf_counter()
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            tasks = [loop(client) for _ in range(clients)]
            if photo_ids:
                tasks.append(self.probe(client, list(photo_ids), deadline))
            await asyncio.gather(*tasks)
        return time.perf_counter() - started


def ms(values: list[float], q: float) -> float | None:
    return round(1000 * float(np.percentile(np.asarray(values), q)), 1) if values else None


def summary(phase: Phase, wall: float, cpu_s: float) -> dict[str, object]:
    return {
        "requests": len(phase.latencies), "errors": phase.errors, "busy_503": phase.busy,
        "rps": round(len(phase.latencies) / wall, 2),
        "p50_ms": ms(phase.latencies, 50), "p99_ms": ms(phase.latencies, 99),
        "server_cpu_ms_per_request": round(1000 * cpu_s / len(phase.latencies), 1) if phase.latencies else None,
    }


class Texts:
    """Hands out the queries, each once, a phase's worth at a time."""

    def __init__(self, texts: list[str]) -> None:
        self.texts, self.used = texts, 0

    def take(self, n: int) -> list[str]:
        if self.used + n > len(self.texts):
            raise RuntimeError("out of distinct queries: use shorter phases or fewer rounds")
        self.used += n
        return self.texts[self.used - n : self.used]


def measure(
    model: Path, src: Path, args: argparse.Namespace, texts: list[str], photos: list[Path]
) -> dict[str, object]:
    """Serve a catalog bound to `model` with the code in `src` and run the phases against it, each
    with its own texts: one client, then `--rounds` times (many clients, one client), then many
    clients with the prober."""
    if args.photos:
        db = results_dir() / f"serve-photos-{args.photos.resolve().name}-{model.name}.db"
        images = index_photos(db, model, args.photos)
        ids = list(range(1, min(PHOTOS, images) + 1))
    else:
        kind = "-clustered" if args.clustered else ""
        db = results_dir() / f"serve-{args.images}{kind}-{model.name}.db"
        build_catalog(db, model, args.images, photos, clustered=args.clustered)
        images = args.images + PHOTOS
        ids = list(range(args.images + 1, args.images + PHOTOS + 1))  # the photos, written last
    shutil.rmtree(db.parent / (db.name + ".thumbs"), ignore_errors=True)  # thumbnails are made during the load
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(src.resolve())}
    env.pop("PHOTOSEEK_TOKEN", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "photoseek", "serve", "--db", str(db), "--port", str(port),
         "--max-queue", str(args.max_queue)], env=env,
    )
    pool = Texts(texts)
    per_phase = len(texts) // (2 * args.rounds + 3)

    def phase(clients: int, photo_ids: list[int] = ()) -> tuple[Phase, dict[str, object]]:
        run = Phase(base, pool.take(per_phase))
        cpu_before = cpu_seconds(server.pid)
        queue_before = httpx.get(f"{base}/api/status").json()["search_queue"]
        wall = asyncio.run(run.run(clients, args.seconds, photo_ids))
        queue_after = httpx.get(f"{base}/api/status").json()["search_queue"]
        batches = max(1, queue_after["batches"] - queue_before["batches"])
        return run, {**summary(run, wall, cpu_seconds(server.pid) - cpu_before),
                     "mean_batch_size": round((queue_after["searches"] - queue_before["searches"]) / batches, 1)}

    load_before = os.getloadavg()
    try:
        asyncio.run(wait_ready(base, server))
        asyncio.run(Phase(base, pool.take(200)).run(1, 2))  # warm-up
        singles, manys = [phase(1)[1]], []
        for _ in range(args.rounds):
            manys.append(phase(args.clients)[1])
            singles.append(phase(1)[1])
        probed, probed_summary = phase(args.clients, ids)
    finally:
        server.terminate()
        server.wait(timeout=30)
    # Each many-client phase against the mean of the one-client phases on either side of it.
    ratios = [m["rps"] / ((before["rps"] + after["rps"]) / 2) for m, before, after in zip(manys, singles, singles[1:])]
    cpu_one = float(np.median([s["server_cpu_ms_per_request"] for s in singles]))
    cpu_many = float(np.median([m["server_cpu_ms_per_request"] for m in manys]))
    return {
        "model": str(model), "src": str(src), "images": images,
        "text_dynamic_length": json.loads((model / "config.json").read_text()).get("text_dynamic_length", False),
        "one_client": singles, "concurrent": manys, "concurrent_with_prober": probed_summary,
        "mean_batch_size": float(np.median([m["mean_batch_size"] for m in manys])),
        "throughput_ratios": [round(r, 2) for r in ratios],
        "throughput_ratio": round(float(np.median(ratios)), 2),
        "p99_over_p50": round(float(np.median([m["p99_ms"] / m["p50_ms"] for m in manys if m["p50_ms"]])), 2),
        "server_cpu_ms_per_request": {"one_client": cpu_one, "concurrent": cpu_many,
                                      "ratio": round(cpu_one / cpu_many, 2)},
        "thumbnail_ms_while_loaded": {"n": len(probed.thumbs), "p50": ms(probed.thumbs, 50),
                                      "max": ms(probed.thumbs, 100)},
        "details_ms_while_loaded": {"n": len(probed.details), "p50": ms(probed.details, 50),
                                    "max": ms(probed.details, 100)},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--clustered", action="store_true",
                        help="With --images: vectors around 200 centres (photo-like) instead of uniform directions.")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20, help="Length of each phase.")
    parser.add_argument("--max-queue", type=int, default=64, help="Passed to photoseek serve.")
    parser.add_argument("--rounds", type=int, default=1,
                        help="Many-client phases, each followed by a one-client phase (ratios against the "
                             "mean of the one-client phases on either side; the median is reported).")
    parser.add_argument("--model", type=Path, action="append",
                        help="Model directory to serve (repeatable; default: random-weight ViT-B-32, our exporter).")
    parser.add_argument("--before-after", action="store_true",
                        help="Serve the random ViT-B-32 exported for 77 text tokens, then with a dynamic text length.")
    parser.add_argument("--photos", type=Path,
                        help="Serve a catalog of the real photos in this folder (indexed once) instead of --images.")
    parser.add_argument("--src", type=Path, action="append",
                        help="Serve with this checkout's src (repeatable; default: this checkout's).")
    parser.add_argument("--out", type=Path, help="JSON results file (default: serve_bench.json in a per-user folder).")
    args = parser.parse_args()
    if args.before_after and args.model:
        parser.error("--before-after serves its own two models; leave out --model")
    if args.before_after:
        models = [random_model_dir(fixed_text_length=True), random_model_dir()]
    else:
        models = args.model or [random_model_dir()]
    photos = write_photos(results_dir() / "serve-photos")
    sources = args.src or [REPO / "src"]
    texts = queries(100_000)
    share = len(texts) // (len(models) * len(sources))
    cells = [(model, src) for model in models for src in sources]
    runs = [measure(model, src, args, texts[i * share : (i + 1) * share], photos)
            for i, (model, src) in enumerate(cells)]
    result = {
        "photos": str(args.photos) if args.photos else None, "clients": args.clients, "seconds_per_phase": args.seconds,
        "cpus": len(os.sched_getaffinity(0)), "runs": runs,
    }
    write_results(result, args.out, "serve_bench.json")


if __name__ == "__main__":
    with measured_run():
        main()
