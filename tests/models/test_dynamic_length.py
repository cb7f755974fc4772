"""Text towers exported with a dynamic sequence axis: texts padded to the longest of their batch
embed exactly as when padded to the full context length, and fixed-length exports keep working."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from photoseek.models import ClipModel, load_clip
from tests.helpers import TINY_CLIP_ARCH, TINY_CLIP_CONFIG, shared_data

pytest.importorskip("torch")
pytest.importorskip("open_clip")

from photoseek.models import dynamic_text  # noqa: E402
from photoseek.models.export import export_open_clip  # noqa: E402

COCO_CAPTIONS = shared_data("coco-mini", "captions_by_file.json")
AWKWARD = [
    "",
    "a",
    "naïve café — Straße, 東京タワー, Привет мир, 🐱🐶 emoji",
    "“curly quotes” and ‘single’ ones, &amp; html &lt;b&gt; entities",
    " ".join(["a very long caption that keeps going"] * 30),  # truncated at 77 tokens
]


@pytest.fixture(scope="module")
def fixed_clip_dir(tmp_path_factory: pytest.TempPathFactory, tiny_clip_config: Path) -> Path:
    """The same tiny model (same seed) exported as before this change: a 77-token text input."""
    out = tmp_path_factory.mktemp("models") / "tiny-clip-fixed"
    return export_open_clip(
        TINY_CLIP_ARCH, out, random_weights=True, arch_config=tiny_clip_config, seed=0, dynamic_text_length=False
    )


@pytest.fixture(scope="module")
def captions() -> list[str]:
    """300 human COCO captions (6 to 40-odd tokens) plus awkward texts."""
    if not COCO_CAPTIONS.exists():
        pytest.skip("needs shared COCO data")
    by_file = json.loads(COCO_CAPTIONS.read_text(encoding="utf-8"))
    return [caption for name in sorted(by_file) for caption in by_file[name]][:300] + AWKWARD


def _text_shape(model_dir: Path) -> list[object]:
    (text,) = ort.InferenceSession((model_dir / "textual/model.onnx").as_posix()).get_inputs()
    return list(text.shape)


def test_export_marks_a_dynamic_sequence_axis(tiny_clip_dir: Path, fixed_clip_dir: Path) -> None:
    config = json.loads((tiny_clip_dir / "config.json").read_text())
    assert config["text_dynamic_length"] is True
    batch, length = _text_shape(tiny_clip_dir)
    assert isinstance(batch, str) and isinstance(length, str)
    assert "text_dynamic_length" not in json.loads((fixed_clip_dir / "config.json").read_text())
    assert _text_shape(fixed_clip_dir)[1] == 77


def test_tokens_are_padded_to_the_longest_text_only_where_the_model_allows(
    tiny_clip_dir: Path, fixed_clip_dir: Path
) -> None:
    dynamic, fixed = load_clip(path=tiny_clip_dir).tokenizer, load_clip(path=fixed_clip_dir).tokenizer
    ids, mask = dynamic(["a photo of a cat", "a dog"])
    assert ids.shape == mask.shape == (2, 7)  # start, 5 words, end
    assert mask.tolist() == [[1] * 7, [1, 1, 1, 1, 0, 0, 0]]
    assert dynamic([AWKWARD[-1], "a dog"])[0].shape == (2, 77)  # capped at the context length
    assert fixed(["a photo of a cat"])[0].shape == (1, 77)
    np.testing.assert_array_equal(fixed(["a photo of a cat", "a dog"])[0][:, :7], ids)


def _embed_one_by_one(model: ClipModel, texts: list[str]) -> np.ndarray:
    return np.concatenate([model.encode_texts([text]) for text in texts])


def test_dynamic_length_embeddings_equal_the_fixed_length_ones(
    tiny_clip_dir: Path, fixed_clip_dir: Path, captions: list[str]
) -> None:
    """Same weights, two exports: every text embeds the same at any batch size (new model objects
    each time, so the query cache cannot answer)."""
    reference = load_clip(path=fixed_clip_dir).encode_texts(captions)
    np.testing.assert_allclose(
        _embed_one_by_one(load_clip(path=fixed_clip_dir), captions[:40]), reference[:40], atol=1e-6, rtol=0
    )
    np.testing.assert_allclose(load_clip(path=tiny_clip_dir).encode_texts(captions), reference, atol=1e-6, rtol=0)
    np.testing.assert_allclose(_embed_one_by_one(load_clip(path=tiny_clip_dir), captions), reference, atol=1e-6, rtol=0)
    for size in (2, 7, 20):
        model = load_clip(path=tiny_clip_dir)
        batches = [model.encode_texts(captions[i : i + size]) for i in range(0, len(captions), size)]
        np.testing.assert_allclose(np.concatenate(batches), reference, atol=1e-6, rtol=0, err_msg=f"batch {size}")


def test_an_unmarked_dynamic_graph_is_fed_full_length(tiny_clip_dir: Path, tmp_path: Path) -> None:
    """Without the config mark the tokenizer pads to the context length, whatever the graph takes."""
    copy = Path(shutil.copytree(tiny_clip_dir, tmp_path / "unmarked"))
    config = json.loads((copy / "config.json").read_text())
    del config["text_dynamic_length"]
    (copy / "config.json").write_text(json.dumps(config))
    unmarked = load_clip(path=copy)
    assert unmarked.tokenizer(["a dog"])[0].shape == (1, 77)
    np.testing.assert_allclose(
        unmarked.encode_texts(AWKWARD), load_clip(path=tiny_clip_dir).encode_texts(AWKWARD), atol=1e-6, rtol=0
    )


def test_a_tower_that_sees_the_padding_keeps_a_fixed_length(tmp_path: Path) -> None:
    """Without the causal mask, padding changes the result: such a tower is exported as before."""
    cfg = {**TINY_CLIP_CONFIG, "text_cfg": {**TINY_CLIP_CONFIG["text_cfg"], "no_causal_mask": True}}
    arch = tmp_path / "tiny-bidirectional.json"
    arch.write_text(json.dumps(cfg))
    out = export_open_clip("tiny-bidirectional", tmp_path / "out", random_weights=True, arch_config=arch)
    assert "text_dynamic_length" not in json.loads((out / "config.json").read_text())
    assert _text_shape(out)[1] == 77
    assert load_clip(path=out).tokenizer(["a dog"])[0].shape == (1, 77)


def test_left_padding_tokenizers_keep_the_full_length(tiny_clip_dir: Path) -> None:
    from photoseek.models.tokenizer import TextTokenizer

    model = load_clip(path=tiny_clip_dir)
    cfg = {**model.layout.tokenizer_cfg, "padding_side": "left"}
    left = TextTokenizer(model.layout.tokenizer_file, cfg, model.layout.text_cfg, pad_to_longest=True)
    ids, _ = left(["a dog"])
    assert ids.shape == (1, 77) and ids[0, -1] != 0


def test_the_export_check_catches_a_tower_that_reads_the_padding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the structural test let a tower through that pools the last position (which padding
    moves), embedding sample texts at two lengths tells, and the export stays fixed-length."""
    cfg = {**TINY_CLIP_CONFIG, "text_cfg": {**TINY_CLIP_CONFIG["text_cfg"], "pool_type": "last"}}
    arch = tmp_path / "tiny-last-token.json"
    arch.write_text(json.dumps(cfg))
    monkeypatch.setattr(dynamic_text, "supports_dynamic_length", lambda model: True)
    out = export_open_clip("tiny-last-token", tmp_path / "out", random_weights=True, arch_config=arch)
    assert "text_dynamic_length" not in json.loads((out / "config.json").read_text())
    assert _text_shape(out)[1] == 77
