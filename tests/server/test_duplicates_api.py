"""The duplicates endpoints over HTTP: groups, moving chosen copies with a manifest, undo, auth."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from imgsearch import ImageIndex
from imgsearch.server import ServerConfig, create_app
from tests.helpers import draw_scene
from tests.server.conftest import LOCAL_URL

TOKEN = "dup-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def served(tmp_path: Path, tiny_clip_dir: Path):
    root = tmp_path / "photos"
    draw_scene(root / "a.jpg", 1)
    shutil.copy(root / "a.jpg", root / "a-copy.jpg")
    draw_scene(root / "b.jpg", 2, size=(320, 240))
    with Image.open(root / "b.jpg") as image:
        (root / "sub").mkdir()
        image.resize((160, 120)).save(root / "sub" / "b-small.png")
    draw_scene(root / "c.jpg", 3)
    db = tmp_path / "c.db"
    with ImageIndex(db, model_path=tiny_clip_dir) as index:
        index.index([root])
    config = ServerConfig(db=db, model_path=tiny_clip_dir, token=TOKEN, duplicates_dir=tmp_path / "dupes")
    with TestClient(create_app(config), base_url=LOCAL_URL) as client:
        yield client, root, tmp_path / "dupes"


def _ids(groups: list[dict]) -> dict[str, int]:
    return {m["name"]: m["id"] for g in groups for m in g["members"]}


def test_duplicates_need_the_token(served):
    client, _, _ = served
    assert client.get("/api/duplicates").status_code == 401
    assert client.post("/api/duplicates/move", json={"ids": [1]}).status_code == 401


def test_groups_move_and_undo_over_http(served):
    client, root, dupes = served
    answer = client.get("/api/duplicates", params={"tier": "near"}, headers=AUTH).json()
    assert answer["move_to"] == str(dupes)
    groups = answer["groups"]
    assert sorted(sorted(m["name"] for m in g["members"]) for g in groups) == [
        ["a-copy.jpg", "a.jpg"], ["b-small.png", "b.jpg"]
    ]
    b_group = next(g for g in groups if any(m["name"] == "b.jpg" for m in g["members"]))
    assert b_group["members"][0]["name"] == "b.jpg" and b_group["members"][0]["keeper"]
    assert b_group["reason"] == "largest: 320x240 pixels"
    ids = _ids(groups)

    refused = client.post("/api/duplicates/move", json={"ids": [ids["a.jpg"], ids["a-copy.jpg"]], "tier": "near"},
                          headers=AUTH)
    assert refused.status_code == 400 and "every copy" in refused.json()["detail"]
    assert client.post("/api/duplicates/move", json={"ids": [99999], "tier": "near"}, headers=AUTH).status_code == 400

    moved = client.post("/api/duplicates/move", json={"ids": [ids["b-small.png"]], "tier": "near"}, headers=AUTH).json()
    assert [Path(m["to"]).relative_to(dupes).as_posix() for m in moved["moved"]] == ["photos/sub/b-small.png"]
    assert not (root / "sub" / "b-small.png").exists() and (dupes / "photos" / "sub" / "b-small.png").is_file()
    left = client.get("/api/duplicates", params={"tier": "near"}, headers=AUTH).json()["groups"]
    assert [sorted(m["name"] for m in g["members"]) for g in left] == [["a-copy.jpg", "a.jpg"]]

    undone = client.post("/api/duplicates/undo", json={"manifest": moved["manifest"]}, headers=AUTH).json()
    assert len(undone["moved"]) == 1 and (root / "sub" / "b-small.png").is_file()
    assert len(client.get("/api/duplicates", params={"tier": "near"}, headers=AUTH).json()["groups"]) == 2
    outside = client.post("/api/duplicates/undo", json={"manifest": "../../etc/passwd"}, headers=AUTH)
    assert outside.status_code == 400


def test_bad_tier_and_threshold_are_clear(served):
    client, _, _ = served
    assert client.get("/api/duplicates", params={"tier": "fuzzy"}, headers=AUTH).status_code == 422
    bad = client.get("/api/duplicates", params={"threshold": 5}, headers=AUTH)
    assert bad.status_code == 400 and "needs one tier" in bad.json()["detail"]
