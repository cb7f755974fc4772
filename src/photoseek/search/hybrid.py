"""Text, keyword and hybrid search: rank by the fused score of CLIP, text embeddings and BM25.

Candidates are the union of each signal's best few hundred images; every candidate then gets
every signal's score, so the fusion sees complete evidence for the images that can win.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from photoseek.calibration import LibraryCalibration, SignalCurve
from photoseek.errors import BadInput
from photoseek.models.runtime import many_runs
from photoseek.search.calibrate import FIT_SAMPLE, MIN_TEXTED, fit_clip, fit_text
from photoseek.search.engine import ResultPage, Searcher, SearchResult
from photoseek.search.fusion import (
    CUT_EVIDENCE,
    DEFAULT_WEIGHTS,
    LITERAL_MATCH,
    LITERAL_QUERY_WORDS,
    PRIORS,
    STANDOUT_SAMPLE,
    clip_standout,
    fuse,
    is_exact,
    is_numbered,
    is_short,
    sigmoid_curve,
    text_typical,
)
from photoseek.search.modes import Mode, SearchPolicy
from photoseek.search.query import Query
from photoseek.store.filters import SearchFilters
from photoseek.store.text import TextStore
from photoseek.store.vectors import locate, top_many

if TYPE_CHECKING:  # the text model's runtime loads when it embeds: `status` reads the calibration only
    from photoseek.text.embedder import TextEmbedder

_WORD = re.compile(r"\w+")
_CANDIDATES = 200
CALIBRATION_SETTING = "calibration"
"""The catalog setting holding the fitted curves (`LibraryCalibration`, JSON)."""
_CURVES_VERSION = 5
"""Bumped whenever what a curve maps changes (3: the relative text curve; 4: the longer-query prior;
5: the relative curve against the best of nothing): stored curves are refitted."""
_REFIT_SHARE = 0.1
"""A signal is refitted once the library's images or texted images moved by this share (or its model changed)."""
_MATCHED_TEXT_CHARS = 240


@dataclass(frozen=True)
class _Encoded:
    """One query with what each model made of it, for the signals its policy uses."""

    query: Query
    clip: np.ndarray | None
    text: tuple[np.ndarray, np.ndarray, float, float] | None
    """(ids, scores, typical, spread): `_text_scores`."""
    clip_sample: np.ndarray | None = None
    """The query's CLIP cosines with a sample of the collection, to calibrate softmax CLIP per query."""
    clip_top: tuple[np.ndarray, np.ndarray] | None = None
    """The query's best CLIP candidates (ids, cosines), found for the whole batch in one index call."""
    keyword: tuple[np.ndarray, np.ndarray] | None = None
    """Every image whose text has the query's words, with its keyword score."""


@dataclass(frozen=True)
class _Batch:
    """Queries encoded together, with the calibrated policy they are scored by."""

    queries: list[_Encoded]
    policy: SearchPolicy
    literal: bool
    """Whether one- and two-word queries show every image whose text has their words."""

    def used(self, query: Query) -> dict[str, float]:
        """The weights one query is fused with: a query without text has only CLIP to go by."""
        return dict(self.policy.weights) if query.has_text() else {"clip": 1.0}


def _keyword_terms(query: Query) -> tuple[list[str], list[str]]:
    """The query's wanted and unwanted texts, for keyword search."""
    terms = [t for t in query.terms if t.kind == "text"]
    return [t.value for t in terms if t.weight > 0], [t.value for t in terms if t.weight < 0]


def _beyond_clip(evidence: dict[str, np.ndarray]) -> bool:
    """Whether any candidate has evidence for it besides CLIP (a keyword match, a matching text).

    Without a CLIP curve fitted on the library, CLIP-only evidence is ranked as in clip mode, uncut:
    a per-query calibration cannot tell a real match from the best of noise in a small collection,
    and a catalog without text (or a query no text matches) should still show its best pictures.
    """
    return any(np.any(v > 0) for s, v in evidence.items() if s != "clip")


def _wants_keyword(query: Query, weights: Mapping[str, float], literal: bool) -> bool:
    """Keyword hits are scored when the signal counts, or shown anyway (a one- or two-word query)."""
    return query.has_text() and ("keyword" in weights or literal and _literal(query))


def _without_flat(used: dict[str, float], curves: dict[str, SignalCurve]) -> dict[str, float]:
    """The signals that can move a score: a CLIP fitted flat on this library is not even computed
    (its evidence is 0 everywhere), unless it is the only signal asked for."""
    kept = {s: w for s, w in used.items() if s != "clip" or curves["clip"].informative}
    return kept or used


def _literally_there(keyword: np.ndarray | None, count: int) -> np.ndarray:
    """Which candidates a one- or two-word query shows whatever the cut-off: those whose text has every
    word, or, where no text has them all ("giraffe pizza"), those that have one of them, ranked by the
    other signals: words that occur in the library never come back empty."""
    found = np.zeros(count, dtype=bool) if keyword is None else np.nan_to_num(keyword, nan=0.0)
    every = found >= LITERAL_MATCH
    return every if every.any() else found > 0


def _literal(query: Query) -> bool:
    """A one- or two-word query: images whose text has those words are shown whatever the cut-off."""
    return 0 < _word_count(query) <= LITERAL_QUERY_WORDS


def _word_count(query: Query) -> int:
    """Words in the query's positive texts: short queries get their own text calibration."""
    return sum(len(_WORD.findall(t.value)) for t in query.terms if t.kind == "text" and t.weight > 0)


def _exact(query: Query) -> bool:
    return is_exact(_word_count(query), _positive_texts(query))


def _positive_texts(query: Query) -> list[str]:
    return [t.value for t in query.terms if t.kind == "text" and t.weight > 0]


class HybridSearcher:
    """Fused search over one catalog; the text model is loaded only when the text signal is used."""

    def __init__(self, clip: Searcher, texts: TextStore, embedder: Callable[[], TextEmbedder]) -> None:
        self.clip = clip
        self.texts = texts
        self._embedder = embedder
        self._matrix: tuple[tuple[int, str], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        self._curves: tuple[tuple, dict[str, SignalCurve]] | None = None

    def search(self, query: Query, policy: SearchPolicy, **options: Any) -> list[SearchResult]:
        """One query; see `search_many` for the options."""
        return self.search_many([query], policy, **options)[0]

    def search_many(
        self,
        queries: Sequence[Query],
        policy: SearchPolicy,
        *,
        k: int = 10,
        offset: int = 0,
        explain: bool = False,
        exclude_ids: frozenset[int] = frozenset(),
        filters: SearchFilters | None = None,
    ) -> list[ResultPage]:
        """Results per query, ranked by `scores` of each signal's best candidates. All query texts go
        through each model in one call, and the text scores of all queries come from one matrix
        product, so a batch costs little more than one query. Each page counts the candidates the
        cut-off kept off it."""
        self.clip.require_images()
        if policy.mode in (Mode.TEXT, Mode.KEYWORD) and not all(q.has_text(positive=True) for q in queries):
            raise BadInput(f"--mode {policy.mode} needs a text query; example images work with --mode clip.")
        depth = max(_CANDIDATES, 5 * (offset + k))
        results = []
        ranked = self._ranked(queries, policy, depth, filters, exclude_ids)
        for encoded, candidates, raw, fused, shares, shown, uncut in ranked:
            # Equal evidence (all at the prior, say, when CLIP alone speaks and is not fitted here): the
            # picture CLIP finds closer goes first, not the one indexed first.
            closer = np.nan_to_num(raw["clip"], nan=-np.inf) if "clip" in raw else np.zeros(len(candidates))
            order = [i for i in np.lexsort((candidates, -closer, -fused)) if shown[i]][offset : offset + k]
            chosen = [(int(candidates[i]), float(fused[i]), {s: round(float(v[i]), 6) for s, v in shares.items()})
                      for i in order]
            hidden = _on_page(len(candidates), offset, k) - _on_page(int(shown.sum()), offset, k)
            page = self._results(encoded.query, chosen, offset, explain)
            results.append(ResultPage(page, hidden=hidden, uncut=uncut))
        return results

    def answered(
        self,
        queries: Sequence[Query],
        policy: SearchPolicy,
        clip_vectors: Sequence[np.ndarray | None],
        filters: SearchFilters | None = None,
    ) -> list[bool]:
        """Whether a search by `policy` would show anything for each query, with the queries' CLIP
        vectors already encoded (clip-hybrid answers only what the fused signals find evidence for)."""
        ranked = self._ranked(queries, policy, _CANDIDATES, filters, frozenset(), clip_vectors)
        return [bool(shown.any()) for *_, shown, _ in ranked]

    def _ranked(
        self,
        queries: Sequence[Query],
        policy: SearchPolicy,
        depth: int,
        filters: SearchFilters | None,
        exclude_ids: frozenset[int],
        clip_vectors: Sequence[np.ndarray | None] | None = None,
    ) -> Iterator[tuple[_Encoded, np.ndarray, dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray], np.ndarray,
                        bool]]:
        """Per query: (encoded, candidates, raw scores, fused, evidence, which candidates pass the cut-off,
        whether a text query was left uncut for want of evidence beyond CLIP)."""
        allowed = self.clip.catalog.filter_ids(filters) if filters else None
        literal = policy.calibrated_cut
        batch = self._encode(queries, policy, filters, depth, allowed, literal=literal, vectors=clip_vectors)
        for encoded in batch.queries:
            candidates = self._candidates(encoded, batch.used(encoded.query), depth, allowed, exclude_ids)
            raw, fused, shares = self.scores(batch, [encoded], candidates)
            raw, fused, shares = {s: v[0] for s, v in raw.items()}, fused[0], {s: v[0] for s, v in shares.items()}
            uncut = policy.calibrated_cut and (
                not encoded.query.has_text()
                or ("clip" in batch.policy.weights and batch.policy.curves["clip"].source != "fitted"
                    and not _beyond_clip(shares))
            )
            shown = fused >= (-np.inf if uncut else policy.cut)
            if policy.calibrated_cut and _literal(encoded.query):
                shown |= _literally_there(raw.get("keyword"), len(fused))
            yield encoded, candidates, raw, fused, shares, shown, uncut and encoded.query.has_text()

    def score_matrix(self, queries: Sequence[Query], policy: SearchPolicy, ids: np.ndarray) -> np.ndarray:
        """Fused score of every query (rows) for every image in `ids` (columns), by the scorer
        `search_many` ranks with (`scores`), with one matrix product per signal. For evaluations,
        which rank every image for thousands of queries."""
        batch = self._encode(queries, policy, None, 0, None, literal=False)
        candidates = np.asarray(ids, dtype=np.int64)
        fused = np.empty((len(batch.queries), len(candidates)))
        for wanted in (True, False):  # `scores` takes queries that share their signals: with text, without
            rows = [n for n, e in enumerate(batch.queries) if e.query.has_text() is wanted]
            if rows:
                fused[rows] = self.scores(batch, [batch.queries[n] for n in rows], candidates)[1]
        return fused

    def scores(
        self, batch: _Batch, encoded: Sequence[_Encoded], candidates: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
        """The one scorer: (raw scores, fused probabilities, each signal's weighted evidence), each
        (queries x candidates), of these encoded queries for these images. The queries share their
        signals (all have text, or none)."""
        used = batch.used(encoded[0].query)
        raw: dict[str, np.ndarray] = {}
        if "clip" in used:
            cosines = np.stack([e.clip for e in encoded if e.clip is not None]) @ self.clip.vectors_of(candidates).T
            samples = [e.clip_sample for e in encoded if e.clip_sample is not None]
            raw["clip"] = clip_standout(cosines, np.stack(samples)) if samples else cosines
        if "text" in used:
            texts = [e.text for e in encoded if e.text is not None]
            raw["text"] = np.stack([_scores_for((t[0], t[1]), candidates) for t in texts])
            typical, spread = (np.array([[t[n]] for t in texts]) for n in (2, 3))
            raw["text-relative"] = (raw["text"] - typical) / spread
        if any(e.keyword is not None for e in encoded):
            raw["keyword"] = np.stack([_scores_for(e.keyword, candidates) for e in encoded])
        words = np.array([[_word_count(e.query)] for e in encoded])
        exact = np.array([[_exact(e.query)] for e in encoded])
        numbered = np.array([[is_numbered(_positive_texts(e.query))] for e in encoded])
        fused, evidence = fuse(raw, used, dict(batch.policy.curves), is_short(words), exact, numbered)
        return raw, np.broadcast_to(fused, (len(encoded), len(candidates))), evidence

    def _encode(
        self,
        queries: Sequence[Query],
        policy: SearchPolicy,
        filters: SearchFilters | None,
        depth: int,
        allowed: np.ndarray | None,
        *,
        literal: bool,
        vectors: Sequence[np.ndarray | None] | None = None,
    ) -> _Batch:
        """Each query through each model the policy's signals need, in one call per model (CLIP's
        `vectors` when the caller has them); the best `depth` CLIP candidates of each when `depth`
        (search), none for a score matrix."""
        policy = self.calibrated(policy, queries)
        weights, curves = policy.weights, policy.curves
        needs_clip = "clip" in weights or not all(q.has_text() for q in queries)
        none: list[None] = [None] * len(queries)
        if needs_clip and vectors is None:
            vectors = self.clip.query_vectors(queries)
        vectors = vectors if needs_clip and vectors is not None else none
        samples: Sequence[np.ndarray | None] = none
        tops: Sequence[tuple[np.ndarray, np.ndarray] | None] = none
        if needs_clip:
            found = [v for v in vectors if v is not None]
            if curves["clip"].source != "model":  # a model's own curve (SigLIP) takes raw cosines
                samples = self._clip_samples(found)
            tops = self._clip_tops(found, depth, allowed, filters) if depth else none
        wants_text = "text" in weights and any(q.has_text() for q in queries)
        texts = self._text_scores(queries) if wants_text else none
        encoded = [
            _Encoded(q, v, t, s, top, self._keyword_hits(q) if _wants_keyword(q, weights, literal) else None)
            for q, v, t, s, top in zip(queries, vectors, texts, samples, tops)
        ]
        return _Batch(encoded, policy, literal)

    def calibrated(self, policy: SearchPolicy, queries: Sequence[Query]) -> SearchPolicy:
        """The policy with this library's curves, less a CLIP they find flat (unless CLIP is all it has):
        what the scores of these queries go through."""
        weights = dict(policy.weights)
        curves = self.curves(weights if any(q.has_text() for q in queries) else {"clip": 1.0})
        return replace(policy, weights=_without_flat(weights, curves), curves=curves)

    def _candidates(
        self,
        encoded: _Encoded,
        used: dict[str, float],
        depth: int,
        allowed: np.ndarray | None,
        exclude_ids: frozenset[int],
    ) -> np.ndarray:
        """The union of each signal's best `depth` images (only among `allowed` when filters are set)."""
        found = []
        if "clip" in used and encoded.clip_top is not None:
            found.append(encoded.clip_top[0])
        for signal, scored in (("text", encoded.text), ("keyword", encoded.keyword)):
            if scored is None or (signal == "text" and signal not in used):
                continue
            ids, scores = scored[0], scored[1]
            if allowed is not None:
                keep = np.isin(ids, allowed)
                ids, scores = ids[keep], scores[keep]
            top = np.argpartition(-scores, depth)[:depth] if len(scores) > depth else np.arange(len(scores))
            found.append(ids[top])
        candidates = np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
        if exclude_ids:
            candidates = candidates[~np.isin(candidates, list(exclude_ids))]
        return candidates

    def _clip_tops(
        self, vectors: Sequence[np.ndarray], depth: int, allowed: np.ndarray | None, filters: SearchFilters | None
    ) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Each query's best `depth` CLIP (ids, cosines), only among `allowed` ids when filters are set."""
        index = self.clip.index
        inside = allowed if not index.filters_inside else None
        return [
            (np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float64))
            for ids, scores in top_many(index, vectors, depth, inside, filters or None)
        ]

    def _keyword_hits(self, query: Query) -> tuple[np.ndarray, np.ndarray]:
        """Every image whose text has the query's words, with its keyword score (best first)."""
        hits = self.texts.keyword_search(*_keyword_terms(query), -1)
        return (np.array([h.image_id for h in hits], dtype=np.int64),
                np.array([h.score for h in hits], dtype=np.float64))

    def _clip_samples(self, vectors: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each query's cosines with a sample of the collection, to standardise its CLIP cosines
        (`clip_standout`); not for a curve that is the model's own (SigLIP), which takes raw cosines."""
        if not len(vectors):
            return []
        return list(np.stack(vectors) @ self.clip.sample_vectors(STANDOUT_SAMPLE).T)

    def clip_is_flat(self) -> bool:
        """Whether this library's fit finds CLIP uninformative: ranking by it alone would be at random."""
        clip = self.curves({"clip": 1.0})["clip"]
        return clip.source == "fitted" and not clip.informative

    def clip_cut(
        self,
        queries: Sequence[Query],
        vectors: Sequence[np.ndarray],
        ranked: list[list[SearchResult]],
        policy: SearchPolicy,
    ) -> list[ResultPage]:
        """Clip mode's results (cosines) without those below the cut-off probability, for text queries
        in a library whose CLIP curve is fitted; elsewhere (no text to fit on, example images) unchanged.
        Each page counts the results it cut."""
        curves = self.curves({"clip": 1.0})
        if curves["clip"].source != "fitted":
            return [ResultPage(results) for results in ranked]
        kept = []
        for query, sample, results in zip(queries, self._clip_samples(vectors), ranked):
            if not query.has_text() or not results:
                kept.append(ResultPage(results))
                continue
            cosines = np.array([r.score for r in results])
            probability = fuse({"clip": clip_standout(cosines, sample)}, {"clip": 1.0}, curves)[0]
            passed = [r for r, p in zip(results, probability) if p >= policy.cut]
            kept.append(ResultPage(passed, hidden=len(results) - len(passed)))
        return kept

    # -- calibration ----------------------------------------------------------------

    def curves(self, used: dict[str, float] | Sequence[str], *, refit: bool = False) -> dict[str, SignalCurve]:
        """Every signal's curve for this library: fitted ones from the catalog, refitted first when the
        library or a model moved enough since (or `refit`), else the priors. Checked again only once the
        images or texts changed, so a search costs no catalog count."""
        wanted = tuple(s for s in ("clip", "text") if s in used)
        key = (self.clip.catalog.generation(), self.texts.version(), wanted,
               self._embedder().model_id if "text" in wanted else "")
        if not refit and self._curves is not None and self._curves[0] == key:
            return self._curves[1]
        curves = self._checked_curves(wanted, refit)
        self._curves = ((self.clip.catalog.generation(), self.texts.version(), *key[2:]), curves)
        return curves

    def _checked_curves(self, used: Sequence[str], refit: bool) -> dict[str, SignalCurve]:
        stored = self.calibration()
        fitted = dict(stored.curves)
        state = dict(stored.state)
        now = self._library_state()
        texts: tuple[dict[int, list[str]], dict[int, list[str]]] | None = None
        for signal in ("clip", "text"):
            if signal not in used:
                continue
            model = self.clip.catalog.model_id or "" if signal == "clip" else self._embedder().model_id
            before = state.get(signal) or {}
            if refit or fitted.get(signal) is None or fitted[signal].model != model or _moved(before, now):
                texts = texts or self.texts.fit_texts(limit=FIT_SAMPLE)  # read once for every signal
                fitted.update(self._fit(signal, model, *texts))
                state[signal] = now
        if texts is not None:
            self._store(LibraryCalibration(fitted, state))
        return self._with_priors(fitted, clip="clip" in used)

    def calibration(self) -> LibraryCalibration:
        """The curves stored in the catalog (none yet: empty)."""
        stored = self.clip.catalog.setting(CALIBRATION_SETTING)
        return LibraryCalibration.from_dict(json.loads(stored)) if stored else LibraryCalibration({})

    def summary(self, weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> list[str]:
        """Each signal's curve in words, as stored (nothing is fitted here), with its weight under `weights`
        (a search policy's; default hybrid's): for `status` and `--explain`."""
        stored = self.calibration()
        if not stored.curves:
            return ["Not calibrated yet: the first search fits each signal on this library (or `photoseek calibrate`)."]
        curves = self._with_priors(stored.curves, clip=False)
        lines = []
        for key, label in (("clip", "CLIP"), ("text", "Text, queries of 4+ words"), ("text-short", "Text, 1-3 words")):
            if key not in stored.curves:
                continue
            curve, fitted = curves[key], stored.curves[key]
            model = f" ({fitted.model})" if fitted.model else ""
            if curve.source == "fitted":
                share = weights.get("clip" if key == "clip" else "text", 0.0)
                weight = f", weight {share:g}" if curve.informative else ""
                lines.append(f"{label}{model}: {curve.describe()}{weight}")
            elif fitted.texted >= MIN_TEXTED:  # text enough, but too few photos with two descriptions to pair
                lines.append(f"{label}{model}: fewer than {MIN_TEXTED} photos have two descriptions to fit it on; "
                             f"using the {curve.describe()}")
            else:
                lines.append(
                    f"{label}{model}: uncalibrated, only {fitted.texted} photos carry text ({MIN_TEXTED} needed: "
                    f"photoseek tag, describe or import-captions add some); using the {curve.describe()}"
                )
        lines.append(f"Keyword: {PRIORS['keyword'].describe()}")
        now = self._library_state()
        if any(_moved(state, now) for state in stored.state.values()):
            lines.append(
                f"Refit due: the photos or their texts changed by more than {_REFIT_SHARE:.0%} since this fit; "
                "the next search refits each signal by itself (or `photoseek calibrate` now)."
            )
        elif "clip" in stored.curves and stored.curves["clip"].model != (self.clip.catalog.model_id or ""):
            lines.append("Refit due: the photos were embedded with another CLIP model since this fit; the next "
                         "search refits each signal by itself (or `photoseek calibrate` now).")
        return lines

    def _library_state(self) -> dict[str, int]:
        """What a fit depends on: how many images and texted images there are, and the curves' version."""
        return {"images": self.clip.catalog.count(), "texted": self.texts.texted_count(), "version": _CURVES_VERSION}

    def _with_priors(self, fitted: dict[str, SignalCurve], clip: bool = True) -> dict[str, SignalCurve]:
        """Fitted curves where there are any; else the model's own (SigLIP, when `clip` may load it) or the prior."""
        curves = {**PRIORS, **{k: c for k, c in fitted.items() if c.source == "fitted"}}
        own = self.clip.score_calibration() if clip and curves["clip"].source != "fitted" else None
        if own is not None:
            curves["clip"] = sigmoid_curve(*own)
        return curves

    def _fit(
        self, signal: str, model: str, texts: dict[int, list[str]], described: dict[int, list[str]]
    ) -> dict[str, SignalCurve]:
        """One signal's curves, fitted on a sample of texted images (`texts`) and their describing texts."""
        if len(texts) < MIN_TEXTED:
            prior = SignalCurve(signal, model, 0.0, 0.0, "prior", texted=len(texts))
            others = ("text-short", "text-relative", "text-relative-short") if signal == "text" else ()
            return {signal: prior, **{key: prior for key in others}}
        if signal == "clip":
            return {"clip": fit_clip(texts, self.clip.encode_texts, self._clip_matrix, model)}
        embedder = self._embedder()
        long, short, relative, relative_short = fit_text(
            texts, described, embedder.embed_queries, embedder.embed_passages, self._text_matrix_of, model,
            CUT_EVIDENCE,
        )
        if long is short and PRIORS["text"].model.rsplit("/", 1)[-1] == model.rsplit("/", 1)[-1]:
            long = SignalCurve("text", model, 0.0, 0.0, "prior", texted=len(texts))  # no pairs: the model's prior
        return {"text": long, "text-short": short, "text-relative": relative, "text-relative-short": relative_short}

    def _clip_matrix(self, vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Standardised CLIP scores of these query vectors for these images, as search fuses them."""
        sample = vectors @ self.clip.sample_vectors(STANDOUT_SAMPLE).T
        return clip_standout(vectors @ self.clip.vectors_of(ids).T, sample)

    def _text_matrix_of(
        self, vectors: np.ndarray, ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Text-embedding scores of these query vectors for these images (NaN: no text), as search scores
        them, with each query's typical score, spread and best score over every described image (columns)."""
        all_ids, best = self._best_texts(vectors)
        out = np.full((len(vectors), len(ids)), np.nan)
        found, where = locate(all_ids, ids)
        if len(found):
            out[:, found] = best[:, where]
        typical, spread = text_typical(best)
        top = best.max(axis=1) if best.shape[1] else np.full(len(vectors), np.nan)
        return out, typical[:, None], spread[:, None], top[:, None]

    def _store(self, calibration: LibraryCalibration) -> None:
        try:
            self.clip.catalog.set_setting(CALIBRATION_SETTING, json.dumps(calibration.to_dict()))
        except sqlite3.OperationalError:  # a read-only catalog: fitted again next time
            pass

    def _text_scores(self, queries: Sequence[Query]) -> list[tuple[np.ndarray, np.ndarray, float, float] | None]:
        """(ids, scores, typical, spread) of every described image with each query's weighted text, in one
        product: an image scores by its best-matching text (note, tag, caption, OCR...); typical and spread
        summarise the query's scores over them all (`text_typical`)."""
        embedder = self._embedder()
        texts = [[t for t in q.terms if t.kind == "text"] for q in queries]
        vectors = iter(embedder.embed_queries([t.value for terms in texts for t in terms]))
        wanted = []
        for terms in texts:
            total = sum((t.weight * next(vectors) for t in terms), np.zeros(1, dtype=np.float32))
            norm = float(np.linalg.norm(total))
            if terms and norm == 0.0:
                raise BadInput("The query terms cancel each other out; give different texts or weights.")
            wanted.append(total / norm if terms else None)
        present = [w for w in wanted if w is not None]
        ids, best = self._best_texts(np.stack(present) if present else np.empty((0, 0)))
        scores = iter(zip(best, *text_typical(best)))
        return [None if w is None else _text_row(ids, *next(scores)) for w in wanted]

    def _best_texts(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(described image ids, scores: queries x images), each image by its best-matching text."""
        ids, starts, matrix = self._text_matrix(self._embedder())
        if not len(ids) or not len(vectors):
            return ids, np.empty((len(vectors), len(ids)), dtype=np.float32)
        return ids, np.maximum.reduceat(vectors @ matrix.T, starts, axis=1)

    def _text_matrix(self, embedder: TextEmbedder) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image ids, where each image's rows start, every image's texts embedded one by one, rows by
        image id), computing any missing embedding first; cached, grouping included, until the texts change."""
        key = (self.texts.version(), embedder.model_id)
        if self._matrix is not None and self._matrix[0] == key:
            return self._matrix[1]
        pending = self.texts.pending_pieces(embedder.model_id)
        if pending:
            with many_runs():
                vectors = embedder.embed_passages([p.body for p in pending])
            self.texts.put_piece_embeddings(embedder.model_id, pending, vectors)
        piece_ids, matrix = self.texts.piece_embeddings(embedder.model_id)
        ids, starts = np.unique(piece_ids, return_index=True)
        self._matrix = ((self.texts.version(), embedder.model_id), (ids, starts, matrix))
        return self._matrix[1]

    def _results(
        self, query: Query, chosen: list[tuple[int, float, dict[str, float]]], offset: int, explain: bool
    ) -> list[SearchResult]:
        records = self.clip.catalog.records([i for i, _, _ in chosen])
        ids = [i for i, _, _ in chosen]
        documents = self.texts.documents(ids) if explain else {}
        snippets = self.texts.snippets(ids, _keyword_terms(query)[0]) if explain else {}
        results = []
        for rank, (image_id, score, shares) in enumerate(chosen, start=offset + 1):
            record = records.get(image_id)
            if record is None:
                continue
            matched = snippets.get(image_id) or documents.get(image_id, "")[:_MATCHED_TEXT_CHARS]
            results.append(replace(
                SearchResult.from_record(rank, record, score),
                signals=shares if explain else None,
                matched_text=(matched or None) if explain else None,
            ))
        return results


def _on_page(count: int, offset: int, k: int) -> int:
    """How many of `count` ranked results a page of `k` after `offset` holds."""
    return max(0, min(count, offset + k) - offset)


def _scores_for(scored: tuple[np.ndarray, np.ndarray] | None, wanted: np.ndarray) -> np.ndarray:
    """The scores of `wanted` ids from an (ids, scores) pair, NaN where an id has none."""
    out = np.full(len(wanted), np.nan)
    if scored is not None:
        found, where = locate(scored[0], wanted)
        out[found] = scored[1][where]
    return out


def _text_row(
    ids: np.ndarray, scores: np.ndarray, typical: float, spread: float
) -> tuple[np.ndarray, np.ndarray, float, float]:
    return ids, scores, float(typical), float(spread)


def _moved(before: Mapping[str, int], now: Mapping[str, int]) -> bool:
    """Whether the library grew, shrank or gained or lost text enough for a refit."""
    if before.get("version") != now["version"]:
        return True
    return any(abs(now[k] - before.get(k, -1)) > _REFIT_SHARE * max(before.get(k, 0), 10) for k in now)
