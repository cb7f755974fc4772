"""Topics over HTTP: the topic list with counts, and the `topic` filter on GET and POST /api/search."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from photoseek.server import ServerConfig, create_app  # noqa: E402
from tests.helpers import run_json  # noqa: E402

LOCAL_URL = "http://127.0.0.1:8000"


def test_topics_list_and_filter_over_http(library, tiny_clip_dir):
    root, db = library
    run_json("topics", "--db", db, "--weight", "clip=0")  # random CLIP is noise: the notes decide
    app = create_app(ServerConfig(db=db, model_path=tiny_clip_dir))
    with TestClient(app, base_url=LOCAL_URL) as client:
        listed = client.get("/api/topics").json()["topics"]
        counts = {t["name"]: t["images"] for t in listed}
        assert counts["food"] >= 1 and counts["pets"] >= 1 and len(listed) >= 25
        assert [t["images"] for t in listed] == sorted((t["images"] for t in listed), reverse=True)

        params = {"q": "anything", "mode": "clip", "min_score": -1, "topic": "food"}
        got = client.get("/api/search", params=params).json()["results"]
        assert {Path(r["path"]).name for r in got} == {"pasta.jpg"}
        body = {"texts": ["anything"], "mode": "clip", "min_score": -1, "filters": {"topic": "pets"}}
        posted = client.post("/api/search", json=body).json()["results"]
        assert "dog.jpg" in {Path(r["path"]).name for r in posted} and "pasta.jpg" not in {
            Path(r["path"]).name for r in posted}
        unfiltered = client.get("/api/search", params={**params, "topic": None}).json()["results"]
        assert len(unfiltered) == 4
        assert client.get("/api/search", params={**params, "topic": "x" * 61}).status_code in (400, 422)
