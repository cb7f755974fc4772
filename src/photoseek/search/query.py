"""Queries built from several weighted texts and images, as in rclip's query arithmetic.

The query vector is the normalised weighted sum of the unit embeddings of its terms;
negative terms ("--not people") carry negative weights and push results away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

_WEIGHT_PREFIX = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*:(?!\d)(.*)$", re.S)


@dataclass(frozen=True)
class QueryTerm:
    """One text or image (a file path, or an indexed image id) with its weight."""

    kind: Literal["text", "image", "image_id"]
    value: str
    weight: float = 1.0

    def describe(self) -> str:
        sign = "-" if self.weight < 0 else "+"
        magnitude = abs(self.weight)
        scale = "" if magnitude == 1 else f"{magnitude:g}*"
        shown = f'"{self.value}"' if self.kind == "text" else f"<{self.value}>"
        return f"{sign} {scale}{shown}"


@dataclass(frozen=True)
class Query:
    terms: tuple[QueryTerm, ...] = field(default_factory=tuple)

    @classmethod
    def build(
        cls,
        texts: tuple[str, ...] | list[str] = (),
        *,
        images: tuple[str, ...] | list[str] = (),
        negatives: tuple[str, ...] | list[str] = (),
        negative_images: tuple[str, ...] | list[str] = (),
    ) -> Query:
        """Terms from plain strings; a text may start with a weight such as '2:beach'. Blank texts
        mean nothing and make no term, so a query of only blanks is empty (and refused), not ranked."""
        terms = [_weighted("text", t, 1.0) for t in texts if t.strip()]
        terms += [_weighted("image", p, 1.0) for p in images]
        terms += [_weighted("text", t, -1.0) for t in negatives if t.strip()]
        terms += [_weighted("image", p, -1.0) for p in negative_images]
        return cls(tuple(terms))

    def __bool__(self) -> bool:
        return any(term.weight > 0 for term in self.terms)

    def describe(self) -> str:
        return " ".join(term.describe() for term in self.terms).removeprefix("+ ")


def _weighted(kind: Literal["text", "image"], raw: str, sign: float) -> QueryTerm:
    match = _WEIGHT_PREFIX.match(raw)
    if match and match.group(2).strip():
        return QueryTerm(kind, match.group(2).strip(), sign * float(match.group(1)))
    return QueryTerm(kind, raw.strip() if kind == "text" else raw, sign)
