"""Local indexing vs indexing through Ray on this machine: images/s each, the ratio, per-image costs.

Both runs index the same folder from scratch with the same model into fresh catalogs under
`--out`. Without `--ray` the script starts a one-node cluster (`ray start --head`) with
`--num-cpus` CPUs (and `--num-gpus` GPUs) and stops it afterwards. The per-image costs
(read + hash, decode + preprocess, embed, result bytes per image) are what the README's
sizing example is computed from.

    photoseek models export ViT-B-32 --random-weights --out /tmp/vit-b-32
    PYTHONPATH=src python bench/ray_bench.py --model-path /tmp/vit-b-32 --out /tmp/ray-bench

OCR through Ray vs locally (the text-signal pass alone, on the first 24 photos; any model works):

    PYTHONPATH=src python bench/ray_bench.py --model-path /tmp/vit-b-32 --out /tmp/ray-bench-ocr --ocr 24 --ocr-only

On a GPU machine (one GPU actor, CUDA, bigger batches):

    PYTHONPATH=src python bench/ray_bench.py --model-path /tmp/vit-b-32 --out /tmp/ray-bench-gpu \
        --num-gpus 1 --batch-size 256
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from photoseek import ImageIndex
from photoseek.ingest.discover import discover
from photoseek.ingest.indexer import Prepared, prepare_file
from photoseek.ingest.reading import open_image
from photoseek.ingest.signals import SignalOptions
from photoseek.models import load_clip
from photoseek.store.catalog import Catalog, NewImage, TextSignal

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import shared_data  # noqa: E402
from measure import measured_run  # noqa: E402

DEFAULT_FOLDER = shared_data("coco-mini")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", type=Path, required=True, help="Model directory (e.g. a random ViT-B-32).")
    parser.add_argument("--out", type=Path, required=True, help="Results folder (not in the checkout).")
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help="Photos to index (default coco-mini).")
    parser.add_argument("--ray", help="An existing cluster's address; default: start a one-node cluster here.")
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--num-gpus", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sample", type=int, default=48, help="Images timed one by one for the per-image costs.")
    parser.add_argument("--catalog-rows", type=int, default=20_000, help="Synthetic rows for the catalog write rate.")
    parser.add_argument("--ocr", type=int, default=0, metavar="N", help="Also time OCR of N photos, local vs Ray.")
    parser.add_argument("--ocr-only", action="store_true", help="With --ocr: skip the embedding measurements.")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {"folder": str(args.folder), "model": str(args.model_path),
                                  "batch_size": args.batch_size, "load_before": os.getloadavg()}
    embedding = not args.ocr_only
    if embedding:
        results["costs"] = per_image_costs(args.folder, args.model_path, args.sample, args.batch_size)
        results["local"] = timed_index(args.out / "local.db", args, ray=None)
    head = None if args.ray else start_head(args.out, args.num_cpus, args.num_gpus)
    try:
        address = args.ray or head[1]
        if embedding:
            results["ray"] = timed_index(args.out / "ray.db", args, ray=address)
            results["actor"] = actor_rate(address, args.model_path, args.batch_size, args.num_gpus)
        if args.ocr:
            results["ocr"] = ocr_costs(args, address)
    finally:
        if head:
            stop_head(head[0])
    if embedding:
        results["ratio"] = results["ray"]["images_per_s"] / results["local"]["images_per_s"]
        results["catalog"] = {
            str(batch): catalog_write_rate(args.out / f"rows-{batch}.db", args.catalog_rows, batch)
            for batch in (args.batch_size, 1024)
        }
    results["load_after"] = os.getloadavg()
    (args.out / "ray_bench.json").write_text(json.dumps(results, indent=2))
    report(results)


def ocr_costs(args: argparse.Namespace, address: str) -> dict[str, dict[str, float]]:
    """The OCR pass alone over the first `--ocr` photos of an already indexed folder: here, then on Ray
    (connecting, starting the OCR actors and loading their engines included: the fixed cost per run)."""
    folder = args.out / "ocr-photos"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for found in sorted(discover([args.folder]), key=lambda f: str(f.path))[: args.ocr]:
        (folder / found.path.name).symlink_to(found.path)
    timings = {}
    for where, ray in (("local", None), ("ray", address)):
        db = args.out / f"ocr-{where}.db"
        for stale in db.parent.glob(db.name + "*"):
            stale.unlink()
        with ImageIndex(db, model_path=args.model_path) as index:
            index.index([folder], batch_size=args.batch_size)  # the embedding pass, untimed
            started = time.perf_counter()
            report = index.index([folder], ray=ray, signals=SignalOptions(ocr=True))
            seconds = time.perf_counter() - started
        made = report.signals.get("ocr", 0)
        timings[where] = {"images": made, "seconds": seconds, "ms_per_image": 1e3 * seconds / max(made, 1)}
    return timings


def per_image_costs(folder: Path, model_path: Path, sample: int, batch_size: int) -> dict[str, float]:
    """Single-thread seconds per image for each stage, on the first `sample` files."""
    model = load_clip(path=model_path)
    files = sorted(discover([folder]), key=lambda f: str(f.path))[:sample]
    started = time.perf_counter()
    reads = [_read(found.path) for found in files]
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    prepared = [prepare_file(found, model, shipped=read) for found, read in zip(files, reads)]
    decode_s = time.perf_counter() - started
    pixels = np.stack([p.pixels for p in prepared if isinstance(p, Prepared)])
    model.encode_pixels(pixels[:2])  # load the session outside the timing
    started = time.perf_counter()
    for i in range(0, len(pixels), batch_size):
        model.encode_pixels(pixels[i : i + batch_size])
    embed_s = time.perf_counter() - started
    return {
        "images": len(files),
        "read_hash_ms": 1e3 * read_s / len(files),
        "decode_preprocess_ms": 1e3 * decode_s / len(files),
        "embed_ms": 1e3 * embed_s / len(pixels),
        "mean_file_kb": sum(f.size for f in files) / len(files) / 1024,
        "result_bytes": model.dim * 4 + 300,  # embedding + path, hash and the facts as JSON (about)
    }


def _read(path: Path) -> tuple[bytes, str]:
    with open_image(path) as opened:
        return opened.data if opened.data is not None else path.read_bytes(), opened.content_hash


def timed_index(db: Path, args: argparse.Namespace, ray: str | None) -> dict[str, float]:
    for stale in db.parent.glob(db.name + "*"):
        stale.unlink()
    with ImageIndex(db, model_path=args.model_path) as index:
        started = time.perf_counter()
        report = index.index([args.folder], batch_size=args.batch_size, ray=ray)
        seconds = time.perf_counter() - started
    return {"embedded": report.embedded, "seconds": seconds, "images_per_s": report.embedded / seconds,
            "failed": len(report.failures)}


def actor_rate(address: str, model_path: Path, batch_size: int, num_gpus: int) -> dict[str, float]:
    """One embedding actor's images/s on preprocessed pixels (CUDA when it holds a GPU): the sizing unit."""
    import ray

    from photoseek.distributed.pipeline import Embedder, model_files

    model = load_clip(path=model_path)
    ray.init(address=address, logging_level="WARNING", log_to_driver=False,
             runtime_env={"py_modules": [str(Path(__file__).resolve().parents[1] / "src" / "photoseek")]})
    try:
        actor = ray.remote(num_gpus=num_gpus, num_cpus=0 if num_gpus else 1)(Embedder).remote(
            [ray.put(model_files(model_path))], model.model_id, "cuda" if num_gpus else "cpu"
        )
        size = model.image_size
        columns = ("path", "content_hash", "info", "failure", "skipped")
        batch = {key: np.array([""] * batch_size, dtype=object) for key in columns}
        batch["pixels"] = np.random.default_rng(0).standard_normal((batch_size, 3, size, size)).astype(np.float32)
        ray.get(actor.__call__.remote(batch))  # load the model outside the timing
        rounds = 4
        started = time.perf_counter()
        ray.get([actor.__call__.remote(batch) for _ in range(rounds)])
        seconds = time.perf_counter() - started
    finally:
        ray.shutdown()
    return {"images_per_s": rounds * batch_size / seconds, "gpu": bool(num_gpus)}


def catalog_write_rate(db: Path, rows: int, batch: int, dim: int = 512) -> float:
    """Rows/s that `Catalog.write_batch` commits (the driver's ceiling), with synthetic images."""
    for stale in db.parent.glob(db.name + "*"):
        stale.unlink()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((batch, dim)).astype(np.float32)
    with Catalog(db) as catalog:
        catalog.bind_model("bench", dim)
        started = time.perf_counter()
        for start in range(0, rows, batch):
            catalog.write_batch([
                NewImage(path=f"/photos/{start + i:09d}.jpg", size=100_000, mtime_ns=1,
                         content_hash=f"{start + i:032x}", width=640, height=480, format="jpeg", taken_at=None,
                         camera=None, embedding=vectors[i],
                         texts=(TextSignal("metadata", "exif", "a description"),))
                for i in range(batch)
            ])
        return rows / (time.perf_counter() - started)


def start_head(out: Path, num_cpus: int, num_gpus: int) -> tuple[subprocess.Popen, str]:
    temp = Path(tempfile.mkdtemp(prefix="photoseek-raybench-"))
    port = _free_port()
    log = out / "ray-head.log"
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    with log.open("wb") as sink:
        head = subprocess.Popen(
            [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--disable-usage-stats",
             "--num-cpus", str(num_cpus), "--num-gpus", str(num_gpus), "--port", str(port),
             "--temp-dir", str(temp), "--dashboard-port", str(_free_port()),
             "--ray-client-server-port", str(_free_port())],
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True, env=env,
        )
    deadline = time.monotonic() + 120
    while "Ray runtime started" not in log.read_text(errors="replace"):
        if head.poll() is not None or time.monotonic() > deadline:
            stop_head(head)
            sys.exit(f"ray start failed; see {log}")
        time.sleep(0.2)
    head.temp = temp  # type: ignore[attr-defined]
    return head, f"127.0.0.1:{port}"


def stop_head(head: subprocess.Popen) -> None:
    """Ends the processes of the node this script started, and only those."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(head.pid, sig)
        except ProcessLookupError:
            break
        time.sleep(3)
    shutil.rmtree(getattr(head, "temp", ""), ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def report(results: dict) -> None:
    print(f"load average before {results['load_before']}, after {results['load_after']}")
    for where, timing in results.get("ocr", {}).items():
        print(f"OCR {where}: {timing['images']} images in {timing['seconds']:.1f} s = "
              f"{timing['ms_per_image']:.0f} ms per image")
    if "local" not in results:
        return
    costs, local, remote, actor = results["costs"], results["local"], results["ray"], results["actor"]
    print(f"local: {local['embedded']} images in {local['seconds']:.1f} s = {local['images_per_s']:.1f} images/s")
    print(f"ray:   {remote['embedded']} images in {remote['seconds']:.1f} s = {remote['images_per_s']:.1f} images/s")
    print(f"ratio ray/local: {results['ratio']:.2f} (goal >= 0.8)")
    print(f"one embedding actor ({'GPU' if actor['gpu'] else '1 CPU'}): {actor['images_per_s']:.1f} images/s")
    print(f"per image, one thread: read+hash {costs['read_hash_ms']:.2f} ms, decode+preprocess "
          f"{costs['decode_preprocess_ms']:.1f} ms, embed {costs['embed_ms']:.1f} ms "
          f"({costs['mean_file_kb']:.0f} KB files); result to the driver ~{costs['result_bytes']} B")
    for batch, rate in results["catalog"].items():
        print(f"catalog writes, batches of {batch}: {rate:,.0f} rows/s")


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
