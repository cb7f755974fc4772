"""`photoseek eval-captions`: BLEU, ROUGE-L and CIDEr through pycocoevalcap."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from photoseek.eval.captions import METRICS, score_captions, tokenize
from tests.helpers import run_cli, run_json

pytest.importorskip("pycocoevalcap")

REFERENCES = {
    "a.jpg": ["A dog runs on the beach.", "A brown dog running along the sea shore."],
    "b.jpg": ["A red bus parked in the street.", "A double decker bus on a city street."],
    "c.jpg": ["Two cats sleeping on a sofa.", "A pair of cats asleep on a couch."],
}


def test_tokenize_like_the_coco_tokenizer():
    assert tokenize("A Dog's toy, (red)!") == "a dog 's toy red"


def test_exact_captions_score_top_marks_and_wrong_ones_lower():
    exact = score_captions(REFERENCES, {name: refs[0] for name, refs in REFERENCES.items()})
    assert exact.corpus["BLEU-1"] == pytest.approx(1.0, abs=1e-6)
    assert exact.corpus["BLEU-4"] == pytest.approx(1.0, abs=1e-6)
    assert exact.corpus["ROUGE-L"] == pytest.approx(1.0)
    swapped = score_captions(REFERENCES, {"a.jpg": "Two cats on a sofa.", "b.jpg": "A dog on a beach.",
                                          "c.jpg": "A bus in the street."})
    for metric in METRICS:
        assert swapped.corpus[metric] < exact.corpus[metric]
    assert exact.corpus["CIDEr"] > 1.0
    assert set(exact.per_image) == set(REFERENCES)


def test_cli_matches_by_base_name_and_reports_unmatched(tmp_path: Path):
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps({f"val2017/{k}": v for k, v in REFERENCES.items()}))
    cands = tmp_path / "cands.csv"
    cands.write_text(
        "image,caption\na.jpg,A dog running on a beach.\nb.jpg,A bus on a street.\nzzz.jpg,Nothing.\n"
    )
    payload = run_json("eval-captions", "--references", refs, "--candidates", cands)
    assert payload["images"] == 2
    assert set(payload["corpus"]) == set(METRICS)
    assert 0 < payload["corpus"]["BLEU-1"] < 1
    assert payload["unmatched_candidates"] == ["zzz.jpg"]
    assert payload["without_candidate"] == ["val2017/c.jpg"]
    table = run_cli("eval-captions", "--references", refs, "--candidates", cands)
    assert "CIDEr" in table and "BLEU-4" in table and "zzz.jpg" in table


def test_cli_refuses_candidates_for_other_images(tmp_path: Path):
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps(REFERENCES))
    cands = tmp_path / "cands.json"
    cands.write_text(json.dumps({"other.jpg": "A caption."}))
    output = run_cli("eval-captions", "-r", refs, "-c", cands, expect=2)
    assert "No candidate caption names an image" in output


def test_a_missing_file_is_named_by_its_own_option(tmp_path: Path):
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps(REFERENCES))
    missing = tmp_path / "nope.json"
    assert "Check the --references path" in run_cli("eval-captions", "-r", missing, "-c", refs, expect=3)
    assert "Check the --candidates path" in run_cli("eval-captions", "-r", refs, "-c", missing, expect=3)


def test_missing_eval_extra_is_a_clear_error(tmp_path: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pycocoevalcap.bleu.bleu", None)
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps(REFERENCES))
    output = " ".join(run_cli("eval-captions", "-r", refs, "-c", refs, expect=4).split())
    assert "pip install 'photoseek[eval]'" in output


def test_karpathy_references_with_a_split(tmp_path: Path):
    refs = tmp_path / "dataset_flickr8k.json"
    refs.write_text(json.dumps({"images": [
        {"filename": name, "split": split, "sentences": [{"raw": c} for c in REFERENCES[name]]}
        for name, split in (("a.jpg", "test"), ("b.jpg", "train"), ("c.jpg", "test"))
    ]}))
    cands = tmp_path / "cands.json"
    cands.write_text(json.dumps({name: refs_[1] for name, refs_ in REFERENCES.items()}))
    payload = run_json("eval-captions", "-r", refs, "-c", cands, "--split", "test")
    assert sorted(payload["per_image"]) == ["a.jpg", "c.jpg"]
    assert payload["unmatched_candidates"] == ["b.jpg"]
    assert payload["corpus"]["ROUGE-L"] == pytest.approx(1.0)
