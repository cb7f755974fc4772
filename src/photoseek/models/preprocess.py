"""Image preprocessing that reproduces open_clip's eval transform step for step, without torch.

The embeddings are only as good as the match with training-time preprocessing, so this follows
open_clip's ``image_transform`` exactly: resize on the image in its original mode (palette images
therefore resize with nearest, RGBA with premultiplied alpha, as PIL does), center crop or pad,
then ``convert("RGB")``, scale to [0, 1] and normalise with the model's mean/std. Rounding rules
(``int`` for the long side, ``round`` for crop offsets and keep-ratio sizes) are torchvision's.

One deliberate difference: a picture whose resized copy would be far larger than the output (a
100000x1 strip resizes to 22400000x224) is resized straight into the crop window (Pillow's
``box``), so memory stays that of the output whatever the aspect ratio. Pillow may then run its
two filter passes in another order than for the whole resize, so pixels can differ by a few
levels of rounding and clipping, and only for such pictures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageOps

_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
RESIZE_MODES = ("shortest", "squash", "longest")
MAX_RESIZED_SHARE = 16
"""A resized copy may hold this many times the output's pixels (any aspect ratio up to 16:1);
beyond that, only the crop window is resized."""


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
            image = _resize(image, *self._keep_ratio_size(image, longest=True), self.resample)
            return _center_crop_or_pad(image, self.height, self.width, self.fill_color)
        if self.height == self.width:
            return self._resize_and_crop(image, _shortest_size(image, self.height), self.resample)
        # open_clip's keep-ratio path for non-square inputs is always bicubic
        return self._resize_and_crop(image, self._keep_ratio_size(image, longest=False), Image.Resampling.BICUBIC)

    def normalize(self, image: Image.Image) -> np.ndarray:
        """``convert("RGB")``, scale to [0, 1], then (x - mean) / std, channels first."""
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / np.float32(255.0)
        out: np.ndarray = (rgb - self.mean) / self.std
        return np.ascontiguousarray(out, dtype=np.float32)

    def _keep_ratio_size(self, image: Image.Image, *, longest: bool) -> tuple[int, int]:
        """(height, width) scaled by one ratio so that the longest (or shortest) side fits; never 0."""
        ratio_h = image.height / self.height
        ratio_w = image.width / self.width
        ratio = max(ratio_h, ratio_w) if longest else min(ratio_h, ratio_w)
        return max(1, round(image.height / ratio)), max(1, round(image.width / ratio))

    def _resize_and_crop(self, image: Image.Image, size: tuple[int, int], resample: Image.Resampling) -> Image.Image:
        """Resize to `size` (height, width), then center crop (or pad) to the output size.

        A resized copy over `MAX_RESIZED_SHARE` outputs is never made: only the crop window is.
        """
        new_h, new_w = size
        if new_h * new_w <= MAX_RESIZED_SHARE * self.height * self.width or new_h < self.height or new_w < self.width:
            return _center_crop_or_pad(_resize(image, new_h, new_w, resample), self.height, self.width, 0)
        top = int(round((new_h - self.height) / 2.0))
        left = int(round((new_w - self.width) / 2.0))
        scale_x, scale_y = image.width / new_w, image.height / new_h
        box = (left * scale_x, top * scale_y, (left + self.width) * scale_x, (top + self.height) * scale_y)
        return image.resize((self.width, self.height), resample, box=box)


def _resize(image: Image.Image, height: int, width: int, resample: Image.Resampling) -> Image.Image:
    if (image.height, image.width) == (height, width):
        return image
    return image.resize((width, height), resample)


def _shortest_size(image: Image.Image, size: int) -> tuple[int, int]:
    """(height, width) with the shorter side `size` (torchvision's Resize(int))."""
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(size * long / short)
    return (new_long, size) if width <= height else (size, new_long)


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
