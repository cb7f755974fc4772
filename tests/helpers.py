"""Small builders shared by tests: synthetic photos and CLI invocation."""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from typer.testing import CliRunner

from photoseek.cli import app

if TYPE_CHECKING:
    from photoseek.api import ImageIndex
    from photoseek.search.hybrid import HybridSearcher
    from photoseek.store.catalog import Catalog
    from photoseek.store.text import TextStore

SHARED_DATA_ENV = "PHOTOSEEK_SHARED_DATA"
OLD_SHARED_DATA_ENV = "IMGSEARCH_SHARED_DATA"  # the name before the rename; checkouts and CI may still set it
REQUIRE_SHARED_DATA_ENV = "PHOTOSEEK_REQUIRE_SHARED_DATA"
"""Set to 1 (as .ci/run does), or $CI set: missing shared data fails the tests that need it instead of skipping them."""


def shared_data(*parts: str) -> Path:
    """A path inside the shared test data: $PHOTOSEEK_SHARED_DATA (or $IMGSEARCH_SHARED_DATA), else
    `../shared/data` beside the checkout.

    The one place tests learn where the data is, so any checkout (or CI) can point them at it;
    tests read it in place and never copy it into the repository. Where the data is required
    (`shared_data_required`), a missing path fails the test (or the module that asked) here, so CI
    cannot pass with the data tests skipped; elsewhere the tests that need it skip.
    """
    configured = os.environ.get(SHARED_DATA_ENV) or os.environ.get(OLD_SHARED_DATA_ENV)
    beside_checkout = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    root = Path(configured).expanduser() if configured else beside_checkout
    path = root.joinpath(*parts)
    if shared_data_required() and not path.exists():
        pytest.fail(f"shared test data not found at {path}: set {SHARED_DATA_ENV} to the folder holding "
                    "coco-mini/ and formats/ (it is required under CI)", pytrace=False)
    return path


def shared_data_required() -> bool:
    """True under CI ($CI set and not false/0) or with $PHOTOSEEK_REQUIRE_SHARED_DATA=1."""
    ci = os.environ.get("CI", "").strip().lower()
    return os.environ.get(REQUIRE_SHARED_DATA_ENV) == "1" or ci not in ("", "0", "false", "no")


def artifacts_dir() -> Path:
    """Where tests may leave files worth a look (screenshots): $PHOTOSEEK_TEST_ARTIFACTS, else a temp folder.

    Never inside the checkout, so a test run leaves the working tree clean.
    """
    configured = os.environ.get("PHOTOSEEK_TEST_ARTIFACTS")
    folder = Path(configured).expanduser() if configured else Path(tempfile.gettempdir()) / "photoseek-test-artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


SIGN_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
BLIP_WORDS = "a photo of dog cat beach red ball sunset mountain lake tree car house boat bird horse snow city".split()
"""The tiny test captioner's whole vocabulary (tests/conftest.py `tiny_blip_dir`)."""

# Small enough to export in a few seconds, but the real CLIP BPE vocabulary and context length,
# so tokenisation and the text tower's shapes are exactly those of real models.
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 48, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
TINY_CLIP_ARCH = "photoseek-tiny-clip"

COLOURS = {
    "red": (220, 30, 30), "green": (30, 180, 60), "blue": (30, 60, 220),
    "yellow": (240, 220, 40), "purple": (140, 40, 160), "orange": (250, 140, 20),
}


def draw_photo(
    path: Path, colour: str, shape: str = "circle", size: tuple[int, int] = (160, 120), seed: int = 0
) -> Path:
    """A picture of a coloured shape on a noisy background, saved in the format of its suffix."""
    rng = np.random.default_rng(seed)
    background = rng.integers(90, 160, size=(size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    w, h = size
    box = (w // 4, h // 4, 3 * w // 4, 3 * h // 4)
    if shape == "circle":
        draw.ellipse(box, fill=COLOURS[colour])
    else:
        draw.rectangle(box, fill=COLOURS[colour])
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def render_sign(path: Path, lines: tuple[str, ...] = ("HARBOUR BAKERY", "fresh pretzels")) -> Path:
    """A shop sign with large, clean words (by default "HARBOUR BAKERY", "fresh pretzels") for OCR."""
    if not SIGN_FONT.is_file():
        pytest.skip(f"needs the DejaVu fonts ({SIGN_FONT}; Debian package fonts-dejavu-core)")
    image = Image.new("RGB", (480, 70 * len(lines) + 20), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(SIGN_FONT), 36)
    for row, line in enumerate(lines):
        draw.text((20, 20 + 70 * row), line, font=font, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def draw_scene(path: Path, seed: int, size: tuple[int, int] = (240, 180)) -> Path:
    """A photo-like picture (a smooth random colour field), different for every seed: unlike
    `draw_photo`'s shapes, two seeds never look alike to a perceptual hash."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    coarse.resize(size, Image.Resampling.BICUBIC).save(path, quality=92)
    return path


def run_cli(*args: str, expect: int = 0) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == expect, (result.exit_code, result.output, result.exception)
    return result.output


def run_json(*args: str) -> dict:
    """The JSON a script reads from stdout; notes and library messages on stderr stay out of it."""
    result = CliRunner().invoke(app, [str(a) for a in args] + ["--json"])
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return json.loads(result.stdout)


def wait_until(condition: Callable[[], object], what: str, timeout: float = 60.0) -> object:
    """Poll `condition` until it is truthy and return its value; fail naming `what` after `timeout` seconds.

    For tests that wait on background work (watchers, jobs): generous timeouts for busy machines, and
    no fixed sleeps, so a quick machine is not slowed down.
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)
    return value


# White-box access for tests only. `ImageIndex` keeps its store and searchers private and src/ never
# reaches past it (tests/test_layers.py); tests that arrange or check what the store holds use these.


def catalog_of(index: ImageIndex) -> Catalog:
    """The catalog behind `index`, to check or arrange rows the public API does not show."""
    return index._catalog


def texts_of(index: ImageIndex) -> TextStore:
    """The text store behind `index`, to plant a signal (OCR text, a caption) without its model."""
    return index._texts


def hybrid_of(index: ImageIndex) -> HybridSearcher:
    """The hybrid searcher behind `index`, to read a fitted calibration curve itself."""
    return index._hybrid


def index_colour_photos(root: Path, model_dir: Path) -> Path:
    """One photo per colour in COLOURS (circles and squares in turn) under `root`, indexed with the
    model in `model_dir` into a catalog beside `root`; returns the catalog's path."""
    for i, colour in enumerate(COLOURS):
        draw_photo(root / f"{colour}.jpg", colour, shape="circle" if i % 2 else "square", seed=i)
    db = root.parent / f"{root.name}.db"
    run_json("index", root, "--db", db, "--model-path", model_dir)
    return db


def three_colour_photos(root: Path) -> Path:
    """red.jpg, green.jpg and blue.jpg in `root`: the smallest library whose photos all differ."""
    for i, colour in enumerate(("red", "green", "blue")):
        draw_photo(root / f"{colour}.jpg", colour, seed=i)
    return root


def exit_status(child: multiprocessing.process.BaseProcess, timeout: float = 120) -> int:
    """Start `child`, wait for it and return its exit status; a child that hangs fails the test."""
    child.start()
    child.join(timeout)
    assert child.exitcode is not None, "the child hung"
    return child.exitcode


KILLED = 77
"""The exit status of a child a `DyingOs` killed."""


class DyingOs:
    """`os` as a module under test sees it (monkeypatched in as its `os`): the real one, except that
    the process dies (os._exit, as abrupt as kill -9) just before the Nth call of one of `steps`, the
    calls that change the disk. Subclasses may make a step do more (`act`)."""

    steps: tuple[str, ...] = ()

    def __init__(self, kill_at: int | None = None) -> None:
        self._kill_at = kill_at
        self.calls = 0

    def __getattr__(self, name: str) -> object:
        real = getattr(os, name)
        if name not in self.steps:
            return real

        def step(*args: object, **kwargs: object) -> object:
            self.calls += 1
            if self.calls == self._kill_at:
                os._exit(KILLED)
            return self.act(name, real, *args, **kwargs)

        return step

    def act(self, name: str, real: Callable[..., object], *args: object, **kwargs: object) -> object:
        return real(*args, **kwargs)
