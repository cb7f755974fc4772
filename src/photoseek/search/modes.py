"""Which signals a search uses when the caller names no mode.

The default is hybrid once any image has text, else clip. A missing model never makes the default
fail: without a usable text model (offline and not cached) the default keeps CLIP plus keyword
(SQLite FTS5 needs no model) and hands back a notice, given once per catalog, of what the text model would add. A mode,
text weight or text model the caller asked for is kept as asked, so its failure stays a clear error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

TEXT_MODEL_DOWNLOAD = "photoseek models download --kind text"
"""The text model runs on the base install; it only has to be fetched once (90 MB)."""


@dataclass(frozen=True)
class ModeChoice:
    mode: str
    weights: dict[str, float] | None
    notice: str | None = None
    """Said once per session when the default had to leave a signal out."""
    once_per_catalog: bool = False
    """The notice is advice (an optional download), given once per catalog; a setting to fix is said every run."""


def choose_mode(
    mode: str | None,
    weights: dict[str, float] | None,
    *,
    has_text: Callable[[], bool],
    text_problem: Callable[[], str | None],
    text_model_asked: bool = False,
    text_model_named: bool = False,
    query_has_text: bool = True,
) -> ModeChoice:
    """The mode and weights to search with; `text_problem` says why the text model cannot load (None: it can).

    `text_model_asked`: the caller named a text model for this search; `text_model_named`: one is
    named, by the caller or by the catalog's settings. `query_has_text`: False for queries made of
    example images only, which hybrid ranks by CLIP alone, so the text model is not even probed.
    """
    if mode:
        return ModeChoice(mode, weights)
    if not has_text():
        return ModeChoice("clip", weights)
    if text_model_asked or "text" in (weights or {}) or not query_has_text:
        return ModeChoice("hybrid", weights)
    problem = text_problem()
    if problem is None:
        return ModeChoice("hybrid", weights)
    if text_model_named:  # a model someone chose is a setting to fix, not an extra to install
        notice = f"Searching by CLIP and keywords: {problem}"
    else:
        notice = (
            "Searching by CLIP and keywords: the text model is not available (`--mode hybrid` shows why). "
            f"Some images carry text (descriptions, keywords, notes); `{TEXT_MODEL_DOWNLOAD}` (once, 90 MB) adds "
            "ranking by what that text means, not just the words it shares with the query."
        )
    return ModeChoice("hybrid", {**(weights or {}), "text": 0.0}, notice, once_per_catalog=not text_model_named)
