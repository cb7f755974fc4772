"""Cold query, photoseek vs rclip, side by side in one run (issue 15). Run by hand:

    python bench/peer_rclip.py --rounds 7 --out /tmp/peer_rclip.json

Both tools get the same random-weight ViT-B-32-256 (open_clip, seed 0): photoseek through its own
exporter, rclip in its own layout (`$RCLIP_DATADIR/ViT-B-32-256-datacomp_s34b_b86k/{visual,textual}.onnx`
with input "input", as rclip's model_download.py reads them, written here with torch.onnx.export,
plus open_clip's BPE vocabulary). rclip is installed from the package index into its own venv
under --work (its pins differ from ours). Both index the shared coco-mini photos once, untimed; then,
interleaved round by round, each command runs in a new process and we record wall time and the
CPU time (user + system) of the process and its children:

    rclip --no-indexing QUERY      rclip's fastest cold query (no folder re-scan)
    rclip QUERY                    rclip's default (re-checks the folder first)
    photoseek search QUERY --mode clip
    photoseek search QUERY         photoseek's default mode

Medians and ratios (photoseek / rclip --no-indexing) go to stdout and --out. The load average is
recorded before and after: on a busy machine only the ratios mean much.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import results_dir, shared_data  # noqa: E402
from measure import measured_run  # noqa: E402

import photoseek as photoseek_package  # noqa: E402

RCLIP_VERSION = "3.3.0"
RCLIP_MODEL = "ViT-B-32-256-datacomp_s34b_b86k"
ARCH = "ViT-B-32-256"
QUERY = "two dogs playing in the snow"


def coco_folder() -> Path:
    folder = shared_data("coco-mini")
    if not folder.is_dir():
        sys.exit(f"No {folder}: set PHOTOSEEK_SHARED_DATA.")
    return folder


def rclip_venv(work: Path) -> Path:
    venv = work / "rclip-venv"
    rclip = venv / "bin" / "rclip"
    if not rclip.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"rclip=={RCLIP_VERSION}"], check=True)
    return rclip


def export_models(work: Path) -> tuple[Path, Path]:
    """(photoseek model dir, rclip data dir) holding the same random weights."""
    ours, rclip_data = work / "ours-b32-256", work / "rclip-data"
    if (ours / "config.json").exists() and (rclip_data / RCLIP_MODEL / "textual.onnx").exists():
        return ours, rclip_data
    import open_clip
    import torch

    from photoseek.models.export import create_open_clip, export_model

    loaded = create_open_clip(ARCH, random_weights=True, seed=0)
    shutil.rmtree(ours, ignore_errors=True)
    export_model(loaded.model, ours, arch=loaded.arch, model_cfg=loaded.model_cfg, model_id=loaded.model_id)
    _export_rclip_layout(torch, open_clip, loaded.model, rclip_data)
    return ours, rclip_data


def _export_rclip_layout(torch, open_clip, model, data_dir: Path) -> None:
    """rclip's files: one ONNX graph per tower with input "input", and the BPE vocabulary."""

    class Visual(torch.nn.Module):
        def forward(self, image):
            return model.encode_image(image)

    class Textual(torch.nn.Module):
        def forward(self, tokens):
            return model.encode_text(tokens)

    model.eval()
    target = data_dir / RCLIP_MODEL
    target.mkdir(parents=True, exist_ok=True)
    size = model.visual.image_size[0] if isinstance(model.visual.image_size, tuple) else model.visual.image_size
    examples = (
        (Visual(), torch.zeros(1, 3, size, size), "visual.onnx"),
        (Textual(), torch.zeros(1, 77, dtype=torch.int64), "textual.onnx"),
    )
    torch.backends.mha.set_fastpath_enabled(False)  # the fused attention kernel has no ONNX export
    with torch.no_grad():
        for tower, example, name in examples:
            torch.onnx.export(
                tower, (example,), str(target / name), input_names=["input"], output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17, dynamo=False,
            )
    vocab = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    (data_dir / "tokenizer").mkdir(exist_ok=True)
    shutil.copy2(vocab, data_dir / "tokenizer" / vocab.name)


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process tree) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--work", type=Path, help="Models, venv and catalog (default: a per-user folder).")
    parser.add_argument("--out", type=Path, help="JSON file for the results (default: print only).")
    args = parser.parse_args()
    args.work = args.work or results_dir() / "peer-rclip"
    args.work.mkdir(parents=True, exist_ok=True)

    folder = coco_folder()
    rclip = rclip_venv(args.work)
    ours, rclip_data = export_models(args.work)
    db = args.work / "peer-photoseek.db"
    # Byte-compiled first, as a pip install leaves it (rclip's venv is): otherwise every run compiles.
    compileall.compile_dir(Path(photoseek_package.__file__).parent, quiet=1)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env |= {"RCLIP_DATADIR": str(rclip_data), "HF_HUB_OFFLINE": "1"}
    photoseek = [sys.executable, "-m", "photoseek"]
    subprocess.run([*photoseek, "index", str(folder), "--db", str(db), "--model-path", str(ours)], check=True, env=env)
    subprocess.run([str(rclip), "--filepath-only", QUERY], cwd=folder, env=env, check=True, capture_output=True)

    commands = {
        "rclip --no-indexing": [str(rclip), "--no-indexing", QUERY],
        "rclip (re-checks folder)": [str(rclip), QUERY],
        "photoseek --mode clip": [*photoseek, "search", QUERY, "--db", str(db), "--mode", "clip"],
        "photoseek default mode": [*photoseek, "search", QUERY, "--db", str(db)],
    }
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    load = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for name, command in commands.items():
            samples[name].append(timed(command, folder, env))
        load.append(os.getloadavg()[0])
    rows = {
        name: {"wall_s": round(statistics.median(w for w, _ in runs), 3),
               "cpu_s": round(statistics.median(c for _, c in runs), 3)}
        for name, runs in samples.items()
    }
    base = rows["rclip --no-indexing"]
    for row in rows.values():
        row["wall_vs_rclip"] = round(row["wall_s"] / base["wall_s"], 2)
        row["cpu_vs_rclip"] = round(row["cpu_s"] / base["cpu_s"], 2)
    result = {"rounds": args.rounds, "images": sum(1 for _ in folder.rglob("*.jpg")), "rows": rows,
              "load_avg": [round(x, 2) for x in load]}
    for name, row in rows.items():
        print(f"{name:26s} wall {row['wall_s']:.2f} s ({row['wall_vs_rclip']:.2f}x)  "
              f"cpu {row['cpu_s']:.2f} s ({row['cpu_vs_rclip']:.2f}x)")
    print(f"load average {min(load):.1f}-{max(load):.1f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
