"""What places, ratings and write-back cost: metadata reading per photo (against the reader before
this change, in the same run), naming places offline, and export-xmp over a few thousand sidecars.

    python bench/metadata_bench.py [--photos 400] [--sidecars 2000] [--out FILE]

Prints one JSON object (load average and CPU seconds included) and writes it to --out.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import REPO, coco_photos, module_at, results_dir  # noqa: E402
from measure import measured_run  # noqa: E402

sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))
from photoseek.ingest.indexer import read_file_facts  # noqa: E402
from photoseek.places.naming import name_places  # noqa: E402
from photoseek.sidecars.export import export_sidecars  # noqa: E402
from photoseek.store.catalog import Catalog, NewImage, TextSignal  # noqa: E402
from photoseek.store.text import TAGS_MODEL, USER_MODEL, TextStore  # noqa: E402
from tests.places.test_gps import located  # noqa: E402
from tests.sidecars.shapes import shapes, sidecar  # noqa: E402

BASELINE_COMMIT = "d89cdda"
"""main before this branch: its metadata reader read texts only."""


def timed(work, repeat: int = 1) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of `work` run `repeat` times."""
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        work()
    return time.perf_counter() - started, time.process_time() - cpu


def baseline_reader():
    return module_at(BASELINE_COMMIT, "src/photoseek/text/metadata.py", "metadata_before").read_metadata


def reading(count: int, folder: Path) -> dict[str, object]:
    """Per-photo cost of reading metadata: COCO photos as they are, then with GPS, rating and a sidecar."""
    photos = coco_photos()[:count]
    plain = [(p.read_bytes(), p) for p in photos]
    tagged = []
    for i, (data, photo) in enumerate(plain):
        out = io.BytesIO()
        Image.open(io.BytesIO(data)).save(out, "JPEG", exif=located(41.1 + i / 1000, -8.6), quality=90)
        target = folder / photo.name
        target.write_bytes(out.getvalue())
        target.with_name(target.name + ".xmp").write_text(sidecar(shapes(1)[0]))
        tagged.append((out.getvalue(), target))
    before = baseline_reader()
    found = {}
    for label, files in (("coco", plain), ("gps+sidecar", tagged)):
        for name, reader in (("before", before), ("after", read_file_facts)):
            wall, cpu = timed(lambda r=reader, f=files: [r(d, p) for d, p in f], repeat=3)
            found[f"{label}/{name}_us_per_photo"] = round(wall / (3 * len(files)) * 1e6, 1)
            found[f"{label}/{name}_cpu_us_per_photo"] = round(cpu / (3 * len(files)) * 1e6, 1)
        found[f"{label}/ratio_after_before"] = round(
            found[f"{label}/after_us_per_photo"] / found[f"{label}/before_us_per_photo"], 2)
    return found


def naming(count: int) -> dict[str, object]:
    rng = random.Random(23)
    points = [(rng.uniform(35, 60), rng.uniform(-10, 30)) for _ in range(count)]  # Europe, mostly land
    load, load_cpu = timed(lambda: name_places(points[:1]))
    wall, cpu = timed(lambda: name_places(points))
    named = sum(bool(n) for n in name_places(points))
    return {"gazetteer_load_s": round(load, 2), "gazetteer_load_cpu_s": round(load_cpu, 2),
            "points": count, "named": named, "ms_per_1000_points": round(wall / count * 1e6, 1),
            "cpu_ms_per_1000_points": round(cpu / count * 1e6, 1)}


def exporting(count: int, folder: Path) -> dict[str, object]:
    """export-xmp over `count` photos: new sidecars, a no-op re-run, then a merge into tool-written ones."""
    catalog = Catalog(folder / "c.db")
    catalog.bind_model("bench", 4)
    images = []
    for i in range(count):
        photo = folder / f"IMG_{i:05d}.jpg"
        photo.write_bytes(b"\xff\xd8\xff")  # export checks the photo is there, never reads it
        texts = (TextSignal("note", USER_MODEL, f"note {i}"), TextSignal("note", TAGS_MODEL, "sailing, trip"),
                 TextSignal("topics", "t", "boats\nsea"), TextSignal("place", "p", "Porto\nPortugal"))
        images.append(NewImage(str(photo), 3, i, f"h{i}", 1, 1, "jpeg", None, None,
                               np.ones(4, dtype=np.float32), texts))
    catalog.write_batch(images)
    texts = TextStore(catalog)
    records = sorted(catalog.records(list(range(1, count + 1))).values(), key=lambda r: r.path)
    found: dict[str, object] = {"sidecars": count}
    wall, cpu = timed(lambda: export_sidecars(texts, records))
    found |= {"create_ms_per_sidecar": round(wall / count * 1e3, 3), "create_cpu_ms": round(cpu / count * 1e3, 3)}
    wall, cpu = timed(lambda: export_sidecars(texts, records))
    found |= {"noop_ms_per_sidecar": round(wall / count * 1e3, 3), "noop_cpu_ms": round(cpu / count * 1e3, 3)}
    for i, record in enumerate(records):
        Path(record.path + ".xmp").write_text(sidecar(shapes(50)[i % 50]))
    wall, cpu = timed(lambda: export_sidecars(texts, records))
    found |= {"merge_ms_per_sidecar": round(wall / count * 1e3, 3), "merge_cpu_ms": round(cpu / count * 1e3, 3)}
    catalog.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=400)
    parser.add_argument("--sidecars", type=int, default=2000)
    parser.add_argument("--places", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=results_dir() / "metadata_bench.json")
    args = parser.parse_args()
    result: dict[str, object] = {"load_avg_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "read").mkdir()
        (Path(tmp) / "export").mkdir()
        result["reading"] = reading(args.photos, Path(tmp) / "read")
        result["naming"] = naming(args.places)
        result["export"] = exporting(args.sidecars, Path(tmp) / "export")
    result["load_avg_after"] = os.getloadavg()
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
