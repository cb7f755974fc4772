"""CLIP model runtime: preprocessing, tokenising and the two ONNX towers behind one small API."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from photoseek.models.layout import ModelLayout
from photoseek.models.runtime import Runtime
from photoseek.models.session import LazySession

if TYPE_CHECKING:
    from PIL import Image

    from photoseek.models.preprocess import ImagePreprocessor
    from photoseek.models.tokenizer import TextTokenizer

IMAGE_BATCH = 32
TEXT_BATCH = 64
TEXT_CACHE_SIZE = 8192
"""Query texts whose embeddings are kept (16 MB at 512 dimensions)."""


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Unit-length rows, so a dot product is a cosine; zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    out: np.ndarray = vectors / np.maximum(norms, np.float32(1e-12))
    return out


class ClipModel:
    """A CLIP model directory ready for inference; each tower loads on its first use, on `runtime`'s
    device, and can be unloaded apart from the other (`unload`)."""

    def __init__(self, layout: ModelLayout, model_id: str | None = None, runtime: Runtime | None = None) -> None:
        self.layout = layout
        self.model_id: str = model_id or layout.model_id()
        self.runtime = runtime or Runtime()
        self.visual = LazySession(layout.visual_model, self.runtime)
        self.textual = LazySession(layout.textual_model, self.runtime)
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._text_cache_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClipModel({self.model_id!r}, dim={self.dim}, image_size={self.image_size}, path={self.layout.root})"

    def unload(self) -> None:
        """Release both towers; each loads again on its next use."""
        self.visual.unload()
        self.textual.unload()

    def providers(self) -> list[str]:
        """Execution providers running the model, best first: a loaded tower's, else the planned ones."""
        loaded = self.visual if self.visual.loaded or not self.textual.loaded else self.textual
        return loaded.providers()

    @cached_property
    def dim(self) -> int:
        """Embedding size, from config.json, else from the textual graph's output."""
        embed_dim = self.layout.config.get("embed_dim")
        if isinstance(embed_dim, int):
            return embed_dim
        return int(self.encode_texts([""]).shape[1])

    @cached_property
    def score_calibration(self) -> tuple[float, float] | None:
        """(logit_scale, logit_bias) of a sigmoid-trained model (SigLIP), from config.json where the
        exporter wrote them: P(match) = sigmoid(logit_scale * cosine + logit_bias). None for softmax
        CLIP, and for configs holding only open_clip's untrained `init_logit_bias`."""
        scale, bias = self.layout.config.get("logit_scale"), self.layout.config.get("logit_bias")
        if isinstance(scale, (int, float)) and isinstance(bias, (int, float)):
            return float(scale), float(bias)
        return None

    @cached_property
    def _preprocessor(self) -> ImagePreprocessor:
        """Built on first use: a text query never needs Pillow (7 ms of imports)."""
        from photoseek.models.preprocess import ImagePreprocessor

        return ImagePreprocessor(self.layout.preprocess_cfg)

    @property
    def image_size(self) -> int:
        """Longest input side in pixels; the decoder may shrink JPEGs to about this size."""
        return max(self._preprocessor.size)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """float32 (3, H, W), exactly as open_clip's eval transform would produce it."""
        return self._preprocessor(image)

    def encode_pixels(self, batch: np.ndarray) -> np.ndarray:
        """(n, 3, H, W) preprocessed pixels to (n, dim) unit vectors, in chunks."""
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 4:
            raise ValueError(f"expected (n, 3, H, W) pixels, got shape {batch.shape}")
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = [
            self.visual.run({"image": np.ascontiguousarray(batch[i : i + IMAGE_BATCH])})
            for i in range(0, len(batch), IMAGE_BATCH)
        ]
        return l2_normalize(np.concatenate(chunks))

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """PIL images to (n, dim) unit vectors; preprocesses one chunk at a time to bound memory."""
        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = [
            self.encode_pixels(np.stack([self.preprocess(im) for im in images[i : i + IMAGE_BATCH]]))
            for i in range(0, len(images), IMAGE_BATCH)
        ]
        return np.concatenate(chunks)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts to (n, dim) unit vectors; texts seen recently come from a small cache, since the
        text tower costs tens of milliseconds a query (a search box repeats them, an evaluation asks
        the same captions in every mode)."""
        if isinstance(texts, str):
            raise TypeError("encode_texts takes a sequence of strings, not a single string")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._text_cache_lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._text_cache))
        fresh = self._encode_uncached(missing) if missing else ()
        with self._text_cache_lock:
            self._text_cache.update(zip(missing, fresh))
            vectors = np.stack([self._text_cache[t] for t in texts])
            for text in texts:
                self._text_cache.move_to_end(text)
            while len(self._text_cache) > TEXT_CACHE_SIZE:
                self._text_cache.popitem(last=False)
        return vectors

    def _encode_uncached(self, texts: list[str]) -> np.ndarray:
        chunks = [
            self.textual.run(self._text_feeds(texts[i : i + TEXT_BATCH])) for i in range(0, len(texts), TEXT_BATCH)
        ]
        return l2_normalize(np.concatenate(chunks))

    @cached_property
    def tokenizer(self) -> TextTokenizer:
        from photoseek.models.tokenizer import TextTokenizer  # tokenizers loads only when text is embedded

        return TextTokenizer(
            self.layout.tokenizer_file,
            self.layout.tokenizer_cfg,
            self.layout.text_cfg,
            pad_to_longest=self.layout.text_dynamic_length,
        )

    def _text_feeds(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """open_clip graphs take "text"; M-CLIP graphs take "input_ids" and "attention_mask"."""
        ids, mask = self.tokenizer(texts)
        names = self.textual.input_names()
        if "text" in names:
            return {"text": ids.astype(self.textual.int_input_dtype("text"))}
        feeds = {"input_ids": ids.astype(self.textual.int_input_dtype("input_ids"))}
        if "attention_mask" in names:
            feeds["attention_mask"] = mask.astype(self.textual.int_input_dtype("attention_mask"))
        return feeds


def open_model_dir(path: str | Path, model_id: str | None = None, runtime: Runtime | None = None) -> ClipModel:
    """A ``ClipModel`` for a local directory in the Immich layout, run by ``runtime`` (default: auto)."""
    return ClipModel(ModelLayout.open(path), model_id=model_id, runtime=runtime)
