"""Topics through the CLI and the Python API on a small folder, with the tiny random CLIP and real MiniLM.

Random CLIP cosines are noise, so CLIP-side tests check the mechanics (topic vectors times stored
embeddings, calibration, threshold) against a computation done here; the text side is real.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from photoseek import ImageIndex
from photoseek.topics import default_taxonomy
from photoseek.topics.scoring import CLIP_CALIBRATION, clip_topic_vectors
from tests.helpers import catalog_of, draw_scene, render_sign, run_cli, run_json
from tests.topics.conftest import NOTES


def _tagged(db: Path) -> dict[str, list[str]]:
    with ImageIndex(db) as index:
        records = index.records(catalog_of(index).all_embeddings()[0].tolist())
        return {Path(r.path).name: index.topics_of(r.id) for r in records.values()}


def test_index_topics_then_list_filter_and_rerun(library):
    root, db = library
    report = run_json("index", root, "--db", db, "--topics")
    assert report["signals"]["topics"] == len(NOTES)
    listed = run_json("topics", "--db", db)
    assert len(listed["topics"]) == len(default_taxonomy().topics) >= 25
    assert {"name", "description", "images"} <= set(listed["topics"][0])

    # Random CLIP says nothing; with CLIP weighted 0 the real text model decides from the notes.
    retagged = run_json("topics", "--db", db, "--weight", "clip=0")
    assert retagged["tagged"] == len(NOTES)
    tagged = _tagged(db)
    assert "food" in tagged["pasta.jpg"] and "pets" in tagged["dog.jpg"]
    assert "food" not in tagged["dog.jpg"] and tagged["plain.jpg"] == []  # no text, no CLIP: no topic
    counts = {t["name"]: t["images"] for t in run_json("topics", "--db", db)["topics"]}
    assert counts["food"] == sum("food" in t for t in tagged.values()) >= 1

    hits = run_json("search", "anything", "--db", db, "--mode", "clip", "--min-score", "-1", "--topic", "Food")
    assert {Path(r["path"]).name for r in hits["results"]} == {n for n, t in tagged.items() if "food" in t}

    # Nothing changed: nothing is recomputed, by `topics` or by the next index run (options remembered).
    assert run_json("topics", "--db", db, "--weight", "clip=0")["tagged"] == 0
    assert run_json("index", root, "--db", db)["signals"].get("topics", 0) == 0


def test_add_topic_tags_existing_images_without_re_embedding(library):
    root, db = library
    run_json("topics", "--db", db, "--weight", "clip=0")
    with ImageIndex(db) as index:
        before = catalog_of(index).all_embeddings()[1].copy()
    added = run_json("topics", "--db", db, "--add", "Sailing", "--description", "sailboats, yachts, sails on the water")
    assert added["tagged"] == len(NOTES)
    counts = {t["name"]: t["images"] for t in added["topics"]}
    assert counts["sailing"] >= 1 and "sailing" in _tagged(db)["boat.jpg"]
    with ImageIndex(db) as index:
        assert np.array_equal(catalog_of(index).all_embeddings()[1], before)
        # Stored as a text signal: explained with the image, and found by keyword search.
        boat = index.find(root / "boat.jpg")
        assert "sailing" in index.text_signals(boat.id)["topics"].split("\n")
    found = run_json("search", "sailing", "--db", db, "--mode", "keyword")
    assert [Path(r["path"]).name for r in found["results"]] == ["boat.jpg"]


def test_clip_side_is_the_calibrated_product_of_prompt_and_image_embeddings(library):
    _, db = library
    with ImageIndex(db) as index:
        taxonomy = default_taxonomy()
        ids, matrix = catalog_of(index).all_embeddings()
        vectors = clip_topic_vectors(taxonomy, index.model.encode_texts, index.model.model_id)
        expected = CLIP_CALIBRATION(matrix @ vectors.T)
        threshold = float(np.median(expected))
        index.tag_topics(taxonomy, weights={"clip": 1, "text": 0}, threshold=threshold)
        for row, image_id in enumerate(ids.tolist()):
            want = {n for n, s in zip(taxonomy.names, expected[row]) if s >= threshold}
            assert set(index.topics_of(image_id)) == want
        assert 0 < sum(n for _, n in index.topics()) < len(ids) * len(taxonomy.topics)


def test_user_topic_files_and_bad_input(library, tmp_path):
    _, db = library
    plain = tmp_path / "mine.txt"
    plain.write_text("# my topics\nBoats: sailboats and yachts\n\nfood\n")
    listed = run_json("topics", "--db", db, "--topics-file", plain, "--weight", "clip=0")
    assert [t["name"] for t in listed["topics"]] and {t["name"] for t in listed["topics"]} == {"boats", "food"}
    toml = tmp_path / "mine.toml"
    toml.write_text('[pets]\ndescription = "dogs and cats"\n')
    assert [t["name"] for t in run_json("topics", "--db", db, "--topics-file", toml)["topics"]] == ["pets"]

    toml.write_text("[pets\n")
    assert "not valid TOML" in run_cli("topics", "--db", db, "--topics-file", toml, expect=2)
    plain.write_text("# nothing\n")
    assert "lists no topics" in run_cli("topics", "--db", db, "--topics-file", plain, expect=2)
    assert "Unknown topic 'nonsense'" in run_cli("search", "x", "--db", db, "--topic", "nonsense", expect=3)
    assert "unknown topic signal" in run_cli("topics", "--db", db, "--weight", "keyword=1", expect=2)


def test_topic_filter_with_qdrant(tmp_path, library, tiny_clip_dir):
    """Qdrant filters inside the vector index; the topic filter reaches it as the ids that have the topic."""
    pytest.importorskip("qdrant_client")
    root, _ = library
    db = tmp_path / "qdrant.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir, "--index", "qdrant",
             "--qdrant-path", tmp_path / "qdrant")
    for name, note in NOTES.items():
        if note:
            run_cli("describe", root / name, note, "--db", db)
    run_json("topics", "--db", db, "--weight", "clip=0")
    for mode in ("clip", "hybrid"):
        hits = run_json("search", "a dog", "--db", db, "--mode", mode, "--min-score", "-1", "--topic", "pets")
        assert [Path(r["path"]).name for r in hits["results"]] == ["dog.jpg"]


def test_topics_with_the_text_model_and_no_image_text_yet(tmp_path, tiny_clip_dir, text_model_cache):
    root = tmp_path / "photos"
    for seed in range(3):
        draw_scene(root / f"{seed}.jpg", seed=seed)
    db = tmp_path / "c.db"
    report = run_json("index", root, "--db", db, "--model-path", tiny_clip_dir, "--topics")
    assert report["signals"]["topics"] == 3
    added = run_json("topics", "--db", db, "--add", "Sailing", "--description", "sailboats and yachts")
    assert added["tagged"] == 3 and "sailing" in {t["name"] for t in added["topics"]}
    # CLIP weighted 0 and no image text: nothing to go on, so no image gets a topic (and nothing fails).
    none = run_json("topics", "--db", db, "--weight", "clip=0")
    assert none["tagged"] == 3 and all(t["images"] == 0 for t in none["topics"])


def test_an_image_whose_text_changes_is_tagged_again(tmp_path, tiny_clip_dir, text_model_cache):
    root = tmp_path / "photos"
    for seed, name in enumerate(("a.jpg", "b.jpg", "c.jpg")):
        draw_scene(root / name, seed=seed)
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    run_cli("describe", root / "a.jpg", "a plate of pasta and salad on a dinner table", "--db", db)
    assert run_json("topics", "--db", db, "--weight", "clip=0")["tagged"] == 3
    assert _tagged(db)["a.jpg"] and "pets" not in _tagged(db)["a.jpg"] and _tagged(db)["b.jpg"] == []

    run_cli("describe", root / "a.jpg", "a dog sleeping on the sofa next to a cat", "--db", db)
    run_cli("tag", root / "b.jpg", "dog", "puppy", "--db", db)
    captions = tmp_path / "captions.csv"
    captions.write_text(f"file,caption\n{root / 'c.jpg'},a sailboat with white sails out at sea\n")
    run_cli("import-captions", captions, "--db", db)
    assert "food" in _tagged(db)["a.jpg"]  # until the next run retags it, an image keeps its topics
    assert run_json("index", root, "--db", db)["signals"]["topics"] == 3  # only the three changed images
    tagged = _tagged(db)
    assert "pets" in tagged["a.jpg"] and "food" not in tagged["a.jpg"] and "pets" in tagged["b.jpg"]
    run_cli("describe", root / "a.jpg", "a dog sleeping on the sofa next to a cat", "--db", db)  # same text
    assert run_json("index", root, "--db", db)["signals"].get("topics", 0) == 0


def test_text_read_by_ocr_later_retags_the_image(tmp_path, tiny_clip_dir, text_model_cache):
    pytest.importorskip("rapidocr_onnxruntime")
    root = tmp_path / "photos"
    draw_scene(root / "scene.jpg", seed=1)
    render_sign(root / "sign.png", ("FRESH PASTA", "pizza and salad"))
    db = tmp_path / "c.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    assert run_json("topics", "--db", db, "--weight", "clip=0")["tagged"] == 2
    assert _tagged(db)["sign.png"] == []
    report = run_json("index", root, "--db", db, "--ocr")
    assert report["signals"] == {"ocr": 2, "topics": 1}  # the scene has no text: its topics still hold
    assert "food" in _tagged(db)["sign.png"]
