"""`--text-model FOLDER` that is not a sentence-transformers model: one line saying what to give, at once.

It used to be a transformers `ValueError` traceback (after the CLIP model had loaded); nothing is
remembered or indexed when the folder is refused.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import draw_photo, run_cli, run_json

WORDS = "is not a sentence-transformers model folder"


@pytest.fixture
def library(tmp_path: Path, tiny_clip_dir: Path) -> tuple[Path, Path]:
    photos = tmp_path / "photos"
    draw_photo(photos / "a.jpg", "red")
    db = tmp_path / "catalog.db"
    run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    return photos, db


def _refused(*args: object) -> str:
    started = time.monotonic()
    output = run_cli(*args, expect=4)
    assert time.monotonic() - started < 10
    assert len(output.strip().splitlines()) == 1 and "Traceback" not in output, output
    return output


@pytest.mark.parametrize("command", ["index", "search"])
def test_a_clip_model_folder_is_refused_in_one_line(command, library, tiny_clip_dir):
    photos, db = library
    run_cli("describe", photos / "a.jpg", "a red ball", "--db", db)  # an image with text: search uses the model
    target = photos if command == "index" else "red"
    output = _refused(command, target, "--db", db, "--text-model", tiny_clip_dir)
    assert f"{tiny_clip_dir} {WORDS}" in output and "tokenizer.json" in output and "SentenceTransformer" in output
    assert run_json("status", "--db", db)["text_model"] is None  # nothing remembered


def test_an_empty_folder_is_refused_before_a_new_catalog_is_made(tmp_path, tiny_clip_dir):
    (tmp_path / "empty").mkdir()
    draw_photo(tmp_path / "photos" / "a.jpg", "red")
    db = tmp_path / "new.db"
    output = _refused("index", tmp_path / "photos", "--db", db, "--text-model", tmp_path / "empty",
                      "--model-path", tiny_clip_dir)
    assert WORDS in output
    assert not db.exists()


def test_a_tokenizer_file_that_is_not_one_is_refused(library, tmp_path):
    photos, db = library
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "tokenizer.json").write_text("{}")
    (folder / "model.onnx").write_bytes(b"not onnx")
    output = _refused("index", photos, "--db", db, "--text-model", folder)
    assert "is not a tokenizer the tokenizers library reads" in output


def test_weights_transformers_cannot_load_are_refused(library, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    photos, db = library
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "tokenizer.json").write_text("{}")
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"not weights")
    output = run_cli("index", photos, "--db", db, "--text-model", folder, expect=4)
    assert len(output.strip().splitlines()) == 1 and "Traceback" not in output, output
    assert f"transformers cannot load the text model in {folder}" in output
    assert run_json("status", "--db", db)["text_model"] is None
