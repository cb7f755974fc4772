"""Watch-mode benchmark (issue 13). Run by hand: PYTHONPATH=src python bench/watch_bench.py

Copies N fresh pictures into a watched folder and measures, in the same run:
  (a) baseline: a plain incremental `index` of the same N files copied into an unwatched folder;
  (b) native events: time from the start of the copy until all N are searchable, and batches used;
  (c) polling (--poll 1): the same;
  (d) idle CPU of a watcher over a library of N files for 10 s, native versus polling.
(b) and (c) include the debounce (quiet) wait, the price of batching. Uses a full-size ViT-B-32
with random weights (exported once into --out) unless --model-path is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from photoseek import ImageIndex
from photoseek.watch import WatchBatch, WatchSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("/tmp/photoseek-bench/watch"))
    parser.add_argument("--model-path", type=Path)
    args = parser.parse_args()

    model = args.model_path or _export(args.out / "vit-b-32-random")
    shutil.rmtree(args.out / "run", ignore_errors=True)
    card = _pictures(args.out / "run" / "card", args.files)
    print(f"{args.files} pictures of 640x480; load average {os.getloadavg()[0]:.1f} at start")

    baseline = _plain_index(args.out / "run" / "plain", card, model)
    print(f"(a) copy + plain index: {baseline:.1f} s")
    settings = WatchSettings()
    for label, poll in (("(b) native events", None), ("(c) polling every 1 s", 1.0)):
        seconds, batches = _watched(args.out / "run" / label[:3].strip("()"), card, model, replace(settings, poll=poll))
        print(f"{label}: all searchable {seconds:.1f} s after the copy began, {batches} batch(es), "
              f"{seconds / baseline:.2f}x the plain index (debounce {settings.quiet:g} s included)")
    for label, poll in (("native", None), ("polling every 1 s", 1.0)):
        share = _idle_cpu(args.out / "run" / f"idle-{poll}", card, model, replace(settings, poll=poll))
        print(f"(d) idle CPU over {args.files} files, {label}: {100 * share:.2f} % of one core")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


def _export(folder: Path) -> Path:
    if not (folder / "config.json").exists():
        from photoseek.models.export import export_open_clip

        export_open_clip("ViT-B-32", folder, random_weights=True)
    return folder


def _pictures(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"IMG_{i:05d}.jpg", quality=85)
    return folder


def _plain_index(root: Path, card: Path, model: Path) -> float:
    root.mkdir(parents=True)
    with ImageIndex(root / "c.db", model_path=model) as index:
        index.index([root])  # model loaded and catalog made, as a watcher has them
        started = time.perf_counter()
        shutil.copytree(card, root / "import")
        index.index([root])
        return time.perf_counter() - started


def _watched(base: Path, card: Path, model: Path, settings: WatchSettings) -> tuple[float, int]:
    root = base / "lib"
    root.mkdir(parents=True)
    batches: list[WatchBatch] = []
    with _running(base / "c.db", root, model, settings, batches):
        started = time.perf_counter()
        shutil.copytree(card, root / "import")
        while sum(b.report.embedded for b in batches) < len(list(card.iterdir())):
            time.sleep(0.05)
        seconds = time.perf_counter() - started
    return seconds, len([b for b in batches if b.kind == "changes"])


def _idle_cpu(base: Path, card: Path, model: Path, settings: WatchSettings) -> float:
    root = base / "lib"
    shutil.copytree(card, root)
    batches: list[WatchBatch] = []
    with _running(base / "c.db", root, model, settings, batches):
        time.sleep(2)
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(10)
        return (time.process_time() - cpu) / (time.perf_counter() - wall)


class _running:
    """A watcher on its own thread, from its catch-up until the block ends."""

    def __init__(self, db: Path, root: Path, model: Path, settings: WatchSettings, batches: list[WatchBatch]):
        self.args = db, root, model, settings, batches
        self.watcher = None

    def __enter__(self) -> None:
        db, root, model, settings, batches = self.args
        ready = threading.Event()

        def run() -> None:
            with ImageIndex(db, model_path=model) as index:
                self.watcher = index.watcher([root], settings=settings, on_batch=batches.append)
                ready.set()
                self.watcher.run()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait()
        while not batches:
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self.watcher.stop()
        self.thread.join()


if __name__ == "__main__":
    from measure import measured_run  # bench/ is on sys.path when run as a script

    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
