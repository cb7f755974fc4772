"""The search policy: which mode, signals, weights and cut-off a search uses, decided in one place.

Every front end (CLI, REST, the Python API, `eval`, topics) asks `choose_policy` and hands the
`SearchPolicy` it returns to the one scorer (`photoseek.search.hybrid`), so a setting cannot mean one
thing in a search and another in an evaluation.

The default mode is hybrid once any image has text, else clip. A query of example pictures only is
ranked by looks (clip mode) unless a mode was asked for. A missing model never makes the default
fail: without a usable text model (offline and not cached) the default keeps CLIP plus keyword
(SQLite FTS5 needs no model) and hands back a notice, given once per catalog, of what the text model
would add. A mode, text weight or text model the caller asked for is kept as asked, so its failure
stays a clear error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum

from photoseek.calibration import SignalCurve
from photoseek.errors import BadInput
from photoseek.search.fusion import DEFAULT_MIN_SCORE, weights_for
from photoseek.search.query import Query

TEXT_MODEL_DOWNLOAD = "photoseek models download --kind text"
"""The text model runs on the base install; it only has to be fetched once (90 MB)."""


class Mode(str, Enum):
    """How a search ranks: by one signal, by all of them fused, or by CLIP over blended vectors."""

    CLIP = "clip"
    TEXT = "text"
    KEYWORD = "keyword"
    HYBRID = "hybrid"
    CLIP_HYBRID = "clip-hybrid"

    def __str__(self) -> str:
        return self.value

    @property
    def fused(self) -> bool:
        """Scores are fused probabilities (`photoseek.search.fusion`), not cosines."""
        return self in (Mode.TEXT, Mode.KEYWORD, Mode.HYBRID)

    @classmethod
    def parse(cls, value: str | Mode) -> Mode:
        """A mode by name, or a one-line error naming every mode."""
        try:
            return cls(value)
        except ValueError:
            raise BadInput(f"Unknown search mode {value!r}: use one of {', '.join(MODE_NAMES)}.") from None


MODE_NAMES = tuple(m.value for m in Mode)


@dataclass(frozen=True)
class SearchPolicy:
    """One search's mode, signal weights and cut-off, and what to tell the user about them."""

    mode: Mode
    weights: Mapping[str, float] = field(default_factory=dict)
    """The weight of each signal that counts (0-weighted ones left out, and, once calibrated, a CLIP
    fitted flat on this library); for clip-hybrid, the fused signals that decide whether a query is
    answered at all."""
    min_score: float | None = None
    """The caller's cut-off (in the mode's own scores); None: the calibrated cut-off."""
    asked: bool = False
    """The caller named the mode (the picture-only rule then does not apply)."""
    notice: str | None = None
    """Said once per session when the default had to leave a signal out."""
    once_per_catalog: bool = False
    """The notice is advice (an optional download), given once per catalog; a setting to fix is said every run."""
    curves: Mapping[str, SignalCurve] = field(default_factory=dict)
    """The library's calibration the scores go through, per signal (`HybridSearcher.calibrated` fills it)."""

    @property
    def cut(self) -> float:
        """The fused probability (or, with `min_score`, the score) below which a result is not shown."""
        return DEFAULT_MIN_SCORE if self.min_score is None else self.min_score

    @property
    def calibrated_cut(self) -> bool:
        return self.min_score is None

    def for_query(self, query: Query) -> SearchPolicy:
        """The picture-only rule: example pictures alone rank by looks, unless a mode was asked for."""
        if self.asked or query.has_text() or self.mode is Mode.CLIP:
            return self
        return replace(self, mode=Mode.CLIP, weights={"clip": 1.0})


def choose_policy(
    mode: str | Mode | None,
    weights: Mapping[str, float] | None = None,
    min_score: float | None = None,
    *,
    has_text: Callable[[], bool] = lambda: True,
    text_problem: Callable[[], str | None] = lambda: None,
    text_model_asked: bool = False,
    text_model_named: bool = False,
    query_has_text: bool = True,
) -> SearchPolicy:
    """The policy to search with; `text_problem` says why the text model cannot load (None: it can).

    `text_model_asked`: the caller named a text model for this search; `text_model_named`: one is
    named, by the caller or by the catalog's settings. `query_has_text`: False for queries made of
    example images only, which rank by CLIP alone, so the text model is not even probed.
    Bad modes or weights are a one-line error.
    """
    asked = dict(weights) if weights else None
    if mode:
        chosen = Mode.parse(mode)
        return SearchPolicy(chosen, _weights(chosen, asked), min_score, asked=True)
    if not has_text() or not query_has_text:
        return SearchPolicy(Mode.CLIP, _weights(Mode.CLIP, None), min_score)
    if text_model_asked or "text" in (asked or {}):
        return SearchPolicy(Mode.HYBRID, _weights(Mode.HYBRID, asked), min_score)
    problem = text_problem()
    if problem is None:
        return SearchPolicy(Mode.HYBRID, _weights(Mode.HYBRID, asked), min_score)
    if text_model_named:  # a model someone chose is a setting to fix, not an extra to install
        notice = f"Searching by CLIP and keywords: {problem}"
    else:
        notice = (
            "Searching by CLIP and keywords: the text model is not available (`--mode hybrid` shows why). "
            f"Some images carry text (descriptions, keywords, notes); `{TEXT_MODEL_DOWNLOAD}` (once, 90 MB) adds "
            "ranking by what that text means, not just the words it shares with the query."
        )
    return SearchPolicy(
        Mode.HYBRID, _weights(Mode.HYBRID, {**(asked or {}), "text": 0.0}), min_score,
        notice=notice, once_per_catalog=not text_model_named,
    )


def _weights(mode: Mode, asked: dict[str, float] | None) -> dict[str, float]:
    """The signals a mode fuses, with the caller's weights; clip-hybrid is answered when hybrid would be."""
    try:
        return weights_for(Mode.HYBRID.value if mode is Mode.CLIP_HYBRID else mode.value, asked)
    except ValueError as exc:
        raise BadInput(f"Bad search options: {exc}.") from None
