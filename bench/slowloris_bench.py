"""Slow-loris against `photoseek serve` (issue 21, item 11): how long slow connections live, what
a normal request meets meanwhile, and what the server holds.

Starts the real server (tiny test model, a two-photo catalog) with its defaults (10 s header
deadline, 60 s body deadline, 512 connections; --body-timeout changes the second), then
--connections clients each send part of a request's headers (with --body: all of an upload's
headers and the start of its body, a slow POST) and one more byte every 2 s. Records: how many
were let in and how many turned away (503, or closed within a second); when the server closed
each held one (seconds after it opened); the latency of a normal `GET /healthz` every 0.5 s
during the attack; the server's RSS and open file descriptors at the peak. Loopback
only, bounded by --seconds. Prints JSON, writes it to --out (default: slowloris_bench.json in the
per-user bench folder). Records the load average.

    PYTHONPATH=src python bench/slowloris_bench.py [--connections 1000] [--seconds 25] [--body]
        [--body-timeout SECONDS] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import REPO, results_dir, write_results  # noqa: E402
from measure import measured_run  # noqa: E402

PARTIAL = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
PARTIAL_BODY = (
    b"POST /api/search/image HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b0\r\n"
    b"Content-Length: 5000000\r\n\r\n--b0\r\nContent-Disposition: form-data; name=\"file\"; filename=\"u.png\"\r\n"
    b"Content-Type: image/png\r\n\r\n"
)
"""A 5 MB upload's headers and the start of its body."""


def start_server(work: Path, model: Path, options: list[str]) -> tuple[subprocess.Popen, str]:
    photos = work / "photos"
    photos.mkdir()
    for i, colour in enumerate(("red", "blue")):
        Image.new("RGB", (160, 120), colour).save(photos / f"{i}.jpg")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    db = work / "c.db"
    subprocess.run([sys.executable, "-m", "photoseek", "index", str(photos), "--db", str(db), "--model-path",
                    str(model)], check=True, env=env, capture_output=True, timeout=300)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "photoseek", "serve", "--db", str(db), "--port", str(port),
                               *options], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start")


def server_usage(pid: int) -> tuple[float, int]:
    """(RSS in MB, open file descriptors) of the server process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def attack(url: str, pid: int, connections: int, seconds: float, partial: bytes) -> dict[str, object]:
    port = int(url.rsplit(":", 1)[1])
    selector = selectors.DefaultSelector()
    opened: dict[socket.socket, float] = {}
    closed_after: list[float] = []
    turned_away = 0
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            sock.sendall(partial)
        except OSError:
            pass  # turned away before the bytes arrived: the loop below sees it closed
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        opened[sock] = time.monotonic()
    started = time.monotonic()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    peak_rss, peak_fds = server_usage(pid)
    next_probe = next_byte = started
    while opened and time.monotonic() - started < seconds:
        now = time.monotonic()
        if now >= next_probe:
            next_probe = now + 0.5
            before = time.perf_counter()
            try:
                status = httpx.get(f"{url}/healthz", timeout=10).status_code
            except httpx.HTTPError:
                status = 0
            latencies.append(time.perf_counter() - before)
            statuses[status] = statuses.get(status, 0) + 1
            rss, fds = server_usage(pid)
            peak_rss, peak_fds = max(peak_rss, rss), max(peak_fds, fds)
        if now >= next_byte:
            next_byte = now + 2
            for sock in list(opened):
                try:
                    sock.send(b"x")
                except OSError:
                    pass
        for key, _ in selector.select(timeout=0.1):
            sock = key.fileobj
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            if data and not data.startswith((b"HTTP/1.1 503", b"HTTP/1.1 408")):
                continue
            lived = time.monotonic() - opened[sock]
            if data.startswith(b"HTTP/1.1 503") or lived < 1.0:  # over the cap: closed at once (503, or reset)
                turned_away += 1
            else:
                closed_after.append(lived)
            selector.unregister(sock)
            opened.pop(sock)
            sock.close()
    still_open = len(opened)
    for sock in opened:
        sock.close()
    closed_after.sort()
    return {
        "connections": connections, "turned_away_503": turned_away, "held_then_closed": len(closed_after),
        "still_open_at_end": still_open,
        "closed_after_s": {"min": round(closed_after[0], 2), "median": round(closed_after[len(closed_after) // 2], 2),
                           "max": round(closed_after[-1], 2)} if closed_after else None,
        "normal_requests": {"statuses": statuses, "median_ms": round(1000 * sorted(latencies)[len(latencies) // 2], 1),
                            "max_ms": round(1000 * max(latencies), 1)},
        "server_peak": {"rss_mb": round(peak_rss, 1), "open_fds": peak_fds},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--body", action="store_true", help="trickle an upload's body, not a request's headers")
    parser.add_argument("--body-timeout", type=float, help="serve --body-timeout (default: serve's own)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    model = results_dir() / "tiny-clip"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.connections + 256)), hard))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="slowloris-bench-") as tmp:
        options = ["--body-timeout", str(args.body_timeout)] if args.body_timeout else []
        server, url = start_server(Path(tmp), model, options)
        try:
            idle_rss, idle_fds = server_usage(server.pid)
            found = attack(url, server.pid, args.connections, args.seconds, PARTIAL_BODY if args.body else PARTIAL)
            found["slow"], found["serve_options"] = "body" if args.body else "headers", options
            found["server_idle"] = {"rss_mb": round(idle_rss, 1), "open_fds": idle_fds}
            found["server_alive_after"] = server.poll() is None
        finally:
            server.terminate()
            server.wait(30)
    found["load_average"] = {"before": load_before, "after": os.getloadavg()}
    write_results(found, args.out, "slowloris_bench.json")


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
