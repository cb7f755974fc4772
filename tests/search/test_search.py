"""Searching through the CLI and the Python API with a tiny random-weight model.

Random weights carry no meaning, so these tests check the mechanics that do not depend
on it: identical images score highest, query arithmetic moves rankings the expected way,
outputs have the documented shape, and mistakes give clear errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from photoseek import ImageIndex
from photoseek.store.catalog import Catalog
from tests.helpers import COLOURS, catalog_of, draw_photo, index_colour_photos, run_cli, run_json
from tests.hubcache import run_photoseek


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, tiny_clip_dir) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("photos")
    return root, index_colour_photos(root, tiny_clip_dir)


def test_json_output_shape(indexed):
    root, db = indexed
    payload = run_json("search", "a red circle", "--db", db, "-k", "3")
    assert payload["query"] == "a red circle"
    assert payload["model"]
    assert [r["rank"] for r in payload["results"]] == [1, 2, 3]
    first = payload["results"][0]
    assert {"rank", "path", "score", "width", "height", "taken_at", "id"} <= set(first)
    assert Path(first["path"]).is_absolute() and Path(first["path"]).parent == root.resolve()
    assert (first["width"], first["height"]) == (160, 120)
    scores = [r["score"] for r in payload["results"]]
    assert scores == sorted(scores, reverse=True)


def test_example_image_finds_itself_first_and_similar_excludes_it(indexed):
    root, db = indexed
    by_image = run_json("search", "--image", root / "blue.jpg", "--db", db)
    assert Path(by_image["results"][0]["path"]).name == "blue.jpg"
    assert by_image["results"][0]["score"] == pytest.approx(1.0, abs=1e-3)
    similar = run_json("similar", root / "blue.jpg", "--db", db, "-k", "10")
    assert "blue.jpg" not in {Path(r["path"]).name for r in similar["results"]}
    assert len(similar["results"]) == len(COLOURS) - 1


def test_two_example_images_rank_both_on_top(indexed):
    root, db = indexed
    payload = run_json("search", "--image", root / "red.jpg", "--image", root / "green.jpg", "--db", db, "-k", "2")
    assert {Path(r["path"]).name for r in payload["results"]} == {"red.jpg", "green.jpg"}


def test_negative_text_pushes_its_closest_image_down(indexed):
    _, db = indexed
    with ImageIndex(db) as index:
        everything = len(COLOURS)
        plain = [r.path for r in index.search("a photo", k=everything)]
        ids, matrix = catalog_of(index).all_embeddings()
        avoid = index.model.encode_texts(["a bright square"])[0]
        closest = index.find(int(ids[np.argmax(matrix @ avoid)])).path
        pushed = [r.path for r in index.search("a photo", negatives=["5:a bright square"], k=everything)]
    assert pushed.index(closest) >= plain.index(closest)
    assert pushed[-1] == closest


def test_weights_and_offset_paging(indexed):
    _, db = indexed
    full = run_json("search", "sunset", "--db", db, "-k", "6")["results"]
    page = run_json("search", "sunset", "--db", db, "-k", "2", "--offset", "2")["results"]
    assert [r["path"] for r in page] == [r["path"] for r in full[2:4]]
    assert [r["rank"] for r in page] == [3, 4]
    doubled = run_json("search", "2:sunset", "--db", db, "-k", "6")["results"]
    assert [r["path"] for r in doubled] == [r["path"] for r in full]


def test_min_score_filters(indexed):
    root, db = indexed
    payload = run_json("search", "--image", root / "red.jpg", "--min-score", "0.999", "--db", db)
    assert [Path(r["path"]).name for r in payload["results"]] == ["red.jpg"]


def test_interactive_prompt_answers_queries_until_exit(indexed):
    _, db = indexed
    from typer.testing import CliRunner

    from photoseek.cli import app

    result = CliRunner().invoke(app, ["search", "--db", str(db)], input="red square -blue\nexit\n")
    assert result.exit_code == 0, result.output
    assert result.output.count(".jpg") >= 5


def test_plain_output_lists_scores_and_paths(indexed):
    _, db = indexed
    lines = run_cli("search", "dog", "--db", db, "-k", "2").strip().splitlines()
    assert len(lines) == 2 and all(line.split("\t")[1].endswith(".jpg") for line in lines)


def test_empty_query_text_is_refused_not_ranked(indexed):
    """An empty or blank text means nothing: an error, not results ranked by the embedding of ''."""
    root, db = indexed
    for blank in ("", "   "):
        assert "needs at least one" in run_cli("search", blank, "--db", db, expect=2)
    with_image = run_json("search", "", "--image", root / "red.jpg", "--db", db, "-k", "1")
    assert Path(with_image["results"][0]["path"]).name == "red.jpg"  # the blank text adds nothing


def test_unreadable_query_image_is_a_clear_error(indexed, tmp_path):
    _, db = indexed
    notes = tmp_path / "notes.jpg"
    notes.write_text("hello")
    assert "Cannot use" in run_cli("search", "--image", notes, "--db", db, expect=2)
    assert "No such image file" in run_cli("similar", tmp_path / "missing.jpg", "--db", db, expect=3)
    folder = " ".join(run_cli("similar", tmp_path, "--db", db, expect=2).split())
    assert "is a folder: give one image file" in folder and "No such" not in folder


def test_a_fifo_or_missing_file_as_query_image_is_refused_without_blocking(indexed, tmp_path):
    _, db = indexed
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # nobody writes to it: reading it whole would wait for ever
    done = run_photoseek("search", "--image", str(fifo), "--db", str(db), "--json", env=dict(os.environ), timeout=60)
    assert done.returncode == 2 and "named pipe" in json.loads(done.stdout)["detail"], (done.stdout, done.stderr)
    assert "file not found" in run_cli("search", "--image", "-1:" + str(tmp_path / "gone.jpg"), "red", "--db", db,
                                       expect=3)


def test_missing_or_empty_catalog_says_to_index_first(tmp_path, tiny_clip_dir):
    output = run_cli("search", "cat", "--db", tmp_path / "new.db", "--model-path", tiny_clip_dir, expect=3)
    assert "photoseek index" in output
    assert not (tmp_path / "new.db").exists(), "a search must not create a catalog"
    empty = tmp_path / "empty"
    empty.mkdir()
    run_json("index", empty, "--db", tmp_path / "c.db", "--model-path", tiny_clip_dir)
    output = run_cli("search", "cat", "--db", tmp_path / "c.db", expect=5)
    assert "no images yet" in output


def test_search_during_the_first_index_run_says_it_is_in_progress(tmp_path, tiny_clip_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    db = tmp_path / "c.db"
    run_json("index", empty, "--db", db, "--model-path", tiny_clip_dir)
    with Catalog(db) as catalog, catalog.index_lock():  # as a running `photoseek index` holds it
        output = " ".join(run_cli("search", "cat", "--db", db, expect=5).split())
    assert f"an index run (pid {os.getpid()}) is in progress" in output
    assert "as its batches commit" in output
    crashed = subprocess.Popen([sys.executable, "-c", "pass"])
    crashed.wait()
    Path(f"{db}.lock").write_text(str(crashed.pid), encoding="ascii")  # left by a run that died
    output = run_cli("search", "cat", "--db", db, expect=5)
    assert "in progress" not in output and "photoseek index" in output


def test_catalog_refuses_queries_with_another_model(indexed):
    _, db = indexed
    output = run_cli("search", "cat", "--db", db, "--model", "ViT-B-32__openai", expect=5)
    assert "--rebuild" in output and "ViT-B-32__openai" in output


def test_status_reports_the_catalog(indexed):
    root, db = indexed
    status = run_json("status", "--db", db)
    assert status["images"] == len(COLOURS)
    assert status["roots"] == [str(root.resolve())]
    assert status["failures"] == []


def test_status_lists_single_file_roots_apart_from_folders(tmp_path, tiny_clip_dir):
    folder, single = tmp_path / "album", tmp_path / "loose" / "photo.jpg"
    draw_photo(folder / "a.jpg", "red")
    draw_photo(single, "blue")
    db = tmp_path / "c.db"
    run_json("index", folder, single, "--db", db, "--model-path", tiny_clip_dir)
    text = " ".join(run_cli("status", "--db", db).split())  # Rich wraps long paths
    assert f"Folders: {folder} Files: {single}" in text
    status = run_json("status", "--db", db)
    assert (status["folders"], status["files"]) == ([str(folder)], [str(single)])
    assert sorted(status["roots"]) == sorted([str(folder), str(single)])
    single.rename(tmp_path / "elsewhere.jpg")  # its disk unplugged: the catalog still knows it was a file
    assert run_json("status", "--db", db)["files"] == [str(single)]


def test_offline_without_cached_model_fails_fast_with_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("PHOTOSEEK_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    draw_photo(tmp_path / "p" / "a.jpg", "red")
    started = time.monotonic()
    output = run_cli("index", tmp_path / "p", "--db", tmp_path / "c.db", "--model", "ViT-B-32__openai", expect=4)
    assert time.monotonic() - started < 5
    assert "--model-path" in output
    assert os.environ["HF_HOME"] == str(tmp_path / "hf")


# -- one syntax for weights and negatives: arguments, options, prompt and piped lines --------------

def _ranked(*args: object, stdin: str | None = None) -> list[tuple[str, float]]:
    """(file name, score) of every image, clip mode, from `search` with these arguments (or piped lines)."""
    from typer.testing import CliRunner

    from photoseek.cli import app

    command = ["search", *map(str, args), "--mode", "clip", "--min-score", "-1", "-k", str(len(COLOURS)), "--json"]
    result = CliRunner().invoke(app, command, input=stdin)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()] if stdin else [json.loads(result.stdout)]
    assert len(lines) == 1, lines
    return [(Path(r["path"]).name, r["score"]) for r in lines[0]["results"]]


def _same(first: list[tuple[str, float]], second: list[tuple[str, float]]) -> bool:
    """The same ranking with the same scores (up to the order terms were summed in)."""
    return [n for n, _ in first] == [n for n, _ in second] and np.allclose([s for _, s in first],
                                                                          [s for _, s in second], atol=1e-5)


def test_a_negative_weight_argument_subtracts_like_not(indexed):
    root, db = indexed
    with_not = _ranked("a photo", "--not", "a bright square", "--db", db)
    assert _same(_ranked("1:a photo", "-1:a bright square", "--db", db), with_not)
    assert _same(_ranked("--db", db, "a photo", "-1:a bright square"), with_not)  # anywhere on the line
    assert _same(_ranked("a photo", "--not", "2:a bright square", "--db", db),
                 _ranked("a photo", "-2:a bright square", "--db", db))
    assert not _same(with_not, _ranked("a photo", "--db", db))


def test_a_negative_weight_where_it_already_subtracts_or_a_zero_weight_is_refused(indexed):
    _, db = indexed
    output = " ".join(run_cli("search", "a photo", "--not", "-1:cat", "--db", db, expect=2).split())
    assert "'-1:cat' is already subtracted" in output and "give 1:cat there, or -1:cat as a query term" in output
    assert "a weight of 0 adds nothing" in run_cli("search", "0:cat", "--db", db, expect=2)
    assert "-1:cat" in run_cli("search", "--not-image", "-1:cat.jpg", "--db", db, expect=2)
    assert "No such option" in run_cli("search", "-x", "--db", db, expect=2)  # a typo is not a query term


def test_not_image_subtracts_an_example(indexed):
    root, db = indexed
    pushed = _ranked("a photo", "--not-image", root / "red.jpg", "--db", db)
    assert pushed[-1][0] == "red.jpg"
    assert _same(pushed, _ranked("a photo", "--image", f"-1:{root / 'red.jpg'}", "--db", db))


def test_piped_lines_keep_every_option_of_the_command_line(indexed):
    root, db = indexed
    red = root / "red.jpg"
    assert _same(_ranked("--not", "a bright square", "--db", db, stdin="a photo\n"),
                 _ranked("a photo", "--not", "a bright square", "--db", db))
    assert _same(_ranked("--image", red, "--db", db, stdin="a photo\n"), _ranked("a photo", "--image", red, "--db", db))
    assert _same(_ranked("--not-image", red, "--db", db, stdin="a photo\n"),
                 _ranked("a photo", "--not-image", red, "--db", db))
    # A line has the command line's terms and options, and '-words' subtracts.
    line = f'"a photo" -a bright square 2:sunset --not-image {red}\n'
    assert _same(_ranked("--db", db, stdin=line),
                 _ranked("a photo", "2:sunset", "--not", "a bright square", "--not-image", red, "--db", db))


def test_a_bad_query_line_is_one_error_and_the_next_line_runs(indexed):
    _, db = indexed
    from typer.testing import CliRunner

    from photoseek.cli import app

    lines = 'a photo --not -1:cat\n"unclosed\nred --frobnicate\nred\n'
    result = CliRunner().invoke(app, ["search", "--db", str(db), "--json", "-k", "1"], input=lines)
    assert result.exit_code == 0
    printed = [json.loads(line) for line in result.stdout.splitlines()]  # under --json, errors are JSON on stdout
    errors = [line["detail"] for line in printed if "error" in line]
    assert "already subtracted" in str(errors) and "never closes" in str(errors) and "--frobnicate" in str(errors)
    assert [line["query"] for line in printed if "error" not in line] == ["red"]
