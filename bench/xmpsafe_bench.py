"""What export-xmp's journal costs per sidecar: create, no-op re-run, merge into tool-written sidecars
and --remove, with the export code before this branch and now, in the same run, on the same disk.

    python bench/xmpsafe_bench.py [--sidecars 500] [--rounds 2] [--folder DIR] [--out FILE]

The writes fsync each file and its folder, so the figures are the disk's: give --folder on the disk
photos live on (default: the system temp folder). Prints one JSON object (load average and CPU
seconds included) and writes it to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import REPO, module_at, results_dir  # noqa: E402
from measure import measured_run  # noqa: E402

sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))
from photoseek.sidecars import export as export_now  # noqa: E402
from photoseek.store.catalog import Catalog, NewImage, TextSignal  # noqa: E402
from photoseek.store.text import TAGS_MODEL, USER_MODEL, TextStore  # noqa: E402
from tests.sidecars.shapes import shapes, sidecar  # noqa: E402

BASELINE_COMMIT = "8b47473"
"""main before this branch: mkstemp, one fsync, rename, read back; check-then-unlink for --remove."""


def export_before():
    return module_at(BASELINE_COMMIT, "src/photoseek/sidecars/export.py", "export_before")


def timed(work) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - started, time.process_time() - cpu


def library(folder: Path, count: int) -> tuple[Catalog, TextStore, list]:
    """`count` photos (three bytes each: export never reads a photo) with a note, tags, topics and a place."""
    folder.mkdir(parents=True)
    catalog = Catalog(folder / "c.db")
    catalog.bind_model("bench", 4)
    images = []
    for i in range(count):
        photo = folder / f"IMG_{i:05d}.jpg"
        photo.write_bytes(b"\xff\xd8\xff")
        texts = (TextSignal("note", USER_MODEL, f"note {i}"), TextSignal("note", TAGS_MODEL, "sailing, trip"),
                 TextSignal("topics", "t", "boats\nsea"), TextSignal("place", "p", "Porto\nPortugal"))
        images.append(NewImage(str(photo), 3, i, f"h{i}", 1, 1, "jpeg", None, None,
                               np.ones(4, dtype=np.float32), texts))
    catalog.write_batch(images)
    records = sorted(catalog.records(list(range(1, count + 1))).values(), key=lambda r: r.path)
    return catalog, TextStore(catalog), records


def one_round(module, folder: Path, count: int) -> dict[str, float]:
    """ms per sidecar (wall, CPU) of create, no-op, merge and remove with one version of export.py."""
    catalog, texts, records = library(folder, count)
    found: dict[str, float] = {}

    def step(name: str, **kwargs: object) -> None:
        report = None

        def run() -> None:
            nonlocal report
            report = module.export_sidecars(texts, records, **kwargs)

        wall, cpu = timed(run)
        assert not report.skipped, report.skipped[:3]
        found[f"{name}_ms"] = round(wall / count * 1e3, 3)
        found[f"{name}_cpu_ms"] = round(cpu / count * 1e3, 3)

    step("create")
    step("noop")
    step("remove_created", remove=True)  # every sidecar photoseek created is deleted again
    for i, record in enumerate(records):
        Path(record.path + ".xmp").write_text(sidecar(shapes(50)[i % 50]))
    step("merge")
    step("remove_merged", remove=True)
    catalog.close()
    shutil.rmtree(folder)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sidecars", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=results_dir() / "xmpsafe_bench.json")
    args = parser.parse_args()
    versions = {"before": export_before(), "now": export_now}
    result: dict[str, object] = {"load_avg_before": os.getloadavg(), "sidecars": args.sidecars}
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        kind = subprocess.run(["stat", "-f", "-c", "%T", tmp], capture_output=True, text=True)
        result["folder_fs"] = kind.stdout.strip()
        for r in range(args.rounds):
            order = list(versions) if r % 2 == 0 else list(reversed(versions))  # alternate against drift
            for name in order:
                rounds[name].append(one_round(versions[name], Path(tmp) / f"{name}-{r}", args.sidecars))
    for name, found in rounds.items():
        result[name] = {key: round(min(f[key] for f in found), 3) for key in found[0]}  # best of the rounds
    result["ratio_now_over_before"] = {
        key: round(result["now"][key] / result["before"][key], 2) for key in result["now"] if result["before"][key]
    }
    result["load_avg_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
