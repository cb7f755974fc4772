"""A small indexed photo folder and a started app over it (tiny random-weight model)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from photoseek import ImageIndex  # noqa: E402
from photoseek.server import ServerConfig, create_app  # noqa: E402
from tests.helpers import COLOURS, draw_photo  # noqa: E402


@dataclass(frozen=True)
class Library:
    root: Path
    db: Path
    model_dir: Path
    ids: dict[str, int]
    """File name -> image id."""


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Library:
    root = tmp_path_factory.mktemp("photos")
    for i, colour in enumerate(COLOURS):
        draw_photo(root / f"{colour}.jpg", colour, shape="circle" if i % 2 else "square", seed=i)
        draw_photo(root / "more" / f"{colour}.png", colour, size=(120, 160), seed=10 + i)
    db = root.parent / "catalog.db"
    with ImageIndex(db, model_path=tiny_clip_dir) as index:
        index.index([root])
        ids = {Path(r.path).name if "more" not in r.path else f"more/{Path(r.path).name}": r.id
               for r in index.records(list(range(1, 100))).values()}
    return Library(root.resolve(), db, tiny_clip_dir, ids)


LOCAL_URL = "http://127.0.0.1:8000"
"""What a browser on this machine calls the server: a Host header the server answers."""


def make_client(library: Library, **config: object) -> TestClient:
    return TestClient(create_app(ServerConfig(db=library.db, model_path=library.model_dir, **config)),
                      base_url=LOCAL_URL)


@pytest.fixture(scope="module")
def client(library: Library) -> Iterator[TestClient]:
    with make_client(library, roots=(library.root,)) as client:
        yield client


@dataclass(frozen=True)
class LiveServer:
    url: str
    library: Library


def serve_in_thread(config: ServerConfig) -> Iterator[str]:
    """A real uvicorn server on a free loopback port; yields its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
