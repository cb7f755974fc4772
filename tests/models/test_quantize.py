"""`photoseek models quantize`: an INT8 copy that loads, embeds close to the original, and is its own model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from photoseek.models import load_clip
from tests.helpers import draw_photo, run_cli, run_json

pytest.importorskip("onnx")


def test_quantized_copy_indexes_and_agrees_with_original(tiny_clip_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8"
    printed = run_cli("models", "quantize", tiny_clip_dir, "--out", out)
    assert "--model-path" in printed

    config = json.loads((out / "config.json").read_text())
    original = load_clip(path=tiny_clip_dir)
    assert config["model_id"] == original.model_id + "-int8"
    assert config["quantization"]["towers"] == ["visual"]
    assert (out / "visual/model.onnx").stat().st_size < (tiny_clip_dir / "visual/model.onnx").stat().st_size

    quantized = load_clip(path=out)
    photos = [draw_photo(tmp_path / f"p{i}.png", colour, seed=i) for i, colour in enumerate(["red", "blue", "green"])]
    from PIL import Image

    pixels = np.stack([original.preprocess(Image.open(p)) for p in photos])
    cosines = np.sum(original.encode_pixels(pixels) * quantized.encode_pixels(pixels), axis=1)
    assert cosines.min() > 0.9, cosines
    texts = ["a red circle"]
    assert np.allclose(original.encode_texts(texts), quantized.encode_texts(texts), atol=1e-5)  # text tower kept

    db = tmp_path / "c.db"
    run_cli("index", tmp_path, "--db", db, "--model-path", out)
    found = run_json("search", "a red circle", "--db", db, "--mode", "clip", "--min-score", "-1", "--json")
    assert len(found["results"]) == 3 and found["model"].endswith("-int8")


def test_refuses_a_non_empty_target(tiny_clip_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    output = run_cli("models", "quantize", tiny_clip_dir, "--out", tmp_path, expect=2)
    assert "not empty" in output


def test_a_failed_run_leaves_no_half_written_folder_so_the_same_command_works_again(
    tiny_clip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "int8"
    monkeypatch.setitem(sys.modules, "onnxruntime.quantization", None)  # the quantize extra is missing
    assert "pip install 'photoseek[quantize]'" in run_cli("models", "quantize", tiny_clip_dir, "--out", out, expect=4)
    assert not out.exists()

    monkeypatch.delitem(sys.modules, "onnxruntime.quantization")
    monkeypatch.setattr("photoseek.models.quantize.quantize_tower", _interrupted)
    run_cli("models", "quantize", tiny_clip_dir, "--out", out, expect=130)  # Ctrl-C halfway
    assert not out.exists() and list(tmp_path.iterdir()) == []

    monkeypatch.undo()
    run_cli("models", "quantize", tiny_clip_dir, "--out", out)
    assert json.loads((out / "config.json").read_text())["model_id"].endswith("-int8")


def _interrupted(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"half a model")
    raise KeyboardInterrupt
