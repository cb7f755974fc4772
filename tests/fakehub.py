"""A Hugging Face Hub on localhost that serves folders as model repositories, to test real downloads.

It answers the requests huggingface_hub makes to download a snapshot (repository info, the file
tree, then each file by revision) and records which files were fetched. Point HF_ENDPOINT at
`url` in a child process (huggingface_hub reads it at import).
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tests.hubcache import REVISION


class FakeHub:
    def __init__(self, repos: dict[str, Path]) -> None:
        self.repos = repos
        self.fetched: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _files(self, repo: str) -> list[str]:
        root = self.repos[repo]
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    def _tree_entry(self, repo: str, name: str) -> dict[str, object]:
        data = (self.repos[repo] / name).read_bytes()
        return {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                parts = unquote(urlsplit(self.path).path).strip("/").split("/")
                if parts[:2] == ["api", "models"]:
                    repo = "/".join(parts[2:4])
                    if repo not in hub.repos:
                        return self._send(404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"})
                    if parts[4:5] == ["tree"]:
                        answer: object = [hub._tree_entry(repo, f) for f in hub._files(repo)]
                    else:
                        answer = {"id": repo, "sha": REVISION, "siblings": [{"rfilename": f} for f in hub._files(repo)]}
                    return self._send(200, json.dumps(answer).encode(), {"Content-Type": "application/json"}, body)
                repo, name = "/".join(parts[:2]), "/".join(parts[4:])
                path = hub.repos.get(repo, Path("/nonexistent")) / name
                if parts[2:3] != ["resolve"] or not path.is_file():
                    return self._send(404, b"not found", {"X-Error-Code": "EntryNotFound"}, body)
                data = path.read_bytes()
                if body:
                    hub.fetched.append(name)
                etag = hashlib.sha256(data).hexdigest()
                self._send(200, data, {"X-Repo-Commit": REVISION, "ETag": f'"{etag}"'}, body)

            def _send(self, status: int, data: bytes, headers: dict[str, str], body: bool = True) -> None:
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(data))}.items():
                    self.send_header(key, value)
                self.end_headers()
                if body:
                    self.wfile.write(data)

        return Handler
