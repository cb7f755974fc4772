"""Search that calibrates itself on each library (issue 20), on 239 COCO photos with caption 1 as note.

The real all-MiniLM-L6-v2 is the text signal; the tiny random-weight CLIP is an image signal that
knows nothing about these photos. The fit must find that out by itself (a flat curve, weight 0), so
the default hybrid search is as good as its best signal, refuses nonsense in every mode and never
hides an image whose text has the one or two words asked for.
"""

from __future__ import annotations

import collections
import csv
import json
import re
import shutil

import numpy as np
import pytest

from photoseek import ImageIndex
from photoseek.search.calibrate import MIN_TEXTED
from photoseek.search.fusion import DEFAULT_MIN_SCORE
from photoseek.store.text import STOP_WORDS
from tests.helpers import run_json, shared_data

COCO = shared_data("coco-mini")
pytestmark = pytest.mark.skipif(not (COCO / "captions_by_file.json").exists(), reason="needs shared COCO data")

NONSENSE = [
    "quarterly tax spreadsheet", "qwzxv", "blorft minging", "mortgage refinancing terms", "xkcd 9931 zzq",
    "the annual general meeting minutes", "compile the kernel module", "photosynthesis enzyme kinetics",
    "vwlq prrt", "invoice number 88213", "recursive descent parser", "cryptocurrency wallet seed phrase",
    "sql injection payload", "zyxwv utsrq", "thermodynamics lecture notes", "password reset email",
    "quantum chromodynamics", "gdpr compliance checklist", "lorem ipsum dolor sit amet", "fjordblik qqq",
]
MODES = {"text": "text", "keyword": "keyword", "default": None, "clip": "clip", "clip-hybrid": "clip-hybrid"}


def _notes(path, files, captions, keep=None):
    """A captions CSV with caption 1 of each photo; past the first `keep`, empty ones (which remove a note)."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "caption"])
        writer.writerows(
            [(str(COCO / f), captions[f][0] if keep is None or n < keep else "") for n, f in enumerate(files)]
        )
    return path


@pytest.fixture(scope="module")
def coco(tmp_path_factory, tiny_clip_dir, text_model_cache):
    captions = json.loads((COCO / "captions_by_file.json").read_text())
    files = sorted(captions)
    work = tmp_path_factory.mktemp("coco")
    db = work / "coco.db"
    run_json("index", COCO, "--db", db, "--model-path", tiny_clip_dir)
    run_json("import-captions", _notes(work / "notes.csv", files, captions), "--db", db)
    return db, files, captions


def _recall_at_1(db, files, captions, **options) -> float:
    truth = {str((COCO / f).resolve()): i for i, f in enumerate(files)}
    wanted = [i for i, f in enumerate(files) for _ in captions[f][1:5]]
    with ImageIndex(db) as index:
        found = index.search_many([q for f in files for q in captions[f][1:5]], k=1, min_score=0.0, **options)
    return float(np.mean([bool(r) and truth[r[0].path] == w for r, w in zip(found, wanted)]))


def test_an_uninformative_clip_is_found_out_and_weighs_nothing(coco):
    db = coco[0]
    lines = run_json("calibrate", "--db", db)["calibration"]
    clip = next(line for line in lines if line.startswith("CLIP"))
    assert "uninformative here, weight 0" in clip and "on 200 texted photos" in clip, lines
    text = next(line for line in lines if line.startswith("Text, 1-3 words"))
    assert "informative, AUC 0.9" in text and "weight 1" in text, lines
    assert run_json("status", "--db", db)["calibration"] == lines


def test_default_hybrid_is_as_good_as_text_with_an_uninformative_clip(coco):
    text = _recall_at_1(*coco, mode="text")
    default = _recall_at_1(*coco)
    assert text == pytest.approx(0.66, abs=0.02)
    assert default >= text - 0.005, (default, text)


@pytest.mark.parametrize("mode", MODES)
def test_nonsense_is_refused_in_every_mode(coco, mode):
    with ImageIndex(coco[0]) as index:
        answered = [q for q, r in zip(NONSENSE, index.search_many(NONSENSE, k=5, mode=MODES[mode])) if r]
    assert answered == []


def _common_words(captions, files) -> list[str]:
    """Content words in at least 1% of the notes."""
    notes = [{w for w in re.findall(r"[a-z]+", captions[f][0].lower())} for f in files]
    counts = collections.Counter(w for words in notes for w in words)
    return sorted(w for w, n in counts.items() if n >= 0.01 * len(notes) and w not in STOP_WORDS and len(w) > 2)


@pytest.mark.parametrize("mode", ["text", "keyword", None])
def test_a_word_in_one_percent_of_the_notes_always_finds_them(coco, mode):
    db, files, captions = coco
    words = _common_words(captions, files)
    assert "man" in words and len(words) > 100
    with ImageIndex(db) as index:
        empty = [w for w, r in zip(words, index.search_many(words, k=5, mode=mode)) if not r]
        man = index.search("man", k=3, mode=mode, explain=True)
    assert empty == []
    assert all("man" in re.findall(r"\w+", r.matched_text.lower()) for r in man)


def test_a_true_answer_is_rarely_hidden_by_the_cut_off(coco):
    db, files, captions = coco
    queries = [captions[f][1] for f in files]
    with ImageIndex(db) as index:
        every = index.search_many(queries, k=1, min_score=0.0)
        cut = index.search_many(queries, k=1)
    first = [bool(e) and e[0].path == str((COCO / f).resolve()) for e, f in zip(every, files)]
    hidden = sum(f and not c for f, c in zip(first, cut))
    assert hidden <= 0.01 * sum(first) + 1, hidden
    assert all(r.score >= DEFAULT_MIN_SCORE for rs in cut for r in rs)


def test_too_little_text_keeps_the_priors_and_says_so_until_enough_is_added(tmp_path, coco, tiny_clip_dir):
    """A library with a few notes is not fitted (status says why); importing notes for the rest makes
    the next search refit by itself."""
    _, files, captions = coco
    db = tmp_path / "few.db"
    shutil.copy(coco[0], db)
    run_json("import-captions", _notes(tmp_path / "few.csv", files, captions, keep=5), "--db", db)
    with ImageIndex(db) as index:
        assert index.search("a man riding a wave", k=3, mode="clip")  # unfitted clip mode is not cut
    lines = run_json("status", "--db", db)["calibration"]
    assert any(re.search(rf"uncalibrated, only \d photos carry text \({MIN_TEXTED} needed\)", line) for line in lines)
    run_json("import-captions", _notes(tmp_path / "n.csv", files, captions), "--db", db)
    with ImageIndex(db) as index:
        assert index.search("qwzxv", k=3, mode="clip") == []  # refitted by this search: the CLIP is blind
    assert any("uninformative here, weight 0" in line for line in run_json("status", "--db", db)["calibration"])
