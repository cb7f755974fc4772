"""Load test for `imgsearch serve`: 20 concurrent clients against /api/search.

Builds (once, cached in a per-user folder outside the checkout) a full-size random-weight ViT-B-32 model and a
catalog of 100k random unit vectors written straight into SQLite, starts the real server
in a subprocess, measures single-request latency, then runs the concurrent load for 30 s
and reports throughput, p50/p99 latency and errors. Queries are distinct COCO captions
when the shared data is there (no query is repeated, so no cache can help).

    PYTHONPATH=src python bench/serve_bench.py [--images 100000] [--clients 20] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import REPO, random_model_dir, results_dir, shared_data, write_results  # noqa: E402

CAPTIONS = shared_data("coco-captions", "captions_val2017.json")


def build_catalog(db: Path, model: Path, count: int) -> None:
    """`count` random unit vectors with plausible metadata, in batches of one transaction each."""
    from imgsearch.models import load_clip
    from imgsearch.store.catalog import Catalog, NewImage

    if db.exists():
        with Catalog(db) as catalog:
            if catalog.count() == count:
                return
        for path in db.parent.glob(db.name + "*"):
            path.unlink()
    clip = load_clip(path=model)
    rng = np.random.default_rng(0)
    with Catalog(db) as catalog:
        catalog.bind_model(clip.model_id, clip.dim, source=str(model.resolve()))
        for start in range(0, count, 10_000):
            vectors = rng.standard_normal((min(10_000, count - start), clip.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            catalog.write_batch([
                NewImage(f"/bench/photos/{start + i:06d}.jpg", 1000, 0, f"{start + i:032x}", 640, 480, "jpeg",
                         None, None, vector)
                for i, vector in enumerate(vectors)
            ])


def queries(n: int) -> list[str]:
    if CAPTIONS.exists():
        captions = [a["caption"].strip() for a in json.loads(CAPTIONS.read_text())["annotations"]]
        random.Random(0).shuffle(captions)
        return captions[:n]
    words = "dog cat beach sunset mountain car red blue people table cake snow tree city night".split()
    rng = random.Random(0)
    return [" ".join(rng.sample(words, 4)) + f" {i}" for i in range(n)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_ready(base: str, server: subprocess.Popen) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if server.poll() is not None:
                raise RuntimeError("the server exited; run it by hand to see why")
            try:
                if (await client.get(f"{base}/api/status")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the server did not start in 120 s")


async def one(client: httpx.AsyncClient, base: str, q: str) -> tuple[float, bool]:
    started = time.perf_counter()
    try:
        response = await client.get(f"{base}/api/search", params={"q": q, "k": 24})
        ok = response.status_code == 200 and len(response.json()["results"]) == 24
    except httpx.HTTPError:
        ok = False
    return time.perf_counter() - started, ok


async def single_latency(base: str, texts: list[str]) -> list[float]:
    async with httpx.AsyncClient(timeout=60) as client:
        return [(await one(client, base, q))[0] for q in texts]


async def load(base: str, texts: list[str], clients: int, seconds: float) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    pool = iter(texts)
    deadline = time.perf_counter() + seconds

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            elapsed, ok = await one(client, base, next(pool))
            latencies.append(elapsed)
            errors += not ok

    started = time.perf_counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
    return latencies, errors, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--out", type=Path, help="JSON results file (default: serve_bench.json in a per-user folder).")
    args = parser.parse_args()
    model = random_model_dir()
    db = results_dir() / f"serve-{args.images}.db"
    build_catalog(db, model, args.images)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("IMGSEARCH_TOKEN", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "imgsearch", "serve", "--db", str(db), "--port", str(port)], env=env,
    )
    texts = queries(50_000)
    try:
        asyncio.run(wait_ready(base, server))
        asyncio.run(single_latency(base, texts[:5]))  # warm-up: page in the vector cache
        single = asyncio.run(single_latency(base, texts[5:45]))
        latencies, errors, wall = asyncio.run(load(base, texts[45:], args.clients, args.seconds))
        single_after = asyncio.run(single_latency(base, texts[-40:]))
    finally:
        server.terminate()
        server.wait(timeout=30)
    single_ms = 1000 * statistics.median(single + single_after)
    result = {
        "images": args.images, "clients": args.clients, "seconds": round(wall, 1),
        "requests": len(latencies), "errors": errors,
        "throughput_rps": round(len(latencies) / wall, 1),
        "single_ms_p50": round(single_ms, 1),
        "single_rps": round(1000 / single_ms, 1),
        "load_ms_p50": round(1000 * percentile(latencies, 50), 1),
        "load_ms_p99": round(1000 * percentile(latencies, 99), 1),
        "p99_over_single": round(1000 * percentile(latencies, 99) / single_ms, 2),
        "cpus": os.cpu_count(),
    }
    write_results(result, args.out, "serve_bench.json")


if __name__ == "__main__":
    main()
