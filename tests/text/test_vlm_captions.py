"""Captions over an OpenAI-compatible API, against a chat-completions server the test runs on 127.0.0.1.

The fake server reads the image it is sent and answers with the colour at its centre, so every
caption can be traced back to its file, whatever order concurrent requests finish in.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from photoseek import ImageIndex
from photoseek.text.vlm import PRESETS, ApiCaptioner, CaptionApiError, RetryPolicy, parse_retry_after
from tests.helpers import COLOURS, draw_photo, run_cli, run_json, texts_of


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: object = None
    delay_s: float = 0.0


class FakeVlm:
    """Records every request; answers from `script` first, then with the centre colour of the image."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict]] = []
        self.script: deque[Reply] = deque()
        self.delay_s = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake._lock:
                    fake.requests.append((dict(self.headers), body))
                    reply = fake.script.popleft() if fake.script else Reply(delay_s=fake.delay_s)
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    time.sleep(reply.delay_s)
                    if self.path != "/v1/chat/completions":
                        reply = Reply(404, body={"error": {"message": f"no route {self.path}"}})
                    payload = reply.body if reply.body is not None else _completion(body)
                    data = json.dumps(payload).encode()
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

        return Handler

    def captioned(self) -> list[dict]:
        """Requests that asked for a caption (not the one-token preflight)."""
        return [body for _, body in self.requests if body.get("max_tokens", 0) > 1]


def _sent_image(body: dict) -> Image.Image:
    url = body["messages"][0]["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def _colour_name(image: Image.Image) -> str:
    centre = image.convert("RGB").getpixel((image.width // 2, image.height // 2))
    return min(COLOURS, key=lambda name: sum((a - b) ** 2 for a, b in zip(COLOURS[name], centre)))


def _completion(body: dict) -> dict:
    caption = f"a {_colour_name(_sent_image(body))} shape on a grey background"
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant",
            "content": caption}, "finish_reason": "stop"}]}


@pytest.fixture
def vlm() -> Iterator[FakeVlm]:
    fake = FakeVlm()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def photos(tmp_path) -> Path:
    root = tmp_path / "photos"
    for i, colour in enumerate(["red", "green", "blue", "yellow", "purple"]):
        draw_photo(root / f"{colour}.png", colour, seed=i)
    draw_photo(root / "big" / "orange.jpg", "orange", size=(2400, 1600))
    return root


@pytest.fixture(autouse=True)
def no_openai_env(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def _images(*colours: str) -> list[Image.Image]:
    return [Image.new("RGB", (80, 60), COLOURS[colour]) for colour in colours]


def _rows(path: Path) -> dict[str, str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return {Path(r["file"]).stem: r["caption"] for r in csv.DictReader(fh)}


def test_caption_command_sends_each_image_as_a_chat_completion(vlm, photos, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    out = tmp_path / "pairs.csv"
    run_cli("caption", photos, "--caption-model", "openai:llava:13b", "--caption-endpoint", vlm.url,
            "--caption-prompt", "keywords", "--caption-workers", "3", "--out", out)
    rows = _rows(out)
    assert rows == {c: f"a {c} shape on a grey background" for c in ["red", "green", "blue", "yellow", "purple",
                                                                      "orange"]}
    assert len(vlm.requests) == 6
    for headers, body in vlm.requests:
        assert headers["Authorization"] == "Bearer sk-test"
        assert body["model"] == "llava:13b" and body["max_tokens"] == PRESETS["keywords"].max_tokens
        (message,) = body["messages"]
        text, image = message["content"]
        assert message["role"] == "user" and text == {"type": "text", "text": PRESETS["keywords"].prompt}
        assert image["type"] == "image_url"
    sizes = sorted(_sent_image(body).size for _, body in vlm.requests)
    assert sizes[-1] == (1024, 683)  # the 2400x1600 photo, shrunk to 1,024 px on its long side
    assert (160, 120) in sizes  # small ones are never enlarged


def test_base_url_comes_from_the_environment_and_no_key_sends_no_header(vlm, photos, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", vlm.url + "/")
    out = tmp_path / "pairs.csv"
    run_cli("caption", photos / "red.png", "--caption-model", "openai:qwen2.5-vl", "--caption-prompt",
            "What colour is the shape?", "--out", out)
    assert _rows(out) == {"red": "a red shape on a grey background"}
    ((headers, body),) = vlm.requests
    assert "Authorization" not in headers
    assert body["messages"][0]["content"][0]["text"] == "What colour is the shape?"


def test_index_caches_api_captions_by_content_and_model(vlm, photos, tmp_path, tiny_clip_dir):
    db = tmp_path / "c.db"
    args = ("index", photos, "--db", db, "--model-path", tiny_clip_dir,
            "--caption-model", "openai:llava", "--caption-endpoint", vlm.url)
    assert run_json(*args)["signals"] == {"caption": 6}
    assert len(vlm.captioned()) == 6
    with ImageIndex(db) as index:
        record = index.find(photos / "yellow.png")
        caption = texts_of(index).get(record.content_hash, "caption", "openai:llava")
        assert caption == "a yellow shape on a grey background"

    assert run_json(*args)["signals"] == {}  # cached: no image sent again
    assert len(vlm.captioned()) == 6
    hits = run_json("search", "purple", "--mode", "keyword", "--db", db)["results"]
    assert [Path(h["path"]).name for h in hits] == ["purple.png"]

    assert run_json(*args, "--caption-prompt", "brief")["signals"] == {"caption": 6}  # another prompt, recomputed
    assert vlm.captioned()[-1]["max_tokens"] == PRESETS["brief"].max_tokens


def test_index_captions_only_the_folders_named_unless_all(vlm, photos, tmp_path, tiny_clip_dir):
    db = tmp_path / "c.db"
    elsewhere = tmp_path / "elsewhere"
    for i, colour in enumerate(["red", "green", "blue"]):
        draw_photo(elsewhere / f"old-{colour}.png", colour, seed=10 + i)
    run_json("index", elsewhere, "--db", db, "--model-path", tiny_clip_dir)  # 3 images without captions
    api = ("--caption-model", "openai:llava", "--caption-endpoint", vlm.url)

    assert run_json("index", photos / "big", "--db", db, *api)["signals"] == {"caption": 1}
    assert [_colour_name(_sent_image(body)) for body in vlm.captioned()] == ["orange"]
    assert run_json("index", photos / "red.png", "--db", db, *api)["signals"] == {"caption": 1}  # a single file
    assert run_json("index", photos, "--db", db, *api)["signals"] == {"caption": 4}  # the rest of photos/
    assert len(vlm.captioned()) == 6
    with ImageIndex(db) as index:
        old = index.find(elsewhere / "old-red.png")
        assert texts_of(index).get(old.content_hash, "caption", "openai:llava") is None

    (photos / "linked.png").symlink_to(elsewhere / "old-red.png")  # found under photos/, stored by its real path
    assert run_json("index", photos, "--db", db, *api)["signals"] == {"caption": 1}
    assert run_json("index", photos, "--db", db, "--all", *api)["signals"] == {"caption": 2}
    assert len(vlm.captioned()) == 9
    assert run_json("index", photos, "--db", db, "--all", *api)["signals"] == {}
    assert len(vlm.captioned()) == 9


def test_the_command_waits_out_429_and_500_and_finishes(vlm, photos, tmp_path):
    vlm.script.extend([Reply(429, headers={"Retry-After": "1"}), Reply(500, body={"error": "warming up"})])
    out = tmp_path / "pairs.csv"
    started = time.monotonic()
    run_cli("caption", photos / "red.png", "--caption-model", "openai:llava", "--caption-endpoint", vlm.url,
            "--out", out)
    assert time.monotonic() - started >= 1 + 2  # Retry-After, then the second backoff step
    assert _rows(out) == {"red": "a red shape on a grey background"} and len(vlm.requests) == 3


def test_wrong_key_fails_at_the_first_image_with_what_to_do(vlm, photos, tmp_path, tiny_clip_dir):
    vlm.script.extend(Reply(401, body={"error": {"message": "Incorrect API key provided"}}) for _ in range(20))
    output = run_cli("caption", photos, "--caption-model", "openai:gpt-4o-mini", "--caption-endpoint", vlm.url,
                     expect=4)
    assert "HTTP 401" in output and "Incorrect API key provided" in output and "OPENAI_API_KEY" in output
    assert len(vlm.requests) == 1

    db = tmp_path / "c.db"
    output = run_cli("index", photos, "--db", db, "--model-path", tiny_clip_dir,
                     "--caption-model", "openai:gpt-4o-mini", "--caption-endpoint", vlm.url, expect=4)
    assert "OPENAI_API_KEY" in output and len(vlm.requests) == 2  # one preflight, before any embedding
    with ImageIndex(db) as index:
        assert index.status().image_count == 0


def test_unknown_model_names_the_model_and_how_to_list_models(vlm, photos):
    vlm.script.append(Reply(404, body={"error": {"message": "model 'lava' not found"}}))
    output = run_cli("caption", photos, "--caption-model", "openai:lava", "--caption-endpoint", vlm.url, expect=4)
    assert "HTTP 404" in output and "'lava'" in output and "ollama list" in output
    assert len(vlm.requests) == 1


def test_unreachable_endpoint_and_missing_key_fail_before_any_work(photos, tmp_path):
    output = run_cli("caption", photos, "--caption-model", "openai:llava", "--caption-endpoint", "http://127.0.0.1:9/v1",
                     expect=4)
    assert "cannot reach" in output and "Is the server running" in output
    output = run_cli("caption", photos, "--caption-model", "openai:gpt-4o", expect=2)  # api.openai.com, no key
    assert "OPENAI_API_KEY" in output and "--caption-endpoint" in output
    output = run_cli("caption", photos, "--caption-model", "openai:llava", "--caption-endpoint", "localhost:11434",
                     expect=2)
    assert "not an http(s) URL" in output
    output = run_cli("caption", photos, "--caption-model", "llava", "--caption-endpoint", "http://127.0.0.1:9/v1",
                     expect=2)
    assert "--caption-model openai:llava" in output


def _captioner(vlm: FakeVlm, sleeps: list[float], **kwargs) -> ApiCaptioner:
    kwargs.setdefault("retry", RetryPolicy(attempts=3, base_delay_s=0.5, jitter=0))
    return ApiCaptioner("llava", endpoint=vlm.url, sleep=sleeps.append, **kwargs)


def test_429_waits_as_long_as_retry_after_says(vlm):
    vlm.script.append(Reply(429, headers={"Retry-After": "7"}, body={"error": {"message": "slow down"}}))
    sleeps: list[float] = []
    assert _captioner(vlm, sleeps).describe(_images("green")) == ["a green shape on a grey background"]
    assert sleeps == [7.0] and len(vlm.requests) == 2


def test_429_with_a_retry_after_beyond_reason_is_reported_not_waited(vlm):
    vlm.script.append(Reply(429, headers={"Retry-After": "86400"}, body={"error": {"message": "daily quota"}}))
    sleeps: list[float] = []
    with pytest.raises(CaptionApiError, match="asks to wait 86400 s.*daily quota.*--caption-workers"):
        _captioner(vlm, sleeps).describe(_images("green"))
    assert sleeps == []


def test_retry_after_as_an_http_date():
    now = time.time()
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after("2.5") == 2.5 and parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_500_then_success_backs_off_exponentially(vlm):
    vlm.script.extend([Reply(500, body={"error": "boom"}), Reply(503, body={"error": "loading model"})])
    sleeps: list[float] = []
    assert _captioner(vlm, sleeps).describe(_images("blue")) == ["a blue shape on a grey background"]
    assert sleeps == [0.5, 1.0] and len(vlm.requests) == 3


def test_persistent_500_gives_up_after_the_attempts_and_says_progress_is_kept(vlm):
    vlm.script.extend(Reply(500, body={"error": {"message": "CUDA out of memory"}}) for _ in range(5))
    sleeps: list[float] = []
    with pytest.raises(CaptionApiError, match="failed 3 times: HTTP 500: CUDA out of memory.*saved"):
        _captioner(vlm, sleeps).describe(_images("blue"))
    assert len(vlm.requests) == 3 and len(sleeps) == 2


def test_a_slow_answer_times_out_and_is_retried(vlm):
    vlm.script.append(Reply(delay_s=1.5))
    sleeps: list[float] = []
    started = time.monotonic()
    assert _captioner(vlm, sleeps, timeout_s=0.3).describe(_images("red")) == ["a red shape on a grey background"]
    assert time.monotonic() - started < 1.4 and len(vlm.requests) == 2

    vlm.delay_s = 1.0
    with pytest.raises(CaptionApiError, match=r"no answer within 0.3 s.*--caption-timeout"):
        _captioner(vlm, sleeps, timeout_s=0.3).describe(_images("red"))


def test_requests_in_flight_never_exceed_the_workers_and_captions_keep_their_order(vlm):
    vlm.delay_s = 0.15
    colours = ["red", "green", "blue", "yellow", "purple", "orange"] * 2
    captioner = _captioner(vlm, [], workers=3)
    captions = captioner.describe(_images(*colours))
    assert captions == [f"a {c} shape on a grey background" for c in colours]
    assert vlm.max_in_flight == 3


def test_a_refusal_midway_returns_at_once_without_waiting_for_slow_requests(vlm):
    vlm.script.extend([Reply(), Reply(400, body={"error": {"message": "image too large"}}, delay_s=0.05)])
    vlm.delay_s = 3.0
    started = time.monotonic()
    with pytest.raises(CaptionApiError, match="HTTP 400: image too large.*vision model"):
        _captioner(vlm, [], workers=3).describe(_images("red", "green", "blue", "yellow"))
    assert time.monotonic() - started < 1.5
