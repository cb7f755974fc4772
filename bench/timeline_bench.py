"""The timeline on a 100k-photo catalog: how long the server takes for the first screen and any later page.

Builds (once, cached in the benchmarks' per-user folder, outside the checkout; see benchpaths.py)
a catalog of --images synthetic rows written straight into SQLite: capture times spread over 15
years, one in ten without EXIF (ordered by file time instead), a few formats. The model is the
tests' tiny random-weight CLIP: the timeline never runs it, but the server loads one at start.

Then, in-process through the real app (FastAPI test client, so routing, validation and JSON are
counted, not the network):

1. the first screen, `GET /api/browse?k=48` (what the web UI asks for), cold (the first request
   after start) and warm (median and p95 of --repeats);
2. a walk through the whole timeline with k=200 (every page's server time: median, p95, max);
3. the first screen with a filter (`format=png`);
4. the baseline in the same run: the same first-screen and deep-page queries in SQLite, once with
   the `images_captured` index (keyset, as `/api/browse` does) and once `NOT INDEXED` (a sort of
   every row), and an OFFSET page 90% of the way down, which keyset paging avoids.

Records the load average and the process's CPU seconds; prints JSON and writes it to --out.

    PYTHONPATH=src python bench/timeline_bench.py [--images 100000] [--repeats 50] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchpaths import results_dir, write_results  # noqa: E402
from measure import measured_run  # noqa: E402

FORMATS = ("jpeg", "jpeg", "jpeg", "heif", "png")
YEAR_S = 365.25 * 86_400


def tiny_model(folder: Path) -> Path:
    """The tests' tiny random-weight CLIP, exported once."""
    if (folder / "textual").exists():
        return folder
    from photoseek.models.export import export_open_clip
    from tests.helpers import TINY_CLIP_ARCH, TINY_CLIP_CONFIG

    config = folder.parent / f"{TINY_CLIP_ARCH}.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(TINY_CLIP_CONFIG), encoding="utf-8")
    return export_open_clip(TINY_CLIP_ARCH, folder, random_weights=True, arch_config=config, seed=0)


def build_catalog(db: Path, model: Path, count: int) -> None:
    from photoseek.models import load_clip
    from photoseek.store.catalog import Catalog, NewImage

    if db.exists():
        with Catalog(db) as catalog:
            if catalog.count() == count:
                return
        db.unlink()
    clip = load_clip(path=model)
    rng = np.random.default_rng(7)
    start = time.mktime((2010, 1, 1, 0, 0, 0, 0, 0, 0))
    with Catalog(db) as catalog:
        catalog.bind_model(clip.model_id, clip.dim, source=str(model))
        for first in range(0, count, 10_000):
            batch = []
            for i in range(first, min(first + 10_000, count)):
                when = start + rng.random() * 15 * YEAR_S
                taken = None if i % 10 == 0 else time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when))
                vector = rng.standard_normal(clip.dim).astype(np.float32)
                batch.append(NewImage(
                    path=f"/photos/{time.gmtime(when).tm_year}/img-{i:06d}.jpg", size=3_000_000,
                    mtime_ns=int(when * 1e9), content_hash=f"{i:016x}", width=4032, height=3024,
                    format=FORMATS[i % len(FORMATS)], taken_at=taken, camera="Bench Cam",
                    embedding=vector / np.linalg.norm(vector),
                ))
            catalog.write_batch(batch)


def timed_get(client, path: str, params: dict) -> tuple[float, float, dict]:
    """(wall ms of the whole request in-process, the server's own took_ms, body)."""
    started = time.perf_counter()
    response = client.get(path, params=params)
    wall = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    body = response.json()
    return wall, body["took_ms"], body


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 2), "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
            "max": round(ordered[-1], 2), "n": len(ordered)}


def http_phases(db: Path, model: Path, repeats: int) -> dict[str, object]:
    from fastapi.testclient import TestClient

    from photoseek.server import ServerConfig, create_app

    with TestClient(create_app(ServerConfig(db=db, model_path=model)), base_url="http://127.0.0.1:8000") as client:
        cold_wall, cold_took, first = timed_get(client, "/api/browse", {"k": 48})
        warm = [timed_get(client, "/api/browse", {"k": 48}) for _ in range(repeats)]
        walk_wall, walk_took, cursor, pages, seen = [], [], None, 0, 0
        while True:
            wall, took, body = timed_get(client, "/api/browse", {"k": 200, **({"cursor": cursor} if cursor else {})})
            walk_wall.append(wall)
            walk_took.append(took)
            pages += 1
            seen += len(body["results"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        filtered = [timed_get(client, "/api/browse", {"k": 48, "format": "png"}) for _ in range(repeats // 5 or 1)]
    return {
        "first_screen_k48": {"total": first["total"], "cold_wall_ms": round(cold_wall, 2),
                             "cold_server_ms": cold_took, "warm_wall_ms": summary([w for w, _, _ in warm]),
                             "warm_server_ms": summary([t for _, t, _ in warm])},
        "walk_k200": {"pages": pages, "images": seen, "wall_ms": summary(walk_wall),
                      "server_ms": summary(walk_took)},
        "first_screen_format_png": {"wall_ms": summary([w for w, _, _ in filtered]),
                                    "server_ms": summary([t for _, t, _ in filtered])},
    }


def sql_baseline(db: Path, repeats: int) -> dict[str, object]:
    """The timeline's query with its index against the same query sorting every row, in the same run."""
    import sqlite3

    from photoseek.store.catalog import _CAPTURE_TIME_SQL as CAPTURED

    con = sqlite3.connect(db)
    deep = con.execute(f"SELECT {CAPTURED}, id FROM images ORDER BY {CAPTURED} DESC, id DESC LIMIT 1 OFFSET "
                       f"{int(0.9 * con.execute('SELECT COUNT(*) FROM images').fetchone()[0])}").fetchone()
    keyset = f"{CAPTURED} <= ? AND ({CAPTURED} < ? OR id < ?)"
    queries = {
        "first_indexed": (f"SELECT id FROM images ORDER BY {CAPTURED} DESC, id DESC LIMIT 49", ()),
        "first_not_indexed": (f"SELECT id FROM images NOT INDEXED ORDER BY {CAPTURED} DESC, id DESC LIMIT 49", ()),
        "deep_keyset_indexed": (f"SELECT id FROM images WHERE {keyset} ORDER BY {CAPTURED} DESC, id DESC LIMIT 49",
                                (deep[0], deep[0], deep[1])),
        "deep_keyset_not_indexed": (f"SELECT id FROM images NOT INDEXED WHERE {keyset} "
                                    f"ORDER BY {CAPTURED} DESC, id DESC LIMIT 49", (deep[0], deep[0], deep[1])),
        "deep_offset_indexed": (f"SELECT id FROM images ORDER BY {CAPTURED} DESC, id DESC LIMIT 49 OFFSET 90000", ()),
    }
    results = {}
    for name, (sql, params) in queries.items():
        plan = " / ".join(row[3] for row in con.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        times = []
        for _ in range(max(3, repeats // 5)):
            started = time.perf_counter()
            con.execute(sql, params).fetchall()
            times.append((time.perf_counter() - started) * 1000)
        results[name] = {"ms": summary(times), "plan": plan}
    con.close()
    ratio = results["first_not_indexed"]["ms"]["median"] / max(results["first_indexed"]["ms"]["median"], 1e-3)
    results["first_screen_speedup"] = round(ratio, 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    folder = results_dir()
    model = tiny_model(folder / "tiny-clip")
    db = folder / f"timeline-{args.images}.db"
    build_started = time.perf_counter()
    build_catalog(db, model, args.images)
    load_before = os.getloadavg()
    cpu_started = time.process_time()
    payload = {
        "images": args.images,
        "catalog_build_s": round(time.perf_counter() - build_started, 1),
        "http": http_phases(db, model, args.repeats),
        "sqlite": sql_baseline(db, args.repeats),
        "cpu_s": round(time.process_time() - cpu_started, 2),
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
    }
    write_results(payload, args.out, "timeline_bench.json")


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
