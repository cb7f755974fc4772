"""`photoseek serve` as a real process: the port is taken before the model loads, SIGTERM stops
it while a search is still running, and concurrent uploads keep its memory bounded."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from photoseek.server.routes.search import UPLOAD_SLOTS
from tests.helpers import run_cli
from tests.server.conftest import Library

SLOW_SEARCH = """
import sys, time
from pathlib import Path
from photoseek.server.backend import Backend

marker = Path(sys.argv.pop(1))
original = Backend.search_batch

def slow(*args, **kwargs):
    marker.write_text("searching")
    time.sleep(120)
    return original(*args, **kwargs)

Backend.search_batch = staticmethod(slow)
from photoseek.cli import app
app(prog_name="photoseek")
"""
SERVE = "from photoseek.cli import app; app(prog_name='photoseek')"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(
    library: Library, *args: str, script: str = SERVE, options: tuple[str, ...] = ()
) -> tuple[subprocess.Popen, str]:
    """`script` run with `args`, then `serve` with `options`; returns once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args, "serve", "--db", str(library.db), "--model-path",
         str(library.model_dir), "--port", str(port), *options],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stdout.read().decode())
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("the server did not start")


@pytest.fixture
def stopped() -> Iterator[list[subprocess.Popen]]:
    """Processes to kill if a test fails half-way."""
    processes: list[subprocess.Popen] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_a_busy_port_is_reported_at_once_before_the_model(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        output = run_cli("serve", "--db", tmp_path / "c.db", "--model-path", tmp_path / "no-model",
                         "--port", port, expect=5)
    assert f"Port {port} on 127.0.0.1 is already in use" in output and "--port" in output
    assert "Model directory" not in output and "Traceback" not in output
    assert time.monotonic() - started < 5


def test_a_duplicates_dir_inside_the_indexed_folders_is_refused_at_start(library: Library):
    """Not when the first move is asked for in the web UI: the copies would be indexed again."""
    inside = library.root / "more" / "dupes"
    output = run_cli("serve", "--db", library.db, "--model-path", library.model_dir, "--port", 0,
                     "--duplicates-dir", inside, expect=2)
    assert "inside the indexed folder" in " ".join(output.split()) and not inside.exists()


def test_an_album_dir_inside_the_indexed_folders_is_refused_at_start(library: Library):
    """Its links would be indexed as copies of the photos they point at."""
    inside = library.root / "albums"
    output = run_cli("serve", "--db", library.db, "--model-path", library.model_dir, "--port", 0,
                     "--album-dir", inside, expect=2)
    assert "--album-dir" in output and "inside an indexed folder" in " ".join(output.split())
    assert not inside.exists()


def test_sigterm_stops_the_server_while_a_search_runs(library: Library, tmp_path, stopped):
    marker = tmp_path / "searching"
    process, url = start(library, str(marker), script=SLOW_SEARCH)
    stopped.append(process)
    outcome: list[object] = []
    client = threading.Thread(target=lambda: outcome.append(_try_get(f"{url}/api/search?q=slow")), daemon=True)
    client.start()
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, "the search never started"
        time.sleep(0.05)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)
    assert time.monotonic() - sent < 10, "SIGTERM must not wait for the running search"
    assert "Traceback" not in process.stdout.read().decode()


def _try_get(url: str) -> object:
    try:
        return httpx.get(url, timeout=60).status_code
    except httpx.HTTPError as exc:
        return exc


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak RSS from /proc")
def test_concurrent_big_uploads_keep_memory_bounded(library: Library, stopped):
    """Twelve uploads at once of a 20 MP PNG (under the limit, 60 MB as RGB) and of a 49 MP
    PNG bomb (refused from its header): decoding two at a time keeps the peak far below
    twelve decodes' worth."""
    process, url = start(library)
    stopped.append(process)
    legal, bomb = io.BytesIO(), io.BytesIO()
    Image.new("1", (5000, 4000)).save(legal, format="PNG")
    Image.new("1", (7000, 7000)).save(bomb, format="PNG")
    before = _peak_rss_bytes(process.pid)

    def upload(data: bytes) -> int:
        return httpx.post(f"{url}/api/search/image", files={"file": ("u.png", data, "image/png")},
                          timeout=120).status_code

    threads_results: list[int] = []
    workers = [threading.Thread(target=lambda d=d: threads_results.append(upload(d)))
               for d in [legal.getvalue()] * 12 + [bomb.getvalue()] * 12]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    growth = _peak_rss_bytes(process.pid) - before
    process.send_signal(signal.SIGTERM)
    process.wait(20)
    assert sorted(threads_results) == [200] * 12 + [422] * 12
    assert growth < 500_000_000, f"peak RSS grew by {growth / 1e6:.0f} MB"


def _connect(url: str, first_bytes: bytes = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ") -> socket.socket:
    """A connection that has sent part of a request's headers and then stalls (slow-loris)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(first_bytes)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """What the server sent before it closed the connection."""
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def test_slow_headers_are_cut_off_and_the_connection_count_is_capped(library: Library, stopped):
    process, url = start(library, options=("--header-timeout", "1", "--max-connections", "40"))
    stopped.append(process)
    held = [_connect(url) for _ in range(30)]
    started = time.monotonic()
    assert httpx.get(f"{url}/api/status", timeout=10).status_code == 200  # a normal request meanwhile
    for sock in held:
        sock.sendall(b"x")  # a byte now and then does not reset the deadline
    answers = [_answer(sock) for sock in held]
    waited = time.monotonic() - started
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers[:3]
    assert 0.8 < waited < 6, waited
    crowd = [_connect(url, b"") for _ in range(45)]  # 40 are let in, the rest are told to come back
    try:
        turned_away = [sock for sock in crowd[40:] if _answer(sock).startswith(b"HTTP/1.1 503 ")]
        assert len(turned_away) == 5
    finally:
        for sock in held + crowd:
            sock.close()
    time.sleep(1.5)  # the crowd's deadline passes: the server takes requests again
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    assert process.poll() is None


def _trickle(socks: list[socket.socket], stop: threading.Event) -> None:
    """One body byte every 0.2 s on every connection, as a slow-POST attack sends, until `stop`."""
    while not stop.wait(0.2):
        for sock in socks:
            try:
                sock.sendall(b"x")
            except OSError:
                pass  # closed by the server


def _post(path: str, content_type: str, length: int, first: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n\r\n")
    return head.encode() + first


def test_time_an_upload_waits_for_a_slot_is_not_held_against_its_body(library: Library, stopped):
    """Two trickled uploads hold both upload slots until the body deadline cuts them off; an upload
    sent steadily meanwhile waits (the server stops reading it) and is answered, not 408."""
    process, url = start(library, options=("--body-timeout", "2"))
    stopped.append(process)
    boundary = "b0undary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="u.png"\r\n'
            'Content-Type: image/png\r\n\r\n').encode()
    slow = [_connect(url, _post("/api/search/image", f"multipart/form-data; boundary={boundary}", 200_000, head))
            for _ in range(UPLOAD_SLOTS)]
    stop = threading.Event()
    trickler = threading.Thread(target=_trickle, args=(slow, stop), daemon=True)
    trickler.start()
    png = io.BytesIO()
    # 12 MB: more than the kernel's socket buffers hold, so most of it is sent after the slots free
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (2000, 2000, 3), dtype=np.uint8)).save(png, "PNG")
    body = head + png.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    try:
        time.sleep(0.3)
        steady = _connect(url, _post("/api/search/image", f"multipart/form-data; boundary={boundary}", len(body), b"")
                          .replace(b"Host: 127.0.0.1\r\n", b"Host: 127.0.0.1\r\nConnection: close\r\n"))
        for start_at in range(0, len(body), 500_000):  # at about 5 MB/s: 2.4 s, longer than the deadline
            steady.sendall(body[start_at : start_at + 500_000])
            time.sleep(0.1)
        answer = _answer(steady)
    finally:
        stop.set()
        trickler.join(5)
        for sock in slow:
            sock.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


def test_trickled_request_bodies_are_cut_off_and_their_connections_freed(library: Library, stopped):
    """Headers arrive at once, then the body one byte at a time: an upload and a notes edit are
    answered 408 once the body deadline passes, however steadily bytes keep coming, an upload
    announced over the size limit is answered 413 and cut off at the same deadline, and the server
    answers everyone else meanwhile and afterwards."""
    process, url = start(library, options=("--body-timeout", "1", "--max-connections", "20"))
    stopped.append(process)
    boundary = "b0undary"
    upload = _post("/api/search/image", f"multipart/form-data; boundary={boundary}", 200_000,
                   f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="u.png"\r\n'
                   'Content-Type: image/png\r\n\r\n'.encode())
    notes = _post(f"/api/images/{library.ids['red.jpg']}/notes", "application/json", 5_000, b'{"description": "')
    too_big = _post("/api/search/image", f"multipart/form-data; boundary={boundary}", 30_000_000, b"--")
    held = [_connect(url, upload) for _ in range(10)] + [_connect(url, notes) for _ in range(5)]
    held.append(_connect(url, too_big))  # answered 413 at once, then its body is still timed
    stop = threading.Event()
    trickler = threading.Thread(target=_trickle, args=(held, stop), daemon=True)
    started = time.monotonic()
    trickler.start()
    try:
        assert httpx.get(f"{url}/api/status", timeout=10).status_code == 200  # a normal request meanwhile
        answers = [_answer(sock) for sock in held]
        waited = time.monotonic() - started
    finally:
        stop.set()
        trickler.join(5)
        for sock in held:
            sock.close()
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers[:-1]), answers[:3]
    assert answers[-1].startswith(b"HTTP/1.1 413 ") and b"--max-upload-mb" in answers[-1], answers[-1]
    assert 0.8 < waited < 6, waited
    fresh = [_connect(url, b"") for _ in range(19)]  # the trickling connections no longer count
    try:
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    finally:
        for sock in fresh:
            sock.close()
    png = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(png, format="PNG")
    sent = httpx.post(f"{url}/api/search/image", files={"file": ("u.png", png.getvalue(), "image/png")}, timeout=30)
    assert sent.status_code == 200, sent.text  # an upload sent at once is unaffected
    process.send_signal(signal.SIGTERM)
    process.wait(20)
    assert "Traceback" not in process.stdout.read().decode()
