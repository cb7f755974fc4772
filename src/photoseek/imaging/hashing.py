"""Perceptual hashes: 64 bits that stay (nearly) the same when a picture is resized,
recompressed, re-encoded, brightened, framed or slightly cropped.

The hash is the sign of the 8x8 lowest-frequency DCT coefficients of the picture shrunk
to 32x32 grey, its mean removed and its edges faded out (a pHash that thresholds at zero
instead of at the median, and shrugs off a light crop). Thresholding at
zero makes a quarter turn of the picture an exact bit permutation plus a fixed bit flip
(the DCT of a transposed image is the transposed DCT; mirroring negates odd frequencies),
so rotated copies are found by comparing against `rotations()` of a stored hash without
decoding anything again. The DC bit, which is always positive, holds the mean brightness
test instead, which rotation leaves unchanged as well. A frame added by an editor is
trimmed first, so framed copies hash like the original; a flat sky or ground is not a frame
(`frame_widths` says how they are told apart).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

HASH_BITS = 64
HASH_VERSION = 2
"""Bumped whenever the hash of a picture changes; catalogs forget older hashes and re-hash on `index`.
2: frames only when paired and stepped, mean removed and a Tukey window (see `perceptual_hash`)."""
_SIDE = 32
_LOW = 8
_TAPER = 0.08
"""Share of each side (half at each edge) over which the window falls to zero. Measured (docs/
benchmarks.md, moves): wider tapers find more 5% crops but link unrelated plain-sky photos."""
_TRIM_SIDE = 256
"""Borders are looked for on a copy this size: enough to see an 8-px frame on a 4k photo."""
_TRIM_MAX_SHARE = 5
"""A frame covers less than 1/5 of each side; a flat band that reaches that far is a sky or a wall."""
_FLAT_STD, _FLAT_STEP = 4.0, 6.0
"""A frame row is one flat colour (spread below _FLAT_STD), the frame's own (within _FLAT_STEP)."""
_EDGE_STEP = 16.0
_EDGE_LOOK = 3
"""Where a frame ends, the picture differs from the frame's colour by _EDGE_STEP grey levels on
average within _EDGE_LOOK rows (resampling and JPEG ringing blur the line by a row or two)."""
_PAIR_STEP = 12.0
"""Frames come in opposite pairs (all round, letterbox or pillarbox) of one colour, within this."""


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix: `D @ x` is the DCT of column vector x."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    matrix[0] /= np.sqrt(2.0)
    return matrix


def _tukey(n: int, taper: float) -> np.ndarray:
    """A window that is 1 in the middle and falls to 0 over `taper / 2` of each end, symmetric."""
    x = (np.arange(n) + 0.5) / n
    edge = np.minimum(x, 1 - x)
    return np.where(edge < taper / 2, 0.5 * (1 - np.cos(2 * np.pi * edge / taper)), 1.0)


_DCT_LOW = _dct_matrix(_SIDE)[:_LOW]
_WINDOW = np.outer(_tukey(_SIDE, _TAPER), _tukey(_SIDE, _TAPER))
_ODD = (np.arange(_LOW) % 2).astype(bool)


def perceptual_hash(image: Image.Image) -> int:
    """The 64-bit hash of an (upright) picture, as an unsigned int."""
    grey = image.convert("L")
    grey.thumbnail((_TRIM_SIDE, _TRIM_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    small = _trim_frame(grey).resize((_SIDE, _SIDE), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.float64)
    # The window fades out the outer 4% on each side, which a light crop removes, so a 5% crop
    # hashes like the original; it is symmetric, so turns still permute the bits. The mean goes
    # first, or the window's own shape would set the low bits of every picture alike.
    coefficients = _DCT_LOW @ ((pixels - pixels.mean()) * _WINDOW) @ _DCT_LOW.T
    bits = coefficients > 0
    bits[0, 0] = pixels.mean() > 127.5
    return int(_pack(bits[None])[0])


def _trim_frame(grey: Image.Image) -> Image.Image:
    """Cut away an added frame (see `frame_widths`); a flat sky or ground is left alone."""
    top, bottom, left, right = frame_widths(np.asarray(grey, dtype=np.float32))
    if not (top or bottom or left or right):
        return grey
    width, height = grey.size
    return grey.crop((left, top, width - right, height - bottom))


def frame_widths(values: np.ndarray) -> tuple[int, int, int, int]:
    """Rows or columns of an added frame on each side (top, bottom, left, right) of a grey picture.

    A flat sky, a wall or a snowfield is flat along one edge too, so flatness alone is not a frame
    (trimming it made copies hash apart: brightened, cropped or re-saved, the flat band ends
    elsewhere). A band counts only when it is (1) one flat colour, (2) narrower than a fifth of
    the side, (3) ended by a clear step to the picture, and (4) matched on the opposite side by
    a band of the same colour: editors frame all round, or letterbox, or pillarbox, while a sky
    rarely meets a ground of its own colour, and never both with a sharp line. A frame found
    on three sides also takes the fourth where that side starts flat in its colour (the picture
    there is as light as the frame, so no step shows).
    """
    sides = [_band(values), _band(values[::-1]), _band(values.T), _band(values.T[::-1])]
    top, bottom = _paired(sides[0], sides[1])
    left, right = _paired(sides[2], sides[3])
    widths = [top, bottom, left, right]
    framed = [(colour, frame) for _, colour, frame in sides if frame is not None]  # (colour, width) of each frame
    if len(framed) == 3 and max(c for c, _ in framed) - min(c for c, _ in framed) < _PAIR_STEP:
        width = min(w for _, w in framed)
        widths = [frame if frame is not None else (width if flat >= width and abs(colour - framed[0][0]) < _PAIR_STEP
                                                   else 0) for flat, colour, frame in sides]
        if 0 in widths:
            widths = [top, bottom, left, right]
    return widths[0], widths[1], widths[2], widths[3]


def _paired(one: tuple[int, float, int | None], other: tuple[int, float, int | None]) -> tuple[int, int]:
    """Both widths when opposite bands are frames of one colour, else none."""
    if one[2] is None or other[2] is None or abs(one[1] - other[1]) >= _PAIR_STEP:
        return 0, 0
    return one[2], other[2]


def _band(values: np.ndarray) -> tuple[int, float, int | None]:
    """Along the first rows of `values`: how many are flat in the first row's colour, that colour,
    and the width of a frame there (None when the flat rows are no frame)."""
    colour = float(values[0].mean())
    limit = len(values) // _TRIM_MAX_SHARE
    width = next((count for count, row in enumerate(values[:limit])
                  if row.std() >= _FLAT_STD or abs(float(row.mean()) - colour) >= _FLAT_STEP), limit)
    if width == 0 or width >= limit:
        return width, colour, None
    for ahead in range(width, min(width + _EDGE_LOOK, limit)):
        if float(np.abs(values[ahead] - colour).mean()) >= _EDGE_STEP:
            return width, colour, ahead
    return width, colour, None


def content_share(image: Image.Image) -> float:
    """The share of a picture's area inside an added frame (1.0 without one): its real pixels."""
    grey = image.convert("L")
    grey.thumbnail((_TRIM_SIDE, _TRIM_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    top, bottom, left, right = frame_widths(np.asarray(grey, dtype=np.float32))
    width, height = grey.size
    return (width - left - right) * (height - top - bottom) / (width * height)


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


def to_signed(value: int) -> int:
    """An unsigned 64-bit hash as SQLite's signed INTEGER."""
    return value - (1 << 64) if value >= 1 << 63 else value


def from_signed(values: np.ndarray) -> np.ndarray:
    """Signed INTEGERs read back from SQLite -> uint64 hashes."""
    return np.asarray(values, dtype=np.int64).view(np.uint64)
