"""The shared dependencies cost a request no thread hand-off."""

from __future__ import annotations

import fastapi.dependencies.utils as dependency_utils
import fastapi.routing as routing

from tests.server.conftest import Library


def test_a_search_hands_nothing_to_the_thread_pool(client, library: Library, monkeypatch):
    """FastAPI runs plain `def` dependencies and endpoints on its thread pool: none of those may
    stand between a search and its batch (each is two thread switches per request)."""
    pooled: list[object] = []
    real = dependency_utils.run_in_threadpool

    async def counted(fn, *args, **kwargs):
        pooled.append(fn)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(dependency_utils, "run_in_threadpool", counted)
    monkeypatch.setattr(routing, "run_in_threadpool", counted)
    response = client.get("/api/search", params={"q": "red circle", "k": 3, "in": str(library.root)})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 3
    assert client.get("/api/jobs/no-such-job").status_code == 404
    assert pooled == []
