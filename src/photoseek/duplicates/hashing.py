"""Perceptual hashes: 64 bits that stay (nearly) the same when a picture is resized,
recompressed, re-encoded, brightened, framed or slightly cropped.

The hash is the sign of the 8x8 lowest-frequency DCT coefficients of the picture shrunk
to 32x32 grey (a pHash that thresholds at zero instead of at the median). Thresholding at
zero makes a quarter turn of the picture an exact bit permutation plus a fixed bit flip
(the DCT of a transposed image is the transposed DCT; mirroring negates odd frequencies),
so rotated copies are found by comparing against `rotations()` of a stored hash without
decoding anything again. The DC bit, which is always positive, holds the mean brightness
test instead, which rotation leaves unchanged as well. A uniform frame (a border added
by an editor) is trimmed first, so framed copies hash like the original.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

HASH_BITS = 64
_SIDE = 32
_LOW = 8
_TRIM_SIDE = 256
"""Borders are looked for on a copy this size: enough to see an 8-px frame on a 4k photo."""
_TRIM_MAX_SHARE = 5
"""At most 1/5 of each side is trimmed, so a dark sky or a white wall is not eaten away."""
_FLAT_STD, _FLAT_STEP = 4.0, 6.0


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix: `D @ x` is the DCT of column vector x."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    matrix[0] /= np.sqrt(2.0)
    return matrix


_DCT_LOW = _dct_matrix(_SIDE)[:_LOW]
_ODD = (np.arange(_LOW) % 2).astype(bool)


def perceptual_hash(image: Image.Image) -> int:
    """The 64-bit hash of an (upright) picture, as an unsigned int."""
    grey = image.convert("L")
    grey.thumbnail((_TRIM_SIDE, _TRIM_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    small = _trim_frame(grey).resize((_SIDE, _SIDE), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.float64)
    coefficients = _DCT_LOW @ pixels @ _DCT_LOW.T
    bits = coefficients > 0
    bits[0, 0] = pixels.mean() > 127.5
    return int(_pack(bits[None])[0])


def _trim_frame(grey: Image.Image) -> Image.Image:
    """Cut away flat rows and columns along each edge (a frame), never more than a fifth."""
    values = np.asarray(grey, dtype=np.float32)
    top, bottom = _flat_edge(values), _flat_edge(values[::-1])
    left, right = _flat_edge(values.T), _flat_edge(values.T[::-1])
    if not (top or bottom or left or right):
        return grey
    height, width = values.shape
    return grey.crop((left, top, width - right, height - bottom))


def _flat_edge(values: np.ndarray) -> int:
    """How many leading rows have one flat colour, the same as the first row's."""
    reference = float(values[0].mean())
    for count, row in enumerate(values[: len(values) // _TRIM_MAX_SHARE]):
        if row.std() >= _FLAT_STD or abs(float(row.mean()) - reference) >= _FLAT_STEP:
            return count
    return len(values) // _TRIM_MAX_SHARE


def _pack(bits: np.ndarray) -> np.ndarray:
    """(n, 8, 8) booleans -> n uint64, bit (u, v) at position 63 - (8u + v)."""
    return np.packbits(bits.reshape(len(bits), HASH_BITS), axis=1).view(">u8").ravel().astype(np.uint64)


def _unpack(hashes: np.ndarray) -> np.ndarray:
    """n uint64 -> (n, 8, 8) booleans; the inverse of `_pack`."""
    as_bytes = np.ascontiguousarray(hashes, dtype=np.uint64).astype(">u8").view(np.uint8)
    return np.unpackbits(as_bytes.reshape(-1, 8), axis=1).reshape(-1, _LOW, _LOW).astype(bool)


def rotations(hashes: np.ndarray) -> list[np.ndarray]:
    """The hashes the same pictures would have if turned by 0, 90, 180 and 270 degrees."""
    bits = _unpack(hashes)
    quarter = bits.transpose(0, 2, 1) ^ _ODD[None, :, None]
    half = bits ^ (_ODD[:, None] ^ _ODD[None, :])[None]
    three_quarters = bits.transpose(0, 2, 1) ^ _ODD[None, None, :]
    return [np.asarray(hashes, dtype=np.uint64), _pack(quarter), _pack(half), _pack(three_quarters)]


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise distance between uint64 hashes (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def to_signed(value: int) -> int:
    """An unsigned 64-bit hash as SQLite's signed INTEGER."""
    return value - (1 << 64) if value >= 1 << 63 else value


def from_signed(values: np.ndarray) -> np.ndarray:
    """Signed INTEGERs read back from SQLite -> uint64 hashes."""
    return np.asarray(values, dtype=np.int64).view(np.uint64)
