"""Caption quality: BLEU-1..4, ROUGE-L and CIDEr of generated captions against references.

Scores come from pycocoevalcap, the COCO caption evaluation code. Its PTB tokenizer and its
METEOR and SPICE scorers need Java and model downloads, so captions are tokenised here the
way that tokenizer's output looks (lower case, punctuation dropped) and METEOR/SPICE are left
out; numbers can differ slightly from the Java pipeline's on unusual punctuation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from photoseek.errors import BadInput
from photoseek.eval.extra import require
from photoseek.text.caption_files import Dataset, load_dataset

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr")
_TOKEN = re.compile(r"'?[^\W_]+")
"""A word, or a clitic split off the word before it ("dog's" -> "dog", "'s"), as PTB tokenises."""


@dataclass
class CaptionScores:
    corpus: dict[str, float]
    per_image: dict[str, dict[str, float]]
    candidates: dict[str, str]
    unmatched_candidates: list[str] = field(default_factory=list)
    without_candidate: list[str] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)


def tokenize(caption: str) -> str:
    """Lower-cased words joined by spaces, punctuation removed, as the COCO tokenizer leaves them."""
    return " ".join(_TOKEN.findall(caption.lower()))


def score_caption_files(references: Path, candidates: Path, *, split: str | None = None) -> CaptionScores:
    """Score a candidates file (one caption per image) against a references dataset file."""
    refs = load_dataset(references, split=split, flag="--references")
    cands = load_dataset(candidates, flag="--candidates")
    scores = score_captions(_by_image(refs), _first_captions(cands))
    scores.issues += [f"references: {issue}" for issue in refs.issues]
    scores.issues += [f"candidates: {issue}" for issue in cands.issues]
    return scores


def score_captions(references: dict[str, list[str]], candidates: dict[str, str]) -> CaptionScores:
    """Corpus and per-image scores over the images that have both a candidate and references.

    A candidate's image is matched by its name, else by its base name (`val2014/x.jpg` = `x.jpg`).
    """
    bleu_module = require("pycocoevalcap.bleu.bleu")
    rouge_module = require("pycocoevalcap.rouge.rouge")
    cider_module = require("pycocoevalcap.cider.cider")
    by_base = {Path(name).name: name for name in references}
    matched: dict[str, str] = {}
    unmatched: list[str] = []
    for name, caption in candidates.items():
        key = name if name in references else by_base.get(Path(name).name)
        if key is None:
            unmatched.append(name)
        else:
            matched[key] = caption
    if not matched:
        raise BadInput(
            "No candidate caption names an image of the references file. Check that both files use "
            "the same image names (e.g. '000000397133.jpg')."
        )
    gts = {name: [tokenize(c) for c in references[name]] for name in matched}
    res = {name: [tokenize(caption)] for name, caption in matched.items()}
    bleu, bleu_each = bleu_module.Bleu(4).compute_score(gts, res, verbose=0)
    rouge, rouge_each = rouge_module.Rouge().compute_score(gts, res)
    cider, cider_each = cider_module.Cider().compute_score(gts, res)
    corpus = dict(zip(METRICS, [*bleu, rouge, cider], strict=True))
    each = [*bleu_each, rouge_each, cider_each]
    per_image = {
        name: {metric: float(values[i]) for metric, values in zip(METRICS, each, strict=True)}
        for i, name in enumerate(gts)
    }
    return CaptionScores(
        corpus={k: float(v) for k, v in corpus.items()},
        per_image=per_image,
        candidates=matched,
        unmatched_candidates=unmatched,
        without_candidate=[name for name in references if name not in matched],
    )


def _by_image(dataset: Dataset) -> dict[str, list[str]]:
    return {name: list(captions) for name, captions in zip(dataset.images, dataset.captions, strict=True)}


def _first_captions(dataset: Dataset) -> dict[str, str]:
    return {name: captions[0] for name, captions in zip(dataset.images, dataset.captions, strict=True)}
