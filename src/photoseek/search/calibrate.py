"""Fitting each signal's curve on the library itself: its images that carry text are the labelled data.

Every image with text (notes, tags, EXIF/IPTC/XMP descriptions, captions, OCR; not topics, which are
derived from the others) gives a positive pair (a query made from its text against its own image) and
negatives (the same query against the other sampled images). For CLIP the query is the text itself:
zero-shot retrieval on the user's own photos. For the text embedder, queries are made of words of the
text (1-3 of them: the short-query curve) or, for the longer curve, one description of an image against
its other descriptions (a note against a caption); a library without such pairs uses the short-query curve
for longer queries too (drawing longer queries from a text's own words would make matches look too easy).
Each signal is scored exactly as search scores it (CLIP per query against the collection's spread, the
text embedder's best-matching text), so the curve maps what fusion sees. A signal whose positives and
negatives score alike gets AUC about 0.5 and weight 0. Sampled, so a refit stays within about two
seconds per 1,000 texted images on two cores.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from photoseek.calibration import SignalCurve, auc, fit_logistic
from photoseek.store.text import STOP_WORDS

FIT_SAMPLE = 200
"""Texted images a fit samples (spread over the library): 200 positives and ~40,000 negatives."""
MIN_TEXTED = 30
"""Fewer texted images than this: no fit, the prior curves are used (and `status` says so)."""
SHORT_QUERY_WORDS = 3
"""Queries of at most this many words use the short-query text curve: one or two words score lower
cosines against a sentence than a sentence does."""
_WORD = re.compile(r"\w+", re.UNICODE)

ImageScorer = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(query vectors, image ids) -> scores (queries x images), as the search scores them."""
TextScorer = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
"""Like ImageScorer, with each query's typical score, spread and best score over every described image
(columns)."""
NULL_ANSWERED = 0.01
"""The share of short queries matching nothing in the library that the text signal may answer (its best
text passes the cut-off by its cosine and its standing): as rare as the true answers the cut-off may hide."""
NULL_PER_QUERY = 2
"""Queries matching nothing a fit asks per short query (shuffled anew each time): 400 for 200 photos."""
_SCRAMBLE_TRIES = 5


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w.lower() not in STOP_WORDS and (len(w) > 2 or w.isdigit())]


def fit_clip(
    texts: dict[int, list[str]], encode: Callable[[list[str]], np.ndarray], score: ImageScorer, model: str
) -> SignalCurve:
    """CLIP's curve: each image's text as a query against its own image and the other sampled ones."""
    ids = np.array(sorted(texts), dtype=np.int64)
    queries = encode([". ".join(texts[int(i)]) for i in ids])
    return _fit("clip", model, score(queries, ids), len(ids))


def fit_text(
    texts: dict[int, list[str]],
    descriptions: dict[int, list[str]],
    embed_queries: Callable[[list[str]], np.ndarray],
    embed_passages: Callable[[list[str]], np.ndarray],
    score: TextScorer,
    model: str,
    cut: float,
    seed: int = 0,
) -> tuple[SignalCurve, SignalCurve, SignalCurve, SignalCurve]:
    """The text embedder's (longer-query, short-query, relative, short-query relative) curves; see the
    module docstring. The relative curve maps a score's standing among the query's scores over the
    library (spreads above its typical score), fitted on the short queries' pairs. The short-query
    relative curve is that curve moved up, where needed, so that of the short queries matching nothing
    in this library (the same words with their letters shuffled) at most NULL_ANSWERED have a best text
    whose cosine and standing both reach `cut` (the evidence the cut-off asks for): a pair's curve
    ignores that a search shows the best of every image, and how far the best of noise stands out
    depends on the model and the library (a max-pooling model lifts gibberish towards every text, so
    its cosine lets most of it through).

    `descriptions` are the texts that describe the picture (notes, captions, embedded descriptions;
    not tags, OCR or object counts): an image with two of them pairs one against the other.
    """
    rng = np.random.default_rng(seed)
    ids = np.array(sorted(texts), dtype=np.int64)
    short = []
    for row, image_id in enumerate(ids):
        words = content_words(max(texts[int(image_id)], key=len))
        if words:
            picked = np.sort(rng.choice(len(words), size=min(len(words), int(rng.integers(1, 4))), replace=False))
            short.append((row, " ".join(words[i] for i in picked)))
    vocabulary = {w.lower() for body in texts.values() for t in body for w in content_words(t)}
    null = [n for n in (_scrambled(q, rng, vocabulary) for _, q in short for _ in range(NULL_PER_QUERY)) if n]
    scores, typical, spread, best = score(embed_queries([q for _, q in short] + null), ids)
    short_scores = scores[: len(short)]
    curve_short = _fit("text", model, short_scores, len(ids), [r for r, _ in short])
    relative = _fit("text", model, (short_scores - typical[: len(short)]) / spread[: len(short)], len(ids),
                    [r for r, _ in short])
    nothing = slice(len(short), None)  # the shuffled queries: each one's best text over the library
    relative_short = _beyond_nothing(
        relative, curve_short.evidence(best[nothing, 0]), ((best - typical) / spread)[nothing, 0], cut
    )
    rows = {int(i): r for r, i in enumerate(ids)}
    pairs = [(rows[i], d[0], d[1:]) for i, d in sorted(descriptions.items()) if len(d) > 1 and i in rows]
    if len(pairs) < MIN_TEXTED:
        return curve_short, curve_short, relative, relative_short  # nothing to pair: the short-query curve
    vectors = embed_queries([q for _, q, _ in pairs])
    matrix = score(vectors, ids)[0]
    passages = embed_passages([t for _, _, rest in pairs for t in rest])
    starts = np.cumsum([0] + [len(rest) for _, _, rest in pairs])
    for n, (row, _, _) in enumerate(pairs):  # the positive: the query against the image's other descriptions
        matrix[n, row] = float((passages[starts[n] : starts[n + 1]] @ vectors[n]).max())
    return _fit("text", model, matrix, len(ids), [r for r, _, _ in pairs]), curve_short, relative, relative_short


def _beyond_nothing(relative: SignalCurve, evidence: np.ndarray, standing: np.ndarray, cut: float) -> SignalCurve:
    """The relative curve for short queries: moved up, where needed, so that of the queries matching
    nothing at most NULL_ANSWERED pass the cut-off. A text passes when both its cosine's `evidence` and
    its `standing` (spreads above the query's typical score) reach `cut`: the standing must stop only the
    best of nothing that the cosine lets through (most gibberish under mean pooling, none under max)."""
    known = ~(np.isnan(evidence) | np.isnan(standing))
    if not relative.informative or known.sum() < MIN_TEXTED:
        return relative
    through = np.where(evidence[known] >= cut, standing[known], -np.inf)  # -inf: refused by the cosine already
    highest = np.sort(through)[::-1][int(NULL_ANSWERED * len(through))]  # the best that must not pass
    if not np.isfinite(highest):
        return relative
    lowest = float(np.nextafter(highest, np.inf)) - cut / relative.scale
    return replace(relative, centre=max(relative.centre, lowest))


def _fit(signal: str, model: str, matrix: np.ndarray, texted: int, rows: list[int] | None = None) -> SignalCurve:
    """The curve of a (queries x sampled images) score matrix whose positives are at `rows`
    (query n is about image rows[n]; the diagonal when None)."""
    rows = list(range(len(matrix))) if rows is None else rows
    if len(rows) < MIN_TEXTED:
        return SignalCurve(signal, model, 0.0, 0.0, "prior", texted=texted)
    positive = np.zeros(matrix.shape, dtype=bool)
    positive[np.arange(len(rows)), rows] = True
    valid = ~np.isnan(matrix)
    pos, neg = matrix[positive & valid], matrix[~positive & valid]
    centre, scale = fit_logistic(np.concatenate([pos, neg]), np.concatenate([np.ones(len(pos)), np.zeros(len(neg))]))
    return SignalCurve(signal, model, centre, scale, "fitted", auc=auc(pos, neg), texted=texted, pairs=len(pos))


def _scrambled(query: str, rng: np.random.Generator, vocabulary: set[str]) -> str | None:
    """The query's words with their letters shuffled: as long, made of the same letters, and no word of
    the library (None when a word will not scramble into one, such as "see")."""
    words = []
    for word in query.split():
        for _ in range(_SCRAMBLE_TRIES):
            shuffled = "".join(rng.permutation(list(word)))
            if shuffled.lower() not in vocabulary:
                words.append(shuffled)
                break
        else:
            return None
    return " ".join(words)

