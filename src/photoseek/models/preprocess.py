"""Image preprocessing that reproduces open_clip's eval transform step for step, without torch.

The embeddings are only as good as the match with training-time preprocessing, so this follows
open_clip's ``image_transform`` exactly: resize on the image in its original mode (palette images
therefore resize with nearest, RGBA with premultiplied alpha, as PIL does), center crop or pad,
then ``convert("RGB")``, scale to [0, 1] and normalise with the model's mean/std. Rounding rules
(``int`` for the long side, ``round`` for crop offsets and keep-ratio sizes) are torchvision's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageOps

_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
RESIZE_MODES = ("shortest", "squash", "longest")


def _triple(value: float | Sequence[float]) -> np.ndarray:
    values = [value] * 3 if isinstance(value, (int, float)) else list(value)
    return np.asarray(values, dtype=np.float32).reshape(3, 1, 1)


class ImagePreprocessor:
    """Turns a PIL image into the float32 (3, H, W) array a visual tower expects."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        size = cfg.get("size", 224)
        self.height, self.width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[-1]))
        self.resize_mode: str = cfg.get("resize_mode") or "shortest"
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"Unsupported resize_mode {self.resize_mode!r}; expected one of {RESIZE_MODES}.")
        bilinear = cfg.get("interpolation") == "bilinear"
        self.resample = Image.Resampling.BILINEAR if bilinear else Image.Resampling.BICUBIC
        self.fill_color = int(cfg.get("fill_color", 0))
        self.mean = _triple(cfg.get("mean") or _OPENAI_MEAN)
        self.std = _triple(cfg.get("std") or _OPENAI_STD)

    @property
    def size(self) -> tuple[int, int]:
        """Output (height, width)."""
        return self.height, self.width

    def __call__(self, image: Image.Image) -> np.ndarray:
        return self.normalize(self.geometry(image))

    def geometry(self, image: Image.Image) -> Image.Image:
        """Resize and crop/pad to the model's input size, still in the image's own mode."""
        if self.resize_mode == "squash":
            return _resize(image, self.height, self.width, self.resample)
        if self.resize_mode == "longest":
            image = self._resize_keep_ratio(image, longest=True, resample=self.resample)
            return _center_crop_or_pad(image, self.height, self.width, self.fill_color)
        if self.height == self.width:
            image = _resize_shortest(image, self.height, self.resample)
        else:  # open_clip's keep-ratio path for non-square inputs is always bicubic
            image = self._resize_keep_ratio(image, longest=False, resample=Image.Resampling.BICUBIC)
        return _center_crop_or_pad(image, self.height, self.width, 0)

    def normalize(self, image: Image.Image) -> np.ndarray:
        """``convert("RGB")``, scale to [0, 1], then (x - mean) / std, channels first."""
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / np.float32(255.0)
        out: np.ndarray = (rgb - self.mean) / self.std
        return np.ascontiguousarray(out, dtype=np.float32)

    def _resize_keep_ratio(self, image: Image.Image, *, longest: bool, resample: Image.Resampling) -> Image.Image:
        ratio_h = image.height / self.height
        ratio_w = image.width / self.width
        ratio = max(ratio_h, ratio_w) if longest else min(ratio_h, ratio_w)
        return _resize(image, round(image.height / ratio), round(image.width / ratio), resample)


def _resize(image: Image.Image, height: int, width: int, resample: Image.Resampling) -> Image.Image:
    if (image.height, image.width) == (height, width):
        return image
    return image.resize((width, height), resample)


def _resize_shortest(image: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(size * long / short)
    new_w, new_h = (size, new_long) if width <= height else (new_long, size)
    return _resize(image, new_h, new_w, resample)


def _center_crop_or_pad(image: Image.Image, height: int, width: int, fill: int) -> Image.Image:
    if width > image.width or height > image.height:
        image = _pad(
            image,
            left=(width - image.width) // 2 if width > image.width else 0,
            top=(height - image.height) // 2 if height > image.height else 0,
            right=(width - image.width + 1) // 2 if width > image.width else 0,
            bottom=(height - image.height + 1) // 2 if height > image.height else 0,
            fill=fill,
        )
        if image.size == (width, height):
            return image
    top = int(round((image.height - height) / 2.0))
    left = int(round((image.width - width) / 2.0))
    return image.crop((left, top, left + width, top + height))


def _pad(image: Image.Image, *, left: int, top: int, right: int, bottom: int, fill: int) -> Image.Image:
    bands = len(image.getbands())
    color: int | tuple[int, ...] = (fill,) * bands if bands > 1 else fill
    padded = ImageOps.expand(image, border=(left, top, right, bottom), fill=color)
    if image.mode == "P":
        palette = image.getpalette()
        if palette is not None:
            padded.putpalette(palette)
    return padded
