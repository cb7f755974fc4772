"""Users of the old name, imgsearch, lose nothing: their catalog, caches and variables are found,
used and moved once, with a one-line notice (README: "photoseek was called imgsearch")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from photoseek.legacy import adopt_environment, adopt_folder
from tests.helpers import COLOURS, draw_photo
from tests.hubcache import clean_env, run_photoseek


def _photos(folder: Path, count: int = 4) -> Path:
    for i in range(count):
        draw_photo(folder / f"{i}.jpg", list(COLOURS)[i % len(COLOURS)], seed=i)
    return folder


def _status(env: dict[str, str], *args: str) -> tuple[dict, str]:
    done = run_photoseek("status", "--json", *args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


@pytest.fixture()
def old_catalog(tmp_path, tiny_clip_dir) -> tuple[dict[str, str], Path]:
    """A user's machine after the old name: a catalog made by this code where imgsearch kept it."""
    env = clean_env(tmp_path / "home")
    old_db = tmp_path / "home" / "data" / "imgsearch" / "catalog.db"
    made = run_photoseek("index", str(_photos(tmp_path / "photos")), "--db", str(old_db),
                         "--model-path", str(tiny_clip_dir), "--json", env=env)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["embedded"] == 4
    return env, old_db


def test_the_old_catalog_folder_is_moved_once_and_searched(old_catalog, tmp_path):
    env, old_db = old_catalog
    side_files = sorted(p.name for p in old_db.parent.iterdir())

    info, notice = _status(env)
    new_folder = tmp_path / "home" / "data" / "photoseek"
    assert info["db"] == str(new_folder / "catalog.db")
    assert info["images"] == 4
    assert "moved your catalog" in notice and len(notice.strip().splitlines()) == 1
    assert not old_db.parent.exists()
    assert sorted(p.name for p in new_folder.iterdir()) == side_files  # vectors and lock came along

    again, quiet = _status(env)
    assert again["images"] == 4 and quiet == ""
    found = run_photoseek("search", "--image", str(tmp_path / "photos" / "2.jpg"), "--json", env=env)
    assert found.returncode == 0, found.stderr
    assert Path(json.loads(found.stdout)["results"][0]["path"]).name == "2.jpg"


def test_a_new_catalog_is_never_replaced_by_an_old_one(old_catalog, tmp_path, tiny_clip_dir):
    env, old_db = old_catalog
    new_db = tmp_path / "home" / "data" / "photoseek" / "catalog.db"
    made = run_photoseek("index", str(_photos(tmp_path / "new", 2)), "--db", str(new_db),
                         "--model-path", str(tiny_clip_dir), env=env)
    assert made.returncode == 0, made.stderr
    info, notice = _status(env)
    assert info["images"] == 2 and notice == ""
    assert old_db.exists()


def test_an_empty_new_folder_does_not_hide_the_old_catalog(old_catalog, tmp_path):
    env, _ = old_catalog
    (tmp_path / "home" / "data" / "photoseek").mkdir(parents=True)
    info, notice = _status(env)
    assert info["images"] == 4 and "moved your catalog" in notice


def test_old_variables_are_read_with_one_notice(old_catalog):
    env, old_db = old_catalog
    info, notice = _status({**env, "IMGSEARCH_DB": str(old_db)})
    assert info["db"] == str(old_db) and info["images"] == 4
    assert "$IMGSEARCH_DB as $PHOTOSEEK_DB" in notice and len(notice.strip().splitlines()) == 1
    assert old_db.exists()  # an explicit path is used where it is, not moved


def test_a_new_variable_wins_over_the_old_one(tmp_path):
    env = {"IMGSEARCH_DB": "old.db", "PHOTOSEEK_DB": "new.db", "IMGSEARCH_TOKEN": "t" * 32}
    assert adopt_environment(env) == ["IMGSEARCH_TOKEN"]
    assert env["PHOTOSEEK_DB"] == "new.db" and env["PHOTOSEEK_TOKEN"] == "t" * 32


def test_a_folder_of_another_program_called_imgsearch_is_left_alone(tmp_path):
    old = tmp_path / "imgsearch"
    (old / "lancedb").mkdir(parents=True)
    assert adopt_folder(old, tmp_path / "photoseek", "catalog.db", "catalog") == tmp_path / "photoseek"
    assert (old / "lancedb").is_dir() and not (tmp_path / "photoseek").exists()


def test_a_folder_that_cannot_be_moved_is_used_where_it_is(tmp_path, monkeypatch, caplog):
    old = tmp_path / "imgsearch"
    old.mkdir()
    (old / "catalog.db").write_bytes(b"")

    def refuse(*_: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr("photoseek.legacy.os.rename", refuse)
    assert adopt_folder(old, tmp_path / "photoseek", "catalog.db", "catalog") == old
    assert "could not be moved" in caplog.text


def test_the_evaluation_cache_moves_to_the_new_name(tmp_path, monkeypatch):
    from photoseek.eval.runner import default_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "imgsearch" / "eval").mkdir(parents=True)
    (tmp_path / "imgsearch" / "eval" / "scores.npz").write_bytes(b"kept")
    assert default_cache_dir() == tmp_path / "photoseek" / "eval"
    assert (tmp_path / "photoseek" / "eval" / "scores.npz").read_bytes() == b"kept"


def test_exported_text_models_move_to_the_new_name(tmp_path, monkeypatch):
    from photoseek.text.export import exported_path

    cache, model = tmp_path / "cache", tmp_path / "my-minilm"
    monkeypatch.setenv("PHOTOSEEK_MODEL_DIR", str(cache))
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    old_export = cache / "imgsearch-text-onnx" / exported_path(model).parent.name / "model.onnx"
    old_export.parent.mkdir(parents=True)
    old_export.write_bytes(b"onnx")
    assert exported_path(model).read_bytes() == b"onnx"
    assert exported_path(model).parent.parent.name == "photoseek-text-onnx"


def test_a_qdrant_collection_filled_under_the_old_name_is_kept(tmp_path, tiny_clip_dir, monkeypatch):
    pytest.importorskip("qdrant_client")
    from photoseek import ImageIndex
    from photoseek.store import qdrant_index
    from photoseek.store.backends import IndexConfig

    photos, db, where = _photos(tmp_path / "photos"), tmp_path / "catalog.db", str(tmp_path / "qdrant")
    renamed = qdrant_index.collection_name
    monkeypatch.setattr(qdrant_index, "collection_name", lambda model_id, prefix="imgsearch": renamed(model_id, prefix))
    with ImageIndex(db, model_path=tiny_clip_dir) as old:
        old.index([photos], vector_index=IndexConfig(backend="qdrant", qdrant_path=where))
    monkeypatch.setattr(qdrant_index, "collection_name", renamed)

    with ImageIndex(db) as index:
        assert len(index.similar(photos / "1.jpg", k=3)) == 3  # the other photos, found in the old collection
    client = qdrant_index.connect(None, where)
    names = [c.name for c in client.get_collections().collections]
    client.close()
    assert len(names) == 1 and names[0].startswith("imgsearch_")
