"""The exit status says what kind of error ended a command, as `photoseek --help` documents:
2 bad input, 3 not found, 4 unavailable, 5 conflict, 1 any other error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from photoseek.cli import app
from tests.helpers import draw_photo, run_cli, run_json


def invoke(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def _failed(result: Result, status: int) -> str:
    """The one error line on stderr, after checking the exit status."""
    assert result.exit_code == status, (result.exit_code, result.output, result.exception)
    assert result.stdout == "" and result.stderr.startswith("Error: "), result.output
    return result.stderr


def _json_code(*args: object) -> tuple[int, str]:
    result = invoke(*args, "--json")
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(payload) == {"error", "detail"} and payload["detail"], payload
    return result.exit_code, payload["error"]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return draw_photo(tmp_path / "photos" / "a.jpg", "red")


def test_help_documents_the_exit_statuses():
    shown = " ".join(run_cli("--help").replace("│", " ").split())
    for status in ("1 error", "2 bad input", "3 not found", "4 unavailable", "5 conflict", "130 interrupted"):
        assert status in shown, status


def test_not_found_is_3(tmp_path):
    assert "No catalog at" in _failed(invoke("search", "red", "--db", tmp_path / "missing.db"), 3)
    assert _json_code("search", "red", "--db", tmp_path / "missing.db") == (3, "not_found")
    assert "No such folder or file" in _failed(invoke("caption", tmp_path / "nowhere.jpg"), 3)


def test_an_image_id_the_catalog_lacks_is_not_found(tmp_path, photo, tiny_clip_dir):
    db = tmp_path / "catalog.db"
    run_json("index", photo.parent, "--db", db, "--model-path", tiny_clip_dir)
    assert _json_code("search", "--image", "id:99999", "--db", db, "--mode", "clip") == (3, "not_found")


def test_a_model_that_cannot_load_is_unavailable_4(tmp_path, photo):
    (tmp_path / "not-a-model").mkdir()
    error = _failed(invoke("caption", photo, "--caption-model", tmp_path / "not-a-model"), 4)
    assert "not available" in error and "not-a-model" in error
    assert _json_code("caption", photo, "--caption-model", tmp_path / "not-a-model") == (4, "model_not_available")


def test_bad_input_is_2_like_a_usage_error(tmp_path, photo):
    error = _failed(invoke("caption", photo, "--caption-model", "Salesforce/blip-image-captioning-base",
                           "--caption-endpoint", "http://127.0.0.1:9/v1"), 2)
    assert "--caption-endpoint is for API models" in error
    assert _json_code("caption", photo, "--caption-model", "x", "--caption-endpoint", "http://127.0.0.1:9/v1") == (
        2, "bad_input"
    )
    assert invoke("search", "red", "--no-such-option").exit_code == 2  # Typer's own usage error: the same status


def test_an_empty_catalog_is_a_conflict_5(tmp_path, tiny_clip_dir):
    (tmp_path / "empty").mkdir()
    run_json("index", tmp_path / "empty", "--db", tmp_path / "e.db", "--model-path", tiny_clip_dir)
    assert _json_code("search", "red", "--db", tmp_path / "e.db") == (5, "empty_index")


def test_caption_model_is_the_captioner_everywhere_and_the_old_spelling_still_works(tmp_path, photo):
    (tmp_path / "not-a-model").mkdir()
    help_text = run_cli("caption", "--help")
    assert "--caption-model" in help_text and "--model" not in help_text.replace("--caption-model", "")
    old = invoke("caption", photo, "--model", tmp_path / "not-a-model")
    assert old.exit_code == 4 and "is now --caption-model" in old.stderr  # it reached the captioner, with a note
    both = invoke("caption", photo, "--caption-model", "a", "-m", "b")
    assert both.exit_code == 2 and "not both" in both.stderr
