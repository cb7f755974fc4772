"""Every dataset reader on small files written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from photoseek import ImageIndex
from photoseek.cli import app
from photoseek.errors import PhotoseekError
from photoseek.text.caption_files import load_dataset
from tests.helpers import draw_photo, run_cli, run_json


def write(path: Path, content: str | object) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def karpathy(tmp_path: Path) -> Path:
    def entry(name: str, split: str, *captions: str) -> dict:
        return {
            "filepath": "val2014", "filename": name, "split": split,
            "sentences": [{"raw": c, "tokens": c.lower().split()} for c in captions],
        }

    return write(tmp_path / "dataset_coco.json", {
        "dataset": "coco",
        "images": [
            entry("a.jpg", "test", "A dog.", "A brown dog."),
            entry("b.jpg", "train", "A cat."),
            entry("c.jpg", "test", "A bird."),
            entry("a.jpg", "test", "Listed again."),
        ],
    })


def test_karpathy_split(tmp_path):
    dataset = load_dataset(karpathy(tmp_path), split="test")
    assert dataset.format == "karpathy"
    assert dataset.images == ("val2014/a.jpg", "val2014/c.jpg")
    assert dataset.captions == (("A dog.", "A brown dog."), ("A bird.",))
    assert any("val2014/a.jpg" in issue and "twice" in issue for issue in dataset.issues)


def test_karpathy_without_split_reads_every_split(tmp_path):
    assert len(load_dataset(karpathy(tmp_path)).images) == 3


def test_karpathy_unknown_split_is_an_error(tmp_path):
    with pytest.raises(PhotoseekError, match="split 'tset'"):
        load_dataset(karpathy(tmp_path), split="tset")


def test_coco_captions(tmp_path):
    path = write(tmp_path / "captions_val2017.json", {
        "images": [
            {"id": 1, "file_name": "1.jpg"}, {"id": 2, "file_name": "2.jpg"}, {"id": 1, "file_name": "x.jpg"},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "caption": "A plane  over a lake.\n"},
            {"id": 11, "image_id": 2, "caption": "A red bus."},
            {"id": 12, "image_id": 1, "caption": "A seaplane."},
            {"id": 12, "image_id": 1, "caption": "Repeated id."},
            {"id": 13, "image_id": 99, "caption": "Nobody's image."},
        ],
    })
    dataset = load_dataset(path)
    assert dataset.format == "coco"
    assert dataset.images == ("1.jpg", "2.jpg")
    assert dataset.captions == (("A plane over a lake.", "A seaplane."), ("A red bus.",))
    issues = " | ".join(dataset.issues)
    assert "image id 1 listed twice" in issues
    assert "caption id 12 appears twice" in issues
    assert "1 captions refer to image ids not in" in issues


def test_flickr_token_file_tolerates_a_space_for_the_tab(tmp_path):
    path = write(tmp_path / "Flickr8k.token.txt", "\n".join([
        "1000268201_693b08cb0e.jpg#0\tA child in a pink dress .",
        "1000268201_693b08cb0e.jpg#1\tA girl going into a wooden building .",
        "2258277193_586949ec62.jpg.1#0 People standing outside a building .",
        "1000268201_693b08cb0e.jpg#1\tDuplicate caption number .",
        "not a caption line",
        "",
    ]))
    dataset = load_dataset(path)
    assert dataset.format == "flickr-token"
    assert dataset.images == ("1000268201_693b08cb0e.jpg", "2258277193_586949ec62.jpg.1")
    assert dataset.captions[0] == ("A child in a pink dress .", "A girl going into a wooden building .")
    assert dataset.captions[1] == ("People standing outside a building .",)
    issues = " | ".join(dataset.issues)
    assert "1000268201_693b08cb0e.jpg#1 appears twice (line 4)" in issues
    assert "line 5 is not" in issues


def test_token_file_without_caption_lines_is_an_error(tmp_path):
    with pytest.raises(PhotoseekError, match="holds no captions. Give one of: CSV or TSV"):
        load_dataset(write(tmp_path / "notes.txt", "just some text\n"))


def test_captions_by_file_merges_repeated_keys(tmp_path):
    text = '{"a.jpg": ["one", "two"], "b.jpg": "solo", "a.jpg": ["three"]}'
    path = write(tmp_path / "captions.json", text)
    dataset = load_dataset(path)
    assert dataset.format == "captions-by-file"
    assert dict(zip(dataset.images, dataset.captions, strict=True)) == {
        "a.jpg": ("one", "two", "three"), "b.jpg": ("solo",),
    }
    assert any("'a.jpg' appears more than once" in issue for issue in dataset.issues)


def test_csv_binary(tmp_path):
    rows = 'image,caption\na.jpg,"A dog, running."\nb.jpg,A cat.\na.jpg,A puppy.\nb.jpg,A cat.\nlonely\n'
    path = write(tmp_path / "pairs.csv", rows)
    dataset = load_dataset(path)
    assert dataset.format == "csv"
    assert dataset.images == ("a.jpg", "b.jpg")
    assert dataset.captions == (("A dog, running.", "A puppy."), ("A cat.",))
    assert not dataset.grades
    issues = " | ".join(dataset.issues)
    assert "row 5 repeats" in issues and "row 6 has fewer than 2 columns" in issues


def test_csv_graded_relevance(tmp_path):
    path = write(tmp_path / "graded.csv", "a.jpg,dogs on a beach,1\nb.jpg,dogs on a beach,3\nc.jpg,a cat,2\n")
    dataset = load_dataset(path)
    assert dataset.grades == {"dogs on a beach": {"a.jpg": 1.0, "b.jpg": 3.0}, "a cat": {"c.jpg": 2.0}}
    # A graded caption is asked once, attached to its most relevant image.
    assert dict(zip(dataset.images, dataset.captions, strict=True)) == {
        "b.jpg": ("dogs on a beach",), "c.jpg": ("a cat",),
    }


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("odd.json", {"images": 3}, "neither a Karpathy"),
        ("broken.json", "{not json", "not valid JSON"),
        ("empty.json", {}, "no captioned images"),
    ],
)
def test_unreadable_datasets_are_clear_errors(tmp_path, name, content, message):
    with pytest.raises(PhotoseekError, match=message):
        load_dataset(write(tmp_path / name, content))


def test_split_is_refused_for_formats_without_splits(tmp_path):
    with pytest.raises(PhotoseekError, match="--split only applies"):
        load_dataset(write(tmp_path / "c.json", {"a.jpg": ["x"]}), split="test")


def test_missing_dataset_file(tmp_path):
    with pytest.raises(PhotoseekError, match="No captions file"):
        load_dataset(tmp_path / "nope.json")


FLICKR_CSV = (
    "image,caption\n"
    "1000268201_693b08cb0e.jpg,A child in a pink dress is climbing up a set of stairs in an entry way .\n"
    '1000268201_693b08cb0e.jpg,"A girl going into a wooden building , smiling ."\n'
    "1001773457_577c3a7d70.jpg,A black dog and a spotted dog are fighting\n"
)
TOKENS = (
    "1000268201_693b08cb0e.jpg#0\tA child in a pink dress .\n"
    "1000268201_693b08cb0e.jpg#1\tA girl going into a wooden building , smiling .\n"
    "1001773457_577c3a7d70.jpg#0\tA black dog and a spotted dog are fighting\n"
)


def test_flickr8k_captions_txt_is_read_as_csv(tmp_path):
    """Kaggle's Flickr8k ships `captions.txt`: a CSV with an image,caption header."""
    dataset = load_dataset(write(tmp_path / "captions.txt", FLICKR_CSV))
    assert dataset.format == "csv"
    assert dataset.images == ("1000268201_693b08cb0e.jpg", "1001773457_577c3a7d70.jpg")
    assert dataset.captions[0][1] == "A girl going into a wooden building , smiling ."
    assert not dataset.issues


@pytest.mark.parametrize("name", ["Flickr8k.token.csv", "Flickr8k.token", "captions"])
def test_token_file_is_recognised_whatever_its_name(tmp_path, name):
    dataset = load_dataset(write(tmp_path / name, TOKENS))
    assert dataset.format == "flickr-token"
    assert dataset.caption_count == 3 and len(dataset.images) == 2


@pytest.mark.parametrize(
    ("content", "format_name"),
    [
        ({"a.jpg": ["a dog"], "b.jpg": "a cat"}, "captions-by-file"),
        ([{"image": "a.jpg", "caption": "a dog"}, {"image": "b.jpg", "caption": "a cat"}], "json-records"),
        ([{"file": "a.jpg", "captions": ["a dog", "a puppy"]}, {"file": "b.jpg", "captions": ["a cat"]}],
         "json-records"),
    ],
)
@pytest.mark.parametrize("name", ["captions.json", "captions.txt", "captions.csv"])
def test_json_of_either_shape_is_recognised_whatever_its_name(tmp_path, name, content, format_name):
    dataset = load_dataset(write(tmp_path / name, content))
    assert dataset.format == format_name
    assert dataset.images == ("a.jpg", "b.jpg")


def test_json_records_without_caption_keys_are_a_clear_error(tmp_path):
    with pytest.raises(PhotoseekError, match="no caption key"):
        load_dataset(write(tmp_path / "x.json", [{"image": "a.jpg", "label": 3}]))



# -- the same reader behind `import-captions` and `eval` ------------------------------------------

CAPTION_FILES = {
    "flickr.csv": "image,caption\nred.png,a red circle on grey\nblue.png,a blue circle\n",
    "written.csv": "file,caption\nred.png,a red circle on grey\nblue.png,a blue circle\n",
    "reversed.csv": "caption,file\na red circle on grey,red.png\na blue circle,blue.png\n",
    "tabs.tsv": "file\tcaption\nred.png\ta red circle, on grey\nblue.png\ta blue circle\n",
    "bare.tsv": "red.png\ta red circle, on grey\nblue.png\ta blue circle\n",
    "map.json": json.dumps({"red.png": ["a red circle on grey"], "blue.png": "a blue circle"}),
    "records.json": json.dumps([{"image": "red.png", "caption": "a red circle on grey"},
                                {"image": "blue.png", "caption": "a blue circle"}]),
}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory, tiny_clip_dir) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("captioned")
    for colour in ("red", "blue"):
        draw_photo(root / f"{colour}.png", colour)
    db = root / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    return root, db


@pytest.mark.parametrize("name", sorted(CAPTION_FILES))
def test_import_captions_reads_every_caption_file_format(catalog, name):
    root, db = catalog
    path = write(root / name, CAPTION_FILES[name])
    report = run_json("import-captions", path, "--db", db)
    assert (report["imported"], report["unknown"], report["issues"]) == (2, [], [])
    with ImageIndex(db) as index:
        red = index.find(root / "red.png")
        assert index.text_signals(red.id)["note"] in ("a red circle on grey", "a red circle, on grey")


def test_importing_no_known_image_is_one_clear_error(catalog):
    root, db = catalog
    path = write(root / "elsewhere.csv", "file,caption\n" + "".join(f"x/{n}.jpg,caption {n}\n" for n in range(30)))
    output = run_cli("import-captions", path, "--db", db, expect=3)
    assert output.count("\n") == 1 and "None of the 30 images named in" in output
    assert "'x/0.jpg'" in output and "relative to the captions file's folder" in output
    header_only = write(root / "empty.csv", "file,caption\n")
    assert "holds no captions" in run_cli("import-captions", header_only, "--db", db, expect=2)


def test_some_unknown_images_are_listed_and_counted(catalog):
    root, db = catalog
    path = write(root / "some.csv", "file,caption\nred.png,a red one\n" + "".join(f"x{n}.jpg,c\n" for n in range(14)))
    result = CliRunner().invoke(app, ["import-captions", str(path), "--db", str(db)])
    assert result.exit_code == 0 and "Imported 1 descriptions" in result.stdout
    assert result.stderr.count("not in the catalog") == 11 and "... and 4 more" in result.stderr


def test_eval_reads_the_file_caption_header_that_caption_writes(catalog, tmp_path, tiny_clip_dir):
    root, _ = catalog
    written = write(tmp_path / "pairs.csv", CAPTION_FILES["written.csv"])
    report = run_json("eval", "--dataset", written, "--images", root, "--model-path", tiny_clip_dir,
                      "--cache", tmp_path / "cache")
    assert report["dataset"]["images"] == 2 and report["dataset"]["missing_images"] == []
    tabs = write(tmp_path / "pairs.tsv", CAPTION_FILES["tabs.tsv"])
    report = run_json("eval", "--dataset", tabs, "--images", root, "--model-path", tiny_clip_dir,
                      "--cache", tmp_path / "cache")
    assert report["dataset"]["captions"] == 2 and report["dataset"]["missing_images"] == []
