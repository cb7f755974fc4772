"""Model-made text signals: OCR (real RapidOCR), captions (tiny random BLIP) and object counts (tiny random DETR).

The BLIP and DETR weights are random, so their words are arbitrary; what is checked is the plumbing:
each text is stored with its source and model, never recomputed for unchanged content, searchable,
and written to CSV by `photoseek caption`.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from photoseek import ImageIndex
from photoseek.store.filters import SearchFilters
from photoseek.text.caption import Captioner
from photoseek.text.objects import count_phrase, pluralise
from tests.fakehub import FakeHub
from tests.helpers import BLIP_WORDS, catalog_of, draw_photo, render_sign, run_cli, run_json, texts_of
from tests.hubcache import clean_env, run_photoseek


def _signals(db: Path, path: Path) -> dict[str, tuple[str, str]]:
    """source -> (model, text) as stored for this file's content."""
    with ImageIndex(db) as index:
        record = index.find(path)
        rows = catalog_of(index).db.execute(
            "SELECT source, model, text FROM text_signals WHERE content_hash = ?", (record.content_hash,)
        ).fetchall()
    return {source: (model, text) for source, model, text in rows}


@pytest.fixture
def photos(tmp_path) -> Path:
    root = tmp_path / "photos"
    draw_photo(root / "red.png", "red")
    draw_photo(root / "blue.jpg", "blue", shape="square")
    return root


def test_ocr_text_is_indexed_cached_and_found_by_keyword(photos, tmp_path, tiny_clip_dir):
    pytest.importorskip("rapidocr_onnxruntime")
    sign = render_sign(photos / "sign.png")
    db = tmp_path / "c.db"
    plain = run_json("index", photos, "--db", db, "--model-path", tiny_clip_dir)
    assert plain["signals"] == {} and "ocr" not in _signals(db, sign)

    first = run_json("index", photos, "--ocr", "--db", db, "--model-path", tiny_clip_dir)
    assert first["signals"] == {"ocr": 3}  # already indexed images get the new signal too
    model, text = _signals(db, sign)["ocr"]
    assert model.startswith("rapidocr-onnxruntime-")
    assert {"HARBOUR", "BAKERY", "pretzels"} <= set(text.split()), text
    assert _signals(db, photos / "red.png")["ocr"][1] == ""  # looked, found nothing: cached as such

    again = run_json("index", photos, "--ocr", "--db", db, "--model-path", tiny_clip_dir)
    assert again["signals"] == {}
    hits = run_json("search", "pretzels", "--mode", "keyword", "--db", db)["results"]
    assert [Path(h["path"]).name for h in hits] == ["sign.png"]
    assert run_json("search", "bakery", "--mode", "keyword", "--db", db)["results"][0]["path"].endswith("sign.png")


def test_ocr_text_run_together_is_split_into_words_and_numbers(photos, tmp_path, tiny_clip_dir):
    pytest.importorskip("rapidocr_onnxruntime")
    render_sign(photos / "exit.png", ("EXIT42NORTH",))
    db = tmp_path / "c.db"
    run_json("index", photos, "--ocr", "--db", db, "--model-path", tiny_clip_dir)
    assert _signals(db, photos / "exit.png")["ocr"][1] == "EXIT42NORTH"
    for query in ("exit 42", "42", "north 42", "EXIT42NORTH"):
        hits = run_json("search", query, "--mode", "keyword", "--db", db)["results"]
        assert [Path(h["path"]).name for h in hits] == ["exit.png"], query
    assert run_json("search", "43", "--mode", "keyword", "--db", db, "--min-score", "0")["results"] == []


def test_captions_are_stored_cached_and_searchable(photos, tmp_path, tiny_clip_dir, tiny_blip_dir, monkeypatch):
    from transformers import BlipForConditionalGeneration

    calls: list[int] = []
    generate = BlipForConditionalGeneration.generate

    def counting(self, *args, **kwargs):
        calls.append(kwargs["pixel_values"].shape[0])
        return generate(self, *args, **kwargs)

    monkeypatch.setattr(BlipForConditionalGeneration, "generate", counting)
    db = tmp_path / "c.db"
    args = ("index", photos, "--captions", "--caption-model", tiny_blip_dir, "--db", db, "--model-path", tiny_clip_dir)
    first = run_json(*args)
    assert first["signals"] == {"caption": 2} and calls == [2]  # one batch for both images
    model, text = _signals(db, photos / "red.png")["caption"]
    assert model == str(tiny_blip_dir) and text and set(text.split()) <= set(BLIP_WORDS)

    assert run_json(*args)["signals"] == {} and calls == [2]  # cached: generate not called again
    word = text.split()[-1]
    hits = run_json("search", word, "--mode", "keyword", "--db", db)["results"]
    assert str((photos / "red.png").resolve()) in [h["path"] for h in hits]

    prompted = run_json(*args, "--caption-prompt", "a photo of")
    assert prompted["signals"] == {"caption": 2}  # another prompt is another model id
    assert _signals(db, photos / "red.png")["caption"][1].startswith("a photo of")


def test_caption_command_writes_csv_for_files_and_folders(photos, tmp_path, tiny_blip_dir):
    (photos / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "pairs.csv"
    output = run_cli("caption", photos, "--caption-model", tiny_blip_dir, "--out", out)
    assert "Wrote 2 captions" in output and "broken.jpg" in output
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(Path(r["file"]).name for r in rows) == ["blue.jpg", "red.png"]
    assert all(r["caption"] and set(r["caption"].split()) <= set(BLIP_WORDS) for r in rows)


def test_missing_caption_model_fails_fast_offline(photos, tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    output = run_cli("caption", photos, "--caption-model", "nobody/no-such-captioner", expect=4)
    assert "'nobody/no-such-captioner' is not available" in output and "download" in output


def test_caption_without_torch_says_what_to_install_and_writes_nothing(photos, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # the base install: no torch extra
    out = tmp_path / "pairs.csv"
    output = run_cli("caption", photos, "--out", out, expect=4)
    assert "pip install 'photoseek[torch]'" in output and not out.exists()


def test_downloaded_caption_model_works_offline(photos, tmp_path, tiny_clip_dir, tiny_blip_dir, monkeypatch):
    """`models download --kind caption` from a (local) Hub, then `index --captions` with HF_HUB_OFFLINE.

    The detector is fetched and loaded by the same code (`photoseek.text.hf`)."""
    env = clean_env(tmp_path / "home", HF_HUB_CACHE=str(tmp_path / "hub"))
    with FakeHub({"someone/tiny-blip": tiny_blip_dir}) as hub:
        fetched = run_photoseek("models", "download", "--kind", "caption", "someone/tiny-blip",
                                env={**env, "HF_ENDPOINT": hub.url})
    assert fetched.returncode == 0, fetched.stderr
    assert "model.safetensors" in hub.fetched
    indexed = run_photoseek(
        "index", str(photos), "--db", str(tmp_path / "c.db"), "--model-path", str(tiny_clip_dir), "--json",
        "--captions", "--caption-model", "someone/tiny-blip", env={**env, "HF_HUB_OFFLINE": "1"},
    )
    assert indexed.returncode == 0, indexed.stderr
    assert '"caption": 2' in indexed.stdout

    monkeypatch.setenv("PHOTOSEEK_MODEL_DIR", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = Captioner("someone/tiny-blip").local_folder()  # what a Ray cluster's nodes are sent
    assert folder.is_dir() and folder != tiny_blip_dir
    for name in ("config.json", "model.safetensors"):
        assert (folder / name).read_bytes() == (tiny_blip_dir / name).read_bytes()


def test_object_counts_become_a_phrase_after_the_caption(photos, tmp_path, tiny_clip_dir, tiny_blip_dir, tiny_detr_dir):
    db = tmp_path / "c.db"
    args = ("index", photos, "--objects", "--detector", tiny_detr_dir, "--captions", "--caption-model", tiny_blip_dir,
            "--db", db, "--model-path", tiny_clip_dir)
    assert run_json(*args)["signals"] == {"objects": 2, "caption": 2}
    assert run_json(*args)["signals"] == {}
    model, text = _signals(db, photos / "red.png")["objects"]
    assert model == f"{tiny_detr_dir}|score>=0.9" and text == "3 dogs"
    with ImageIndex(db) as index:
        record = index.find(photos / "red.png")
        document = texts_of(index).documents([record.id])[record.id]
    caption = _signals(db, photos / "red.png")["caption"][1]
    assert document == f"{caption}\n3 dogs"
    hits = run_json("search", "dogs", "--mode", "keyword", "--db", db)["results"]
    assert len(hits) == 2


def test_count_phrase_pluralises_and_orders_by_count():
    labels = ["dog", "person", "dog", "person", "person", "wine glass", "wine glass", "bus", "bus", "N/A", "cat"]
    assert count_phrase(labels) == "3 people, 2 buses, 2 dogs, 2 wine glasses, 1 cat"
    assert [pluralise(w) for w in ("knife", "sheep", "toothbrush", "sandwich", "teddy bear", "pony", "toy")] == [
        "knives", "sheep", "toothbrushes", "sandwiches", "teddy bears", "ponies", "toys",
    ]
    assert count_phrase([]) == ""


def test_clip_hybrid_mode_lifts_an_image_whose_note_matches(tmp_path, tiny_clip_dir):
    root = tmp_path / "photos"
    for i, colour in enumerate(("red", "green", "blue", "yellow", "purple", "orange")):
        draw_photo(root / f"{colour}.png", colour, seed=i)
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    query = "an old lighthouse at dusk"

    def rank_of(name: str, mode: str) -> int:
        results = run_json("search", query, "--mode", mode, "-k", "6", "--db", db)["results"]
        return [Path(r["path"]).name for r in results].index(name)

    plain = run_json("search", query, "--mode", "clip", "-k", "6", "--db", db)["results"]
    last = Path(plain[-1]["path"]).name  # the random CLIP's worst match for the query
    assert rank_of(last, "clip-hybrid") == 5  # no text yet: the blend is the image embedding
    run_cli("describe", root / last, query, "--db", db)
    assert rank_of(last, "clip-hybrid") == 0
    assert rank_of(last, "clip") == 5  # plain CLIP vectors are untouched
    with ImageIndex(db) as index:
        filtered = index.search(query, mode="clip-hybrid", filters=SearchFilters(formats=("jpeg",)))
    assert filtered == []
