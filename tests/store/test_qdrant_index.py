"""A Qdrant server that is down or hung: one line within seconds, and the catalog keeps working.

Both servers live on loopback: a closed port (connection refused) and a socket that accepts
connections (the kernel's backlog does) but never answers a byte.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from photoseek.store.backends import IndexConfig, save_config
from photoseek.store.catalog import Catalog
from tests.helpers import draw_photo, run_cli, run_json

pytest.importorskip("qdrant_client")

SECONDS = 20
"""Bound on a refusal: the probe waits 5 s for a hung server; the rest is loading the CLI and model."""


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A loopback server that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture
def closed_url() -> str:
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def library(tmp_path: Path, tiny_clip_dir: Path) -> tuple[Path, Path]:
    photos = tmp_path / "photos"
    draw_photo(photos / "red.jpg", "red")
    draw_photo(photos / "blue.jpg", "blue", seed=1)
    db = tmp_path / "catalog.db"
    run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir, "--index", "exact")
    return photos, db


def _one_line_in_time(args: list[object], started: float, status: int) -> str:
    output = run_cli(*args, expect=status)
    assert time.monotonic() - started < SECONDS
    assert len(output.strip().splitlines()) == 1, output
    assert "Traceback" not in output
    return output


def _search_works(db: Path) -> None:
    payload = run_json("search", "red", "--db", db, "--mode", "clip", "--min-score", "-1")
    assert len(payload["results"]) == 2


@pytest.mark.parametrize("server", ["closed_url", "silent_url"])
def test_a_server_that_does_not_answer_is_refused_in_seconds_and_not_remembered(server, library, request):
    photos, db = library
    url = request.getfixturevalue(server)
    started = time.monotonic()
    output = _one_line_in_time(["index", photos, "--db", db, "--qdrant-url", url], started, status=4)
    assert f"The Qdrant server at {url} did not answer" in output
    assert "photoseek index --index exact FOLDER" in output
    assert run_json("status", "--db", db)["vector_index"] == "exact"  # the catalog keeps the index it had
    _search_works(db)


@pytest.mark.parametrize("server", ["closed_url", "silent_url"])
def test_a_remembered_server_that_went_away_is_one_line_and_the_catalog_can_switch_back(server, library, request):
    photos, db = library
    url = request.getfixturevalue(server)
    catalog = Catalog(db)
    save_config(catalog, IndexConfig(backend="qdrant", qdrant_url=url))  # chosen while the server was up
    catalog.close()
    started = time.monotonic()
    output = _one_line_in_time(["search", "red", "--db", db], started, status=4)
    assert "did not answer" in output
    run_json("index", photos, "--db", db, "--index", "exact")  # the way back the message gives
    _search_works(db)


def test_a_url_that_is_not_one_is_one_line(library):
    photos, db = library
    output = _one_line_in_time(["index", photos, "--db", db, "--qdrant-url", "http://[::1"], time.monotonic(), status=2)
    assert "write it like http://localhost:6333" in output
    assert run_json("status", "--db", db)["vector_index"] == "exact"
