"""A search page shorter than asked says how many weaker matches the cut-off hid, and how to see them,
so a newcomer who tags one photo does not see every other result vanish without a word."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from photoseek.cli import app
from tests.helpers import draw_scene, run_json

QUERY = "two dogs on a beach"
HINT = re.compile(r"(\d+) weaker match(?:es)? hidden by the cut-off \(0\.1\); --min-score 0 shows them")


def search(*args: object) -> tuple[str, str]:
    """(stdout, stderr) of `photoseek search`, as a script piping it sees them."""
    result = CliRunner().invoke(app, ["search", *(str(a) for a in args)])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout, result.stderr


@pytest.fixture
def catalog(tmp_path: Path, tiny_clip_dir: Path, text_model_cache: Path) -> tuple[Path, Path]:
    """Twelve photos, indexed; none has text yet."""
    root = tmp_path / "photos"
    for seed in range(12):
        draw_scene(root / f"scene{seed:02}.jpg", seed)
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    return root, db


def test_a_page_the_cut_off_shortened_says_how_many_it_hid(catalog):
    root, db = catalog
    run_json("tag", root / "scene03.jpg", "dog", "beach", "--db", db)
    shown, said = search(QUERY, "--db", db)
    lines = shown.splitlines()
    assert [Path(line.split("\t")[1]).name for line in lines] == ["scene03.jpg"]
    hint = HINT.search(said)
    assert hint, said
    uncut, said_uncut = search(QUERY, "--db", db, "--min-score", "0")
    assert int(hint.group(1)) == len(uncut.splitlines()) - len(lines) == 9
    assert "hidden" not in said_uncut and "cut-off" not in said_uncut
    page = json.loads(CliRunner().invoke(app, ["search", QUERY, "--db", str(db), "--json"]).stdout)
    assert page["hidden"] == 9 and len(page["results"]) == 1 and page["uncut"] is False
    with _rest(db) as client:  # the web UI and REST clients are told too
        served = client.get("/api/search", params={"q": QUERY, "k": 10})
    assert served.status_code == 200 and served.json()["hidden"] == 9 and len(served.json()["results"]) == 1


def _rest(db: Path):
    from fastapi.testclient import TestClient

    from photoseek.server import ServerConfig, create_app

    return TestClient(create_app(ServerConfig(db=db)), base_url="http://127.0.0.1")


def test_a_full_page_says_nothing_was_hidden(catalog):
    root, db = catalog
    run_json("tag", root / "scene03.jpg", "dog", "beach", "--db", db)
    shown, said = search(QUERY, "--db", db, "-k", "1")
    assert len(shown.splitlines()) == 1 and "hidden" not in said


def test_a_page_left_uncut_says_it_is_the_closest_by_looks(catalog):
    root, db = catalog
    run_json("tag", root / "scene05.jpg", "lighthouse", "--db", db)
    shown, said = search(QUERY, "--db", db)
    assert len(shown.splitlines()) == 10
    assert "the cut-off (0.1) is not applied" in said and "closest by looks alone" in said, said
    assert "hidden" not in said
    page = json.loads(CliRunner().invoke(app, ["search", QUERY, "--db", str(db), "--json"]).stdout)
    assert page["uncut"] is True and page["hidden"] == 0
    with _rest(db) as client:
        served = client.get("/api/search", params={"q": QUERY, "k": 10}).json()
    assert served["uncut"] is True and len(served["results"]) == 10
