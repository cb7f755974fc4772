"""A small indexed library with awkward file names, for the result presenters."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import draw_photo, run_json

AWKWARD = ['<img src=x onerror=alert(1)> & "quoted" \'photo\'.png', "café straße 東京.jpg", "spaces and #hash?.png"]


@dataclass(frozen=True)
class Library:
    root: Path
    db: Path


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Library:
    root = tmp_path_factory.mktemp("photos")
    draw_photo(root / "red.png", "red", size=(640, 480))
    draw_photo(root / "blue.jpg", "blue", shape="square", seed=1)
    for i, name in enumerate(AWKWARD):
        draw_photo(root / name, ["green", "yellow", "purple"][i], seed=2 + i)
    draw_photo(root / "gone.png", "orange", seed=9)
    db = tmp_path_factory.mktemp("catalog") / "catalog.db"
    assert run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)["embedded"] == 6
    (root / "gone.png").unlink()  # indexed, then deleted: shown without a thumbnail, never a crash
    return Library(root, db)
