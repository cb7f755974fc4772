"""Loading an Immich-layout directory: ids, lazy towers, batching, shapes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photoseek.errors import ModelNotAvailableError
from photoseek.models import clip, load_clip


def test_loads_exported_dir_with_stable_id(tiny_clip_dir: Path) -> None:
    model = load_clip(path=tiny_clip_dir)
    assert model.model_id == "photoseek-tiny-clip/random-seed0"
    assert load_clip(path=str(tiny_clip_dir)).model_id == model.model_id
    assert model.dim == 32
    assert model.image_size == 48


def test_towers_load_lazily(tiny_clip_dir: Path) -> None:
    model = load_clip(path=tiny_clip_dir)
    assert not model.visual.loaded and not model.textual.loaded
    model.encode_texts(["a dog"])
    assert model.textual.loaded and not model.visual.loaded

    model = load_clip(path=tiny_clip_dir)
    model.encode_images([Image.new("RGB", (64, 64), "red")])
    assert model.visual.loaded and not model.textual.loaded


def test_embeddings_are_unit_vectors_and_batched(tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_clip(path=tiny_clip_dir)
    rng = np.random.default_rng(0)
    pixels = rng.normal(size=(7, 3, 48, 48)).astype(np.float32)
    whole = model.encode_pixels(pixels)
    monkeypatch.setattr(clip, "IMAGE_BATCH", 3)
    chunked = model.encode_pixels(pixels)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    assert whole.shape == (7, 32) and whole.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-5)

    monkeypatch.setattr(clip, "TEXT_BATCH", 2)
    texts = model.encode_texts(["one", "two", "three", "four", "five"])
    assert texts.shape == (5, 32)
    np.testing.assert_allclose(texts[2], model.encode_texts(["three"])[0], atol=1e-5)


def test_empty_inputs(tiny_clip_dir: Path) -> None:
    model = load_clip(path=tiny_clip_dir)
    assert model.encode_texts([]).shape == (0, 32)
    assert model.encode_images([]).shape == (0, 32)
    assert model.encode_pixels(np.zeros((0, 3, 48, 48), np.float32)).shape == (0, 32)
    with pytest.raises(TypeError):
        model.encode_texts("not a list")


def test_preprocess_shape(tiny_clip_dir: Path) -> None:
    pixels = load_clip(path=tiny_clip_dir).preprocess(Image.new("RGBA", (300, 100)))
    assert pixels.shape == (3, 48, 48) and pixels.dtype == np.float32


def test_dir_without_exporter_id_falls_back_to_dirname(tiny_clip_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(tiny_clip_dir, tmp_path / "my-model")
    config = json.loads((copy / "config.json").read_text())
    del config["model_id"]
    (copy / "config.json").write_text(json.dumps(config))
    assert load_clip(path=copy).model_id == "local:my-model"


def test_incomplete_dir_is_a_clear_error(tiny_clip_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(tiny_clip_dir, tmp_path / "broken")
    (copy / "textual" / "model.onnx").unlink()
    with pytest.raises(ModelNotAvailableError, match="textual/model.onnx"):
        load_clip(path=copy)
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        load_clip(path=tmp_path / "nowhere")


def test_repeated_query_texts_come_from_the_cache(tiny_clip_dir):
    """The text tower runs once per distinct text; cached vectors equal freshly computed ones."""
    from photoseek.models import load_clip

    model = load_clip(path=tiny_clip_dir)
    calls = []
    real_run = model.textual.run
    model.textual.run = lambda feeds: calls.append(1) or real_run(feeds)
    first = model.encode_texts(["a red bus", "a cat", "a red bus"])
    again = model.encode_texts(["a cat", "a red bus"])
    assert len(calls) == 1
    assert np.array_equal(first[0], first[2]) and np.array_equal(again, first[[1, 0]])
    fresh = load_clip(path=tiny_clip_dir).encode_texts(["a cat"])
    assert np.allclose(fresh[0], again[0], atol=1e-6)
