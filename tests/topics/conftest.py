"""A small folder of photos with notes, indexed with the tiny random CLIP (one per test module)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import draw_scene, run_cli, run_json

NOTES = {
    "pasta.jpg": "a plate of pasta and salad on a dinner table",
    "dog.jpg": "a dog sleeping on the sofa next to a cat",
    "boat.jpg": "a sailboat with white sails out at sea",
    "plain.jpg": "",
}


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_clip_dir, text_model_cache) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("topic-photos")
    for seed, name in enumerate(NOTES):
        draw_scene(root / name, seed=seed)
    db = tmp_path_factory.mktemp("topic-db") / "topics.db"
    run_json("index", root, "--db", db, "--model-path", tiny_clip_dir)
    for name, note in NOTES.items():
        if note:
            run_cli("describe", root / name, note, "--db", db)
    return root.resolve(), db
