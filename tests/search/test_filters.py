"""Metadata filters through the CLI: each narrows results, and k matches still come back."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PIL import Image

from photoseek.errors import PhotoseekError
from photoseek.ingest.decode import _FORMAT_NAMES
from photoseek.ingest.decode import _FORMATS as _DECODERS
from photoseek.store.filters import STORED_FORMATS, SearchFilters
from tests.helpers import draw_photo, run_cli, run_json


def _with_exif(path: Path, taken: str, camera: tuple[str, str]) -> None:
    image = Image.open(path)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = camera
    exif.get_ifd(0x8769)[0x9003] = taken
    image.save(path, exif=exif)


def _set_mtime(path: Path, year: int) -> None:
    stamp = datetime(year, 6, 1, tzinfo=timezone.utc).timestamp()
    os.utime(path, (stamp, stamp))


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_clip_dir) -> Path:
    root = tmp_path_factory.mktemp("library")
    for i in range(12):
        draw_photo(root / "bulk" / f"{i:02d}.jpg", "blue", seed=i)
        _set_mtime(root / "bulk" / f"{i:02d}.jpg", 2015)
    draw_photo(root / "trip" / "a.jpg", "red", size=(1200, 900))
    _with_exif(root / "trip" / "a.jpg", "2021:07:04 10:00:00", ("Google", "Pixel 7"))
    draw_photo(root / "trip" / "b.png", "green", size=(300, 200))
    _set_mtime(root / "trip" / "b.png", 2019)
    draw_photo(root / "trip" / "c.jpg", "yellow", size=(1600, 1200))
    _with_exif(root / "trip" / "c.jpg", "2019:12:31 23:59:00", ("Canon", "Canon EOS 5D"))
    db = root / "catalog.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    return root


def _names(library: Path, *args: str) -> set[str]:
    payload = run_json("search", "a photo", "--db", library / "catalog.db", "-k", "50", *args)
    return {Path(r["path"]).name for r in payload["results"]}


def test_each_filter_narrows_the_results(library):
    assert _names(library, "--in", str(library / "trip")) == {"a.jpg", "b.png", "c.jpg"}
    assert _names(library, "--format", "png") == {"b.png"}
    assert _names(library, "--format", "jpg", "--in", str(library / "trip")) == {"a.jpg", "c.jpg"}
    assert _names(library, "--min-size", "800") == {"a.jpg", "c.jpg"}
    assert _names(library, "--camera", "pixel") == {"a.jpg"}
    assert _names(library, "--after", "2020-01-01") == {"a.jpg"}
    assert _names(library, "--after", "2019-01-01", "--before", "2020-01-01") == {"b.png", "c.jpg"}


def test_filtered_query_still_returns_k_results(library):
    payload = run_json("search", "--image", library / "trip" / "a.jpg", "--db", library / "catalog.db",
                       "-k", "5", "--in", str(library / "bulk"))
    assert len(payload["results"]) == 5
    assert all("/bulk/" in r["path"] for r in payload["results"])


def test_similar_takes_filters_too(library):
    payload = run_json("similar", library / "trip" / "a.jpg", "--db", library / "catalog.db", "--format", "jpeg")
    assert {Path(r["path"]).suffix for r in payload["results"]} == {".jpg"}
    assert "a.jpg" not in {Path(r["path"]).name for r in payload["results"]}


def test_bad_date_is_a_clear_error(library):
    output = run_cli("search", "x", "--db", library / "catalog.db", "--after", "last week", expect=2)
    assert "2024-06-30" in output


def test_unknown_format_is_named_with_the_accepted_ones(library):
    output = run_cli("search", "x", "--db", library / "catalog.db", "--format", "nonsense", expect=2)
    assert "'nonsense'" in output and "unknown image format" in output
    assert "jpeg" in output and "heif" in output and "no image matches" not in output.lower()
    assert _names(library, "--format", "JPG", "--in", str(library / "trip")) == {"a.jpg", "c.jpg"}


def test_python_api_refuses_an_unknown_format():
    with pytest.raises(PhotoseekError, match="'raw'.*png"):
        SearchFilters(formats=("png", "raw"))
    assert SearchFilters(formats=("heic", "TIF")).formats == ("heic", "TIF")


def test_every_decoded_format_is_a_filterable_name():
    """The filter's list of names follows the decoders the indexer tries, so no format is unfilterable."""
    decoded = {_FORMAT_NAMES.get(name, name.lower()) for name in _DECODERS}
    assert decoded == set(STORED_FORMATS)
