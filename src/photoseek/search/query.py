"""Queries built from several weighted texts and images, as in rclip's query arithmetic.

The query vector is the normalised weighted sum of the unit embeddings of its terms;
negative terms ("--not people") carry negative weights and push results away.

One syntax everywhere (CLI arguments and options, the interactive prompt, piped lines, REST):
- a term is `TEXT` or `W:TEXT`, W a number: `2:beach` counts twice, `0.5:beach` half, and a
  negative weight subtracts (`-1:dog`);
- `--not TEXT` and `--not-image FILE` subtract; they take a positive weight (`--not 2:dog`), as
  a negative one there would add the term back;
- `--image FILE` adds an example image, with a weight like a text (`--image 2:beach.jpg`).
A query line (`Query.parse`: the prompt, piped queries, `GET /api/search?q=`) is split at spaces
(double quotes group words) into the same terms and options, and also reads `-word` as "subtract":
words group into one term until the next sign or weight (`red car -people on bikes 2:sunset`).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from photoseek.errors import BadInput

_WEIGHT_PREFIX = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*:(?!\d)(.*)$", re.S)
NEGATIVE_WEIGHT = re.compile(r"^-(?:\d+(?:\.\d*)?|\.\d+):(?!\d)")
"""A term with a negative weight ('-1:dog'), which a command line would take for an option."""
_LINE_OPTIONS: dict[str, tuple[Literal["text", "image"], bool]] = {
    "--not": ("text", True), "-n": ("text", True),
    "--image": ("image", False), "-i": ("image", False),
    "--not-image": ("image", True),
}
"""Options a query line may hold: the kind of term each takes, and whether it subtracts."""
SYNTAX = (
    "terms are TEXT or W:TEXT (2:beach counts twice, -1:dog subtracts); --not TEXT and --not-image FILE "
    "subtract, --image FILE adds an example"
)
"""The syntax in one line, for errors."""


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
        """Terms from plain strings, each one term that may start with a weight ('2:beach', '-1:dog');
        negatives take positive weights only. Blank texts mean nothing and make no term, so a query of
        only blanks is empty (and refused), not ranked."""
        terms = [parse_term("text", t) for t in texts if t.strip()]
        terms += [parse_term("image", p) for p in images]
        terms += [parse_term("text", t, subtract=True) for t in negatives if t.strip()]
        terms += [parse_term("image", p, subtract=True) for p in negative_images]
        return cls(tuple(terms))

    @classmethod
    def parse(cls, line: str) -> Query:
        """A query line as typed: shell-like words, grouped into terms (see the module's docstring)."""
        tokens = _words(line)
        terms: list[QueryTerm] = []
        words: list[str] = []
        subtract = False

        def finish() -> None:
            if " ".join(words).strip():
                terms.append(parse_term("text", " ".join(words), subtract=subtract))
            words.clear()

        tokens.reverse()
        while tokens:
            token = tokens.pop()
            if not token.strip():
                continue
            if token in _LINE_OPTIONS:
                kind, negative = _LINE_OPTIONS[token]
                if not tokens:
                    raise BadInput(f"{token} at the end of the query needs a {kind} after it.")
                finish()
                terms.append(parse_term(kind, tokens.pop(), subtract=negative))
            elif token.startswith("--") and len(token) > 2:
                raise BadInput(
                    f"{token} is not an option of a query line (--not, --not-image, --image); {SYNTAX}."
                )
            elif token[:1] in "+-" and len(token) > 1:
                finish()
                subtract, words[:] = token[0] == "-", [token[1:]]
            elif _WEIGHT_PREFIX.match(token):
                finish()
                subtract, words[:] = False, [token]
            else:
                words.append(token)
        finish()
        return cls(tuple(terms))

    def __add__(self, other: Query) -> Query:
        return Query(self.terms + other.terms)

    def has_text(self, *, positive: bool = False) -> bool:
        """Whether any term is text (with ``positive``: text that counts for, not against, a match); a query
        without text is ranked by pictures alone, whatever the mode."""
        return any(t.kind == "text" and (t.weight > 0 or not positive) for t in self.terms)

    def __bool__(self) -> bool:
        return any(term.weight > 0 for term in self.terms)

    def describe(self) -> str:
        return " ".join(term.describe() for term in self.terms).removeprefix("+ ")


def _words(line: str) -> list[str]:
    """The line split at spaces; double quotes group words ("red car"), an apostrophe is a letter."""
    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split, lexer.quotes, lexer.escape, lexer.commenters = True, '"', "", ""
    try:
        return list(lexer)
    except ValueError:
        raise BadInput(f"The query {line!r} opens a double quote it never closes. Close it.") from None


def parse_term(kind: Literal["text", "image"], raw: str, *, subtract: bool = False) -> QueryTerm:
    """One term from 'TEXT' or 'W:TEXT' (an image: a path, or 'W:PATH' unless a file has that very name).

    A term that subtracts (`--not`, `--not-image`, REST `negatives`) takes a positive weight: a
    negative one would add the term back, which is what the query terms are for."""
    match = _WEIGHT_PREFIX.match(raw)
    if not match or not match.group(2).strip() or (kind == "image" and Path(raw).expanduser().exists()):
        weight, value = 1.0, raw.strip() if kind == "text" else raw
    else:
        weight, value = float(match.group(1)), match.group(2).strip()
    if weight == 0:
        raise BadInput(f"{raw!r}: a weight of 0 adds nothing. Leave the term out, or weigh it 2:{value}.")
    if subtract and weight < 0:
        raise BadInput(
            f"{raw!r} is already subtracted (--not, --not-image, negatives), so its weight must be positive: "
            f"give {-weight:g}:{value} there, or {raw} as a query term."
        )
    return QueryTerm(kind, value, -weight if subtract else weight)
