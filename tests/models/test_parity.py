"""The exported ONNX model with our preprocessing and tokenizer must reproduce open_clip in torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photoseek.models import ClipModel, load_clip
from photoseek.models.preprocess import ImagePreprocessor

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")
pytestmark = pytest.mark.torch  # slow: torch export / training (deselect with -m "not torch")

from open_clip.transform import PreprocessCfg, image_transform_v2  # noqa: E402

from tests.conftest import TINY_CLIP_ARCH  # noqa: E402

TEXTS = [
    "a photo of a cat",
    "Hello, World!!! What's up? (parentheses) [brackets] {braces} #hashtag @mention",
    "naïve café — Straße, 東京タワー, Привет мир, 🐱🐶 emoji",
    "“curly quotes” and ‘single’ ones, &amp; html &lt;b&gt; entities",
    "   multiple   spaces\tand\nnewlines  ",
    "UPPER CASE and MiXeD cAsE, numbers 12345 and 3.14159",
    "it's can't we'll they've I'm she'd you're",
    " ".join(["a very long caption that keeps going"] * 30),
    "",
]


def _photo(width: int, height: int, seed: int) -> Image.Image:
    """Smooth gradients plus noise: real-photo-like content that exercises the resampling filter."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / max(width, 1), y * 255 / max(height, 1), (x + y) % 256], axis=-1)
    noisy = base + rng.normal(0, 25, size=base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def _images() -> dict[str, Image.Image]:
    rgb = _photo(120, 90, 0)
    rgba = _photo(64, 80, 1).convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (80, 1))))
    i16 = Image.fromarray(np.asarray(_photo(70, 50, 2).convert("L"), dtype=np.uint16) * 257)
    assert i16.mode == "I;16"
    return {
        "rgb": rgb,
        "rgba": rgba,
        "palette": _photo(100, 75, 3).quantize(64),
        "cmyk": _photo(90, 120, 4).convert("CMYK"),
        "gray": _photo(55, 66, 5).convert("L"),
        "i16": i16,
        "tall": _photo(31, 257, 6),
        "wide": _photo(401, 37, 7),
        "small": _photo(20, 13, 8),
        "exact": _photo(48, 48, 9),
        "one-pixel": _photo(1, 1, 10),
        "odd": _photo(49, 97, 11),
    }


@pytest.fixture(scope="module")
def torch_model(tiny_clip_dir: Path) -> object:
    """The same random weights the exporter used: same seed, same architecture."""
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_CLIP_ARCH)
    model.eval()
    return model


@pytest.fixture(scope="module")
def onnx_model(tiny_clip_dir: Path) -> ClipModel:
    return load_clip(path=tiny_clip_dir)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def test_image_embeddings_match_open_clip(torch_model: object, onnx_model: ClipModel) -> None:
    images = _images()
    transform = image_transform_v2(
        PreprocessCfg(**open_clip.get_model_preprocess_cfg(torch_model)), is_train=False
    )
    reference_pixels = torch.stack([transform(im) for im in images.values()])
    ours_pixels = np.stack([onnx_model.preprocess(im) for im in images.values()])
    np.testing.assert_allclose(ours_pixels, reference_pixels.numpy(), atol=1e-5, rtol=0)

    with torch.no_grad():
        reference = torch_model.encode_image(reference_pixels, normalize=True).numpy()
    ours = onnx_model.encode_images(list(images.values()))
    cosines = _cosines(ours, reference)
    assert cosines.min() >= 0.9999, dict(zip(images, cosines.round(6)))


@pytest.mark.parametrize(
    "cfg",
    [
        {"size": 48, "resize_mode": "squash"},
        {"size": 48, "resize_mode": "longest", "fill_color": 0},
        {"size": 48, "resize_mode": "longest", "fill_color": 128},
        {"size": [40, 56], "resize_mode": "shortest"},
        {"size": 48, "resize_mode": "shortest", "interpolation": "bilinear"},
        {"size": 48, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
    ],
)
def test_preprocessing_modes_match_open_clip(cfg: dict[str, object]) -> None:
    full = {**open_clip.get_model_preprocess_cfg(open_clip.create_model(TINY_CLIP_ARCH)), **cfg}
    transform = image_transform_v2(PreprocessCfg(**full), is_train=False)
    ours = ImagePreprocessor(full)
    for name, image in _images().items():
        np.testing.assert_allclose(ours(image), transform(image).numpy(), atol=1e-5, rtol=0, err_msg=name)


def test_token_ids_match_open_clip(onnx_model: ClipModel) -> None:
    reference = open_clip.get_tokenizer(TINY_CLIP_ARCH)(TEXTS).numpy()
    ids, mask = onnx_model.tokenizer(TEXTS)
    np.testing.assert_array_equal(ids, reference)
    assert ids.shape == (len(TEXTS), 77)
    assert mask[-1].sum() == 2  # empty text: start and end of text only


def test_text_embeddings_match_open_clip(torch_model: object, onnx_model: ClipModel) -> None:
    tokens = open_clip.get_tokenizer(TINY_CLIP_ARCH)(TEXTS)
    with torch.no_grad():
        reference = torch_model.encode_text(tokens, normalize=True).numpy()
    cosines = _cosines(onnx_model.encode_texts(TEXTS), reference)
    assert cosines.min() >= 0.9999, cosines.round(6)
