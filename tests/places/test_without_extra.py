"""Without the places extra: coordinates are still read and --near works; --place and status say what
to install; installing it later names every located photo on the next index run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from PIL import Image

from tests.helpers import draw_scene, run_cli, run_json
from tests.places.test_gps import located


def test_coordinates_without_names_then_names_once_the_extra_is_there(tmp_path, tiny_clip_dir, monkeypatch):
    root = tmp_path / "photos"
    root.mkdir()
    draw_scene(root / "IMG_1.jpg", 1)
    Image.open(root / "IMG_1.jpg").save(root / "IMG_1.jpg", exif=located(41.1496, -8.6110))
    draw_scene(root / "IMG_2.jpg", 2)
    db = tmp_path / "c.db"
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "reverse_geocode", None)  # as if not installed: importing it fails
        run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
        status = run_json("status", "--db", db)
        assert (status["located"], status["placed"]) == (1, 0)
        assert "photoseek[places]" in status["places_hint"]
        near = run_json("search", "a photo", "--near", "41.15,-8.61", "--min-score", "-1", "--db", db)
        assert [Path(r["path"]).name for r in near["results"]] == ["IMG_1.jpg"]
        assert near["results"][0]["place"] is None
        error = run_cli("search", "a photo", "--place", "porto", "--db", db, expect=4)
        assert "photoseek[places]" in error and len(error.strip().splitlines()) == 1
    if importlib.util.find_spec("reverse_geocode") is None:
        return  # the extra is really missing here: the first half is what such a user sees
    report = run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    assert report["embedded"] == 0 and report["signals"].get("place") == 1
    status = run_json("status", "--db", db)
    assert (status["located"], status["placed"], status["places_hint"]) == (1, 1, None)
    found = run_json("search", "a photo", "--place", "porto", "--min-score", "-1", "--db", db)["results"]
    assert [Path(r["path"]).name for r in found] == ["IMG_1.jpg"]
