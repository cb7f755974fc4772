"""Self-calibrating search (issue 20): the fitted curves and each goal, measured in one run.

Catalog: the 239 coco-mini photos with caption 1 as note (and, as in bench/text_fusion.py, a made-up
tag on every fourth photo); CLIP is a tiny random-weight model, the uninformative image signal; the
text model is the real all-MiniLM-L6-v2. Measured per mode: paraphrase R@1 / R@10 (captions 2-5),
nonsense queries that return anything at the default cut-off, one-word queries (words in >= 1% of
the notes) that return nothing, true rank-1 answers the cut-off hides, and the time of a refit. Then the
same catalog with a second text model (MiniLM with max pooling, as tests/search/test_self_calibration.py
builds it): its fitted curves, nonsense answered and one-word queries empty per mode.

    PYTHONPATH=src python bench/calibration_bench.py --work /tmp/fusion-bench
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from measure import measured_run  # noqa: E402
from text_fusion import DATA, _catalog, _other_captions, _positions, _query_sets, _tag, _tiny_clip  # noqa: E402

from photoseek import ImageIndex  # noqa: E402
from photoseek.store.text import STOP_WORDS  # noqa: E402
from tests.search.coco import NONSENSE  # noqa: E402

MODES = {"text": ("text", None), "keyword": ("keyword", None), "hybrid (default)": (None, None),
         "hybrid, clip=0": ("hybrid", {"clip": 0.0}), "clip": ("clip", None), "clip-hybrid": ("clip-hybrid", None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="folder for models, images and catalogs")
    parser.add_argument("--quick", action="store_true",
                        help="only the text, keyword and default modes, and no timing (a couple of minutes)")
    args = parser.parse_args()
    modes = {k: MODES[k] for k in ("text", "keyword", "hybrid (default)")} if args.quick else MODES
    coco = json.loads((DATA / "coco-mini" / "captions_by_file.json").read_text())
    model = _tiny_clip(args.work)
    others = _other_captions(coco)
    index, truth = _catalog(args.work, model, coco, others, len(coco))
    with index:
        index.search_many(["warm up"], mode="text")  # texts embedded once, outside the refit's time
        start, cpu = time.perf_counter(), time.process_time()
        curves = index._hybrid.curves(("clip", "text"), refit=True)  # white-box: the curves' parameters
        print(f"refit: {time.perf_counter() - start:.2f} s wall, {time.process_time() - cpu:.2f} s CPU "
              f"(load average {os.getloadavg()[0]:.1f})")
        for name, curve in curves.items():
            print(f"  {name}: {curve.describe()} centre {curve.centre:.3f} scale {curve.scale:.2f} ({curve.source})")
        sets = _query_sets(index, coco, truth)
        queries, wanted = sets["paraphrase"]
        words = _common_words(index)
        together, apart = _word_pairs(index, words)
        print(f"\n| mode | paraphrase R@1 | R@10 | nonsense answered (of {len(NONSENSE)}) | one-word empty "
              f"(of {len(words)}) | two words of one note empty (of {len(together)}) | two words of "
              f"different notes empty (of {len(apart)}) | rank-1 hidden by cut-off |")
        print("|---|---|---|---|---|---|---|---|")
        for label, (mode, weights) in modes.items():
            r1, r10, hidden = _recall(index, queries, wanted, mode, weights)
            answered = sum(bool(r) for r in index.search_many(NONSENSE, k=5, mode=mode, weights=weights))
            empty = [sum(not r for r in index.search_many(asked, k=5, mode=mode, weights=weights))
                     for asked in (words, together, apart)]
            print(f"| {label} | {r1:.1f} | {r10:.1f} | {answered} | " + " | ".join(map(str, empty))
                  + f" | {hidden:.1f}% |")
        if not args.quick:
            _timing(index, others)
        sets["mixed"] = tuple(np.concatenate([sets[n][i] for n in ("paraphrase", "names")]) for i in (0, 1))
        print(f"\n| mode | short R@1 | names R@1 | mixed R@1 (paraphrases + names, {len(sets['mixed'][0])}) |"
              "\n|---|---|---|---|")
        for label, (mode, weights) in list(modes.items())[:4]:
            cells = [_recall(index, *sets[name], mode, weights)[0] for name in ("short", "names", "mixed")]
            print(f"| {label} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
        _untagged(index, sets["paraphrase"], {k: modes[k] for k in list(modes)[:4] if k != "keyword"})
    _second_text_model(args.work, Path(index.db_path), model, modes, words)


def _second_text_model(work: Path, db: Path, model: Path, modes: dict, words: list[str]) -> None:
    """Nonsense and one-word queries on a copy of the catalog searched with MiniLM under max pooling,
    which lifts gibberish towards every text (a copy: a catalog remembers the text model it was given)."""
    from photoseek.text.embedder import load_text_embedder

    folder = work / "minilm-max"
    if not folder.exists():
        shutil.copytree(load_text_embedder().folder, folder)
        pooling = folder / "1_Pooling" / "config.json"
        config = json.loads(pooling.read_text())
        pooling.write_text(json.dumps({**config, "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": True}))
    copy = work / "second-model.db"
    for path in db.parent.glob(db.name + "*"):
        if not path.name.endswith(".lock"):
            shutil.copy(path, copy.with_name(copy.name + path.name[len(db.name):]))
    with ImageIndex(copy, model_path=model, text_model=str(folder)) as index:
        print(f"\nSecond text model ({folder.name}, max pooling):")
        for name, curve in index._hybrid.curves(("clip", "text"), refit=True).items():  # white-box, as above
            if name.startswith("text"):
                print(f"  {name}: {curve.describe()} centre {curve.centre:.3f} scale {curve.scale:.2f}")
        print(f"| mode | nonsense answered (of {len(NONSENSE)}) | which | one-word empty (of {len(words)}) |")
        print("|---|---|---|---|")
        for label, (mode, weights) in modes.items():
            answered = [q for q, r in zip(NONSENSE, index.search_many(NONSENSE, k=5, mode=mode, weights=weights)) if r]
            empty = sum(not r for r in index.search_many(words, k=5, mode=mode, weights=weights))
            print(f"| {label} | {len(answered)} | {', '.join(answered)} | {empty} |")


def _untagged(index, paraphrase, modes) -> None:
    """Paraphrase R@1 of the tagged photos (every fourth) with their tags, and with them taken off
    (put back after): tagging a photo must not lower its description's rank."""
    queries, wanted = paraphrase
    truth = _positions(index)
    tagged = {position: (image, [_tag(position)]) for image, position in truth.items() if position % 4 == 0}
    mine = np.isin(wanted, list(tagged))
    asked, answers = list(np.asarray(queries)[mine]), wanted[mine]
    rows = {label: [_recall(index, asked, answers, mode, weights)[0]] for label, (mode, weights) in modes.items()}
    for image, tags in tagged.values():
        index.untag(image, tags)
    try:
        for label, (mode, weights) in modes.items():
            rows[label].append(_recall(index, asked, answers, mode, weights)[0])
    finally:
        for image, tags in tagged.values():
            index.tag(image, tags)
    print(f"\n| mode | R@1, {len(asked)} paraphrases of the {len(tagged)} tagged photos: tagged | untagged |"
          "\n|---|---|---|")
    for label, (tagged_r1, untagged_r1) in rows.items():
        print(f"| {label} | {tagged_r1:.1f} | {untagged_r1:.1f} |")


def _timing(index, others) -> None:
    """Text vs default hybrid on 1,000 queries through `search_many`, alternated, best of two; fresh
    captions each round (the text model remembers recent queries)."""
    rounds = [[c[n] for c in others if len(c) > 4][:1000] for n in (1, 2, 3, 4)]
    seconds = {"text": np.inf, None: np.inf}
    for mode, queries in zip(("text", None) * 2, rounds):
        start = time.perf_counter()
        index.search_many(queries, k=10, mode=mode)
        seconds[mode] = min(seconds[mode], time.perf_counter() - start)
    print(f"\n1,000 queries (load average {os.getloadavg()[0]:.1f}): text {seconds['text']:.1f} s, "
          f"default hybrid {seconds[None]:.1f} s, ratio {seconds[None] / seconds['text']:.2f}")


def _recall(index, queries, wanted, mode, weights) -> tuple[float, float, float]:
    truth = _positions(index)
    every = index.search_many(queries, k=10, min_score=0.0, mode=mode, weights=weights)
    cut = index.search_many(queries, k=1, mode=mode, weights=weights)
    ranks = [[truth.get(r.id, -1) for r in results] for results in every]
    first = np.array([row[:1] == [w] for row, w in zip(ranks, wanted)])
    shown = np.array([bool(c) and truth.get(c[0].id) == w for c, w in zip(cut, wanted)])
    hidden = 100 * float((first & ~shown).sum() / max(first.sum(), 1))
    return 100 * float(first.mean()), 100 * float(np.mean([w in row for row, w in zip(ranks, wanted)])), hidden


def _common_words(index) -> list[str]:
    """Content words in at least 1% of the notes (each counted once per note)."""
    everything = [e.record.id for e in index.browse(sort="name", limit=index.count()).entries]
    bodies = [b for b in index._texts.documents(everything).values() if b]  # white-box: each image's document
    counts = collections.Counter(w for b in bodies for w in {w.lower() for w in re.findall(r"[a-z]+", b.lower())})
    return sorted(w for w, n in counts.items() if n >= 0.01 * len(bodies) and w not in STOP_WORDS and len(w) > 2)


def _word_pairs(index, words: list[str], count: int = 100) -> tuple[list[str], list[str]]:
    """Two-word queries of common words: `count` pairs found together in a note, and `count` pairs that
    no note holds together (seeded, so every run asks the same)."""
    everything = [e.record.id for e in index.browse(sort="name", limit=index.count()).entries]
    bodies = [{w.lower() for w in re.findall(r"[a-z]+", b.lower())}
              for b in index._texts.documents(everything).values() if b]  # white-box: each image's document
    common = set(words)
    together = sorted({" ".join(sorted(p)) for b in bodies for p in _pairs(sorted(b & common))})
    rng = np.random.default_rng(0)
    apart = sorted({f"{a} {b}" for a, b in (rng.choice(words, 2, replace=False) for _ in range(20 * count))
                    if not any(a in body and b in body for body in bodies)})
    picked = [sorted(rng.choice(pairs, min(count, len(pairs)), replace=False).tolist()) for pairs in (together, apart)]
    return picked[0], picked[1]


def _pairs(words: list[str]) -> list[tuple[str, str]]:
    return [(a, b) for i, a in enumerate(words) for b in words[i + 1 :]]


if __name__ == "__main__":
    with measured_run():  # wall, CPU seconds and load average of the run, on stderr
        main()
