"""`--json` on every command: results, and errors too, are one JSON document on stdout.

An error under `--json` is `{"error": short code, "detail": what to do}` on one line of stdout,
with a non-zero exit status and nothing on stderr, so a script reads one stream and always
gets JSON. Without `--json`, errors stay one line on stderr.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner, Result

from photoseek.cli import app
from photoseek.models import DEFAULT_MODEL
from tests.fakehub import FakeHub
from tests.helpers import draw_photo, run_json
from tests.hubcache import clean_env, run_photoseek


def invoke(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def _command(words: tuple[str, ...]) -> Any:
    """The command `photoseek WORDS` runs, built as a run builds it (the group loads commands lazily)."""
    command: Any = get_command(app)
    for word in words:
        command = command.get_command(command.make_context(command.name or "photoseek", [], resilient_parsing=True),
                                      word)
    return command


def _commands() -> list[tuple[str, ...]]:
    """Every command of the CLI as its words, e.g. ("models", "export")."""
    def walk(words: tuple[str, ...]) -> list[tuple[str, ...]]:
        command = _command(words)
        if not hasattr(command, "list_commands"):
            return [words]
        names = command.list_commands(command.make_context("photoseek", [], resilient_parsing=True))
        return [path for name in names for path in walk((*words, name))]

    return walk(())


def _json_error(result: Result, status: int | None = None) -> dict:
    """The one JSON error object on stdout; `status`: the exit status, else any of an error's (1-5)."""
    assert result.exit_code == status if status is not None else result.exit_code in (1, 2, 3, 4, 5), (
        result.exit_code, result.output, result.exception
    )
    assert result.stderr == ""
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    payload = json.loads(lines[0])
    assert set(payload) == {"error", "detail"} and payload["detail"], payload
    return payload


def test_every_command_but_serve_takes_json():
    for words in _commands():
        command = _command(words)
        names = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert ("--json" in names) == (words != ("serve",)), words


@pytest.mark.parametrize("words", _commands(), ids=" ".join)
def test_a_usage_error_under_json_is_a_json_object(words):
    payload = _json_error(invoke(*words, "--no-such-option", "--json"), status=2)
    assert payload["error"] == "usage"
    assert "--no-such-option" in payload["detail"] and payload["detail"].endswith(f"{' '.join(words)} --help.")


@pytest.mark.parametrize("words", _commands(), ids=" ".join)
def test_a_usage_error_without_json_is_one_line_on_stderr(words):
    result = invoke(*words, "--no-such-option")
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "--no-such-option" in lines[0]
    assert lines[0].endswith(f"{' '.join(words)} --help.")


@pytest.fixture
def missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.db"


FAILING = {
    "caption": lambda m: ["caption", m.parent / "nope"],
    "duplicates": lambda m: ["duplicates", "--db", m],
    "eval": lambda m: ["eval", "--dataset", m.parent / "nope.csv", "--images", m.parent],
    "eval-captions": lambda m: ["eval-captions", "--references", m.parent / "a.json", "--candidates", m.parent / "b"],
    "finetune": lambda m: ["finetune", "--pairs", m.parent / "no.csv", "--out", m.parent / "o", "--base", "a:b"],
    "index": lambda m: ["index", m.parent / "nope", "--db", m],
    "search": lambda m: ["search", "red", "--db", m],
    "similar": lambda m: ["similar", m.parent / "a.jpg", "--db", m],
    "status": lambda m: ["status", "--db", m],
    "describe": lambda m: ["describe", m.parent / "a.jpg", "text", "--db", m],
    "tag": lambda m: ["tag", m.parent / "a.jpg", "red", "--db", m],
    "import-captions": lambda m: ["import-captions", m.parent / "c.csv", "--db", m],
    "export-xmp": lambda m: ["export-xmp", "--db", m],
    "calibrate": lambda m: ["calibrate", "--db", m],
    "topics": lambda m: ["topics", "--db", m],
    "watch": lambda m: ["watch", m.parent / "nope", "--db", m],
    "models list": lambda m: ["models", "list", "--device", "abacus"],
    "models download": lambda m: ["models", "download", "not/a valid name"],
    "models quantize": lambda m: ["models", "quantize", m.parent / "nope", "--out", m.parent / "q"],
}


def test_every_command_with_json_has_a_failing_case_here():
    assert set(FAILING) | {"models export", "serve"} == {" ".join(words) for words in _commands()}


@pytest.mark.parametrize("name", FAILING)
def test_an_error_under_json_is_one_json_object_on_stdout(name, missing):
    _json_error(invoke(*FAILING[name](missing), "--json"))


def test_the_error_code_names_the_kind_of_error(missing, tmp_path, tiny_clip_dir):
    assert _json_error(invoke("search", "red", "--db", missing, "--json"), 3)["error"] == "not_found"
    (tmp_path / "empty").mkdir()
    run_json("index", tmp_path / "empty", "--db", tmp_path / "e.db", "--model-path", tiny_clip_dir)
    assert _json_error(invoke("search", "red", "--db", tmp_path / "e.db", "--json"), 5)["error"] == "empty_index"
    assert _json_error(invoke("models", "download", "not/a valid name", "--json"), 4)["error"] == "model_not_available"


def test_an_error_found_by_the_command_itself_is_json_too(tmp_path):
    payload = _json_error(invoke("models", "export", "ViT-B-32", "--out", tmp_path / "m", "--json"), status=2)
    assert payload == {"error": "usage", "detail": "give --pretrained TAG or --random-weights."}


def test_without_json_an_error_is_one_line_on_stderr(missing):
    result = invoke("search", "red", "--db", missing)
    assert result.exit_code == 3 and result.stdout == ""
    assert result.stderr.startswith("Error: No catalog at") and len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def library(tmp_path: Path, tiny_clip_dir: Path) -> tuple[Path, Path]:
    photos = tmp_path / "photos"
    draw_photo(photos / "a.jpg", "red")
    draw_photo(photos / "b.jpg", "blue", seed=1)
    db = tmp_path / "catalog.db"
    run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    return photos, db


def test_an_error_in_a_piped_query_is_a_json_line_and_the_next_query_runs(library):
    _, db = library
    result = CliRunner().invoke(
        app, ["search", "--db", str(db), "--json", "--mode", "clip", "--min-score", "-1"], input="-red\nred\n"
    )
    assert result.exit_code == 0 and result.stderr == ""
    failed, answered = (json.loads(line) for line in result.stdout.splitlines())
    assert failed["error"] == "bad_input" and "positive" in failed["detail"]
    assert answered["query"] == "red" and len(answered["results"]) == 2


def test_describe_and_tag_print_json(library):
    photos, db = library
    image = photos / "a.jpg"
    assert run_json("describe", image, "a red ball", "--db", db) == {"path": str(image), "description": "a red ball"}
    assert run_json("describe", image, " ", "--db", db) == {"path": str(image), "description": None}
    assert run_json("tag", image, "ball", "red", "--db", db) == {"path": str(image), "tags": ["ball", "red"]}
    assert run_json("tag", image, "red", "toy", "--db", db)["tags"] == ["ball", "red", "toy"]
    payload = run_json("search", "toy", "--db", db, "--mode", "keyword")
    assert [Path(r["path"]).name for r in payload["results"]] == ["a.jpg"]


def test_caption_prints_json_and_still_writes_the_csv(tmp_path, tiny_blip_dir):
    draw_photo(tmp_path / "photos" / "a.jpg", "red")
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    csv_file = tmp_path / "captions.csv"
    payload = run_json("caption", tmp_path / "photos", "--caption-model", tiny_blip_dir, "--out", csv_file)
    assert [Path(c["file"]).name for c in payload["captions"]] == ["a.jpg"]
    assert payload["captions"][0]["caption"]
    assert [Path(f["path"]).name for f in payload["failed"]] == ["broken.jpg"] and payload["failed"][0]["reason"]
    assert payload["out"] == str(csv_file)
    with csv_file.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[1] == [payload["captions"][0]["file"], payload["captions"][0]["caption"]]


def test_models_export_and_quantize_print_json(tmp_path, tiny_clip_config):
    exported = run_json(
        "models", "export", tiny_clip_config.stem, "--random-weights", "--arch-config", tiny_clip_config,
        "--out", tmp_path / "fp32",
    )
    assert exported == {"model_dir": str(tmp_path / "fp32"), "arch": tiny_clip_config.stem, "pretrained": None}
    pytest.importorskip("onnxruntime.quantization")
    quantized = run_json("models", "quantize", tmp_path / "fp32", "--out", tmp_path / "int8")
    assert quantized == {"model_dir": str(tmp_path / "int8"), "source": str(tmp_path / "fp32"), "text": False}
    assert (tmp_path / "int8" / "visual" / "model.onnx").is_file()


def test_models_download_prints_json(tiny_clip_dir, tmp_path):
    env = clean_env(tmp_path / "home", HF_HUB_CACHE=str(tmp_path / "hub"))
    with FakeHub({f"immich-app/{DEFAULT_MODEL}": tiny_clip_dir}) as hub:
        fetched = run_photoseek("models", "download", "--json", env={**env, "HF_ENDPOINT": hub.url})
    assert fetched.returncode == 0, fetched.stderr
    payload = json.loads(fetched.stdout)
    assert payload["kind"] == "clip" and payload["name"] is None and payload["cache"] == str(tmp_path / "hub")
    assert (Path(payload["path"]) / "visual" / "model.onnx").is_file()


def test_an_interrupt_under_json_is_a_json_object_with_status_130(tmp_path, tiny_clip_config, monkeypatch):
    pytest.importorskip("open_clip")

    def interrupted(*args: object) -> bool:
        raise KeyboardInterrupt  # Ctrl+C while the text tower is written

    monkeypatch.setattr("photoseek.models.export._export_text_tower", interrupted)
    out = tmp_path / "tiny"
    result = invoke(
        "models", "export", "tiny", "--out", out, "--random-weights", "--arch-config", tiny_clip_config, "--json"
    )
    payload = _json_error(result, status=130)
    assert payload == {"error": "interrupted", "detail": f"Interrupted: nothing was written to {out}; run the "
                       "same command again."}
