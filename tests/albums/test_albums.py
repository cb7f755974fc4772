"""`--link-to DIR`: results saved as a folder of links; names made unique, nothing overwritten."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from photoseek import ImageIndex
from tests.helpers import COLOURS, draw_photo, run_cli, run_json


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, tiny_clip_dir) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("album-photos")
    for i, colour in enumerate(COLOURS):
        draw_photo(root / f"{colour}.jpg", colour, seed=i)
    draw_photo(root / "more" / "red.jpg", "red", seed=40)  # the same name in another folder
    db = root.parent / "albums.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    return root, db


def test_search_results_become_symlinks_with_unique_names(indexed, tmp_path):
    root, db = indexed
    album = tmp_path / "new" / "reds"
    (tmp_path / "new").mkdir()
    payload = run_json("search", "red", "--db", db, "-k", "7", "--mode", "clip", "--link-to", album)
    paths = [r["path"] for r in payload["results"]]
    assert len(paths) == 7
    links = sorted(album.iterdir())
    assert len(links) == 7 and all(link.is_symlink() for link in links)
    assert sorted(os.readlink(link) for link in links) == sorted(paths)
    assert {"red.jpg", "red (2).jpg"} <= {link.name for link in links}
    assert payload["album"]["folder"] == str(album.resolve()) and not payload["album"]["failed"]

    again = run_json("search", "red", "--db", db, "-k", "7", "--mode", "clip", "--link-to", album)
    assert len(again["album"]["already"]) == 7 and not again["album"]["linked"]
    assert len(list(album.iterdir())) == 7  # saving the same results twice adds nothing


def test_an_existing_file_is_never_overwritten(indexed, tmp_path):
    root, db = indexed
    album = tmp_path / "album"
    album.mkdir()
    (album / "blue.jpg").write_bytes(b"my own file")
    out = run_cli("similar", root / "green.jpg", "--db", db, "-k", "7", "--link-to", album)
    assert "Linked 6 photo(s) into" in out  # all but green.jpg itself
    assert (album / "blue.jpg").read_bytes() == b"my own file"
    assert os.readlink(album / "blue (2).jpg") == str(root / "blue.jpg")


def test_hardlinks_where_asked(indexed, tmp_path):
    root, db = indexed
    album = tmp_path / "hard"
    run_json("search", "blue", "--db", db, "-k", "2", "--mode", "clip", "--link-to", album, "--hardlink")
    links = list(album.iterdir())
    assert len(links) == 2 and not any(link.is_symlink() for link in links)
    assert all(link.stat().st_nlink >= 2 for link in links)
    assert all(link.samefile(root / link.name) or link.samefile(root / "more" / "red.jpg") for link in links)


def test_gone_files_and_a_file_in_the_way_are_reported(indexed, tmp_path):
    root, db = indexed
    with ImageIndex(db, create=False) as index:
        report = index.link([root / "yellow.jpg", tmp_path / "gone.jpg"], tmp_path / "a")
        assert [Path(p).name for p, _ in report.linked] == ["yellow.jpg"]
        assert report.failed == [(str(tmp_path / "gone.jpg"),
                                  "the file is gone (moved or deleted); re-index its folder")]
    (tmp_path / "plain").write_text("x")
    out = run_cli("search", "red", "--db", db, "--mode", "clip", "--link-to", tmp_path / "plain", expect=2)
    assert "exists and is not a folder" in out
