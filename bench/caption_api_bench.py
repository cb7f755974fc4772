"""Captions over an OpenAI-compatible API: throughput against `--caption-workers`, and what the client costs.

A local chat-completions server stands in for the model with a fixed latency per request (a GPU
server such as vLLM batches concurrent requests, so latency barely grows with concurrency). The
client work (decode at 1,024 px, JPEG + base64, HTTP) is the real `photoseek caption` path, so the
ratio to workers=1 says how well the bounded pool hides the model's latency, and latency 0 gives
the client's own ceiling.

    PYTHONPATH=src python bench/caption_api_bench.py --images 96 --latency 0.25
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from photoseek.api import caption

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import shared_data  # noqa: E402
from measure import measured_run, span  # noqa: E402


def serve(latency: float, port: multiprocessing.Queue) -> None:
    """The fake model server, in its own process so that it does not share the client's GIL."""
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(latency)
            data = json.dumps({"choices": [{"message": {"role": "assistant", "content": "a photo"}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port.put(server.server_address[1])
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--latency", type=float, default=0.25, help="seconds the fake model takes per request")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    args = parser.parse_args()

    photos = sorted(shared_data("coco-mini").rglob("*.jpg"))[: args.images]
    print(f"{len(photos)} COCO photos, load average {os.getloadavg()[0]:.2f}")
    for latency in (args.latency, 0.0):
        port: multiprocessing.Queue = multiprocessing.Queue()
        server = multiprocessing.Process(target=serve, args=(latency, port), daemon=True)
        server.start()
        url = f"http://127.0.0.1:{port.get(timeout=30)}/v1"
        baseline = None
        for workers in args.workers:
            with span() as timing:
                report = caption(photos, model="openai:bench", endpoint=url, workers=workers)
            seconds = timing.wall_s
            assert len(report.pairs) == len(photos), report.failures
            rate = len(photos) / seconds
            baseline = baseline or rate
            ratio = rate / baseline
            print(f"latency {latency:.2f} s  workers {workers:>2}: {rate:6.1f} images/s ({ratio:.1f}x workers=1), "
                  f"CPU {1000 * timing.cpu_s / len(photos):.1f} ms per image")
        server.terminate()


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
