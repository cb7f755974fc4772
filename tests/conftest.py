"""Shared fixtures: a tiny random-weight CLIP exported once per session through our own exporter, and tiny
random-weight captioner (BLIP) and detector (DETR) folders saved like Hub models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import BLIP_WORDS, TINY_CLIP_ARCH, TINY_CLIP_CONFIG


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
    from photoseek.models.export import export_open_clip

    out = tmp_path_factory.mktemp("models") / "tiny-clip"
    return export_open_clip(TINY_CLIP_ARCH, out, random_weights=True, arch_config=tiny_clip_config, seed=0)


@pytest.fixture(scope="session")
def text_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide model cache, so the default text model is exported to ONNX once per run."""
    pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("model-cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("PHOTOSEEK_MODEL_DIR", str(folder))
    from photoseek.text.embedder import load_text_embedder

    load_text_embedder()  # export now, so its warnings do not land in a CLI test's output
    yield folder
    patch.undo()


@pytest.fixture(scope="session")
def tiny_blip_dir(tmp_path_factory) -> Path:
    """A random-weight BLIP captioner with a 24-word vocabulary, saved like a Hub folder."""
    torch = pytest.importorskip("torch")
    from transformers import (
        BertTokenizerFast,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    folder = tmp_path_factory.mktemp("tiny-blip")
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", *BLIP_WORDS])}
    tokenizer = BertTokenizerFast(vocab=vocab, bos_token="[DEC]")
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = BlipConfig(
        vision_config={**small, "image_size": 32, "patch_size": 16},
        text_config={**small, "vocab_size": len(vocab), "encoder_hidden_size": 32, "bos_token_id": 5,
                     "pad_token_id": 0, "sep_token_id": 3, "eos_token_id": 3, "max_position_embeddings": 64},
    )
    torch.manual_seed(1)
    BlipForConditionalGeneration(config).save_pretrained(folder)
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_detr_dir(tmp_path_factory) -> Path:
    """A random-weight DETR whose classifier is biased to 'dog', so every query detects a dog."""
    torch = pytest.importorskip("torch")
    from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor, ResNetConfig

    folder = tmp_path_factory.mktemp("tiny-detr")
    labels = {0: "person", 1: "dog", 2: "N/A"}
    config = DetrConfig(
        backbone_config=ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], out_features=["stage2"]),
        use_timm_backbone=False, use_pretrained_backbone=False, d_model=32, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        num_queries=3, id2label=labels, label2id={v: k for k, v in labels.items()},
    )
    torch.manual_seed(0)
    model = DetrForObjectDetection(config)
    with torch.no_grad():
        model.class_labels_classifier.bias.copy_(torch.tensor([0.0, 20.0, 0.0, 0.0]))
    model.save_pretrained(folder)
    DetrImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}).save_pretrained(folder)
    return folder
