"""Sessions read weights in place from the model file (memory-mapped), and one-shot sessions skip prepacking."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image
from typer.testing import CliRunner

from photoseek.cli import app
from photoseek.models import load_clip, mapped
from photoseek.models.mapped import mapped_graph
from photoseek.models.runtime import Runtime, many_runs, one_shot, one_shot_now
from photoseek.models.session import LazySession
from tests.helpers import draw_photo, run_json

TOKENS = np.array([[49406, 320, 1929, 49407] + [0] * 73], dtype=np.int64)


@pytest.fixture
def model_copy(tmp_path: Path, tiny_clip_dir: Path) -> Path:
    """A private copy of the tiny model, so written graphs and changed files stay in this test."""
    copy = tmp_path / "model"
    shutil.copytree(tiny_clip_dir, copy, ignore=shutil.ignore_patterns(".*"))
    return copy


def _reference(model: Path) -> np.ndarray:
    """The text tower's output from the model file itself, the ordinary (copying) way."""
    options = Runtime().session_options()
    session = ort.InferenceSession(model.as_posix(), sess_options=options, providers=["CPUExecutionProvider"])
    return _run(session)


def _run(session: ort.InferenceSession) -> np.ndarray:
    name = session.get_inputs()[0].name
    dtype = np.int32 if "int32" in session.get_inputs()[0].type else np.int64
    return session.run(None, {name: TOKENS.astype(dtype)})[0]


def _hidden_graphs(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.mapped.onnx"))


def test_weightless_graph_gives_identical_outputs(model_copy: Path) -> None:
    original = model_copy / "textual" / "model.onnx"
    expected = _reference(original)
    lazy = LazySession(original)
    np.testing.assert_array_equal(_run(lazy.session), expected)
    [graph] = _hidden_graphs(original.parent)
    assert graph.stat().st_size < original.stat().st_size / 4  # the weights stayed in model.onnx
    assert graph.stat().st_mode == original.stat().st_mode  # as readable as the model, no more
    assert not list(original.parent.glob("*.tmp"))
    assert mapped_graph(original) == graph  # written once, then reused


def test_both_towers_load_mapped_and_agree_with_the_copying_load(
    model_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = load_clip(path=model_copy)
    texts = model.encode_texts(["a red square"])
    pixels = np.random.default_rng(0).normal(size=(2, 3, 48, 48)).astype(np.float32)
    images = model.encode_pixels(pixels)
    graphs = [*_hidden_graphs(model_copy / "textual"), *_hidden_graphs(model_copy / "visual")]
    assert len(graphs) == 2
    for graph in graphs:
        graph.unlink()

    def read_only(path: Path, data: bytes, **kwargs: object) -> None:
        raise PermissionError(13, "Read-only file system", str(path.parent))

    monkeypatch.setattr(mapped, "write_atomically", read_only)  # no graph can be written: the copying load is used
    plain = load_clip(path=model_copy)
    np.testing.assert_array_equal(plain.encode_pixels(pixels), images)
    np.testing.assert_array_equal(plain.encode_texts(["a red square"]), texts)
    assert not _hidden_graphs(model_copy / "textual") and not _hidden_graphs(model_copy / "visual")


def test_a_model_behind_a_symlink_gets_its_graph_beside_the_real_file(model_copy: Path, tmp_path: Path) -> None:
    """The Hugging Face cache links snapshot files to blobs; ONNX Runtime reads no data through links."""
    blobs, snapshot = tmp_path / "hub" / "blobs", tmp_path / "hub" / "snapshots" / "abc"
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    shutil.move(model_copy / "textual" / "model.onnx", blobs / "0123abcd")
    (snapshot / "model.onnx").symlink_to(blobs / "0123abcd")
    lazy = LazySession(snapshot / "model.onnx")
    np.testing.assert_array_equal(_run(lazy.session), _reference(blobs / "0123abcd"))
    assert len(_hidden_graphs(blobs)) == 1 and not _hidden_graphs(snapshot)


def test_a_changed_model_file_gets_a_new_graph(model_copy: Path) -> None:
    original = model_copy / "textual" / "model.onnx"
    first = mapped_graph(original)
    stat = original.stat()
    os.utime(original, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = mapped_graph(original)
    assert second != first and second.is_file() and not first.exists()


def test_threads_writing_the_graph_at_once_agree(model_copy: Path) -> None:
    original = model_copy / "visual" / "model.onnx"
    with ThreadPoolExecutor(8) as pool:
        graphs = set(pool.map(lambda _: mapped_graph(original), range(16)))
    assert graphs == set(_hidden_graphs(original.parent)) and len(graphs) == 1
    assert not list(original.parent.glob("*.tmp"))


@pytest.mark.parametrize("content", [b"\xff\xff\xff", b""])
def test_a_file_that_is_no_onnx_model_is_left_to_onnx_runtime(tmp_path: Path, content: bytes) -> None:
    broken = tmp_path / "model.onnx"
    broken.write_bytes(content)
    assert mapped_graph(broken) == broken and not _hidden_graphs(tmp_path)
    with pytest.raises(Exception, match="(?i)protobuf|load model|invalid|empty"):
        _ = LazySession(broken).session


def test_one_shot_disables_prepacking_only_inside_the_block() -> None:
    def prepacking_off(options: ort.SessionOptions) -> bool:
        try:
            return options.get_session_config_entry("session.disable_prepacking") == "1"
        except Exception:  # onnxruntime raises when the entry was never set
            return False

    assert not prepacking_off(Runtime().session_options())
    with one_shot():
        assert prepacking_off(Runtime().session_options())
    assert not prepacking_off(Runtime().session_options())


def test_a_one_shot_session_is_rebuilt_for_many_runs(model_copy: Path) -> None:
    lazy = LazySession(model_copy / "textual" / "model.onnx")
    with one_shot():
        single = lazy.session
        assert lazy.session is single
    with one_shot(), many_runs():
        bulk = lazy.session
    assert bulk is not single and lazy.session is bulk
    with one_shot():
        assert lazy.session is bulk  # a prepacked session serves single runs as well


def test_cli_search_is_one_shot_and_the_prompt_is_not(
    tmp_path: Path, tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    draw_photo(tmp_path / "photos" / "red.jpg", "red")
    described = tmp_path / "photos" / "coast.jpg"
    draw_photo(described, "blue")
    exif = Image.Exif()
    exif[0x010E] = "lighthouse on a rocky coast"
    Image.open(described).save(described, exif=exif)
    db = tmp_path / "c.db"
    run_json("index", tmp_path / "photos", "--db", db, "--model-path", tiny_clip_dir)
    seen: list[bool] = []
    real = Runtime.session_options

    def spy(runtime: Runtime) -> ort.SessionOptions:
        seen.append(one_shot_now())
        return real(runtime)

    monkeypatch.setattr(Runtime, "session_options", spy)
    runner = CliRunner()
    cases = (
        (["search", "red", "--mode", "clip"], None, [True]),  # one text-tower session, made for one run
        (["search", "--mode", "clip"], "red\nblue\n", [False]),  # the prompt keeps it for many
        # the first clip-hybrid search embeds every pending description: the session is rebuilt for that
        (["search", "lighthouse", "--mode", "clip-hybrid"], None, [True, False]),
        (["search", "lighthouse", "--mode", "clip-hybrid"], None, [True]),
    )
    for args, prompt, expected in cases:
        seen.clear()
        result = runner.invoke(app, [*args, "--db", str(db), "--min-score", "0"], input=prompt)
        assert result.exit_code == 0, result.output
        assert seen == expected, args
