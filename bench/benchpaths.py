"""Where benchmarks read shared data and write results: outside the checkout unless told otherwise.

Results go where `--out` says; the default is $PHOTOSEEK_BENCH_RESULTS, else a per-user cache
folder (printed by each benchmark), so a benchmark run leaves the working tree clean. Shared data
follows the tests' rule: $PHOTOSEEK_SHARED_DATA, else `../shared/data` beside the checkout.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from measure import so_far
from platformdirs import user_cache_path

REPO = Path(__file__).resolve().parents[1]


def shared_data(*parts: str) -> Path:
    """A path inside the shared data (read in place, never copied into the repository)."""
    configured = os.environ.get("PHOTOSEEK_SHARED_DATA")
    root = Path(configured).expanduser() if configured else REPO.parent / "shared" / "data"
    return root.joinpath(*parts)


def coco_photos() -> list[Path]:
    """The shared COCO photos, or exit saying where they were looked for."""
    root = shared_data("coco-mini")
    files = sorted(root.rglob("*.jpg"))
    if not files:
        sys.exit(f"No COCO photos under {root}: set PHOTOSEEK_SHARED_DATA.")
    return files


def results_dir() -> Path:
    """The default folder for results and cached benchmark models, created on first use."""
    configured = os.environ.get("PHOTOSEEK_BENCH_RESULTS")
    folder = Path(configured).expanduser() if configured else user_cache_path("photoseek") / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def random_model_dir(*, fixed_text_length: bool = False) -> Path:
    """A full-size ViT-B-32 with random weights, exported once and reused by every benchmark.

    The folder name says which exporter wrote it, so caches from before the text tower's dynamic
    sequence axis are not reused; ``fixed_text_length`` gives the same weights exported for 77 tokens
    (as models exported before, and Immich's), for before/after comparisons.
    """
    folder = results_dir() / ("vit-b-32-random-77-tokens" if fixed_text_length else "vit-b-32-random-dynamic-text")
    if not (folder / "textual").exists():
        from photoseek.models.export import export_open_clip

        export_open_clip("ViT-B-32", folder, random_weights=True, dynamic_text_length=not fixed_text_length)
    return folder


def write_results(payload: dict[str, object], out: Path | None, default_name: str) -> Path:
    """Print the results, with the run's wall time, CPU seconds and load average so far under "run",
    and save them as JSON at `out` (default: `default_name` in results_dir())."""
    payload = {**payload, "run": so_far()}
    path = out or results_dir() / default_name
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, indent=2)
    path.write_text(text, encoding="utf-8")
    print(text)
    print(f"Results written to {path}", file=sys.stderr)
    return path


def module_at(commit: str, source: str, name: str) -> ModuleType:
    """The module in `source` (a path in the repository) as it was at `commit`, loaded under `name`:
    the baseline a bench compares this checkout against in the same run."""
    text = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:{source}"], check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
