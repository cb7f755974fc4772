"""Each kind of error answers with its own HTTP status (server/errors.py): not found 404, bad input 422,
unavailable 503, conflict 409, any other error of ours 400; the body is always {"error", "detail"}."""

from __future__ import annotations

from photoseek import ImageIndex
from tests.server.conftest import Library, make_client


def _error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error", "detail"} and body["detail"], body
    return body


def test_a_text_model_that_cannot_load_during_a_hybrid_search_is_503(library: Library, tmp_path):
    (tmp_path / "not-a-model").mkdir()
    with make_client(library, text_model=str(tmp_path / "not-a-model")) as client:
        body = _error(client.get("/api/search", params={"q": "a red circle", "mode": "hybrid"}), 503)
        assert body["error"] == "model_not_available" and "not-a-model" in body["detail"]
        assert client.get("/api/search", params={"q": "a red circle", "mode": "clip"}).status_code == 200


def test_an_unknown_image_id_is_404_wherever_it_is_named(client):
    assert _error(client.get("/api/images/99999"), 404)["error"] == "not_found"
    assert _error(client.get("/api/images/99999/similar"), 404)["error"] == "not_found"
    body = _error(client.post("/api/search", json={"image_ids": [99999]}), 404)
    assert body["error"] == "not_found" and "99999" in body["detail"]


def test_bad_input_is_422(client):
    dated = _error(client.get("/api/search", params={"q": "x", "after": "yesterday"}), 422)
    assert dated["error"] == "bad_input" and "not a date" in dated["detail"]
    weighted = _error(client.post("/api/search", json={"texts": ["x"], "weights": {"colour": 2}}), 422)
    assert weighted["error"] == "bad_input"


def test_a_catalog_that_refuses_the_request_is_409(library: Library, tmp_path):
    db = tmp_path / "empty.db"
    ImageIndex(db, model_path=library.model_dir).close()
    with make_client(Library(tmp_path, db, library.model_dir, {})) as client:
        body = _error(client.get("/api/search", params={"q": "a red circle"}), 409)
        assert body["error"] == "empty_index"
