"""Start-up cost of small commands, this checkout against a baseline checkout, in one run (issue 24).

    git worktree add /tmp/startup-base merging2
    python bench/startup_bench.py --base /tmp/startup-base --photos 1000 --rounds 5

Both checkouts' sources are byte-compiled first (as an install is), then, interleaved round by
round, each command runs in a new process with PYTHONPATH at one checkout's src:

    photoseek --help
    photoseek status                 on a catalog of --photos photos
    photoseek index FOLDER           nothing changed since the last run
    photoseek search QUERY           default mode

and we record its wall time and CPU seconds (user + system, children included). The catalog (small
drawn photos, the random-weight ViT-B-32 that every bench uses) is built once, untimed, with this
checkout. Medians per command and checkout, and the ratios, go to stdout and --out; the load
average is recorded before and after, since on a busy machine the CPU figures are the ones to read.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import REPO, random_model_dir, results_dir, write_results  # noqa: E402
from measure import load_average, measured_run, span  # noqa: E402


def _photos(count: int) -> Path:
    """`count` small distinct JPEGs, drawn once and kept in the bench cache."""
    import numpy as np
    from PIL import Image

    folder = results_dir() / f"startup-photos-{count}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        path = folder / f"p{i:05d}.jpg"
        coarse = Image.fromarray(rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8))
        if not path.exists():
            coarse.resize((160, 120), Image.Resampling.BICUBIC).save(path, quality=85)
    return folder


def _run(src: Path, args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s) of `photoseek ARGS` in a new process importing from `src`."""
    with span() as s:
        done = subprocess.run([sys.executable, "-m", "photoseek", *args], env={**env, "PYTHONPATH": str(src)},
                              capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"photoseek {' '.join(args)} failed with {src}:\n{done.stderr}")
    return s.wall_s, s.children_cpu_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="a checkout of the baseline commit")
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    opts = parser.parse_args()
    checkouts = {"base": opts.base.resolve() / "src", "this": REPO / "src"}
    for src in checkouts.values():
        compileall.compile_dir(src, quiet=1)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env |= {"HF_HUB_OFFLINE": "1", "PHOTOSEEK_MODEL_DIR": str(results_dir() / "startup-models")}
    folder = _photos(opts.photos)
    db = results_dir() / f"startup-{opts.photos}.db"
    commands = {
        "help": ["--help"],
        "status": ["status", "--db", str(db)],
        "index_no_change": ["index", str(folder), "--db", str(db)],
        "search": ["search", "a dog on a beach", "--db", str(db)],
    }
    _run(checkouts["this"], ["index", str(folder), "--db", str(db), "--model-path", str(random_model_dir())], env)
    _run(checkouts["this"], commands["search"], env)  # the text model's one-off export stays out of the timings
    load_before = load_average()
    times: dict[str, dict[str, list[tuple[float, float]]]] = {c: {k: [] for k in checkouts} for c in commands}
    for _ in range(opts.rounds):
        for name, args in commands.items():
            for key, src in checkouts.items():
                times[name][key].append(_run(src, args, env))
    results = {}
    for name, by in times.items():
        row = {key: {"wall_s": round(statistics.median(w for w, _ in runs), 3),
                     "cpu_s": round(statistics.median(c for _, c in runs), 3)} for key, runs in by.items()}
        row["cpu_ratio"] = round(row["this"]["cpu_s"] / row["base"]["cpu_s"], 2)
        row["wall_ratio"] = round(row["this"]["wall_s"] / row["base"]["wall_s"], 2)
        results[name] = row
        print(f"{name:16} base CPU {row['base']['cpu_s']:.3f} s wall {row['base']['wall_s']:.3f} s | "
              f"this CPU {row['this']['cpu_s']:.3f} s wall {row['this']['wall_s']:.3f} s | "
              f"CPU x{row['cpu_ratio']}", file=sys.stderr)
    write_results({"photos": opts.photos, "rounds": opts.rounds, "load_before": load_before,
                   "load_after": load_average(), "commands": results}, opts.out, f"startup-{opts.photos}.json")


if __name__ == "__main__":
    with measured_run():
        main()
