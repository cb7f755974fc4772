"""Calibration refits by itself (issue 20, item 2): once `index`, `describe`, `tag` or `import-captions`
changed enough of the library or its texts, `status` says a refit is due and the next search does it;
a small change keeps the fit. `status` and `calibrate` show each signal's curve quality and weight."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest

from photoseek import ImageIndex
from tests.helpers import run_cli, run_json
from tests.search.coco import AVAILABLE, COCO, bare, notes_csv

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="needs shared COCO data")
DUE = "Refit due"


def _calibration(db) -> list[str]:
    return run_json("status", "--db", db)["calibration"]


def _texted(lines: list[str]) -> set[int]:
    """The texted photos each fitted curve says it was fitted on."""
    return {int(n) for line in lines for n in re.findall(r"on (\d+) texted photos", line)}


def test_describing_and_tagging_enough_photos_refits_at_the_next_search_and_a_few_do_not(coco, tmp_path):
    _, files, captions = coco
    db = tmp_path / "refit.db"
    shutil.copy(bare(coco[0]), db)
    run_json("import-captions", notes_csv(tmp_path / "40.csv", files, captions, keep=40), "--db", db)
    assert "Not calibrated yet" in _calibration(db)[0]
    run_json("search", "pizza", "--db", db)
    lines = _calibration(db)
    (before,) = _texted(lines)  # the 40 notes, and the few photos that carry a description of their own
    assert before >= 40 and not any(DUE in line for line in lines), lines
    assert any(line.startswith("CLIP") and "uninformative here, weight 0" in line for line in lines), lines
    for name in files[40:42]:  # 2 of 40: the fit stands
        run_cli("describe", COCO / name, captions[name][0], "--db", db)
    run_json("search", "pizza", "--db", db)
    assert _calibration(db) == lines
    for name in files[42:48]:  # 8 more in all: a fifth of the texted photos
        run_cli("tag", COCO / name, *captions[name][0].split()[:3], "--db", db)
    due = _calibration(db)
    assert any(DUE in line for line in due), due
    with ImageIndex(db) as index:
        index.search("a dog on a couch", k=3)
    lines = _calibration(db)
    assert _texted(lines) == {before + 8} and not any(DUE in line for line in lines), lines


def test_indexing_many_new_photos_refits_at_the_next_search(coco, tmp_path):
    _, files, captions = coco
    first, later = tmp_path / "first", tmp_path / "later"
    for folder, names in ((first, files[:60]), (later, files[60:90])):
        folder.mkdir()
        for name in names:
            shutil.copy(COCO / name, folder / Path(name).name)
    db = tmp_path / "grow.db"
    clip = run_json("status", "--db", coco[0])["model_path"]
    run_json("index", first, "--db", db, "--model-path", clip)
    with (notes := tmp_path / "notes.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([("file", "caption"), *((first / Path(n).name, captions[n][0]) for n in files[:60])])
    run_json("import-captions", notes, "--db", db)
    fitted = run_json("calibrate", "--db", db)["calibration"]
    assert min(_texted(fitted)) >= 60 and _calibration(db) == fitted
    run_json("index", later, "--db", db)  # half as many photos again, none with text
    assert any(DUE in line for line in _calibration(db))
    run_json("search", "pizza", "--db", db)
    assert not any(DUE in line for line in _calibration(db))


def test_another_clip_model_refits_at_the_next_search(coco, tmp_path, tiny_clip_config):
    """`index --rebuild` with another CLIP: status says the fit is stale, the next search fits the new model."""
    from photoseek.models.export import export_open_clip
    from tests.helpers import TINY_CLIP_ARCH

    other = export_open_clip(TINY_CLIP_ARCH, tmp_path / "other-clip", random_weights=True,
                             arch_config=tiny_clip_config, seed=1)
    db = tmp_path / "other.db"
    shutil.copy(coco[0], db)
    run_json("calibrate", "--db", db)
    run_json("index", COCO, "--db", db, "--rebuild", "--model-path", other)
    model = run_json("status", "--db", db)["model"]
    assert any(DUE in line for line in _calibration(db)) and "seed1" in model
    run_json("search", "pizza", "--db", db)
    clip = next(line for line in _calibration(db) if line.startswith("CLIP"))
    assert f"({model})" in clip and "AUC" in clip and not any(DUE in line for line in _calibration(db))
