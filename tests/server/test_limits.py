"""What one request may cost, and that every refusal is the documented JSON error.

Each test here failed on the server before these limits: plain-text 500s for large ids,
FastAPI's own validation shape, a 1 MB cap on data URLs, 20,000-text queries, 49 MP
PNG uploads decoded whole, and decodes running as many at once as requests arrived.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from photoseek.server.decoding import DECODE_THREADS, decoded_pixels
from photoseek.server.workers import PixelBudget
from tests.server.conftest import Library, make_client

HUGE_IDS = ["9223372036854775808", "99999999999999999999999", "18446744073709551616"]


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and isinstance(body["detail"], str) and body["detail"], body
    if code:
        assert body["error"] == code, body
    return body


@pytest.mark.parametrize("image_id", HUGE_IDS + ["0", "-5"])
def test_ids_of_any_size_are_404_json(client, image_id):
    for path in (f"/files/{image_id}", f"/thumbs/{image_id}", f"/api/images/{image_id}",
                 f"/api/images/{image_id}/similar"):
        assert_json_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize("image_id", [2**63, 10**30])
def test_huge_image_ids_in_a_search_body_are_422_json(client, image_id):
    assert_json_error(client.post("/api/search", json={"image_ids": [image_id]}), 422, "invalid_request")
    assert_json_error(client.post("/api/search", json={"terms": [{"image_id": image_id}]}), 422)


def test_validation_errors_use_the_documented_shape(client):
    body = assert_json_error(client.get("/api/search", params={"q": "x", "k": 999}), 422, "invalid_request")
    assert "'k'" in body["detail"] and "200" in body["detail"]
    assert_json_error(client.get("/api/search"), 422, "invalid_request")  # q missing
    assert_json_error(client.get("/api/search", params={"q": "x", "offset": "lots"}), 422)
    broken = client.post("/api/search", content=b"{not json", headers={"Content-Type": "application/json"})
    assert_json_error(broken, 422)
    assert_json_error(client.post("/api/search", json={"texts": "not a list"}), 422)
    assert_json_error(client.get("/api/nothing-here"), 404, "not_found")
    assert_json_error(client.delete("/api/status"), 405)
    assert_json_error(client.post("/api/search", json={"texts": ["x"], "weights": {"colour": 2}}), 422, "bad_input")
    assert_json_error(client.post("/api/search", json={"texts": ["x"], "weights": {"keyword": "lots"}}), 422)
    assert_json_error(client.post("/api/search", json={"texts": ["x"], "weights": {"keyword": 0, "clip": 0}}), 422)


def test_a_query_has_bounded_terms_length_and_paging(client):
    started = time.monotonic()
    many = client.post("/api/search", json={"texts": [f"text {i}" for i in range(20_000)]})  # 190 KB
    assert "Send fewer or shorter terms" in assert_json_error(many, 413, "too_large")["detail"]
    assert_json_error(client.post("/api/search", json={"texts": [f"t{i}" for i in range(200)]}), 422)
    assert time.monotonic() - started < 5, "a huge query must be refused before any work"
    mixed = {"texts": ["a"] * 6, "negatives": ["b"] * 6, "image_ids": [1] * 5}
    assert "at most 16" in assert_json_error(client.post("/api/search", json=mixed), 422)["detail"]
    assert client.post("/api/search", json={"texts": ["a"] * 8, "negatives": ["b"] * 8}).status_code == 200
    assert_json_error(client.post("/api/search", json={"texts": ["x" * 501]}), 422)
    assert_json_error(client.get("/api/search", params={"q": "x" * 501}), 422)
    assert client.get("/api/search", params={"q": "x" * 500}).status_code == 200
    assert_json_error(client.get("/api/search", params={"q": "x", "offset": 10_001}), 422)
    assert_json_error(client.get("/api/search", params={"q": "x", "format": ["png"] * 17}), 422)
    assert_json_error(client.get("/api/search", params={"q": "x", "in": "/" * 1001}), 422)


def test_a_data_url_may_be_as_large_as_the_upload_limit(client, library: Library):
    noise = np.random.default_rng(0).integers(0, 255, size=(700, 700, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    assert len(url) > 1_500_000  # well past the 1024 KB that form fields get by default
    response = client.post("/api/search/image", data={"data_url": url}, params={"k": 3})
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 3


def bomb_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_upload_that_decodes_past_the_pixel_limit_is_refused_from_its_header(client):
    data = bomb_png(7000)  # 49 MP from about 47 KB
    assert len(data) < 100_000
    body = assert_json_error(client.post("/api/search/image", files={"file": ("b.png", data, "image/png")}), 422)
    assert "pixel limit" in body["detail"] and "49.0 MP" in body["detail"]


def test_a_large_jpeg_upload_passes_because_it_decodes_reduced(client):
    buffer = io.BytesIO()
    Image.new("L", (8000, 6000), 128).save(buffer, format="JPEG", quality=50)  # 48 MP, decoded at 1/8
    assert decoded_pixels(buffer.getvalue(), 448) < 1_000_000
    response = client.post("/api/search/image", files={"file": ("big.jpg", buffer.getvalue(), "image/jpeg")})
    assert response.status_code == 200, response.text


def test_concurrent_uploads_and_thumbnails_decode_at_most_two_at_a_time(library: Library, tmp_path, monkeypatch):
    import photoseek.server.decoding as decoding
    from photoseek.server.thumbs import ThumbnailCache

    running = 0
    peak = 0
    lock = threading.Lock()

    def counted(original):
        def wrapper(*args, **kwargs):
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            try:
                time.sleep(0.05)
                return original(*args, **kwargs)
            finally:
                with lock:
                    running -= 1
        return wrapper

    monkeypatch.setattr(decoding, "_save_small_png", counted(decoding._save_small_png))
    monkeypatch.setattr(ThumbnailCache, "make", counted(ThumbnailCache.make))
    upload = (library.root / "red.jpg").read_bytes()
    with make_client(library) as client:
        client.app.state.thumbs = ThumbnailCache(tmp_path / "thumbs")  # nothing cached yet

        def call(i: int) -> int:
            if i % 2:
                return client.post("/api/search/image", files={"file": ("u.jpg", upload, "image/jpeg")}).status_code
            image_id = list(library.ids.values())[i % len(library.ids)]
            return client.get(f"/thumbs/{image_id}", params={"size": 512}).status_code

        with ThreadPoolExecutor(12) as pool:
            statuses = list(pool.map(call, range(24)))
    assert statuses == [200] * 24
    assert 1 <= peak <= DECODE_THREADS


def test_the_pixel_budget_lets_a_big_decode_run_only_alone():
    budget = PixelBudget(50)
    events: list[str] = []
    small_started = threading.Event()
    release_small = threading.Event()

    def small() -> None:
        with budget.hold(30):
            events.append("small in")
            small_started.set()
            release_small.wait(5)
            events.append("small out")

    def big() -> None:
        with budget.hold(200):
            events.append("big in")

    first = threading.Thread(target=small)
    first.start()
    small_started.wait(5)
    second = threading.Thread(target=big)
    second.start()
    time.sleep(0.2)
    assert events == ["small in"]  # the big one waits while anything else decodes
    release_small.set()
    first.join(5)
    second.join(5)
    assert events == ["small in", "small out", "big in"]
    with budget.hold(20), budget.hold(30):
        pass  # small ones fit together


def test_an_original_too_large_to_decode_gets_a_clear_422_not_a_thumbnail(library: Library, tmp_path, monkeypatch):
    import photoseek.server.decoding as decoding
    from photoseek.server.thumbs import ThumbnailCache

    monkeypatch.setattr(decoding, "MAX_THUMB_DECODED_PIXELS", 10_000)  # the PNGs here decode to 19,200
    with make_client(library) as client:
        client.app.state.thumbs = ThumbnailCache(tmp_path / "thumbs")
        image_id = library.ids["more/red.png"]
        body = assert_json_error(client.get(f"/thumbs/{image_id}"), 422, "too_large")
        assert f"/files/{image_id}" in body["detail"]
        assert client.get(f"/files/{image_id}").status_code == 200
