"""Each command imports only what it uses: start-up is most of a small command's cost (issue 24).

Every case runs the real command line in a fresh process and reads back the modules it imported:
the heavy libraries a command has no use for must be absent, and the module count stays under a
ceiling a little above what it takes today, so a new eager import fails here instead of quietly
slowing every run down. The ceilings are counts, not timings: CPU time is measured in
bench/startup_bench.py (docs/benchmarks.md, section startup).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from photoseek.cli import COMMANDS
from tests.helpers import draw_scene, run_cli

_RUN = """
import json, runpy, sys
out, sys.argv = sys.argv[1], ["photoseek", *sys.argv[2:]]
code = 0
try:
    runpy.run_module("photoseek", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""

NEVER = {"fastapi", "pydantic", "starlette", "uvicorn", "torch", "transformers", "reverse_geocode", "scipy"}
"""Not on any of these paths: the server, the torch extras, the places gazetteer with nothing to name."""
NO_MODEL = NEVER | {
    "onnxruntime", "tokenizers", "huggingface_hub", "faiss", "photoseek.models.clip", "photoseek.text.hf",
    "photoseek.text.caption", "photoseek.text.embedder", "photoseek.ingest.decode",
}
"""Nothing that runs or fetches a model, and no image decoder."""


ALL_PLUGINS = {
    "PIL.BlpImagePlugin", "PIL.DdsImagePlugin", "PIL.SgiImagePlugin", "PIL.TgaImagePlugin", "PIL.XbmImagePlugin",
}
"""Formats photoseek never decodes: loaded only when Pillow registers every plugin (`Image.init`)."""


def _plugins(modules: set[str]) -> set[str]:
    return modules & ALL_PLUGINS


def _imported(tmp_path: Path, *args: object) -> set[str]:
    """The modules `photoseek ARGS` imported, run in a fresh interpreter; it must succeed."""
    out = tmp_path / "modules.json"
    env = {
        **os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
        "PHOTOSEEK_MODEL_DIR": str(tmp_path / "models"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(out), *map(str, args)], env=env, capture_output=True, text=True, timeout=120
    )
    report = json.loads(out.read_text())
    assert report["code"] in (0, None), done.stderr
    return set(report["modules"])


@pytest.fixture(scope="module")
def catalog(tmp_path_factory, tiny_clip_dir) -> tuple[Path, Path]:
    """(folder, catalog) of a few photos indexed with the tiny CLIP."""
    root = tmp_path_factory.mktemp("photos")
    for seed in range(6):
        draw_scene(root / f"p{seed}.jpg", seed)
    db = root.parent / "c.db"
    run_cli("index", root, "--model-path", tiny_clip_dir, "--db", db)
    return root, db


def _within(modules: set[str], forbidden: set[str], ceiling: int) -> None:
    assert not modules & forbidden, sorted(modules & forbidden)
    assert len(modules) <= ceiling, f"{len(modules)} modules (ceiling {ceiling}): an eager import crept in?"


COMMAND_MODULES = {f"photoseek.cli.{module}" for module, _ in COMMANDS.values()}
"""The modules that define commands: `photoseek` imports only the one whose command runs."""


def _others(*mine: str) -> set[str]:
    return COMMAND_MODULES - {f"photoseek.cli.{module}" for module in mine}


def test_help_loads_no_photoseek_machinery_and_no_command(tmp_path):
    modules = _imported(tmp_path, "--help")
    _within(modules, NO_MODEL | COMMAND_MODULES | {"numpy", "PIL", "photoseek.api", "photoseek.store.catalog"}, 345)


def test_status_loads_no_model_no_decoder_and_no_other_command(tmp_path, catalog):
    _, db = catalog
    first = _imported(tmp_path, "status", "--db", db)
    # The first run on a machine asks ONNX Runtime which providers this build has, and keeps the answer.
    _within(first, NO_MODEL - {"onnxruntime"} | {"PIL"} | _others("status"), 410)
    assert "onnxruntime" in first and "photoseek.api" in first  # the real command ran
    _within(_imported(tmp_path, "status", "--db", db), NO_MODEL | {"PIL"} | _others("status"), 390)


def test_index_with_nothing_changed_loads_no_model_runtime_signal_makers_or_image_plugins(tmp_path, catalog):
    root, db = catalog
    modules = _imported(tmp_path, "index", root, "--db", db)
    _within(modules, NEVER | _others("index") | {
        "onnxruntime", "huggingface_hub", "faiss", "tokenizers", "photoseek.text.caption", "photoseek.text.embedder",
        "photoseek.text.ocr",
    }, 470)
    assert not _plugins(modules), sorted(_plugins(modules))


def test_search_loads_no_server_no_torch_and_no_faiss_on_a_small_catalog(tmp_path, catalog):
    _, db = catalog
    modules = _imported(tmp_path, "search", "a red square", "--db", db, "--min-score", "0")
    _within(modules, NEVER | {"faiss", "photoseek.ingest.decode"}, 465)
    assert not _plugins(modules), sorted(_plugins(modules))


def test_the_budget_sees_an_eager_import(tmp_path):
    """The check itself: a command that does import the server's stack is caught."""
    with pytest.raises(AssertionError, match="fastapi"):
        _within({"fastapi", "photoseek"}, NEVER, 10)
    with pytest.raises(AssertionError, match="ceiling"):
        _within({"a", "b", "c"}, NEVER, 2)
