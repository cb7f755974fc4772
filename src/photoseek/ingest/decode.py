"""Turn an image file into an RGB picture a model can embed, or a reason why not.

Decoding is the slowest step of indexing and the one most exposed to bad
input, so this module (1) identifies the real format from the bytes, (2)
refuses oversized images before any pixel is decoded, (3) asks the JPEG
decoder for a reduced image when the caller only needs a small one, and
(4) turns every failure into an `UnreadableImageError` with a short reason.
It keeps no mutable state, so it is safe to call from many threads.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, BinaryIO

import numpy as np
import pillow_heif
from PIL import Image, ImageFile

from photoseek.errors import UnreadableImageError

try:
    from PIL import ImageCms
except ImportError:  # Pillow built without LittleCMS: no colour management (`_SRGB` is None)
    _HAS_CMS = False
else:
    _HAS_CMS = True

pillow_heif.register_heif_opener()

DEFAULT_MAX_PIXELS = 200_000_000
"""Largest image accepted by default: a 200 MP phone photo passes, a bomb does not."""

_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF", "JPEG2000")
"""Plugins tried, in order. Exotic ones (EPS runs Ghostscript, PSD, ICO...) are never tried."""

_FORMAT_NAMES = {"MPO": "jpeg"}
"""Pillow names that are not what a user would call the format."""

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""EXIF orientation -> operation that shows the picture upright (as ImageOps.exif_transpose)."""

_ORIENTATION = 0x0112
_MAKE, _MODEL, _DATETIME = 0x010F, 0x0110, 0x0132
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL, _DATETIME_DIGITIZED = 0x9003, 0x9004
_OFFSET_TIME_ORIGINAL = 0x9011

_EXIF_DATE = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"[+-]\d{2}:\d{2}")

_WHITE = (255, 255, 255)
_SRGB = ImageCms.createProfile("sRGB") if _HAS_CMS else None
"""Target of colour management; profiles are read-only, so threads can share it."""
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
"""O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer (fstat then refuses it)."""
SNIFF_BYTES = 512
"""Enough to recognise an SVG behind an XML declaration and comments."""


@dataclass(frozen=True)
class DecodedImage:
    """A decoded picture plus the facts about the file the catalog records."""

    image: Image.Image
    """Mode RGB, upright; possibly smaller than the original when `min_side` was given."""
    width: int
    """Full-resolution width after orientation, i.e. what the user sees."""
    height: int
    format: str
    """Real format sniffed from the content, lowercase ("jpeg", "png", "heif"...)."""
    taken_at: str | None
    """ISO-8601 capture time from EXIF, None when absent or invalid."""
    camera: str | None
    """EXIF make and model ("Canon EOS 5D", make not repeated), None when absent."""


def decode_image(
    source: bytes | Path | IO[bytes],
    *,
    min_side: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> DecodedImage:
    """Decode `source` (file path, the file's bytes or a seekable binary file) into an upright RGB image.

    With `min_side`, the returned image may be reduced, but its shorter side
    stays >= `min_side` (unless the original is smaller). Raises
    `UnreadableImageError` with a short reason for any bad input.
    """
    if min_side is not None and min_side < 1:
        raise ValueError(f"min_side must be positive, got {min_side}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode_stream(io.BytesIO(source), min_side, max_pixels)
    if not isinstance(source, (str, Path)):
        source.seek(0)
        return _decode_stream(source, min_side, max_pixels)
    with open_regular(Path(source)) as fp:
        return _decode_stream(fp, min_side, max_pixels)


@contextmanager
def open_regular(path: Path) -> Iterator[BinaryIO]:
    """The file opened for reading, refused unless it is a regular file; opening never blocks."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise UnreadableImageError(_file_error_reason(exc)) from exc
    try:
        kind = os.fstat(fd).st_mode
        if not stat.S_ISREG(kind):
            raise UnreadableImageError(special_file_reason(kind))
        fp = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fp:
        try:
            yield fp
        except OSError as exc:
            raise UnreadableImageError(f"cannot read file: {exc.strerror or exc}") from exc


def special_file_reason(mode: int) -> str:
    """Why a file system entry that is not a regular file is skipped."""
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO), not a regular file"
    if stat.S_ISSOCK(mode):
        return "socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device, not a regular file"
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    return "not a regular file"


def _file_error_reason(exc: OSError) -> str:
    """Say why the file itself (not its content) could not be opened."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == errno.ENXIO:  # opening a Unix socket
        return "socket, not a regular file"
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    return f"cannot read file: {exc.strerror or exc}"


def _decode_stream(fp: IO[bytes], min_side: int | None, max_pixels: int) -> DecodedImage:
    """Identify, check, decode and convert the image held by `fp`."""
    prefix = fp.read(SNIFF_BYTES)
    if not prefix:
        raise UnreadableImageError("empty file")
    im = _identify(fp, prefix)
    try:
        _check_pixels(*im.size, max_pixels)
        orientation = _orientation(im)
        width, height = _oriented_size(im.size, orientation)
        taken_at, camera = _read_exif(im)
        image = _decode_pixels(im, min_side, orientation)
        return DecodedImage(image, width, height, _format_name(im), taken_at, camera)
    finally:
        im.close()


def image_format(prefix: bytes) -> str | None:
    """The Pillow format whose signature the first bytes carry, or None when no allowed decoder would try.

    A cheap check on `SNIFF_BYTES` (or fewer) bytes, so non-images are refused before being read.
    """
    return next((name for name in _FORMATS if _accepts(name, prefix)), None)


def _accepts(name: str, prefix: bytes) -> bool:
    """True when plugin `name` is available and recognises these first bytes."""
    _load_plugins()
    if name not in Image.OPEN:
        return False
    accept = Image.OPEN[name][1]
    verdict = accept(prefix[:16]) if accept is not None else True
    return bool(verdict) and not isinstance(verdict, str)  # a str is Pillow's "looks like it, but no"


@cache
def _load_plugins() -> None:
    """Register every Pillow plugin, once, when the first file is identified: a run that finds
    nothing new to decode does not pay for them (Pillow's own `init` is idempotent)."""
    Image.init()


def not_an_image_reason(prefix: bytes) -> str:
    """Why a file whose first bytes no decoder accepts is skipped ('SVG is not supported', ...)."""
    return _unsupported_reason(prefix) if prefix else "empty file"


def _identify(fp: IO[bytes], prefix: bytes) -> ImageFile.ImageFile:
    """Open `fp` with the first allowed plugin that recognises its bytes.

    This replaces `Image.open` so that the file name plays no part, exotic
    plugins are never tried, and the pixel limit is ours, per call, instead
    of Pillow's process-wide MAX_IMAGE_PIXELS (which would also warn).
    """
    first_error: Exception | None = None
    for name in _FORMATS:
        if not _accepts(name, prefix):
            continue
        fp.seek(0)
        try:
            return Image.OPEN[name][0](fp, "")
        except Exception as exc:  # plugins signal bad headers with many unrelated types
            first_error = first_error or exc
    if first_error is not None:
        raise UnreadableImageError(_header_error_reason(first_error)) from first_error
    raise UnreadableImageError(_unsupported_reason(prefix))


def _header_error_reason(exc: Exception) -> str:
    """Reason for a file a plugin recognised but could not parse."""
    if "image file is truncated" in str(exc):
        return "truncated image data"
    return f"corrupt image header ({_short(exc)})"


def _unsupported_reason(prefix: bytes) -> str:
    """Name common non-image or unsupported files so the reason is useful."""
    head = prefix.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<") and b"<svg" in head:
        return "SVG is not supported"
    if head.startswith(b"<?xml") or head.startswith(b"<!doctype"):
        return "not an image (XML or HTML document)"
    if prefix.startswith(b"\xff\x0a") or prefix[4:12] == b"JXL \r\n\x87\n":
        return "JPEG XL is not supported (no decoder installed)"
    if prefix.startswith(b"%PDF"):
        return "not an image (PDF document)"
    if prefix[4:8] == b"ftyp":
        return "not an image (video or unsupported ISO media file)"
    return "not an image (unrecognised format)"


def _is_truncation(exc: BaseException) -> bool:
    """True when Pillow reports that the data ended early."""
    text = str(exc).lower()
    return isinstance(exc, EOFError) or "truncated" in text or "end of file" in text


def _short(exc: BaseException) -> str:
    """One-line description of a decoder exception, for a stored reason."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (text or type(exc).__name__)[:120]


def _orientation(im: Image.Image) -> int:
    """EXIF orientation 1..8; anything missing or invalid counts as upright."""
    try:
        value = im.getexif().get(_ORIENTATION, 1)
    except Exception:  # a broken EXIF block must not make the picture unreadable
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _oriented_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """Size as displayed: orientations 5..8 swap width and height."""
    width, height = size
    return (height, width) if orientation >= 5 else (width, height)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    """Refuse decompression bombs from the header, before decoding any pixel.

    Must run before anything that may load pixels (PNG's getexif does).
    """
    if width < 1 or height < 1:
        raise UnreadableImageError(f"corrupt image header (size {width}x{height})")
    if width * height > max_pixels:
        raise UnreadableImageError(
            f"over the pixel limit: image is {width}x{height} ({_megapixels(width * height)}), "
            f"over the {_megapixels(max_pixels)} limit"
        )


def _megapixels(pixels: int) -> str:
    """Human pixel count: '900 MP', '2.5 MP', '9999 pixels'."""
    if pixels >= 10_000_000:
        return f"{pixels / 1e6:.0f} MP"
    if pixels >= 100_000:
        return f"{pixels / 1e6:.1f} MP"
    return f"{pixels} pixels"


def _format_name(im: Image.Image) -> str:
    """Lowercase format name a user recognises."""
    name = im.format or "unknown"
    return _FORMAT_NAMES.get(name, name.lower())


def _decode_pixels(im: ImageFile.ImageFile, min_side: int | None, orientation: int) -> Image.Image:
    """Decode (reduced when allowed), convert to RGB, then turn upright."""
    try:
        if min_side is not None:
            im.draft("RGB", (min_side, min_side))
        im.load()
        rgb = _to_rgb(im)
        if min_side is not None:
            rgb = _reduce(rgb, min_side)
    except UnreadableImageError:
        raise
    except Exception as exc:  # Pillow and plugins raise many types on malformed data
        raise UnreadableImageError(_data_error_reason(exc)) from exc
    transpose = _TRANSPOSE.get(orientation)
    return rgb.transpose(transpose) if transpose is not None else rgb


def _data_error_reason(exc: Exception) -> str:
    """Reason for a failure while decoding pixel data."""
    if isinstance(exc, MemoryError):
        return "not enough memory to decode image"
    if isinstance(exc, Image.DecompressionBombError):
        return f"over the pixel limit ({_short(exc)})"
    if _is_truncation(exc):
        return "truncated image data"
    if isinstance(exc, (SyntaxError, struct.error, ValueError)):
        return f"corrupt image data ({_short(exc)})"
    return f"cannot decode image ({_short(exc)})"


def _reduce(im: Image.Image, min_side: int) -> Image.Image:
    """Cheap integer box reduction that keeps the shorter side >= min_side."""
    factor = min(im.size) // min_side
    return im.reduce(factor) if factor >= 2 else im


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB the way a viewer would show it."""
    if im.mode == "CMYK":
        return _cmyk_to_rgb(im)
    if im.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        return _high_depth_to_rgb(im)
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        return _flatten_on_white(im)
    return im.convert("RGB")


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    """Use the embedded ICC profile when possible; Pillow's formula is a rough fallback."""
    icc = im.info.get("icc_profile")
    if _SRGB is not None and icc:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(im, profile, _SRGB, outputMode="RGB")
            if converted is not None:  # always, but for inPlace=True
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # broken or mismatched profile: fall back to the plain conversion
    return im.convert("RGB")


def _high_depth_to_rgb(im: Image.Image) -> Image.Image:
    """Scale 16-bit / 32-bit / float greys to 0..255 instead of clipping them."""
    values = np.asarray(im, dtype=np.float32)
    if im.mode.startswith("I;16"):
        scaled = values / 257.0
    elif im.mode == "F" and values.size and 0.0 <= values.min() and values.max() <= 1.0:
        scaled = values * 255.0
    elif im.mode == "I" and values.size and 0 <= values.min() and values.max() <= 65535:
        scaled = values / 257.0
    else:
        scaled = _stretch(values)
    grey = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
    return grey.convert("RGB")


def _stretch(values: np.ndarray) -> np.ndarray:
    """Map the finite value range onto 0..255 (for data with no fixed scale)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros_like(values)
    low, high = float(finite.min()), float(finite.max())
    span = high - low or 1.0
    return (np.nan_to_num(values, nan=low) - low) * (255.0 / span)


def _flatten_on_white(im: Image.Image) -> Image.Image:
    """Composite transparency onto white: transparent areas must not turn black."""
    rgba = im.convert("RGBA")
    background = Image.new("RGB", rgba.size, _WHITE)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _read_exif(im: Image.Image) -> tuple[str | None, str | None]:
    """Capture time and camera from EXIF; broken EXIF just means no metadata."""
    try:
        exif = im.getexif()
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:  # EXIF parsers raise assorted types on garbage
        return None, None
    return _taken_at(exif, sub), _camera(exif.get(_MAKE), exif.get(_MODEL))


def _taken_at(exif: Image.Exif, sub: dict[int, object]) -> str | None:
    """First valid of DateTimeOriginal, DateTime, DateTimeDigitized, as ISO-8601."""
    for tag, source in ((_DATETIME_ORIGINAL, sub), (_DATETIME, exif), (_DATETIME_DIGITIZED, sub)):
        value = _exif_datetime(source.get(tag))
        if value is not None:
            if tag == _DATETIME_ORIGINAL:
                value += _exif_offset(sub.get(_OFFSET_TIME_ORIGINAL))
            return value
    return None


def _exif_datetime(raw: object) -> str | None:
    """'2019:07:04 13:05:00' -> '2019-07-04T13:05:00'; None for blanks and zeros."""
    text = _clean_text(raw)
    match = _EXIF_DATE.match(text) if text else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    if year < 1800:
        return None
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{min(second, 59):02d}"


def _exif_offset(raw: object) -> str:
    """'+02:00' style offset to append, or '' when absent or malformed."""
    text = _clean_text(raw)
    return text if text and _EXIF_OFFSET.fullmatch(text) else ""


def _camera(make: object, model: object) -> str | None:
    """'Canon' + 'Canon EOS 5D' -> 'Canon EOS 5D'; 'Apple' + 'iPhone 12' -> 'Apple iPhone 12'."""
    make_text, model_text = _clean_text(make), _clean_text(model)
    if not make_text or not model_text:
        return make_text or model_text
    if model_text.casefold().startswith(make_text.split()[0].casefold()):
        return model_text
    return f"{make_text} {model_text}"


def _clean_text(raw: object) -> str | None:
    """EXIF strings come NUL-padded, space-padded or as bytes; normalise or drop them."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str):
        return None
    text = " ".join(raw.replace("\x00", " ").split())
    return text or None


__all__ = [
    "DEFAULT_MAX_PIXELS", "SNIFF_BYTES", "DecodedImage", "decode_image", "image_format",
    "not_an_image_reason", "open_regular", "special_file_reason",
]
