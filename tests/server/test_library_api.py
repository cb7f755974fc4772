"""Browsing and organising over HTTP: the timeline, sorting, notes and tags, selections (tags, zip, album)."""

from __future__ import annotations

import io
import os
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from photoseek import ImageIndex
from photoseek.server import ServerConfig, create_app
from tests.helpers import COLOURS, draw_photo
from tests.server.conftest import LOCAL_URL

TOKEN = "a-long-random-library-token"
DAY = 86_400


class Photos:
    def __init__(self, root: Path, db: Path, model_dir: Path, ids: dict[str, int], days: dict[str, int]) -> None:
        self.root, self.db, self.model_dir, self.ids, self.days = root, db, model_dir, ids, days

    def client(self, base_url: str = LOCAL_URL, **config: object) -> TestClient:
        app = create_app(ServerConfig(db=self.db, model_path=self.model_dir, roots=(self.root,), **config))
        return TestClient(app, base_url=base_url)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, tiny_clip_dir) -> Photos:
    """Twelve photos without EXIF (their file times are their capture times, one day apart), six in
    each of two folders under the same names, in a catalog of this module's own (tags change it)."""
    root = tmp_path_factory.mktemp("library") / "photos"
    days: dict[str, int] = {}
    for i, colour in enumerate(COLOURS):
        for j, folder in enumerate(("home", "trip")):
            path = draw_photo(root / folder / f"{colour}.jpg", colour, seed=i + 10 * j)
            days[f"{folder}/{colour}.jpg"] = (i * 5 + j * 7) % 12
            os.utime(path, (1_600_000_000 + days[f"{folder}/{colour}.jpg"] * DAY,) * 2)
    db = root.parent / "catalog.db"
    with ImageIndex(db, model_path=tiny_clip_dir) as index:
        index.index([root])
        records = index.records(list(range(1, 100))).values()
        ids = {str(Path(r.path).relative_to(root.resolve())): r.id for r in records}
    return Photos(root.resolve(), db, tiny_clip_dir, ids, days)


@pytest.fixture(scope="module")
def client(photos: Photos) -> Iterator[TestClient]:
    with photos.client() as client:
        yield client


def _walk(client: TestClient, **params: object) -> tuple[list[dict], list[dict]]:
    """Every page of /api/browse: (all results, the pages' envelopes)."""
    results, pages, cursor = [], [], None
    while True:
        response = client.get("/api/browse", params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        results += page["results"]
        cursor = page["next_cursor"]
        if cursor is None:
            return results, pages
        assert len(pages) < 30


def test_the_timeline_pages_every_photo_newest_first(client, photos: Photos):
    results, pages = _walk(client, k=5)
    assert [len(p["results"]) for p in pages] == [5, 5, 2]
    assert pages[0]["total"] == 12 and pages[1]["total"] is None
    names = [str(Path(r["path"]).relative_to(photos.root)) for r in results]
    assert sorted(names) == sorted(photos.days)
    assert [photos.days[n] for n in names] == sorted(photos.days.values(), reverse=True)
    assert [r["captured"] for r in results] == sorted((r["captured"] for r in results), reverse=True)
    assert all(r["taken_at"] is None and r["captured"].startswith("2020-09") for r in results)
    oldest, _ = _walk(client, k=7, sort="oldest")
    assert [r["id"] for r in oldest] == [r["id"] for r in results][::-1]
    by_name, _ = _walk(client, k=4, sort="name")
    assert [r["path"] for r in by_name] == sorted(r["path"] for r in results)


def test_the_timeline_takes_the_search_filters(client, photos: Photos):
    trip, pages = _walk(client, k=4, **{"in": str(photos.root / "trip")})
    assert pages[0]["total"] == 6 and all("/trip/" in r["path"] for r in trip)
    none, _ = _walk(client, format="png")
    assert none == []


def test_a_bad_cursor_or_sort_is_a_clear_error(client):
    bad = client.get("/api/browse", params={"cursor": "garbage"})
    assert bad.status_code == 422 and "Start again from the first page" in bad.json()["detail"]
    assert client.get("/api/browse", params={"sort": "score"}).status_code == 422
    assert client.get("/api/browse", params={"cursor": "x" * 5000}).status_code == 422
    unsorted = client.get("/api/search", params={"q": "red", "sort": "size"})  # the same words as the CLI's
    assert unsorted.status_code == 422 and "use one of score, date, oldest, name" in unsorted.json()["detail"]


def test_search_and_similar_pages_can_be_sorted(client, photos: Photos):
    params = {"q": "a red circle", "mode": "clip", "k": 6}
    best = client.get("/api/search", params=params).json()["results"]
    by_date = client.get("/api/search", params={**params, "sort": "date"}).json()["results"]
    assert {r["id"] for r in by_date} == {r["id"] for r in best}
    captured = {r["id"]: photos.days[str(Path(r["path"]).relative_to(photos.root))] for r in best}
    assert [captured[r["id"]] for r in by_date] == sorted(captured.values(), reverse=True)
    posted = client.post("/api/search", json={"texts": ["a red circle"], "mode": "clip", "k": 6, "sort": "name"})
    assert [r["path"] for r in posted.json()["results"]] == sorted(r["path"] for r in best)
    similar = client.get(f"/api/images/{photos.ids['home/red.jpg']}/similar", params={"k": 11, "sort": "oldest"})
    days = [photos.days[str(Path(r["path"]).relative_to(photos.root))] for r in similar.json()["results"]]
    assert len(days) == 11 and days == sorted(days)
    wrong = client.get("/api/search", params={**params, "sort": "size"})
    assert wrong.status_code == 422 and "use one of score, date, oldest, name" in wrong.json()["detail"]


def test_notes_and_tags_are_edited_and_become_searchable(client, photos: Photos):
    image_id = photos.ids["home/blue.jpg"]
    assert client.get(f"/api/images/{image_id}/notes").json() == {"id": image_id, "description": "", "tags": []}
    saved = client.post(f"/api/images/{image_id}/notes",
                        json={"description": "  Grandma's kitchen window  ", "tags": ["zanzibar", "family"]})
    assert saved.status_code == 200
    assert saved.json() == {"id": image_id, "description": "Grandma's kitchen window", "tags": ["zanzibar", "family"]}
    found = client.get("/api/search", params={"q": "zanzibar", "mode": "keyword", "min_score": 0}).json()
    assert [r["id"] for r in found["results"]] == [image_id]
    assert "kitchen window" in client.get(f"/api/images/{image_id}").json()["text_signals"]["note"]

    tags_only = client.post(f"/api/images/{image_id}/notes", json={"tags": ["family", "summer"]}).json()
    assert tags_only == {"id": image_id, "description": "Grandma's kitchen window", "tags": ["family", "summer"]}
    gone = client.get("/api/search", params={"q": "zanzibar", "mode": "keyword", "min_score": 0}).json()
    assert gone["results"] == []
    cleared = client.post(f"/api/images/{image_id}/notes", json={"description": "", "tags": []}).json()
    assert cleared == {"id": image_id, "description": "", "tags": []}
    assert client.post("/api/images/999999/notes", json={"tags": ["x"]}).status_code == 404


def test_a_selection_is_tagged_in_one_request(client, photos: Photos):
    ids = [photos.ids["home/green.jpg"], photos.ids["trip/green.jpg"]]
    assert client.post("/api/tags", json={"ids": ids, "add": ["meadow"]}).json() == {"changed": 2}
    assert client.post("/api/tags", json={"ids": ids, "add": ["meadow"]}).json() == {"changed": 0}
    assert all(client.get(f"/api/images/{i}/notes").json()["tags"] == ["meadow"] for i in ids)
    unknown = client.post("/api/tags", json={"ids": [*ids, 999_999], "remove": ["meadow"]})
    assert unknown.status_code == 404 and "999999" in unknown.json()["detail"]
    assert client.get(f"/api/images/{ids[0]}/notes").json()["tags"] == ["meadow"]  # nothing changed
    assert client.post("/api/tags", json={"ids": ids, "remove": ["meadow"]}).json() == {"changed": 2}


@pytest.mark.parametrize("body", [
    {"description": "x" * 4001},
    {"tags": ["a,b"]},
    {"tags": ["line\nbreak"]},
    {"tags": ["  "]},
    {"tags": ["t" * 61]},
    {"tags": [f"t{i}" for i in range(51)]},
])
def test_notes_input_is_bounded(client, photos: Photos, body):
    response = client.post(f"/api/images/{photos.ids['home/red.jpg']}/notes", json=body)
    assert response.status_code == 422, body


def test_selections_and_bodies_are_bounded(client, photos: Photos):
    assert client.post("/api/tags", json={"ids": list(range(1, 502)), "add": ["x"]}).status_code == 422
    assert client.post("/api/tags", json={"ids": [], "add": ["x"]}).status_code == 422
    huge = client.post(f"/api/images/{photos.ids['home/red.jpg']}/notes", content=b"{" + b" " * 70_000 + b"}",
                       headers={"Content-Type": "application/json"})
    assert huge.status_code == 413
    assert client.get("/files/selection.zip", params={"id": list(range(1, 502))}).status_code == 422
    for odd in (0, -1, 2**70):
        assert client.get("/files/selection.zip", params={"id": [photos.ids["home/red.jpg"], odd]}).status_code == 404


def test_editing_needs_the_token_off_loopback_and_is_refused_from_another_site(photos: Photos):
    image_id = photos.ids["home/red.jpg"]
    with photos.client(base_url="http://192.168.1.20:8000", host="0.0.0.0", token=TOKEN) as client:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for method, path, body in (("post", f"/api/images/{image_id}/notes", {"tags": ["x"]}),
                                   ("post", "/api/tags", {"ids": [image_id], "add": ["x"]}),
                                   ("post", "/api/albums", {"name": "x", "ids": [image_id]}),
                                   ("get", "/api/browse", None), ("get", f"/api/images/{image_id}/notes", None)):
            refused = client.request(method, path, json=body)
            assert refused.status_code == 401, path
            foreign = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
            if method == "post":
                assert client.request(method, path, json=body, headers=foreign).status_code == 403, path
        client.post("/api/session", headers=auth)  # the browser's cookie opens images and the zip, not the API
        assert client.get("/files/selection.zip", params={"id": [image_id]}).status_code == 200
        assert client.post(f"/api/images/{image_id}/notes", json={"tags": ["x"]}).status_code == 401
        assert client.get(f"/api/images/{image_id}/notes").status_code == 401
        ok = client.post(f"/api/images/{image_id}/notes", json={"tags": ["x"]}, headers=auth)
        assert ok.status_code == 200 and ok.json()["tags"] == ["x"]
        assert client.post(f"/api/images/{image_id}/notes", json={"tags": []}, headers=auth).json()["tags"] == []


def test_the_zip_holds_the_chosen_originals_under_unique_names(client, photos: Photos):
    ids = [photos.ids["home/red.jpg"], photos.ids["trip/red.jpg"], photos.ids["trip/blue.jpg"]]
    response = client.get("/files/selection.zip", params={"id": ids})
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert 'filename="photoseek-3-photos.zip"' in response.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["red.jpg", "red (2).jpg", "blue.jpg"]
        assert archive.read("red.jpg") == (photos.root / "home" / "red.jpg").read_bytes()
        assert archive.read("red (2).jpg") == (photos.root / "trip" / "red.jpg").read_bytes()


def test_a_zip_over_the_limit_is_refused_before_anything_is_sent(photos: Photos):
    with photos.client(max_zip_bytes=1000) as client:
        response = client.get("/files/selection.zip", params={"id": [photos.ids["home/red.jpg"]]})
        assert response.status_code == 413 and "--max-zip-mb" in response.json()["detail"]


def test_an_album_is_a_folder_of_links_in_the_album_folder_only(photos: Photos, tmp_path):
    albums = tmp_path / "albums"
    ids = [photos.ids["home/yellow.jpg"], photos.ids["trip/yellow.jpg"]]
    with photos.client(album_dir=albums) as client:
        made = client.post("/api/albums", json={"name": "Summer 2020", "ids": ids})
        assert made.status_code == 200, made.text
        assert made.json() == {"folder": str(albums / "Summer 2020"), "linked": 2, "already": 0, "failed": []}
        links = sorted((albums / "Summer 2020").iterdir())
        assert [link.name for link in links] == ["yellow (2).jpg", "yellow.jpg"]
        assert {os.readlink(link) for link in links} == {str(photos.root / f / "yellow.jpg") for f in ("home", "trip")}
        again = client.post("/api/albums", json={"name": "Summer 2020", "ids": ids}).json()
        assert (again["linked"], again["already"]) == (0, 2)

        (albums / "escape").symlink_to(tmp_path)
        for name in ("../outside", "a/b", ".hidden", " padded", "..", "escape", "tab\there"):
            refused = client.post("/api/albums", json={"name": name, "ids": ids})
            assert refused.status_code == 422, name
        assert sorted(p.name for p in tmp_path.iterdir()) == ["albums"]
        assert sorted(p.name for p in albums.iterdir()) == ["Summer 2020", "escape"]


def test_a_write_the_catalog_refuses_as_read_only_is_409_not_500(client, photos: Photos, monkeypatch):
    def refused(*_args: object, **_kwargs: object) -> int:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(ImageIndex, "tag_many", refused)  # what SQLite says for a read-only file or folder
    answer = client.post("/api/tags", json={"ids": [photos.ids["home/red.jpg"]], "add": ["x"]})
    assert answer.status_code == 409 and answer.json()["error"] == "read_only", answer.text
    assert "read-only" in answer.json()["detail"]
