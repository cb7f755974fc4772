"""Concurrent searches run in batches (each answered as if alone), a bounded queue refuses
the overflow with 503 + Retry-After, and pictures keep loading while searches queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial

import httpx
import pytest
from fastapi.testclient import TestClient

from photoseek.api import ImageIndex
from photoseek.server.batching import Batcher
from tests.server.conftest import Library, make_client

Request = tuple[str, str, dict]
"""method, path, and the params (GET) or JSON body (POST)."""


@contextmanager
def search_lane_held(client: TestClient) -> Iterator[None]:
    """Keep the search thread busy until the block ends, so that searches queue behind it."""
    backend = client.app.state.backend
    gate = threading.Event()
    holder = threading.Thread(target=lambda: client.portal.call(backend.call, lambda index: gate.wait(30)))
    holder.start()
    try:
        yield
    finally:
        gate.set()
        holder.join()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def arrived(batcher: Batcher, future: Future, accepted_before: int) -> bool:
    return future.done() or batcher.running + batcher.queued == accepted_before + 1


def send(client: TestClient, request: Request) -> httpx.Response:
    method, path, payload = request
    if method == "GET":
        return client.get(path, params=payload)
    return client.post(path, json=payload)


def outcome(response: httpx.Response) -> tuple[int, dict]:
    body = response.json()
    body.pop("took_ms", None)
    return response.status_code, body


@pytest.fixture(scope="module")
def client(library: Library) -> Iterator[TestClient]:
    with make_client(library, max_queue=40) as client:
        yield client


def mixed_requests(library: Library) -> list[Request]:
    """Texts in several modes and pages, pictures only, filters, and requests that fail."""
    red, blue = library.ids["red.jpg"], library.ids["blue.jpg"]
    requests: list[Request] = []
    for i, text in enumerate(["red circle", "blue square", "a green thing", "yellow", "dark photo", "bright"]):
        requests.append(("GET", "/api/search", {"q": text, "k": 3, "mode": "clip", "min_score": -1}))
        requests.append(("GET", "/api/search", {"q": text, "k": 2, "offset": i % 3, "mode": "clip", "min_score": -1}))
        requests.append(("GET", "/api/search", {"q": text, "k": 4, "min_score": 0}))
        requests.append(("GET", "/api/search", {"q": text, "k": 3, "mode": "keyword", "min_score": 0}))
    requests += [
        ("POST", "/api/search", {"texts": ["red"], "negatives": ["blue"], "k": 3, "mode": "clip", "min_score": -1}),
        ("POST", "/api/search", {"image_ids": [red], "k": 3, "min_score": -1}),
        ("POST", "/api/search", {"image_ids": [blue], "k": 3, "min_score": -1}),
        ("POST", "/api/search", {"texts": ["red"], "k": 3, "mode": "clip", "min_score": -1,
                                 "filters": {"folder": str(library.root / "more")}}),
        ("POST", "/api/search", {"image_ids": [red], "k": 3, "mode": "keyword"}),  # keyword mode needs a text
        ("POST", "/api/search", {"texts": ["red"], "k": 3, "mode": "keyword"}),
        ("GET", "/api/search", {"q": "red", "mode": "no-such-mode"}),
    ]
    return requests


def test_batched_results_equal_each_request_alone(client, library: Library, monkeypatch):
    batch_sizes: list[int] = []
    search_many = ImageIndex.search_many

    def counting(self, queries, **options):
        batch_sizes.append(len(queries))
        return search_many(self, queries, **options)

    monkeypatch.setattr(ImageIndex, "search_many", counting)
    requests = mixed_requests(library)
    batcher = client.app.state.backend.batcher
    with ThreadPoolExecutor(len(requests)) as pool:
        with search_lane_held(client):
            futures: list[Future[httpx.Response]] = []
            for request in requests:
                before = batcher.running + batcher.queued  # counted before sending, or a fast arrival is missed
                futures.append(pool.submit(send, client, request))
                # The first is taken at once and waits behind the held thread; the rest queue,
                # except those refused before they reach the queue.
                wait_until(partial(arrived, batcher, futures[-1], before), "it queued")
        together = [outcome(f.result()) for f in futures]
    batched = max(batch_sizes)
    batch_sizes.clear()
    alone = [outcome(send(client, request)) for request in requests]

    assert batched >= 6, "requests that share their options ran in one batch"
    assert set(batch_sizes) <= {1}, "requests sent one at a time ran alone"
    assert together == alone
    statuses = [status for status, _ in alone]
    assert statuses.count(200) >= len(requests) - 3 and 422 in statuses, "the mix holds answers and errors"


def test_a_full_queue_answers_503_with_retry_after(library: Library):
    with make_client(library, max_queue=2) as client, ThreadPoolExecutor(3) as pool:
        batcher = client.app.state.backend.batcher
        with search_lane_held(client):
            queued = [pool.submit(client.get, "/api/search", params={"q": "query 0", "k": 2})]
            wait_until(lambda: batcher.running == 1, "one search runs")
            queued += [pool.submit(client.get, "/api/search", params={"q": f"query {i}", "k": 2}) for i in (1, 2)]
            wait_until(lambda: batcher.queued == 2, "two searches wait")
            queue = client.get("/api/status").json()["search_queue"]
            refused = client.get("/api/search", params={"q": "one too many"})
            upload_refused = client.post("/api/search", json={"texts": ["also too many"]})
        assert all(f.result().status_code == 200 for f in queued)
        assert client.get("/api/search", params={"q": "after the queue drained", "k": 2}).status_code == 200
        done = client.get("/api/status").json()["search_queue"]
    assert queue["waiting"] == 2 and queue["limit"] == 2
    assert done["waiting"] == 0 and done["searches"] == 4 and done["batches"] == 3, "1, then 2 together, then 1"
    for response in (refused, upload_refused):
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1
        body = response.json()
        assert body["error"] == "busy" and "--max-queue 2" in body["detail"]


def test_pictures_and_details_load_while_searches_queue(client, library: Library):
    batcher = client.app.state.backend.batcher
    image_id = library.ids["green.jpg"]
    with ThreadPoolExecutor(8) as pool:
        with search_lane_held(client):
            searches = [pool.submit(client.get, "/api/search", params={"q": f"queued {i}", "k": 2}) for i in range(8)]
            wait_until(lambda: batcher.running + batcher.queued == 8, "searches queue")
            started = time.monotonic()
            thumb = client.get(f"/thumbs/{image_id}", params={"size": 512})
            details = client.get(f"/api/images/{image_id}")
            took = time.monotonic() - started
            still_queued = batcher.running + batcher.queued
        assert all(s.result().status_code == 200 for s in searches)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert details.status_code == 200 and details.json()["id"] == image_id
    assert still_queued == 8 and took < 5
