"""The duplicates endpoints over HTTP: groups, moving chosen copies with a manifest, undo, auth."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from photoseek import ImageIndex
from photoseek.server import ServerConfig, create_app
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
    assert [m["copy_of"] for m in b_group["members"]] == [None, b_group["members"][0]["id"]]
    ids = _ids(groups)

    refused = client.post("/api/duplicates/move", json={"ids": [ids["a.jpg"], ids["a-copy.jpg"]], "tier": "near"},
                          headers=AUTH)
    assert refused.status_code == 422 and "every copy" in refused.json()["detail"]
    assert client.post("/api/duplicates/move", json={"ids": [99999], "tier": "near"}, headers=AUTH).status_code == 422

    moved = client.post("/api/duplicates/move", json={"ids": [ids["b-small.png"]], "tier": "near"}, headers=AUTH).json()
    assert [Path(m["to"]).relative_to(dupes).as_posix() for m in moved["moved"]] == ["photos/sub/b-small.png"]
    assert not (root / "sub" / "b-small.png").exists() and (dupes / "photos" / "sub" / "b-small.png").is_file()
    left = client.get("/api/duplicates", params={"tier": "near"}, headers=AUTH).json()["groups"]
    assert [sorted(m["name"] for m in g["members"]) for g in left] == [["a-copy.jpg", "a.jpg"]]

    undone = client.post("/api/duplicates/undo", json={"manifest": moved["manifest"]}, headers=AUTH).json()
    assert len(undone["moved"]) == 1 and (root / "sub" / "b-small.png").is_file()
    assert len(client.get("/api/duplicates", params={"tier": "near"}, headers=AUTH).json()["groups"]) == 2
    outside = client.post("/api/duplicates/undo", json={"manifest": "../../etc/passwd"}, headers=AUTH)
    assert outside.status_code == 404


def test_bad_tier_and_threshold_are_clear(served):
    client, _, _ = served
    assert client.get("/api/duplicates", params={"tier": "fuzzy"}, headers=AUTH).status_code == 422
    bad = client.get("/api/duplicates", params={"threshold": 5}, headers=AUTH)
    assert bad.status_code == 422 and "needs one tier" in bad.json()["detail"]


def test_a_file_name_that_is_not_utf8_is_served_not_a_server_error(tmp_path: Path, tiny_clip_dir: Path):
    """Search, image details and duplicates show such a name with \\xNN (clients name images by id); moving works."""
    root = tmp_path / "photos"
    draw_scene(root / "a.jpg", 1)
    odd = Path(os.fsdecode(os.fsencode(root) + b"/caf\xe9.jpg"))
    shutil.copy(root / "a.jpg", odd)
    db = tmp_path / "c.db"
    with ImageIndex(db, model_path=tiny_clip_dir) as index:
        index.index([root])
        odd_id = index.find(odd).id
    config = ServerConfig(db=db, model_path=tiny_clip_dir, token=TOKEN, duplicates_dir=tmp_path / "dupes")
    with TestClient(create_app(config), base_url=LOCAL_URL) as client:
        found = client.get("/api/search", params={"q": "x", "mode": "clip", "min_score": -1}, headers=AUTH)
        assert found.status_code == 200, found.text
        assert "caf\\xe9.jpg" in {hit["name"] for hit in found.json()["results"]}
        details = client.get(f"/api/images/{odd_id}", headers=AUTH)
        assert details.status_code == 200 and details.json()["name"] == "caf\\xe9.jpg"
        original = client.get(f"/files/{odd_id}", headers=AUTH)
        assert original.status_code == 200 and original.content == odd.read_bytes()
        groups = client.get("/api/duplicates", params={"tier": "exact"}, headers=AUTH)
        assert groups.status_code == 200, groups.text
        assert _ids(groups.json()["groups"])["caf\\xe9.jpg"] == odd_id

        moved = client.post("/api/duplicates/move", json={"ids": [odd_id], "tier": "exact"}, headers=AUTH)
        assert moved.status_code == 200 and not odd.exists(), moved.text
        undone = client.post("/api/duplicates/undo", json={"manifest": moved.json()["manifest"]}, headers=AUTH)
        assert undone.status_code == 200 and odd.is_file(), undone.text


def test_only_exact_and_near_copies_are_offered_for_moving_at_first(served):
    """The web UI pre-checks `suggested` copies: similar shots start unchecked, as the CLI moves
    exact and near copies by default. A loose cosine makes every picture a similar shot here."""
    client, _, _ = served
    groups = client.get("/api/duplicates", params={"tier": "similar", "threshold": 0.01}, headers=AUTH).json()["groups"]
    members = [m for g in groups for m in g["members"]]
    for member in members:
        assert member["suggested"] == (not member["keeper"] and member["tier"] in ("exact", "near")), member
    by_name = {m["name"]: m for m in members}
    assert by_name["a-copy.jpg"]["suggested"] or by_name["a.jpg"]["suggested"]  # byte-identical: exact
    similar = [m for m in members if m["tier"] == "similar" and not m["keeper"]]
    assert similar and not any(m["suggested"] for m in similar)
    near = client.get("/api/duplicates", params={"tier": "near"}, headers=AUTH).json()["groups"]
    assert all(m["suggested"] != m["keeper"] for g in near for m in g["members"])


def test_two_moves_in_one_second_each_keep_their_own_manifest(served, monkeypatch):
    from photoseek.duplicates import moves

    client, root, dupes = served
    monkeypatch.setattr(moves.time, "strftime", lambda fmt, *a: "20260101-120000" if "%H%M%S" in fmt else "x")
    ids = _ids(client.get("/api/duplicates", params={"tier": "near"}, headers=AUTH).json()["groups"])
    first = client.post("/api/duplicates/move", json={"ids": [ids["a-copy.jpg"]], "tier": "near"}, headers=AUTH)
    second = client.post("/api/duplicates/move", json={"ids": [ids["b-small.png"]], "tier": "near"}, headers=AUTH)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json()["manifest"] != second.json()["manifest"]
    for answer in (first, second):
        undone = client.post("/api/duplicates/undo", json={"manifest": answer.json()["manifest"]}, headers=AUTH)
        assert len(undone.json()["moved"]) == 1, undone.text
    assert (root / "a-copy.jpg").is_file() and (root / "sub" / "b-small.png").is_file()
