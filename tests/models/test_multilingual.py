"""Multilingual text towers (XLM-Roberta, NLLB-SigLIP, SigLIP 2, M-CLIP), loaded as users load them.

Tiny random-weight versions of each family go through the same exporter users run (or, for
M-CLIP, which open_clip does not build, Immich's two-input layout), load through ``load_clip``,
and must tokenise German, Japanese, Arabic, Hindi and emoji queries exactly as Hugging Face's
tokenizers do and embed them as the torch model does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from photoseek.models import list_known_models, load_clip
from photoseek.models.tokenizer import clean_text
from tests.helpers import draw_photo, run_cli, run_json

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")
pytest.importorskip("transformers")

from photoseek.models.export import create_open_clip, export_model, export_open_clip  # noqa: E402
from tests.models.multilingual import QUERIES, export_mclip, open_clip_configs  # noqa: E402

pytestmark = pytest.mark.torch
TEXTS = list(QUERIES.values())
FAMILIES = ("tiny-xlm-roberta-clip", "tiny-nllb-clip-siglip", "tiny-siglip2")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each open_clip family exported through `export_open_clip` from an architecture JSON."""
    root = tmp_path_factory.mktemp("multilingual")
    dirs = {}
    for arch, cfg in open_clip_configs(root).items():
        arch_file = root / f"{arch}.json"
        arch_file.write_text(json.dumps(cfg), encoding="utf-8")
        dirs[arch] = export_open_clip(arch, root / "models" / arch, random_weights=True, arch_config=arch_file)
    return dirs


@pytest.fixture(scope="module")
def mclip(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> tuple[Path, Any, Any]:
    return export_mclip(tmp_path_factory.mktemp("mclip") / "m-clip", tiny_clip_dir)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


@pytest.mark.parametrize("arch", FAMILIES)
def test_tokens_match_hugging_face(exported: dict[str, Path], arch: str) -> None:
    model = load_clip(path=exported[arch])
    reference = open_clip.get_tokenizer(arch)(TEXTS).numpy()  # AutoTokenizer plus open_clip's cleaning
    ids, mask = model.tokenizer(TEXTS)
    for name, ours, theirs in zip(QUERIES, ids, reference):
        np.testing.assert_array_equal(ours, theirs, err_msg=name)
    unknown = model.tokenizer._tokenizer.token_to_id("<unk>")
    for name in ("german", "japanese", "arabic", "hindi", "emoji"):
        real = ids[list(QUERIES).index(name)][mask[list(QUERIES).index(name)] == 1]
        assert np.mean(real == unknown) < 0.5, (name, real)  # the script was really tokenised


@pytest.mark.parametrize("arch", FAMILIES)
def test_embeddings_match_torch(exported: dict[str, Path], arch: str) -> None:
    reference_model = create_open_clip(arch, random_weights=True).model.eval()  # same seed as the export
    tokens = open_clip.get_tokenizer(arch)(TEXTS)
    with torch.no_grad():
        reference = reference_model.encode_text(tokens, normalize=True).numpy()
    cosines = _cosines(load_clip(path=exported[arch]).encode_texts(TEXTS), reference)
    assert cosines.min() >= 0.9999, dict(zip(QUERIES, cosines.round(6)))


def test_exporting_keeps_dropout_off(exported: dict[str, Path], tmp_path: Path) -> None:
    """torch.onnx.export used to leave the model in training mode, so its dropout made it drift."""
    arch = "tiny-xlm-roberta-clip"
    model = create_open_clip(arch, random_weights=True).model.eval()
    export_model(model, tmp_path / "again", arch=arch, model_cfg=open_clip.get_model_config(arch), model_id="x")
    assert not model.training
    tokens = open_clip.get_tokenizer(arch)(TEXTS)
    with torch.no_grad():
        reference = model.encode_text(tokens, normalize=True).numpy()
    assert _cosines(load_clip(path=tmp_path / "again").encode_texts(TEXTS), reference).min() >= 0.9999


def test_mclip_two_input_layout_matches_torch(mclip: tuple[Path, Any, Any]) -> None:
    path, module, hf_tokenizer = mclip
    model = load_clip(path=path)
    assert model.textual.input_names() == ["input_ids", "attention_mask"]
    ids, mask = model.tokenizer(TEXTS)
    # photoseek cleans every query as open_clip does (HTML entities, broken unicode, whitespace);
    # M-CLIP's own code does not, so the reference gets the cleaned text (only "mixed" changes).
    cleaned = [clean_text(text, "whitespace") for text in TEXTS]
    assert [name for name, a, b in zip(QUERIES, cleaned, TEXTS) if a != b] == ["mixed"]
    reference_ids = hf_tokenizer(cleaned, padding="max_length", max_length=77, truncation=True, return_tensors="np")
    np.testing.assert_array_equal(ids, reference_ids["input_ids"])
    np.testing.assert_array_equal(mask, reference_ids["attention_mask"])
    # M-CLIP itself pads to the longest text only; masked mean pooling must make that irrelevant.
    batch = hf_tokenizer(cleaned, padding=True, truncation=True, max_length=77, return_tensors="pt")
    with torch.no_grad():
        reference = module(batch["input_ids"], batch["attention_mask"]).numpy()
    cosines = _cosines(model.encode_texts(TEXTS), reference)
    assert cosines.min() >= 0.9999, dict(zip(QUERIES, cosines.round(6)))


def test_multilingual_model_indexes_and_answers_non_english_queries(exported: dict[str, Path], tmp_path: Path) -> None:
    root, db = tmp_path / "photos", tmp_path / "catalog.db"
    for colour in ("red", "blue"):
        draw_photo(root / f"{colour}.jpg", colour)
    run_json("index", root, "--db", db, "--model-path", exported["tiny-xlm-roberta-clip"])
    for name in ("german", "japanese", "arabic", "hindi", "emoji"):
        hits = run_json("search", QUERIES[name], "--db", db, "--mode", "clip", "--min-score", "-1")["results"]
        assert len(hits) == 2, name


def test_models_list_marks_multilingual_models() -> None:
    listed = {m["name"]: m["multilingual"] for m in run_json("models", "list")["models"]}
    assert {name for name, multi in listed.items() if multi} == {
        "XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k", "XLM-Roberta-Large-Vit-B-16Plus",
        "nllb-clip-base-siglip__v1", "ViT-B-16-SigLIP2__webli",
    }  # fmt: skip
    assert not listed["ViT-B-32__laion2b-s34b-b79k"]
    table = run_cli("models", "list")
    assert "XLM-Roberta-Large-Vit-B-16Plus *" in table and "multilingual" in table
    assert all(m.notes for m in list_known_models() if m.multilingual)
