"""Text, keyword and hybrid search: rank by the fused score of CLIP, text embeddings and BM25.

Candidates are the union of each signal's best few hundred images; every candidate then gets
every signal's score, so the fusion sees complete evidence for the images that can win.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from photoseek.calibration import LibraryCalibration, SignalCurve
from photoseek.errors import BadInput
from photoseek.models.session import many_runs
from photoseek.search.calibrate import FIT_SAMPLE, MIN_TEXTED, fit_clip, fit_text
from photoseek.search.engine import Searcher, SearchResult
from photoseek.search.fusion import (
    DEFAULT_MIN_SCORE,
    DEFAULT_WEIGHTS,
    LITERAL_MATCH,
    LITERAL_QUERY_WORDS,
    PRIORS,
    STANDOUT_SAMPLE,
    clip_standout,
    fuse,
    is_exact,
    is_short,
    sigmoid_curve,
    text_typical,
    weights_for,
)
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
_CURVES_VERSION = 3
"""Bumped whenever what a curve maps changes (3: the relative text curve): stored curves are refitted."""
_REFIT_SHARE = 0.1
"""A signal is refitted once the library's images or texted images moved by this share (or its model changed)."""
_MATCHED_TEXT_CHARS = 240


@dataclass(frozen=True)
class _Encoded:
    """One query with its CLIP vector and its text scores over every described image, when used."""

    query: Query
    clip: np.ndarray | None
    text: tuple[np.ndarray, ...] | None
    """(ids, scores, typical, spread): `_text_scores`."""
    clip_sample: np.ndarray | None = None
    """The query's CLIP cosines with a sample of the collection, to calibrate softmax CLIP per query."""
    clip_top: tuple[np.ndarray, np.ndarray] | None = None
    """The query's best CLIP candidates (ids, cosines), found for the whole batch in one index call."""


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


def _without_flat(used: dict[str, float], curves: dict[str, SignalCurve]) -> dict[str, float]:
    """The signals that can move a score: a CLIP fitted flat on this library is not even computed
    (its evidence is 0 everywhere), unless it is the only signal asked for."""
    kept = {s: w for s, w in used.items() if s != "clip" or curves["clip"].informative}
    return kept or used


def _literal(query: Query) -> bool:
    """A one- or two-word query: images whose text has those words are shown whatever the cut-off."""
    return 0 < _word_count(query) <= LITERAL_QUERY_WORDS


def _word_count(query: Query) -> int:
    """Words in the query's positive texts: short queries get their own text calibration."""
    return sum(len(_WORD.findall(t.value)) for t in query.terms if t.kind == "text" and t.weight > 0)


def _exact(query: Query) -> bool:
    return is_exact(_word_count(query), [t.value for t in query.terms if t.kind == "text" and t.weight > 0])


def _has_text(query: Query, positive: bool = False) -> bool:
    return any(t.kind == "text" and (t.weight > 0 or not positive) for t in query.terms)


class HybridSearcher:
    """Fused search over one catalog; the text model is loaded only when the text signal is used."""

    def __init__(self, clip: Searcher, texts: TextStore, embedder: Callable[[], TextEmbedder]) -> None:
        self.clip = clip
        self.texts = texts
        self._embedder = embedder
        self._matrix: tuple[tuple[int, str], np.ndarray, np.ndarray] | None = None
        self._curves: tuple[tuple, dict[str, SignalCurve]] | None = None

    def search(self, query: Query, **options: Any) -> list[SearchResult]:
        """One query; see `search_many` for the options."""
        return self.search_many([query], **options)[0]

    def search_many(
        self,
        queries: Sequence[Query],
        *,
        mode: str,
        weights: dict[str, float] | None = None,
        k: int = 10,
        offset: int = 0,
        min_score: float | None = None,
        explain: bool = False,
        exclude_ids: frozenset[int] = frozenset(),
        filters: SearchFilters | None = None,
    ) -> list[list[SearchResult]]:
        """Results per query. All query texts go through each model in one call, and the text scores
        of all queries come from one matrix product, so a batch costs little more than one query."""
        try:
            used = weights_for(mode, weights)
        except ValueError as exc:
            raise BadInput(f"Bad search options: {exc}.") from None
        self.clip.require_images()
        if mode in ("text", "keyword") and not all(_has_text(q, positive=True) for q in queries):
            raise BadInput(f"--mode {mode} needs a text query; example images work with --mode clip.")
        curves = self.curves(used if any(_has_text(q) for q in queries) else {"clip": 1.0})
        used = _without_flat(used, curves)
        needs_clip = "clip" in used or not all(_has_text(q) for q in queries)
        clip_vectors = self.clip.query_vectors(queries) if needs_clip else [None] * len(queries)
        samples = self._clip_samples(clip_vectors, curves) if needs_clip else None
        wants_text = "text" in used and any(_has_text(q) for q in queries)
        text_scores = self._text_scores(queries) if wants_text else [None] * len(queries)
        allowed = self.clip.catalog.filter_ids(filters) if filters else None
        cut = min_score if min_score is not None else DEFAULT_MIN_SCORE
        depth = max(_CANDIDATES, 5 * (offset + k))
        clip_tops = self._clip_tops(clip_vectors, depth, allowed, filters) if needs_clip else [None] * len(queries)
        results = []
        for query, vector, scores, sample, clip_top in zip(
            queries, clip_vectors, text_scores, samples or [None] * len(queries), clip_tops
        ):
            encoded = _Encoded(query, vector, scores, sample, clip_top)
            candidates, raw, fused, shares = self._rank(
                encoded, used if _has_text(query) else {"clip": 1.0}, depth, allowed, filters, exclude_ids, curves
            )
            uncut = min_score is None and (
                not _has_text(query)
                or ("clip" in used and curves["clip"].source != "fitted" and not _beyond_clip(shares))
            )
            shown = fused >= (-np.inf if uncut else cut)
            if min_score is None and _literal(query):  # an image whose text has the query's words always shows
                shown |= np.nan_to_num(raw["keyword"], nan=0.0) >= LITERAL_MATCH
            # Equal evidence (all at the prior, say, when CLIP alone speaks and is not fitted here): the
            # picture CLIP finds closer goes first, not the one indexed first.
            closer = np.nan_to_num(raw["clip"], nan=-np.inf) if "clip" in raw else np.zeros(len(candidates))
            order = [i for i in np.lexsort((candidates, -closer, -fused)) if shown[i]][offset : offset + k]
            chosen = [(int(candidates[i]), float(fused[i]), {s: round(float(v[i]), 6) for s, v in shares.items()})
                      for i in order]
            results.append(self._results(query, chosen, offset, explain))
        return results

    def _rank(
        self,
        encoded: _Encoded,
        used: dict[str, float],
        depth: int,
        allowed: np.ndarray | None,
        filters: SearchFilters | None,
        exclude_ids: frozenset[int],
        curves: dict[str, SignalCurve],
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
        """(candidates, raw scores, fused scores, evidence) of the union of each signal's best `depth`."""
        literal = _literal(encoded.query) and "keyword" not in used  # shown whatever the mode
        raw = self._raw_scores(encoded, {**used, **({"keyword": 0.0} if literal else {})}, depth, allowed, filters)
        candidates = np.unique(np.concatenate([ids for ids, _ in raw.values()]))
        if exclude_ids:
            candidates = candidates[~np.isin(candidates, list(exclude_ids))]
        columns = {s: _scores_for(raw[s], candidates) for s in raw}
        self._fill_missing(encoded, columns, candidates)
        if "clip" in columns and encoded.clip_sample is not None:
            columns["clip"] = clip_standout(columns["clip"], encoded.clip_sample)
        if "text" in columns and encoded.text is not None:
            columns["text-relative"] = (columns["text"] - encoded.text[2]) / encoded.text[3]
        fused, evidence = fuse(columns, used, curves, is_short(_word_count(encoded.query)), _exact(encoded.query))
        return candidates, columns, fused, evidence

    def _raw_scores(
        self,
        encoded: _Encoded,
        used: dict[str, float],
        depth: int,
        allowed: np.ndarray | None,
        filters: SearchFilters | None,
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each signal's best `depth` (ids, scores), only among `allowed` ids when filters are set."""
        raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if "clip" in used:
            assert encoded.clip_top is not None
            raw["clip"] = encoded.clip_top
        if "text" in used:
            ids, scores = encoded.text[:2]
            if allowed is not None:
                keep = np.isin(ids, allowed)
                ids, scores = ids[keep], scores[keep]
            top = np.argpartition(-scores, depth)[:depth] if len(scores) > depth else np.arange(len(scores))
            raw["text"] = (ids[top], scores[top].astype(np.float64))
        if "keyword" in used:
            words, avoid = _keyword_terms(encoded.query)
            hits = self.texts.keyword_search(words, avoid, -1 if allowed is not None else depth)
            ids = np.array([h.image_id for h in hits], dtype=np.int64)
            scores = np.array([h.score for h in hits], dtype=np.float64)
            if allowed is not None:
                keep = np.isin(ids, allowed)
                ids, scores = ids[keep][:depth], scores[keep][:depth]
            raw["keyword"] = (ids, scores)
        return raw

    def _clip_tops(
        self, vectors: Sequence[np.ndarray], depth: int, allowed: np.ndarray | None, filters: SearchFilters | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each query's best `depth` CLIP (ids, cosines), only among `allowed` ids when filters are set."""
        index = self.clip.index
        inside = allowed if not index.filters_inside else None
        return [
            (np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float64))
            for ids, scores in top_many(index, vectors, depth, inside, filters or None)
        ]

    def _fill_missing(self, encoded: _Encoded, columns: dict[str, np.ndarray], candidates: np.ndarray) -> None:
        """Score candidates another signal brought in with CLIP and text too (keyword misses stay NaN)."""
        if "clip" in columns and np.isnan(columns["clip"]).any():
            rows = np.flatnonzero(np.isnan(columns["clip"]))
            columns["clip"][rows] = self.clip.vectors_of(candidates[rows]) @ encoded.clip
        if "text" in columns and np.isnan(columns["text"]).any():
            rows = np.flatnonzero(np.isnan(columns["text"]))
            columns["text"][rows] = _scores_for(encoded.text, candidates[rows])

    def score_matrix(
        self, queries: Sequence[Query], *, mode: str, ids: np.ndarray, weights: dict[str, float] | None = None
    ) -> np.ndarray:
        """Fused score of every query (rows) for every image in `ids` (columns), computed with one
        matrix product per signal: what `search_many` ranks by when asked for the whole collection.
        For evaluations, which rank every image for thousands of queries."""
        used = weights_for(mode, weights)
        curves = self.curves(used)
        used = _without_flat(used, curves)
        raw: dict[str, np.ndarray] = {}
        if "clip" in used:
            vectors = self.clip.query_vectors(queries)
            raw["clip"] = np.stack(vectors) @ self.clip.vectors_of(ids).T
            samples = self._clip_samples(vectors, curves)
            if samples is not None:
                raw["clip"] = clip_standout(raw["clip"], np.stack(samples))
        if "text" in used:
            scored = self._text_scores(queries)
            raw["text"] = np.stack([_scores_for(scores, ids) for scores in scored])
            typical, spread = (np.array([[s[n]] for s in scored]) for n in (2, 3))
            raw["text-relative"] = (raw["text"] - typical) / spread
        if "keyword" in used:
            raw["keyword"] = np.stack([self._keyword_row(query, ids) for query in queries])
        short = is_short(np.array([[_word_count(q)] for q in queries]))
        return fuse(raw, used, curves, short, np.array([[_exact(q)] for q in queries]))[0]

    def _clip_samples(self, vectors: Sequence[np.ndarray], curves: dict[str, SignalCurve]) -> list[np.ndarray] | None:
        """Each query's cosines with a sample of the collection, to standardise its CLIP cosines
        (`clip_standout`); None when the curve is the model's own (SigLIP) and takes raw cosines."""
        if not len(vectors) or curves["clip"].source == "model":
            return None
        return list(np.stack(vectors) @ self.clip.sample_vectors(STANDOUT_SAMPLE).T)

    def clip_cut(
        self, queries: Sequence[Query], vectors: Sequence[np.ndarray], ranked: list[list[SearchResult]]
    ) -> list[list[SearchResult]]:
        """Clip mode's results (cosines) without those below the cut-off probability, for text queries
        in a library whose CLIP curve is fitted; elsewhere (no text to fit on, example images) unchanged."""
        curves = self.curves({"clip": 1.0})
        if curves["clip"].source != "fitted":
            return ranked
        samples = self._clip_samples(vectors, curves) or [None] * len(vectors)
        kept = []
        for query, sample, results in zip(queries, samples, ranked):
            if not _has_text(query) or not results:
                kept.append(results)
                continue
            cosines = np.array([r.score for r in results])
            probability = fuse({"clip": clip_standout(cosines, sample)}, {"clip": 1.0}, curves)[0]
            kept.append([r for r, p in zip(results, probability) if p >= DEFAULT_MIN_SCORE])
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
        now = {"images": self.clip.catalog.count(), "texted": self.texts.texted_count(), "version": _CURVES_VERSION}
        changed = False
        for signal in ("clip", "text"):
            if signal not in used:
                continue
            model = self.clip.catalog.model_id or "" if signal == "clip" else self._embedder().model_id
            before = state.get(signal) or {}
            if refit or fitted.get(signal) is None or fitted[signal].model != model or _moved(before, now):
                fitted.update(self._fit(signal, model))
                state[signal] = now
                changed = True
        if changed:
            self._store(LibraryCalibration(fitted, state))
        return self._with_priors(fitted, clip="clip" in used)

    def calibration(self) -> LibraryCalibration:
        """The curves stored in the catalog (none yet: empty)."""
        stored = self.clip.catalog.setting(CALIBRATION_SETTING)
        return LibraryCalibration.from_dict(json.loads(stored)) if stored else LibraryCalibration({})

    def summary(self) -> list[str]:
        """Each signal's curve in words, as stored (nothing is fitted here): for `status` and `--explain`."""
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
                default = DEFAULT_WEIGHTS["clip" if key == "clip" else "text"]
                weight = f", weight {default:g}" if curve.informative else ""
                lines.append(f"{label}{model}: {curve.describe()}{weight}")
            else:
                lines.append(
                    f"{label}{model}: uncalibrated, only {fitted.texted} photos carry text ({MIN_TEXTED} needed); "
                    f"using the {curve.describe()}"
                )
        lines.append(f"Keyword: {PRIORS['keyword'].describe()}")
        return lines

    def _with_priors(self, fitted: dict[str, SignalCurve], clip: bool = True) -> dict[str, SignalCurve]:
        """Fitted curves where there are any; else the model's own (SigLIP, when `clip` may load it) or the prior."""
        curves = {**PRIORS, **{k: c for k, c in fitted.items() if c.source == "fitted"}}
        own = self.clip.score_calibration() if clip and curves["clip"].source != "fitted" else None
        if own is not None:
            curves["clip"] = sigmoid_curve(*own)
        return curves

    def _fit(self, signal: str, model: str) -> dict[str, SignalCurve]:
        texts = self.texts.texts_by_image(limit=FIT_SAMPLE)
        if len(texts) < MIN_TEXTED:
            prior = SignalCurve(signal, model, 0.0, 0.0, "prior", texted=len(texts))
            return {signal: prior, **({"text-short": prior, "text-relative": prior} if signal == "text" else {})}
        if signal == "clip":
            return {"clip": fit_clip(texts, self.clip.encode_texts, self._clip_matrix, model)}
        embedder = self._embedder()
        described = self.texts.texts_by_image(describing=True)
        described = {i: d for i, d in described.items() if i in texts}
        long, short, relative = fit_text(
            texts, described, embedder.embed_queries, embedder.embed_passages, self._text_matrix_of, model
        )
        return {"text": long, "text-short": short, "text-relative": relative}

    def _clip_matrix(self, vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Standardised CLIP scores of these query vectors for these images, as search fuses them."""
        sample = vectors @ self.clip.sample_vectors(STANDOUT_SAMPLE).T
        return clip_standout(vectors @ self.clip.vectors_of(ids).T, sample)

    def _text_matrix_of(self, vectors: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Text-embedding scores of these query vectors for these images (NaN: no text), as search scores
        them, with each query's typical score and spread over every described image (columns)."""
        all_ids, best = self._best_texts(vectors)
        out = np.full((len(vectors), len(ids)), np.nan)
        found, where = locate(all_ids, ids)
        if len(found):
            out[:, found] = best[:, where]
        typical, spread = text_typical(best)
        return out, typical[:, None], spread[:, None]

    def _store(self, calibration: LibraryCalibration) -> None:
        try:
            self.clip.catalog.set_setting(CALIBRATION_SETTING, json.dumps(calibration.to_dict()))
        except sqlite3.OperationalError:  # a read-only catalog: fitted again next time
            pass

    def _keyword_row(self, query: Query, ids: np.ndarray) -> np.ndarray:
        hits = self.texts.keyword_search(*_keyword_terms(query), -1)
        return _scores_for((np.array([h.image_id for h in hits], dtype=np.int64),
                            np.array([h.score for h in hits], dtype=np.float64)), ids)

    def _text_scores(self, queries: Sequence[Query]) -> list[tuple[np.ndarray, ...] | None]:
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
        return [None if w is None else (ids, *next(scores)) for w in wanted]

    def _best_texts(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(described image ids, scores: queries x images), each image by its best-matching text."""
        piece_ids, matrix = self._text_matrix(self._embedder())
        if not len(piece_ids) or not len(vectors):
            return np.unique(piece_ids), np.empty((len(vectors), len(np.unique(piece_ids))), dtype=np.float32)
        ids, starts = np.unique(piece_ids, return_index=True)
        return ids, np.maximum.reduceat(vectors @ matrix.T, starts, axis=1)

    def _text_matrix(self, embedder: TextEmbedder) -> tuple[np.ndarray, np.ndarray]:
        """Every image's texts embedded one by one (rows by image id), computing any missing first;
        cached until the texts change."""
        key = (self.texts.version(), embedder.model_id)
        if self._matrix is not None and self._matrix[0] == key:
            return self._matrix[1], self._matrix[2]
        pending = self.texts.pending_pieces(embedder.model_id)
        if pending:
            with many_runs():
                vectors = embedder.embed_passages([p.body for p in pending])
            self.texts.put_piece_embeddings(embedder.model_id, pending, vectors)
        self._matrix = ((self.texts.version(), embedder.model_id), *self.texts.piece_embeddings(embedder.model_id))
        return self._matrix[1], self._matrix[2]

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


def _scores_for(scored: tuple[np.ndarray, np.ndarray] | None, wanted: np.ndarray) -> np.ndarray:
    """The scores of `wanted` ids from an (ids, scores) pair, NaN where an id has none."""
    out = np.full(len(wanted), np.nan)
    if scored is not None:
        found, where = locate(scored[0], wanted)
        out[found] = scored[1][where]
    return out


def _moved(before: dict, now: dict) -> bool:
    """Whether the library grew, shrank or gained or lost text enough for a refit."""
    if before.get("version") != now["version"]:
        return True
    return any(abs(now[k] - int(before.get(k, -1))) > _REFIT_SHARE * max(int(before.get(k, 0)), 10) for k in now)
