"""A newcomer's first minutes: the base install only, then the README's two commands.

A fresh virtual environment gets the base install (no extras) of the sdist that `python -m build`
makes from a copy of this checkout, so a release's sdist and wheel are known to hold everything. The
default model cannot be downloaded here, so a tiny random-weight CLIP, exported beforehand with
the exporter of the developer's environment, sits in a Hugging Face hub cache exactly where the
default model is looked up (HF_HUB_CACHE, with HF_HUB_OFFLINE=1). Then, on a copy of the shared
COCO photos (some carry IPTC keywords), `photoseek index DIR && photoseek search "two dogs playing
in the snow"` must both succeed and the search must print results.

Random weights put every cosine near 0, which the default's calibrated cut-off rightly hides ("no
good match"). So both towers get one shared direction added to their output (a constant, in the
ONNX graph): every image then resembles every query, as a real model's match would, and the
search has results to print.

Deselected by default (it installs from the package index, about a minute); `.ci/run` runs it with
`pytest -m newcomer`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest

from photoseek.models import DEFAULT_MODEL
from tests.helpers import shared_data
from tests.hubcache import clean_env, place_in_hub_cache

pytestmark = pytest.mark.newcomer

CHECKOUT = Path(__file__).resolve().parents[2]
PHOTOS = shared_data("coco-mini")
QUERY = "two dogs playing in the snow"


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sdist and wheel that `python -m build` makes of this checkout (as a release would)."""
    root = tmp_path_factory.mktemp("release")
    source = root / "source"  # a copy: building in place would write build/ and *.egg-info into the checkout
    shutil.copytree(CHECKOUT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(CHECKOUT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(root / "dist"), str(source)],
        capture_output=True, text=True, timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return next((root / "dist").glob("photoseek-*.tar.gz")), next((root / "dist").glob("photoseek-*.whl"))


@pytest.fixture(scope="module")
def base_install(tmp_path_factory: pytest.TempPathFactory, distributions: tuple[Path, Path]) -> Path:
    """The `photoseek` command of a fresh venv holding the sdist's base install and nothing else."""
    env_dir = tmp_path_factory.mktemp("newcomer") / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(distributions[0])], capture_output=True, text=True, timeout=900
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    installed = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True)
    names = {p["name"].lower() for p in json.loads(installed.stdout)}
    assert not names & {"torch", "transformers", "sentence-transformers"}, "the base install pulled an extra"
    return env_dir / "bin" / "photoseek"


def test_the_wheel_carries_the_command_and_the_web_ui(distributions: tuple[Path, Path]) -> None:
    with zipfile.ZipFile(distributions[1]) as wheel:
        names = set(wheel.namelist())
        entry_points = wheel.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "photoseek = photoseek.cli:app" in entry_points
    assert {"photoseek/server/static/index.html", "photoseek/topics/default.toml", "photoseek/legacy.py"} <= names


def test_readme_commands_work_in_the_base_install(base_install: Path, tiny_clip_dir: Path, tmp_path: Path) -> None:
    if not PHOTOS.is_dir():
        pytest.fail(f"the newcomer test needs the shared photos at {PHOTOS} (set PHOTOSEEK_SHARED_DATA)")
    photos = shutil.copytree(PHOTOS, tmp_path / "photos")
    model = _with_shared_direction(tiny_clip_dir, tmp_path / "model")
    place_in_hub_cache(model, f"immich-app/{DEFAULT_MODEL}", tmp_path / "hub")
    env = clean_env(tmp_path / "home", HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(base_install), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900
        )

    indexed = run("index", str(photos))
    assert indexed.returncode == 0, indexed.stdout + indexed.stderr
    found = run("search", QUERY)
    assert found.returncode == 0, found.stdout + found.stderr
    printed = " ".join(found.stdout.split())
    assert any(path.name in printed for path in photos.rglob("*.jpg")), found.stdout + found.stderr


def _with_shared_direction(model_dir: Path, out: Path) -> Path:
    """A copy of `model_dir` whose two towers add the same large constant vector to their embeddings."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    shutil.copytree(model_dir, out)
    dim = json.loads((out / "config.json").read_text())["embed_dim"]
    shared = numpy_helper.from_array(np.full(dim, 100.0 / np.sqrt(dim), dtype=np.float32), "shared_direction")
    for tower in ("visual", "textual"):
        path = out / tower / "model.onnx"
        graph_model = onnx.load(path)
        graph = graph_model.graph
        final = graph.output[0].name
        for node in graph.node:
            node.output[:] = [f"{final}_raw" if name == final else name for name in node.output]
        graph.initializer.append(shared)
        graph.node.append(helper.make_node("Add", [f"{final}_raw", "shared_direction"], [final]))
        onnx.save(graph_model, path)
    return out
