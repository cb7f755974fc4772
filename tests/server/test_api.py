"""The REST API through FastAPI's TestClient over a catalog built with the tiny random model.

Random weights carry no meaning: the tests check mechanics (shapes, paging, ids that
work across endpoints, identical pictures ranking first), not relevance.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from photoseek.search.fusion import PRIOR
from tests.server.conftest import Library


def test_search_get_returns_ids_usable_everywhere(client, library: Library):
    body = client.get("/api/search", params={"q": "a red circle", "k": 5}).json()
    assert body["query"] == '"a red circle"'
    assert [r["rank"] for r in body["results"]] == [1, 2, 3, 4, 5]
    assert body["next_offset"] == 5
    hit = body["results"][0]
    assert {"id", "path", "name", "score", "width", "height", "format", "taken_at", "camera"} <= set(hit)
    details = client.get(f"/api/images/{hit['id']}").json()
    assert details["path"] == hit["path"] and details["name"] == hit["name"]
    assert isinstance(details["text_signals"], dict) and details["modified_at"]
    thumb = client.get(f"/thumbs/{hit['id']}")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    original = client.get(f"/files/{hit['id']}")
    assert original.status_code == 200
    assert original.content == open(hit["path"], "rb").read()
    assert original.headers["content-type"] == ("image/jpeg" if hit["format"] == "jpeg" else "image/png")


def test_paging_walks_the_whole_ranking_once(client, library: Library):
    seen = []
    offset = 0
    while offset is not None:
        page = client.get("/api/search", params={"q": "colours", "k": 5, "offset": offset}).json()
        seen += [r["id"] for r in page["results"]]
        offset = page["next_offset"]
    assert sorted(seen) == sorted(library.ids.values())


def test_filters_narrow_results(client, library: Library):
    in_more = client.get("/api/search", params={"q": "x", "k": 50, "in": str(library.root / "more")}).json()
    assert {r["name"] for r in in_more["results"]} == {f"{c}.png" for c in ("red", "green", "blue", "yellow",
                                                                           "purple", "orange")}
    pngs = client.get("/api/search", params={"q": "x", "k": 50, "format": "png"}).json()
    assert {r["format"] for r in pngs["results"]} == {"png"}
    assert client.get("/api/search", params={"q": "x", "before": "1990-01-01"}).json()["results"] == []
    bad = client.get("/api/search", params={"q": "x", "after": "yesterday"})
    assert bad.status_code == 422 and "not a date" in bad.json()["detail"]
    unknown = client.get("/api/search", params={"q": "x", "format": ["png", "nonsense"]})
    assert unknown.status_code == 422 and unknown.json()["error"] == "bad_input"
    assert "'nonsense'" in unknown.json()["detail"] and "jpeg" in unknown.json()["detail"]
    posted = client.post("/api/search", json={"texts": ["x"], "filters": {"formats": ["gifs"]}})
    assert posted.status_code == 422 and "'gifs'" in posted.json()["detail"]


def test_post_search_combines_texts_negatives_weights_and_image_ids(client, library: Library):
    blue = library.ids["blue.jpg"]
    body = client.post("/api/search", json={"image_ids": [blue], "k": 3}).json()
    assert body["results"][0]["id"] == blue
    assert body["results"][0]["score"] == pytest.approx(1.0, abs=1e-3)
    mixed = client.post("/api/search", json={
        "texts": ["a circle"], "negatives": ["a square"],
        "terms": [{"image_id": blue, "weight": 3}, {"text": "blue", "weight": 0.5}], "k": 4,
    }).json()
    assert mixed["results"][0]["id"] == blue
    assert '"a square"' in mixed["query"] and f"<{blue}>" in mixed["query"]
    assert client.post("/api/search", json={"terms": [{"text": "a", "image_id": 1}]}).status_code == 422
    only_negative = client.post("/api/search", json={"negatives": ["cats"]})
    assert only_negative.status_code == 422 and "positive" in only_negative.json()["detail"]


def test_rest_reads_query_lines_and_weights_as_the_cli_does(client, library: Library):
    def ranked(response) -> list[tuple[int, float]]:
        assert response.status_code == 200, response.json()
        return [(r["id"], round(r["score"], 4)) for r in response.json()["results"]]

    common = {"k": 20, "mode": "clip", "min_score": -1}
    posted = ranked(client.post("/api/search", json={"texts": ["a circle", "2:sunset"], "negatives": ["a square"],
                                                    **common}))
    line = "a circle -a square 2:sunset"
    assert ranked(client.get("/api/search", params={"q": line, **common})) == posted
    assert ranked(client.post("/api/search", json={"q": line, **common})) == posted
    assert ranked(client.post("/api/search", json={"texts": ["a circle", "-1:a square", "2:sunset"], **common})) \
        == posted
    assert ranked(client.get("/api/search", params={"q": 'a circle --not "a square" 2:sunset', **common})) == posted

    blue = library.ids["blue.jpg"]
    with_example = client.post("/api/search", json={"q": "a circle", "terms": [{"image_id": blue, "weight": 3}],
                                                    **common}).json()
    assert with_example["results"][0]["id"] == blue

    double_negative = client.post("/api/search", json={"texts": ["a circle"], "negatives": ["-1:a square"]})
    assert double_negative.status_code == 422 and "already subtracted" in double_negative.json()["detail"]
    no_files = client.get("/api/search", params={"q": f"a circle --not-image {library.root / 'red.jpg'}"})
    assert no_files.status_code == 422 and "image_ids" in no_files.json()["detail"]
    unclosed = client.get("/api/search", params={"q": 'a "circle'})
    assert unclosed.status_code == 422 and "never closes" in unclosed.json()["detail"]
    many = client.get("/api/search", params={"q": " ".join(f"+w{i}" for i in range(17))})
    assert many.status_code == 422 and "at most 16" in many.json()["detail"]


def test_similar_excludes_the_image_itself_and_pages(client, library: Library):
    red = library.ids["red.jpg"]
    first = client.get(f"/api/images/{red}/similar", params={"k": 4}).json()
    second = client.get(f"/api/images/{red}/similar", params={"k": 4, "offset": 4}).json()
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert red not in ids and len(set(ids)) == 8
    assert [r["rank"] for r in second["results"]] == [5, 6, 7, 8]
    assert client.get("/api/images/99999/similar").status_code == 404


def test_search_by_uploaded_image_finds_the_same_picture(client, library: Library):
    data = (library.root / "green.jpg").read_bytes()
    body = client.post("/api/search/image", files={"file": ("g.jpg", data, "image/jpeg")}, data={"k": "3"}).json()
    assert body["results"][0]["name"] == "green.jpg"
    assert body["query"] == "<uploaded image>"
    import base64

    url = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    pasted = client.post("/api/search/image", data={"data_url": url}).json()
    assert pasted["results"][0]["name"] == "green.jpg"


def test_thumbnails_are_upright_webp_cached_and_revalidated(client, library: Library, tmp_path):
    image_id = library.ids["more/red.png"]
    response = client.get(f"/thumbs/{image_id}", params={"size": 256})
    thumb = Image.open(io.BytesIO(response.content))
    assert thumb.format == "WEBP" and thumb.size == (120, 160)  # never upscaled, portrait kept
    assert "max-age" in response.headers["cache-control"]
    cached = list((library.db.parent / "catalog.db.thumbs").rglob("*-256.webp"))
    assert cached, "thumbnail not kept on disk beside the catalog"
    again = client.get(f"/thumbs/{image_id}", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert client.get(f"/thumbs/{image_id}", params={"size": 13}).status_code == 422


def test_exif_rotated_thumbnail_is_upright(tmp_path, tiny_clip_dir):
    from photoseek import ImageIndex
    from tests.server.conftest import make_client

    root = tmp_path / "rot"
    root.mkdir()
    image = Image.new("RGB", (200, 100), (200, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    image.save(root / "rot.jpg", exif=exif)
    with ImageIndex(tmp_path / "c.db", model_path=tiny_clip_dir) as index:
        index.index([root])
    lib = Library(root, tmp_path / "c.db", tiny_clip_dir, {})
    with make_client(lib) as client:
        hit = client.get("/api/search", params={"q": "red"}).json()["results"][0]
        assert (hit["width"], hit["height"]) == (100, 200)
        thumb = Image.open(io.BytesIO(client.get(f"/thumbs/{hit['id']}").content))
        assert thumb.size == (100, 200)


def test_status_health_and_docs(client, library: Library):
    assert client.get("/healthz").json() == {"status": "ok"}
    status = client.get("/api/status").json()
    assert status["images"] == len(library.ids) and status["auth"] is False
    assert status["folders"] == status["roots"] and status["files"] == []
    assert status["vector_index"] == "exact"
    assert status["vector_search"] == {"backend": "exact", "kind": "exact", "reason": "auto: exact below 50,000 images",
                                       "depth": None, "depth_setting": None, "recall_at_10": None}
    assert "/api/search" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_indexing_job_reports_progress_and_new_files_become_searchable(library: Library, tmp_path):
    import shutil

    from photoseek import ImageIndex
    from tests.server.conftest import make_client

    root = tmp_path / "fresh"
    shutil.copytree(library.root, root)
    db = tmp_path / "fresh.db"
    ImageIndex(db, model_path=library.model_dir).close()
    lib = Library(root, db, library.model_dir, {})
    with make_client(lib, roots=(root,)) as client:
        assert client.get("/api/search", params={"q": "x"}).status_code == 409  # empty index
        job = client.post("/api/index").json()
        assert job["state"] == "running" and job["roots"] == [str(root)]
        events = client.get(f"/api/jobs/{job['id']}/events")
        assert events.headers["content-type"].startswith("text/event-stream")
        assert "event: done" in events.text
        deadline = time.time() + 30
        while (state := client.get(f"/api/jobs/{job['id']}").json())["state"] == "running":
            assert time.time() < deadline
            time.sleep(0.1)
        assert state["state"] == "done", state
        assert state["report"]["embedded"] == 12 and state["done"] == state["total"] == 12
        assert len(client.get("/api/search", params={"q": "x", "k": 50}).json()["results"]) == 12
        assert client.get("/api/jobs/nope").status_code == 404


def test_index_without_roots_is_a_clear_error(library: Library, tmp_path):
    from photoseek import ImageIndex
    from tests.server.conftest import make_client

    db = tmp_path / "empty.db"
    ImageIndex(db, model_path=library.model_dir).close()
    with make_client(Library(tmp_path, db, library.model_dir, {})) as client:
        response = client.post("/api/index")
        assert response.status_code == 400 and "--root" in response.json()["detail"]


def test_concurrent_requests_are_all_served(client, library: Library):
    from concurrent.futures import ThreadPoolExecutor

    queries = [f"query number {i}" for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda q: client.get("/api/search", params={"q": q, "k": 3}), queries))
    assert all(b.status_code == 200 and len(b.json()["results"]) == 3 for b in bodies)
    single = client.get("/api/search", params={"q": queries[5], "k": 3}).json()
    assert [r["id"] for r in bodies[5].json()["results"]] == [r["id"] for r in single["results"]]


def test_pictures_and_details_load_while_the_search_thread_is_busy(client, library: Library):
    import threading

    backend = client.app.state.backend
    gate = threading.Event()
    blocker = threading.Thread(target=lambda: client.portal.call(backend.call, lambda index: gate.wait(10)))
    blocker.start()
    try:
        image_id = library.ids["red.jpg"]
        started = time.monotonic()
        assert client.get(f"/thumbs/{image_id}").status_code == 200
        assert client.get(f"/api/images/{image_id}").status_code == 200
        assert client.get("/api/status").status_code == 200
        assert time.monotonic() - started < 5 and not gate.is_set()
    finally:
        gate.set()
        blocker.join()


def test_search_mode_passes_through_and_unknown_modes_are_refused(client):
    for mode in ("clip", "keyword", "hybrid"):
        response = client.get("/api/search", params={"q": "red", "mode": mode, "k": 3})
        assert response.status_code == 200, (mode, response.json())
    response = client.get("/api/search", params={"q": "x", "mode": "telepathy"})
    assert response.status_code == 422 and "mode" in response.json()["detail"]


@pytest.fixture(scope="module")
def cameras(tmp_path_factory, tiny_clip_dir):
    """Three photos: a big one from a Canon, a big one from a Nikon, a small one without EXIF."""
    from photoseek import ImageIndex
    from tests.server.conftest import make_client

    root = tmp_path_factory.mktemp("cameras")
    for name, size, make, model in (("canon.jpg", (400, 300), "Canon", "Canon EOS 5D"),
                                    ("nikon.jpg", (400, 300), "NIKON CORPORATION", "NIKON D750"),
                                    ("small.jpg", (90, 60), None, None)):
        image = Image.new("RGB", size, (30, 120, 200))
        exif = Image.Exif()
        if make:
            exif[0x010F], exif[0x0110] = make, model
        image.save(root / name, exif=exif)
    db = root.parent / "cameras.db"
    with ImageIndex(db, model_path=tiny_clip_dir) as index:
        index.index([root])
    with make_client(Library(root, db, tiny_clip_dir, {})) as client:
        yield client


def names(response) -> set[str]:
    assert response.status_code == 200, response.text
    return {r["name"] for r in response.json()["results"]}


def test_rest_search_offers_the_cli_filters_min_score_and_explain(cameras):
    assert names(cameras.get("/api/search", params={"q": "photo", "camera": "canon", "min_score": -1})) == {"canon.jpg"}
    big = cameras.get("/api/search", params={"q": "photo", "min_size": 200, "min_score": -1})
    assert names(big) == {"canon.jpg", "nikon.jpg"}
    body = {"texts": ["photo"], "min_score": -1, "filters": {"camera": "nikon", "min_size": 200}}
    assert names(cameras.post("/api/search", json=body)) == {"nikon.jpg"}
    assert names(cameras.post("/api/search", json={"texts": ["photo"], "min_score": 1.0})) == set()
    every = cameras.get("/api/search", params={"q": "photo", "min_score": -1}).json()["results"]
    assert len(every) == 3
    explained = cameras.get("/api/search", params={"q": "photo", "mode": "hybrid", "explain": "true", "min_score": 0})
    assert explained.status_code == 200, explained.text
    hits = explained.json()["results"]
    assert hits and all(isinstance(h["signals"], dict) and h["signals"] for h in hits)
    # Each signal's evidence (log-odds), added to the prior odds of a match, gives the score.
    odds = [np.log(PRIOR / (1 - PRIOR)) + sum(h["signals"].values()) for h in hits]
    assert all(h["score"] == pytest.approx(1 / (1 + np.exp(-o)), abs=1e-3) for h, o in zip(hits, odds))
    weighted = cameras.post("/api/search", json={"texts": ["photo"], "mode": "hybrid",
                                                 "weights": {"clip": 1, "keyword": 0},
                                                 "explain": True, "min_score": 0})
    assert weighted.status_code == 200, weighted.text
    plain = cameras.get("/api/search", params={"q": "photo"}).json()["results"]
    assert all(h["signals"] is None for h in plain)
    red = cameras.get("/api/search", params={"q": "photo", "min_score": -1}).json()["results"][0]["id"]
    similar = cameras.get(f"/api/images/{red}/similar", params={"camera": "canon", "min_score": -1})
    assert names(similar) <= {"canon.jpg"}


def test_docs_work_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "https://" not in page.text.split("<body>")[0]
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        assert asset in page.text
        served = client.get(asset)
        assert served.status_code == 200 and len(served.content) > 10_000, asset
    assert client.get("/redoc").status_code == 200
    assert client.get("/docs/assets/redoc.standalone.js").status_code == 200


def test_a_catalog_whose_graph_misses_is_scanned_and_ranks_as_brute_force(tmp_path, tiny_clip_dir, monkeypatch):
    """Issue 24.2: where no graph depth reaches its recall target (made unreachable here, as uniform
    512-d vectors make it), the faiss catalog scans 4-bit codes and re-ranks exactly; over HTTP a
    search ranks as numpy brute force over the stored float16 vectors, and /api/status says so."""
    pytest.importorskip("faiss")
    from fastapi.testclient import TestClient

    from photoseek.models import load_clip
    from photoseek.server import ServerConfig, create_app
    from photoseek.store import faiss_index
    from photoseek.store.backends import IndexConfig, save_config
    from photoseek.store.catalog import Catalog, NewImage
    from tests.server.conftest import LOCAL_URL

    monkeypatch.setattr(faiss_index, "TARGET_RECALL", 1.01)
    clip = load_clip(path=tiny_clip_dir)
    vectors = np.random.default_rng(5).standard_normal((10_200, clip.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    db = tmp_path / "scan.db"
    with Catalog(db) as catalog:
        catalog.bind_model(clip.model_id, clip.dim, source=str(tiny_clip_dir))
        save_config(catalog, IndexConfig(backend="faiss"))
        catalog.write_batch([NewImage(f"/p/{i}.jpg", 1, 1, f"h{i}", 10, 10, "jpeg", None, None, v)
                             for i, v in enumerate(vectors)])
    stored = vectors.astype(np.float16).astype(np.float32)
    with TestClient(create_app(ServerConfig(db=db, model_path=tiny_clip_dir)), base_url=LOCAL_URL) as client:
        for image_id in range(1, 10_201, 510):
            response = client.post("/api/search", json={"image_ids": [image_id], "mode": "clip", "k": 10})
            assert response.status_code == 200, response.text
            scores = stored @ vectors[image_id - 1]  # the query: the image's embedding as the catalog holds it
            want = (np.lexsort((np.arange(len(scores)), -scores))[:10] + 1).tolist()
            assert [hit["id"] for hit in response.json()["results"]] == want
        search = client.get("/api/status").json()["vector_search"]
    assert search["kind"] == "scan" and search["depth_setting"] == "candidates" and search["recall_at_10"] >= 0.999
    assert "missed" in search["reason"] and "re-ranking the best" in search["reason"]
