"""Text, keyword and hybrid search: rank by the fused score of CLIP, text embeddings and BM25.

Candidates are the union of each signal's best few hundred images; every candidate then gets
every signal's score, so the fusion sees complete evidence for the images that can win.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from photoseek.errors import PhotoseekError
from photoseek.models.session import many_runs
from photoseek.search.engine import Searcher, SearchResult
from photoseek.search.fusion import (
    DEFAULT_MIN_SCORE,
    STANDOUT_SAMPLE,
    Calibration,
    clip_standout,
    fuse,
    sigmoid_calibration,
    text_calibration,
    weights_for,
)
from photoseek.search.query import Query
from photoseek.store.filters import SearchFilters
from photoseek.store.text import TextStore
from photoseek.store.vectors import locate, top_many
from photoseek.text.embedder import TextEmbedder

_WORD = re.compile(r"\w+")
_CANDIDATES = 200
_MATCHED_TEXT_CHARS = 240


@dataclass(frozen=True)
class _Encoded:
    """One query with its CLIP vector and its text scores over every described image, when used."""

    query: Query
    clip: np.ndarray | None
    text: tuple[np.ndarray, np.ndarray] | None
    clip_sample: np.ndarray | None = None
    """The query's CLIP cosines with a sample of the collection, to calibrate softmax CLIP per query."""
    clip_top: tuple[np.ndarray, np.ndarray] | None = None
    """The query's best CLIP candidates (ids, cosines), found for the whole batch in one index call."""


def _keyword_terms(query: Query) -> tuple[list[str], list[str]]:
    """The query's wanted and unwanted texts, for keyword search."""
    terms = [t for t in query.terms if t.kind == "text"]
    return [t.value for t in terms if t.weight > 0], [t.value for t in terms if t.weight < 0]


def _beyond_clip(shares: dict[str, np.ndarray]) -> bool:
    """Whether any candidate has evidence besides CLIP (a keyword match, a described image).

    CLIP-only evidence is ranked as in clip mode, without the default cut-off: a per-query CLIP
    calibration cannot tell a real match from the best of noise in a small collection, and a
    catalog without text (or a query no text matches) should still show its best pictures.
    """
    return any(np.any(v > 0) for s, v in shares.items() if s != "clip")


def _word_count(query: Query) -> int:
    """Words in the query's positive texts: short queries get their own text calibration."""
    return sum(len(_WORD.findall(t.value)) for t in query.terms if t.kind == "text" and t.weight > 0)


def _has_text(query: Query, positive: bool = False) -> bool:
    return any(t.kind == "text" and (t.weight > 0 or not positive) for t in query.terms)


class HybridSearcher:
    """Fused search over one catalog; the text model is loaded only when the text signal is used."""

    def __init__(self, clip: Searcher, texts: TextStore, embedder: Callable[[], TextEmbedder]) -> None:
        self.clip = clip
        self.texts = texts
        self._embedder = embedder
        self._matrix: tuple[tuple[int, str], np.ndarray, np.ndarray] | None = None

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
            raise PhotoseekError(f"Bad search options: {exc}.") from None
        self.clip.require_images()
        if mode in ("text", "keyword") and not all(_has_text(q, positive=True) for q in queries):
            raise PhotoseekError(f"--mode {mode} needs a text query; example images work with --mode clip.")
        clip_vectors = self.clip.query_vectors(queries) if "clip" in used else [None] * len(queries)
        calibrations, samples = self._clip_calibration(clip_vectors if "clip" in used else [])
        wants_text = "text" in used and any(_has_text(q) for q in queries)
        text_scores = self._text_scores(queries) if wants_text else [None] * len(queries)
        allowed = self.clip.catalog.filter_ids(filters) if filters else None
        cut = min_score if min_score is not None else DEFAULT_MIN_SCORE
        depth = max(_CANDIDATES, 5 * (offset + k))
        clip_tops = self._clip_tops(clip_vectors, depth, allowed, filters) if "clip" in used else [None] * len(queries)
        results = []
        for query, vector, scores, sample, clip_top in zip(
            queries, clip_vectors, text_scores, samples or [None] * len(queries), clip_tops
        ):
            encoded = _Encoded(query, vector, scores, sample, clip_top)
            candidates, fused, shares = self._rank(
                encoded, used if _has_text(query) else {"clip": 1.0}, depth, allowed, filters, exclude_ids,
                {**calibrations, "text": text_calibration(_word_count(query))},
            )
            order = np.lexsort((candidates, -fused))[offset : offset + k]
            shown = cut if min_score is not None or _beyond_clip(shares) else -np.inf
            chosen = [(int(candidates[i]), float(fused[i]), {s: round(float(v[i]), 6) for s, v in shares.items()})
                      for i in order if fused[i] >= shown]
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
        calibrations: dict[str, Calibration],
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Fused scores of the union of each signal's best `depth` candidates."""
        raw = self._raw_scores(encoded, used, depth, allowed, filters)
        candidates = np.unique(np.concatenate([ids for ids, _ in raw.values()]))
        if exclude_ids:
            candidates = candidates[~np.isin(candidates, list(exclude_ids))]
        columns = {s: _scores_for(raw[s], candidates) for s in used}
        self._fill_missing(encoded, columns, candidates)
        if "clip" in columns and encoded.clip_sample is not None:
            columns["clip"] = clip_standout(columns["clip"], encoded.clip_sample)
        fused, shares = fuse(columns, used, calibrations)
        return candidates, fused, shares

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
            ids, scores = encoded.text
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
        raw: dict[str, np.ndarray] = {}
        calibrations: dict[str, Calibration] = {}
        if "clip" in used:
            vectors = self.clip.query_vectors(queries)
            raw["clip"] = np.stack(vectors) @ self.clip.vectors_of(ids).T
            calibrations, samples = self._clip_calibration(vectors)
            if samples is not None:
                raw["clip"] = clip_standout(raw["clip"], np.stack(samples))
        if "text" in used:
            raw["text"] = np.stack([_scores_for(scores, ids) for scores in self._text_scores(queries)])
            calibrations["text"] = text_calibration(np.array([[_word_count(q)] for q in queries]))
        if "keyword" in used:
            raw["keyword"] = np.stack([self._keyword_row(query, ids) for query in queries])
        return fuse(raw, used, calibrations)[0]

    def _clip_calibration(
        self, vectors: Sequence[np.ndarray]
    ) -> tuple[dict[str, Calibration], list[np.ndarray] | None]:
        """The model's own CLIP calibration (SigLIP), else each query's cosines with a sample of the
        collection, to calibrate it against its own score distribution (`clip_standout`)."""
        if not len(vectors):
            return {}, None
        own = self.clip.score_calibration()
        if own is not None:
            return {"clip": sigmoid_calibration(*own)}, None
        return {}, list(np.stack(vectors) @ self.clip.sample_vectors(STANDOUT_SAMPLE).T)

    def _keyword_row(self, query: Query, ids: np.ndarray) -> np.ndarray:
        hits = self.texts.keyword_search(*_keyword_terms(query), -1)
        return _scores_for((np.array([h.image_id for h in hits], dtype=np.int64),
                            np.array([h.score for h in hits], dtype=np.float64)), ids)

    def _text_scores(self, queries: Sequence[Query]) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """(ids, cosines) of every described image with each query's weighted text, in one product."""
        embedder = self._embedder()
        ids, matrix = self._text_matrix(embedder)
        texts = [[t for t in q.terms if t.kind == "text"] for q in queries]
        vectors = iter(embedder.embed_queries([t.value for terms in texts for t in terms]))
        wanted = []
        for terms in texts:
            total = sum((t.weight * next(vectors) for t in terms), np.zeros(1, dtype=np.float32))
            norm = float(np.linalg.norm(total))
            if terms and norm == 0.0:
                raise PhotoseekError("The query terms cancel each other out; give different texts or weights.")
            wanted.append(total / norm if terms else None)
        present = [w for w in wanted if w is not None]
        scores = iter((matrix @ np.stack(present).T).T if len(ids) and present else [])
        empty = np.empty(0, dtype=np.float32)
        return [None if w is None else (ids, next(scores) if len(ids) else empty) for w in wanted]

    def _text_matrix(self, embedder: TextEmbedder) -> tuple[np.ndarray, np.ndarray]:
        """Document embeddings, computing any that are missing first; cached until the text changes."""
        pending = self.texts.pending_embeddings(embedder.model_id)
        if pending:
            with many_runs():
                vectors = embedder.embed_passages([p.body for p in pending])
            self.texts.put_embeddings(embedder.model_id, pending, vectors)
        key = (self.texts.version(), embedder.model_id)
        if self._matrix is None or self._matrix[0] != key:
            self._matrix = (key, *self.texts.embeddings(embedder.model_id))
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
