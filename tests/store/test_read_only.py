"""A catalog the user cannot write: one line that says what to do, and reading still works.

A folder really is read-only here: with chmod when the tests run as a normal user, and as root
(whom chmod does not stop) by running the command in a private mount namespace where the folder
or the file is bind-mounted read-only, so SQLite meets the same refusal a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from photoseek.store.catalog import READ_ONLY_ADVICE
from tests.helpers import draw_photo, run_cli, run_json

SRC = Path(__file__).resolve().parents[2] / "src"
Runner = Callable[..., tuple[int, str]]
"""Runs `photoseek ARGS` with `read_only` (a folder or file) unwritable; returns (exit code, output)."""


def _namespaces_work() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.fixture
def read_only_runner() -> Iterator[Callable[[Path], Runner]]:
    """`runner(path)`: a function that runs the CLI while `path` cannot be written."""
    restore: list[tuple[Path, int]] = []

    def runner(target: Path) -> Runner:
        if os.geteuid() != 0:
            restore.append((target, target.stat().st_mode))
            target.chmod(0o555 if target.is_dir() else 0o444)
            return _in_process
        if not _namespaces_work():
            pytest.skip("running as root without mount namespaces: nothing can be made read-only for root")
        return lambda *args: _in_namespace(target, *args)

    yield runner
    for path, mode in restore:
        path.chmod(mode)


def _in_process(*args: object) -> tuple[int, str]:
    from typer.testing import CliRunner

    from photoseek.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def _in_namespace(target: Path, *args: object) -> tuple[int, str]:
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, str(target), sys.executable, "-m", "photoseek", *map(str, args)],
        env={**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "300"}, capture_output=True, text=True, timeout=300,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def indexed(tmp_path: Path, tiny_clip_dir: Path) -> tuple[Path, Path]:
    photos = tmp_path / "photos"
    draw_photo(photos / "red.jpg", "red")
    draw_photo(photos / "blue.jpg", "blue", shape="square")
    db = tmp_path / "catalog" / "c.db"
    run_cli("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    return photos, db


def _one_error_line(output: str) -> str:
    """The error, its line breaks (the console wraps long lines) undone."""
    assert "Traceback" not in output and "OperationalError" not in output, output
    text = " ".join(output.split())
    assert text.count("Error:") == 1, output
    return text[text.index("Error:"):]


def test_a_new_catalog_in_a_read_only_folder(tmp_path: Path, tiny_clip_dir: Path, read_only_runner) -> None:
    photos, folder = tmp_path / "photos", tmp_path / "locked"
    draw_photo(photos / "red.jpg", "red")
    folder.mkdir()
    code, output = read_only_runner(folder)("index", photos, "--db", folder / "c.db", "--model-path", tiny_clip_dir)
    assert code == 1
    line = _one_error_line(output)
    assert f"Cannot write the catalog {folder / 'c.db'}: its folder is read-only for you" in line
    assert "Give --db a path in a folder you can write" in line
    assert list(folder.iterdir()) == []


def test_a_catalog_path_under_a_file(tmp_path: Path, tiny_clip_dir: Path) -> None:
    photo = draw_photo(tmp_path / "photos" / "red.jpg", "red")
    output = run_cli("index", photo.parent, "--db", photo / "c.db", "--model-path", tiny_clip_dir, expect=1)
    assert f"{photo} is a file, not a folder" in _one_error_line(output)


def test_a_catalog_in_a_read_only_folder_is_searched_but_not_written(indexed, read_only_runner) -> None:
    photos, db = indexed
    run = read_only_runner(db.parent)
    code, output = run("search", "red", "--db", db, "--json")
    assert code == 0, output
    assert {Path(hit["path"]).name for hit in json.loads(output)["results"]} == {"red.jpg", "blue.jpg"}
    code, output = run("status", "--db", db, "--json")
    assert code == 0 and json.loads(output)["images"] == 2, output
    code, output = run("similar", photos / "red.jpg", "--db", db, "--json")
    assert code == 0 and json.loads(output)["results"], output
    code, output = run("tag", photos / "red.jpg", "sunny", "--db", db)
    assert code == 1 and _one_error_line(output) == f"Error: {READ_ONLY_ADVICE}"
    code, output = run("index", photos, "--db", db)
    assert code == 1 and "its folder is read-only for you" in _one_error_line(output)


def test_a_read_only_catalog_file_in_a_writable_folder(indexed, read_only_runner) -> None:
    photos, db = indexed
    run = read_only_runner(db)
    code, output = run("search", "blue", "--db", db, "--json")
    assert code == 0 and len(json.loads(output)["results"]) == 2, output
    code, output = run("describe", photos / "red.jpg", "a red circle", "--db", db)
    assert code == 1 and _one_error_line(output) == f"Error: {READ_ONLY_ADVICE}"
    code, output = run("index", photos, "--db", db)
    assert code == 1 and "the file is read-only for you" in _one_error_line(output)
    assert len(run_json("search", "red", "--db", db)["results"]) == 2  # and nothing was harmed
