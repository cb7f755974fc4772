"""Decoder tests: real awkward files from the shared test data plus small images made here."""

from __future__ import annotations

import io
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photoseek.errors import UnreadableImageError
from photoseek.ingest.decode import DEFAULT_MAX_PIXELS, DecodedImage, decode_image
from tests.helpers import shared_data

FORMATS = shared_data("formats")
SHARP = FORMATS / "sharp" / "test" / "fixtures"
HEIF = FORMATS / "heif" / "tests" / "images"
IMMICH = FORMATS / "immich"
NOT_IMAGES = {".txt", ".md"}
NOT_IMAGE_NAMES = {"LICENSE"}

needs_data = pytest.mark.skipif(
    not FORMATS.is_dir(), reason=f"shared test data not found at {FORMATS}"
)

SWEEP_MAX_PIXELS = 60_000_000
"""Keeps the sweep fast: the 200 MP HEIC would take seconds to decode in full."""


def format_files() -> list[Path]:
    """Every test image under formats/ (licence and readme files excluded)."""
    if not FORMATS.is_dir():
        return []
    return sorted(
        path
        for path in FORMATS.rglob("*")
        if path.is_file() and path.suffix.lower() not in NOT_IMAGES and path.name not in NOT_IMAGE_NAMES
    )


def reason_of(source: bytes | Path, **kwargs: int) -> str:
    """The reason decode_image gives for refusing `source`."""
    with pytest.raises(UnreadableImageError) as caught:
        decode_image(source, **kwargs)
    return str(caught.value)


def jpeg_bytes(image: Image.Image, **save_args: object) -> bytes:
    """Encode `image` as JPEG in memory."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **save_args)
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    """Encode `image` as PNG in memory."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def gradient(width: int, height: int) -> Image.Image:
    """An RGB image whose content shows any flip or rotation."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    pixels = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1)
    return Image.fromarray(pixels.astype(np.uint8))


def small_grey(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Downscaled, mean-free grey pixels, for comparing pictures that differ in detail."""
    grey = np.asarray(image.convert("L").resize(size, Image.Resampling.BOX), dtype=np.float32)
    return grey - grey.mean()


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two same-shape arrays (1.0 = same picture)."""
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


# --- every real file: an RGB image or a reason, nothing else ---------------------------------


@needs_data
@pytest.mark.parametrize("path", format_files(), ids=lambda p: str(p.relative_to(FORMATS)))
def test_every_fixture_decodes_or_gives_a_reason(path: Path) -> None:
    try:
        decoded = decode_image(path, min_side=448, max_pixels=SWEEP_MAX_PIXELS)
    except UnreadableImageError as error:
        assert str(error).strip()
        return
    image = decoded.image
    assert image.mode == "RGB"
    assert decoded.width >= image.width >= 1 and decoded.height >= image.height >= 1
    assert min(image.size) >= min(448, decoded.width, decoded.height)
    assert decoded.format in {"jpeg", "png", "webp", "gif", "bmp", "tiff", "heif", "avif", "jpeg2000"}
    if min(image.size) > 16:
        assert image.width / image.height == pytest.approx(decoded.width / decoded.height, rel=0.02)


# --- orientation ------------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize(("kind", "size"), [("Landscape", (600, 450)), ("Portrait", (450, 600))])
def test_all_exif_orientations_show_the_same_upright_picture(kind: str, size: tuple[int, int]) -> None:
    thumb = (size[0] // 15, size[1] // 15)
    reference = small_grey(decode_image(SHARP / f"{kind}_1.jpg").image, thumb)
    assert correlation(reference, reference[:, ::-1]) < 0.8  # the check can tell a mirror image
    for number in range(1, 9):
        decoded = decode_image(SHARP / f"{kind}_{number}.jpg")
        assert (decoded.width, decoded.height) == size
        assert decoded.image.size == size
        assert correlation(small_grey(decoded.image, thumb), reference) > 0.95, number


@needs_data
def test_orientation_6_photo_matches_its_upright_twin() -> None:
    rotated = decode_image(IMMICH / "metadata" / "faces" / "portrait-orientation-6.jpg")
    upright = decode_image(IMMICH / "metadata" / "faces" / "portrait.jpg")
    assert (rotated.width, rotated.height) == (upright.width, upright.height) == (840, 700)
    assert correlation(small_grey(rotated.image, (84, 70)), small_grey(upright.image, (84, 70))) > 0.95


@pytest.mark.parametrize("orientation", range(1, 9))
def test_draft_and_orientation_combine(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = jpeg_bytes(gradient(1600, 1200), exif=exif, quality=95)
    full = decode_image(data)
    reduced = decode_image(data, min_side=300)
    assert (reduced.width, reduced.height) == (full.width, full.height) == full.image.size
    assert reduced.image.size != full.image.size
    assert min(reduced.image.size) >= 300
    assert (full.width > full.height) == (orientation < 5)
    thumb = (40, 30) if full.width > full.height else (30, 40)
    assert correlation(small_grey(reduced.image, thumb), small_grey(full.image, thumb)) > 0.99


# --- draft / reduced decoding ------------------------------------------------------------------


def test_min_side_reduces_a_large_jpeg_but_keeps_the_full_size() -> None:
    data = jpeg_bytes(gradient(4000, 3000), quality=90)
    decoded = decode_image(data, min_side=448)
    assert (decoded.width, decoded.height) == (4000, 3000)
    assert 448 <= min(decoded.image.size) < 3000
    assert decoded.image.width / decoded.image.height == pytest.approx(4 / 3, rel=0.01)


@pytest.mark.parametrize("min_side", [1, 99, 100, 101, 223, 224, 225, 333, 448, 500, 999, 2000])
def test_min_side_is_always_respected(min_side: int) -> None:
    data = jpeg_bytes(gradient(1000, 801))
    image = decode_image(data, min_side=min_side).image
    assert min(image.size) >= min(min_side, 801)


def test_min_side_also_shrinks_non_jpeg_formats() -> None:
    decoded = decode_image(png_bytes(gradient(1200, 900)), min_side=200)
    assert (decoded.width, decoded.height) == (1200, 900)
    assert 200 <= min(decoded.image.size) < 900


def test_min_side_must_be_positive() -> None:
    with pytest.raises(ValueError):
        decode_image(jpeg_bytes(gradient(10, 10)), min_side=0)


# --- colour -------------------------------------------------------------------------------------


@needs_data
def test_cmyk_jpeg_looks_like_a_photo_not_a_negative() -> None:
    with_profile = decode_image(SHARP / "Channel_digital_image_CMYK_color.jpg").image
    without_profile = decode_image(SHARP / "Channel_digital_image_CMYK_color_no_profile.jpg").image
    a = np.asarray(with_profile.resize((50, 33)), dtype=np.float32)
    b = np.asarray(without_profile.resize((50, 33)), dtype=np.float32)
    assert np.abs(a - b).mean() < 20
    assert np.abs(a - (255 - b)).mean() > 50
    assert 80 < a.mean() < 180


@needs_data
def test_cmyk_tiff_with_profile_is_red() -> None:
    red, green, blue = decode_image(SHARP / "fogra-0-100-100-0.tif").image.resize((1, 1)).getpixel((0, 0))
    assert red > 180 and green < 60 and blue < 60


def test_cmyk_jpeg_made_here_keeps_its_colour() -> None:
    data = jpeg_bytes(Image.new("RGB", (32, 32), (200, 30, 30)).convert("CMYK"))
    red, green, blue = decode_image(data).image.getpixel((16, 16))
    assert red > 170 and green < 70 and blue < 70


@needs_data
def test_16_bit_png_matches_its_8_bit_twin() -> None:
    deep = np.asarray(decode_image(SHARP / "Flag_of_the_Netherlands-16bit.png").image, dtype=np.float32)
    plain = np.asarray(decode_image(SHARP / "Flag_of_the_Netherlands.png").image, dtype=np.float32)
    assert np.abs(deep - plain).mean() < 3


def test_16_bit_grey_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "grey16.png"
    Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(path)
    with Image.open(path) as written:
        assert written.mode.startswith("I")
    assert decode_image(path).image.getpixel((0, 0)) == (128, 128, 128)


def test_float_tiff_is_scaled(tmp_path: Path) -> None:
    path = tmp_path / "float.tiff"
    Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32)).save(path)
    assert decode_image(path).image.getpixel((0, 0)) == (128, 128, 128)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_transparent_pixels_become_white(mode: str) -> None:
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    image.putpixel((0, 0), (255, 0, 0, 255))
    if mode == "LA":
        image = image.convert("LA")
    elif mode == "PA":
        image = image.convert("P")
        image.info["transparency"] = image.getpixel((3, 3))
    decoded = decode_image(png_bytes(image)).image
    assert decoded.getpixel((3, 3)) == (255, 255, 255)
    assert decoded.getpixel((0, 0)) != (255, 255, 255)


@needs_data
@pytest.mark.parametrize(
    ("name", "transparent_pixel"),
    [("full-transparent.png", (0, 0)), ("grey-plus-alpha.gif", (1, 0)), ("d.png", (0, 0))],
)
def test_fixtures_with_transparency_are_on_white(name: str, transparent_pixel: tuple[int, int]) -> None:
    assert decode_image(SHARP / name).image.getpixel(transparent_pixel) == (255, 255, 255)


@needs_data
def test_palette_png_keeps_its_colours() -> None:
    red, green, blue = decode_image(SHARP / "Flag_of_the_Netherlands.png").image.getpixel((10, 10))
    assert red > 150 and green < 80 and blue < 80


def test_grey_jpeg_becomes_rgb() -> None:
    decoded = decode_image(jpeg_bytes(Image.new("L", (8, 8), 77)))
    assert decoded.image.mode == "RGB"
    assert decoded.image.getpixel((4, 4)) == pytest.approx((77, 77, 77), abs=2)


# --- multi-frame, HEIF, AVIF, other formats ------------------------------------------------------


def test_animated_gif_gives_the_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    decoded = decode_image(buffer.getvalue())
    assert decoded.format == "gif"
    assert decoded.image.getpixel((8, 8)) == (255, 0, 0)


@needs_data
@pytest.mark.parametrize(
    ("path", "fmt", "size"),
    [
        ("sharp/test/fixtures/animated-loop-3.gif", "gif", (370, 285)),
        ("sharp/test/fixtures/animated-loop-3.webp", "webp", (370, 285)),
        ("immich/formats/heic/IMG_2682.heic", "heif", (4032, 3024)),
        ("heif/tests/images/heif_other/RGB_8_chroma444.heif", "heif", (29, 100)),
        ("immich/formats/avif/8bit-sRGB.avif", "avif", (1617, 1080)),
        ("sharp/test/fixtures/relax.jp2", "jpeg2000", (320, 240)),
        ("sharp/test/fixtures/G31D.TIF", "tiff", (2464, 3248)),
        ("immich/formats/webp/denali.webp", "webp", (600, 315)),
    ],
)
def test_real_formats_decode(path: str, fmt: str, size: tuple[int, int]) -> None:
    decoded = decode_image(FORMATS / path, min_side=224)
    assert (decoded.format, (decoded.width, decoded.height)) == (fmt, size)
    assert decoded.image.mode == "RGB"
    assert np.asarray(decoded.image).std() > 5  # real content, not a blank frame


@needs_data
def test_format_comes_from_content_not_extension(tmp_path: Path) -> None:
    disguised = tmp_path / "photo.jpg"
    disguised.write_bytes((SHARP / "Flag_of_the_Netherlands.png").read_bytes())
    assert decode_image(disguised).format == "png"


@pytest.mark.parametrize(("fmt", "name"), [("BMP", "bmp"), ("TIFF", "tiff"), ("WEBP", "webp"), ("PNG", "png")])
def test_formats_made_here(fmt: str, name: str) -> None:
    buffer = io.BytesIO()
    gradient(40, 30).save(buffer, fmt)
    decoded = decode_image(buffer.getvalue())
    assert (decoded.format, decoded.image.size) == (name, (40, 30))


# --- failures --------------------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("sharp/test/fixtures/truncated.jpg", "truncated"),
        ("sharp/test/fixtures/truncated.png", "truncated"),
        ("sharp/test/fixtures/corrupt-header.jpg", "corrupt image header"),
        ("heif/tests/images/heif_corrupted/empty.heic", "empty file"),
        # Damaged HEIF data: libheif's wording moves between releases ("corrupt" in pillow-heif
        # 0.x, "truncated image data" in 1.9), so either reason that names damaged data will do.
        ("heif/tests/images/heif_corrupted/corrupted.heic", ("corrupt", "truncated")),
        ("heif/tests/images/heif_corrupted/corrupted.hif", ("corrupt", "truncated")),
        ("sharp/test/fixtures/check.svg", "SVG is not supported"),
        ("sharp/test/fixtures/struct-image-04-t.svg", "SVG is not supported"),
        ("immich/formats/jxl/8bit-sRGB.jxl", "JPEG XL"),
        ("sharp/test/fixtures/giant-image.jpg", "over the pixel limit"),
        ("sharp/test/fixtures/65536-uint32-limit.png", "over the pixel limit"),
    ],
)
def test_bad_fixtures_fail_with_a_reason(path: str, expected: str | tuple[str, ...]) -> None:
    reason = reason_of(FORMATS / path)
    assert any(word in reason for word in ((expected,) if isinstance(expected, str) else expected)), reason


@needs_data
def test_pixel_limit_is_checked_before_decoding() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        reason = reason_of(SHARP / "giant-image.jpg")
        assert "20000x14000 (280 MP), over the 200 MP limit" in reason
        huge_heic = HEIF / "heif_special" / "200MP.heic"
        assert "over the pixel limit" in reason_of(huge_heic, max_pixels=DEFAULT_MAX_PIXELS // 2)


def test_small_max_pixels_is_honoured() -> None:
    data = png_bytes(gradient(100, 100))
    assert "100x100" in reason_of(data, max_pixels=9_999)
    assert decode_image(data, max_pixels=10_000).width == 100


def test_truncated_jpeg_made_here_fails() -> None:
    data = jpeg_bytes(gradient(300, 200))
    assert "truncated" in reason_of(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty file"),
        (b"hello, this is a text file\n" * 10, "not an image"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG is not supported"),
        (b"%PDF-1.7\n", "not an image (PDF"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "corrupt image header"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 5, "image"),
    ],
)
def test_bad_bytes_fail_with_a_reason(data: bytes, expected: str) -> None:
    assert expected in reason_of(data)


def test_file_problems_fail_with_a_reason(tmp_path: Path) -> None:
    assert reason_of(tmp_path / "missing.jpg") == "file not found"
    assert "directory" in reason_of(tmp_path)


# --- metadata ------------------------------------------------------------------------------------


def exif_jpeg(make: str | None, model: str | None, dates: dict[int, str]) -> bytes:
    """A small JPEG carrying the given EXIF camera and date tags."""
    exif = Image.Exif()
    if make is not None:
        exif[0x010F] = make
    if model is not None:
        exif[0x0110] = model
    if 0x0132 in dates:
        exif[0x0132] = dates[0x0132]
    sub = exif.get_ifd(0x8769)
    sub.update({tag: value for tag, value in dates.items() if tag != 0x0132})
    return jpeg_bytes(gradient(32, 24), exif=exif)


@pytest.mark.parametrize(
    ("make", "model", "camera"),
    [
        ("Canon", "Canon EOS 5D", "Canon EOS 5D"),
        ("NIKON CORPORATION", "NIKON D700", "NIKON D700"),
        ("Apple", "iPhone 12", "Apple iPhone 12"),
        ("  SONY\x00", "ILCE-7M3\x00\x00", "SONY ILCE-7M3"),
        (None, "Pixel 7", "Pixel 7"),
        (None, None, None),
    ],
)
def test_camera_from_exif(make: str | None, model: str | None, camera: str | None) -> None:
    assert decode_image(exif_jpeg(make, model, {})).camera == camera


@pytest.mark.parametrize(
    ("dates", "taken_at"),
    [
        ({0x9003: "2021:06:05 14:03:02", 0x0132: "2022:01:01 00:00:00"}, "2021-06-05T14:03:02"),
        ({0x9003: "2021:06:05 14:03:02", 0x9011: "+02:00"}, "2021-06-05T14:03:02+02:00"),
        ({0x9003: "0000:00:00 00:00:00", 0x0132: "2022:01:01 10:11:12"}, "2022-01-01T10:11:12"),
        ({0x9004: "2020:02:29 23:59:59"}, "2020-02-29T23:59:59"),
        ({0x9003: "    :  :     :  :  "}, None),
        ({0x9003: "2021:13:40 99:00:00"}, None),
        ({}, None),
    ],
)
def test_taken_at_from_exif(dates: dict[int, str], taken_at: str | None) -> None:
    assert decode_image(exif_jpeg(None, None, dates)).taken_at == taken_at


@needs_data
@pytest.mark.parametrize(
    ("path", "taken_at", "camera"),
    [
        ("metadata/dates/datetimeoriginal-gps.jpg", "2025-12-01T11:30:00", None),
        ("metadata/tags/picasa.jpg", "2010-02-13T14:55:31", "Canon PowerShot SD1100 IS"),
        ("metadata/rating/mongolels.jpg", "2009-08-29T13:18:08", "Canon EOS 500D"),
        ("albums/nature/tanners_ridge.jpg", "2023-09-25T08:33:30", "NIKON D750"),
        ("formats/heic/IMG_2682.heic", "2019-03-21T11:04:22", "Apple iPhone 7"),
    ],
)
def test_metadata_from_real_files(path: str, taken_at: str, camera: str | None) -> None:
    decoded = decode_image(IMMICH / path, min_side=64)
    assert (decoded.taken_at, decoded.camera) == (taken_at, camera)


# --- sources and threads -----------------------------------------------------------------------------


@needs_data
def test_bytes_and_path_give_the_same_result() -> None:
    path = SHARP / "Landscape_6.jpg"
    from_path, from_bytes = decode_image(path), decode_image(path.read_bytes())
    assert isinstance(from_bytes, DecodedImage)
    assert (from_path.width, from_path.height) == (from_bytes.width, from_bytes.height)
    assert from_path.format == from_bytes.format == "jpeg"
    assert np.array_equal(np.asarray(from_path.image), np.asarray(from_bytes.image))


def test_threads_give_the_same_results_as_one_thread() -> None:
    sources = [jpeg_bytes(gradient(400 + 10 * i, 300)) for i in range(8)] + [b"junk"] * 2

    def size_or_reason(data: bytes) -> object:
        try:
            return decode_image(data, min_side=100).image.size
        except UnreadableImageError as error:
            return str(error)

    expected = [size_or_reason(data) for data in sources]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(size_or_reason, sources * 4)) == expected * 4


def test_a_fifo_is_refused_without_blocking(tmp_path):
    """Thumbnails and query images open paths too: a pipe named like a photo must not hang them."""
    import os
    import threading

    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def decode() -> None:
        try:
            decode_image(fifo)
        except UnreadableImageError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=decode, daemon=True)
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("decode_image blocked on a FIFO")
    assert [str(exc) for exc in outcome] == ["named pipe (FIFO), not a regular file"]


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(UnreadableImageError, match="is a directory"):
        decode_image(tmp_path)
