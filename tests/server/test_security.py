"""The server's security promises: tokens, loopback default, id-only file access, upload limits."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from photoseek.errors import PhotoseekError
from photoseek.server.config import check_bind, is_loopback
from tests.helpers import run_cli
from tests.server.conftest import Library, make_client

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def locked(library: Library):
    with make_client(library, token=TOKEN, max_upload_bytes=200_000, max_upload_pixels=1_000_000) as client:
        yield client


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", ["/api/search?q=x", "/api/status", "/api/images/1", "/thumbs/1", "/files/1",
                                  "/api/images/1/similar", "/api/jobs/x"])
def test_missing_or_wrong_token_is_refused(locked, path):
    for headers in ({}, auth("wrong"), {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}):
        response = locked.get(path, headers=headers)
        assert response.status_code == 401, (path, headers)
        assert response.json()["error"] == "unauthorized" and "Bearer" in response.json()["detail"]
    assert locked.post("/api/index").status_code == 401
    assert locked.post("/api/search/image", files={"file": ("a.png", b"x")}).status_code == 401


def test_right_token_opens_the_api_and_public_pages_stay_open(locked, library: Library):
    assert locked.get("/api/search", params={"q": "x"}, headers=auth()).status_code == 200
    assert locked.get("/healthz").status_code == 200
    assert locked.get("/").status_code == 200
    assert locked.get("/static/app.js").status_code == 200


def test_session_cookie_opens_images_but_not_the_json_api(library: Library):
    with make_client(library, token=TOKEN) as client:
        image_id = library.ids["red.jpg"]
        assert client.post("/api/session").status_code == 401
        response = client.post("/api/session", headers=auth())
        assert response.status_code == 204
        cookie = response.cookies.get("photoseek_session")
        assert cookie and TOKEN not in cookie
        assert "httponly" in response.headers["set-cookie"].lower()
        assert "samesite=strict" in response.headers["set-cookie"].lower()
        assert client.get(f"/thumbs/{image_id}").status_code == 200
        assert client.get(f"/files/{image_id}").status_code == 200
        assert client.get("/api/jobs/nope/events").status_code == 404  # EventSource cannot send headers
        assert client.get("/api/search", params={"q": "x"}).status_code == 401
        assert client.post("/api/index").status_code == 401
        client.cookies.clear()
        assert client.get(f"/thumbs/{image_id}").status_code == 401
        client.cookies.set("photoseek_session", "forged")
        assert client.get(f"/thumbs/{image_id}").status_code == 401


@pytest.mark.parametrize("path", [
    "/files/../../etc/passwd", "/files/..%2F..%2Fetc%2Fpasswd", "/files/%2Fetc%2Fpasswd", "/thumbs/..%2Fcatalog.db",
    "/files/1/../../../etc/passwd", "/static/../../../../etc/passwd", "/static/..%2F..%2Fapi.py", "/files/-1",
    "/files/1.5", "/files/etc/passwd",
])
def test_path_traversal_never_serves_a_file(client, path):
    response = client.get(path)
    assert response.status_code in (404, 422), (path, response.status_code)
    assert b"root:" not in response.content and b"import" not in response.content


def test_a_file_replaced_by_a_symlink_out_of_the_root_is_not_served(library: Library, tmp_path):
    import shutil

    from photoseek import ImageIndex

    root = tmp_path / "photos"
    shutil.copytree(library.root, root)
    db = tmp_path / "c.db"
    with ImageIndex(db, model_path=library.model_dir) as index:
        index.index([root])
        record = index.find(root / "red.jpg")
    secret = tmp_path / "secret.jpg"
    shutil.copy(root / "red.jpg", secret)
    (root / "red.jpg").unlink()
    os.symlink(secret, root / "red.jpg")
    with make_client(Library(root, db, library.model_dir, {})) as client:
        for path in (f"/files/{record.id}", f"/thumbs/{record.id}"):
            response = client.get(path)
            assert response.status_code == 404 and "outside the indexed folders" in response.json()["detail"]


def test_oversize_upload_is_413_with_a_clear_json_error(locked):
    big = b"\xff\xd8" + os.urandom(300_000)
    response = locked.post("/api/search/image", files={"file": ("big.jpg", big, "image/jpeg")}, headers=auth())
    assert response.status_code == 413
    assert response.json()["error"] == "too_large" and "MB limit" in response.json()["detail"]


def test_oversize_chunked_body_without_length_is_413(locked):
    def chunks():
        for _ in range(50):
            yield b"x" * 10_000

    response = locked.post("/api/search", content=chunks(), headers={**auth(), "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "too_large"


def test_decompression_bomb_is_refused_before_decoding(locked):
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format="PNG")  # 400 MP, a few kB compressed
    assert len(buffer.getvalue()) < 200_000
    response = locked.post("/api/search/image", files={"file": ("bomb.png", buffer.getvalue(), "image/png")},
                           headers=auth())
    assert response.status_code == 422
    assert response.json()["error"] == "unreadable_image" and "pixel limit" in response.json()["detail"]


@pytest.mark.parametrize("payload", [b"", b"hello, not an image", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                                     b"\x89PNG\r\n\x1a\n" + b"\x00" * 64])
def test_non_image_upload_is_422(locked, payload):
    response = locked.post("/api/search/image", files={"file": ("x.jpg", payload, "image/jpeg")}, headers=auth())
    assert response.status_code == 422, response.text
    assert response.json()["error"] in ("unreadable_image", "no_image") and response.json()["detail"]


def test_missing_upload_is_422(locked):
    response = locked.post("/api/search/image", headers=auth())
    assert response.status_code == 422 and "file" in response.json()["detail"]
    bad = locked.post("/api/search/image", data={"data_url": "javascript:alert(1)"}, headers=auth())
    assert bad.status_code == 422


def test_no_cors_headers_by_default(client):
    response = client.get("/api/status", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options("/api/search", headers={"Origin": "https://evil.example",
                                                       "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_loopback_check():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.8.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.com")
    check_bind("127.0.0.1", None, False)
    check_bind("0.0.0.0", "a-long-random-token", False)
    check_bind("0.0.0.0", None, True)
    with pytest.raises(PhotoseekError, match="--token"):
        check_bind("0.0.0.0", None, False)


@pytest.mark.parametrize("token", [" ", "   ", "short-token", "x" * 15, " padded-but-long-enough "])
def test_weak_or_blank_tokens_are_refused_off_loopback(monkeypatch, tmp_path, token):
    monkeypatch.delenv("PHOTOSEEK_TOKEN", raising=False)
    output = run_cli("serve", "--host", "0.0.0.0", "--token", token, "--db", tmp_path / "c.db", expect=2)
    assert "token" in output.lower() and "secrets.token_urlsafe" in output
    assert not (tmp_path / "c.db").exists()
    check_bind("0.0.0.0", "x" * 16, False)
    check_bind("127.0.0.1", "short-token", False)  # loopback: any non-blank token
    with pytest.raises(PhotoseekError, match="blank"):
        check_bind("127.0.0.1", " ", False)


def test_serve_refuses_a_network_address_without_a_token(monkeypatch, tmp_path):
    monkeypatch.delenv("PHOTOSEEK_TOKEN", raising=False)
    output = run_cli("serve", "--host", "0.0.0.0", "--db", tmp_path / "c.db", expect=2)
    assert "Refusing to listen on 0.0.0.0" in output and "--insecure" in output
    assert not (tmp_path / "c.db").exists()


def test_serve_reports_a_missing_model_in_one_line(tmp_path):
    output = run_cli("serve", "--db", tmp_path / "c.db", "--model-path", tmp_path / "nowhere", expect=4)
    assert "Model directory" in output and "Traceback" not in output


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "attacker.test.", "192.168.1.5:8000", "0.0.0.0"])
def test_a_foreign_host_header_gets_no_data(client, library: Library, host):
    """DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1."""
    image_id = library.ids["red.jpg"]
    for path in ("/api/status", "/api/search?q=red", f"/files/{image_id}", f"/thumbs/{image_id}", "/"):
        response = client.get(path, headers={"Host": host})
        assert response.status_code == 400, (host, path, response.status_code)
        body = response.json()
        assert body["error"] == "host_not_allowed" and "--allowed-host" in body["detail"]
        assert b"red.jpg" not in response.content


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost", "LOCALHOST:8000", "[::1]:8000", "127.0.0.2"])
def test_loopback_host_headers_are_answered(client, host):
    assert client.get("/api/status", headers={"Host": host}).status_code == 200


def test_host_check_accepts_the_listen_address_and_allowed_hosts(library: Library):
    with make_client(library, host="192.168.1.5", allowed_hosts=("photos.lan",)) as client:
        for host in ("192.168.1.5:8000", "photos.lan", "Photos.LAN:8000", "localhost:8000"):
            assert client.get("/api/status", headers={"Host": host}).status_code == 200, host
        for host in ("192.168.1.6", "evil.example", "photos.lan.evil.example"):
            assert client.get("/api/status", headers={"Host": host}).status_code == 400, host
    with make_client(library, host="0.0.0.0", token="a-long-random-token") as client:
        ok = client.get("/api/status", headers={"Host": "10.0.0.7:8000", **auth("a-long-random-token")})
        assert ok.status_code == 200  # on a wildcard address any IP literal names this server
        assert client.get("/api/status", headers={"Host": "evil.example"}).status_code == 400
    with make_client(library, allowed_hosts=("*",)) as client:
        assert client.get("/api/status", headers={"Host": "behind.a.proxy"}).status_code == 200


def test_a_cross_site_form_post_cannot_start_indexing(library: Library):
    with make_client(library, roots=(library.root,)) as client:
        jobs = client.app.state.jobs
        for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                        {"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://127.0.0.1:9999"},
                        {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-site"}):
            response = client.post("/api/index", data={"x": "1"}, headers=headers)
            assert response.status_code == 403, (headers, response.status_code)
            assert response.json()["error"] == "foreign_origin" and "--cors-origin" in response.json()["detail"]
            search = client.post("/api/search", content=b'{"texts": ["x"]}',
                                 headers={**headers, "Content-Type": "text/plain"})
            assert search.status_code == 403
        assert jobs.running is None and not jobs._jobs
        own = {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"}
        same_origin = client.post("/api/index", headers=own)
        assert same_origin.status_code == 202
        assert client.post("/api/search", json={"texts": ["x"]}).status_code == 200  # scripts send no Origin


def test_foreign_origin_with_the_token_or_from_a_cors_origin_passes(library: Library):
    long_token = "a-long-random-token"
    with make_client(library, token=long_token) as client:
        headers = {"Origin": "https://elsewhere.example", "Sec-Fetch-Site": "cross-site"}
        assert client.post("/api/search", json={"texts": ["x"]}, headers=headers).status_code == 403
        with_token = client.post("/api/search", json={"texts": ["x"]}, headers={**headers, **auth(long_token)})
        assert with_token.status_code == 200
    with make_client(library, cors_origins=("https://app.example",), token=long_token) as client:
        headers = {"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"}
        preflight = client.options("/api/search", headers={**headers, "Access-Control-Request-Method": "POST",
                                                          "Access-Control-Request-Headers": "authorization"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        response = client.post("/api/search", json={"texts": ["x"]}, headers={**headers, **auth(long_token)})
        assert response.status_code == 200
