"""Shared fixtures: a tiny random-weight CLIP exported once per session through our own exporter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import TINY_CLIP_ARCH, TINY_CLIP_CONFIG


@pytest.fixture(scope="session")
def tiny_clip_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("arch") / f"{TINY_CLIP_ARCH}.json"
    path.write_text(json.dumps(TINY_CLIP_CONFIG), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory, tiny_clip_config: Path) -> Path:
    """An Immich-layout model directory holding a tiny random CLIP (needs the torch extra)."""
    pytest.importorskip("torch")
    pytest.importorskip("open_clip")
    from imgsearch.models.export import export_open_clip

    out = tmp_path_factory.mktemp("models") / "tiny-clip"
    return export_open_clip(TINY_CLIP_ARCH, out, random_weights=True, arch_config=tiny_clip_config, seed=0)


@pytest.fixture(scope="session")
def text_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide model cache, so the default text model is exported to ONNX once per run."""
    pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("model-cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("IMGSEARCH_MODEL_DIR", str(folder))
    from imgsearch.text.embedder import load_text_embedder

    load_text_embedder()  # export now, so its warnings do not land in a CLI test's output
    yield folder
    patch.undo()
