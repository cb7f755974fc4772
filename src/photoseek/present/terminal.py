"""Thumbnails inline in the terminal: the kitty graphics protocol, iTerm2 inline images, or sixel.

No terminal announces image support reliably, so the protocol is read from the environment the
terminal sets (KITTY_WINDOW_ID, TERM, TERM_PROGRAM, LC_TERMINAL, ...). Anything unknown, a pipe, or
a multiplexer (tmux and screen swallow or mangle graphics) gets plain text: never escape codes
that would show up as garbage. ``PHOTOSEEK_PREVIEW=kitty|iterm|sixel|none`` overrides the guess.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from itertools import groupby
from typing import TextIO

import numpy as np
from PIL import Image

from photoseek.errors import BadInput, UnreadableImageError
from photoseek.imaging.encode import encoded, shrink
from photoseek.ingest.encode import thumbnail
from photoseek.present import OVERRIDE_ENV
from photoseek.search.engine import SearchResult
from photoseek.store.catalog import escape_undecodable

KITTY, ITERM, SIXEL = "kitty", "iterm", "sixel"
PROTOCOLS = (KITTY, ITERM, SIXEL)
ROWS = 8
"""Thumbnail height in text rows (kitty and iTerm2 scale to cells; sixel is sized in pixels)."""
THUMB_SIDE = 256
SIXEL_SIDE = 160
"""About 8 rows of a common 20-pixel cell; sixel has no cell-relative size."""
SIXEL_COLOURS = 64
KITTY_CHUNK = 4096
"""The protocol's limit on base64 bytes per escape sequence."""

_ESC = "\x1b"
_ST = "\x1b\\"
_SIXEL_TERMS = ("foot", "mlterm", "contour", "yaft")


class UnknownProtocolError(BadInput):
    pass


def detect_protocol(env: Mapping[str, str], is_tty: bool) -> str | None:
    """The image protocol this terminal speaks, or None for plain text."""
    if not is_tty:
        return None
    forced = env.get(OVERRIDE_ENV, "").strip().lower()
    if forced:
        if forced in ("none", "off", "text"):
            return None
        if forced not in PROTOCOLS:
            raise UnknownProtocolError(f"{OVERRIDE_ENV}={forced!r}: use one of {', '.join(PROTOCOLS)} or none.")
        return forced
    term = env.get("TERM", "")
    program = env.get("TERM_PROGRAM", "")
    if env.get("TMUX") or term.startswith(("screen", "tmux")) or term == "dumb":
        return None
    if env.get("KITTY_WINDOW_ID") or term in ("xterm-kitty", "xterm-ghostty") or program == "ghostty":
        return KITTY
    if program in ("iTerm.app", "WezTerm", "mintty") or env.get("LC_TERMINAL") == "iTerm2":
        return ITERM
    if env.get("KONSOLE_VERSION") or term.startswith(_SIXEL_TERMS) or "sixel" in term:
        return SIXEL
    return None


def print_previews(
    results: Sequence[SearchResult], stream: TextIO, protocol: str, explain: Callable[[SearchResult], str]
) -> None:
    """Each result's thumbnail, then its line of text; a file that cannot be shown says why instead."""
    for result in results:
        try:
            picture = render(thumbnail(result.path, THUMB_SIDE), protocol, name=result.path)
        except UnreadableImageError as exc:
            picture = escape_undecodable(f"(no preview: {exc})")
        stream.write(f"{picture}\n{result_line(result, explain)}\n\n")
        stream.flush()


def result_line(result: SearchResult, explain: Callable[[SearchResult], str]) -> str:
    """'#1  0.873  /photos/dog.jpg  4032x3024  2021-05-03T10:00:00', plus why when explained."""
    fields = [f"#{result.rank}", f"{result.score:.3f}", result.path, f"{result.width}x{result.height}"]
    fields += [result.taken_at or "", explain(result) if result.signals else ""]
    return escape_undecodable("  ".join(f for f in fields if f))  # no name can drive the terminal


def render(image: Image.Image, protocol: str, *, name: str = "", rows: int = ROWS) -> str:
    """The escape sequence that draws `image` at the cursor, about `rows` text rows tall."""
    if protocol == KITTY:
        return kitty(encoded(shrink(image, THUMB_SIDE), "PNG"), rows)
    if protocol == ITERM:
        return iterm(encoded(shrink(image, THUMB_SIDE)), name, rows)
    if protocol == SIXEL:
        return sixel(shrink(image, SIXEL_SIDE))
    raise UnknownProtocolError(f"unknown image protocol {protocol!r}")


def kitty(png: bytes, rows: int) -> str:
    """kitty graphics: transmit-and-display a PNG (f=100) in base64 chunks, width kept in proportion.

    q=2 keeps the terminal from answering on stdin, where replies would land in the shell.
    """
    payload = base64.b64encode(png).decode("ascii")
    chunks = [payload[i : i + KITTY_CHUNK] for i in range(0, len(payload), KITTY_CHUNK)] or [""]
    parts = []
    for i, chunk in enumerate(chunks):
        more = int(i + 1 < len(chunks))
        keys = f"a=T,f=100,q=2,r={rows},m={more}" if i == 0 else f"m={more}"
        parts.append(f"{_ESC}_G{keys};{chunk}{_ST}")
    return "".join(parts)


def iterm(data: bytes, name: str, rows: int) -> str:
    """iTerm2 inline image (OSC 1337 File=), `rows` cells tall, aspect ratio kept."""
    label = base64.b64encode(name.encode("utf-8")).decode("ascii")
    args = f"name={label};size={len(data)};inline=1;height={rows};preserveAspectRatio=1"
    return f"{_ESC}]1337;File={args}:{base64.b64encode(data).decode('ascii')}\a"


def sixel(image: Image.Image, colours: int = SIXEL_COLOURS) -> str:
    """DEC sixel: the image quantised to `colours`, drawn in bands of six rows, one pass per colour.

    P2=1 leaves unset pixels alone, so each colour's pass in a band overlays the previous ones.
    """
    quantised = image.convert("RGB").quantize(colors=colours, dither=Image.Dither.NONE)
    indices = np.asarray(quantised)
    palette = quantised.getpalette() or []
    height, width = indices.shape
    out = [f'{_ESC}P0;1;0q"1;1;{width};{height}']
    for c in np.unique(indices):
        r, g, b = (round(v * 100 / 255) for v in palette[3 * c : 3 * c + 3])
        out.append(f"#{c};2;{r};{g};{b}")
    weights = (1 << np.arange(6))[:, None]
    for top in range(0, height, 6):
        band = indices[top : top + 6]
        passes = []
        for c in np.unique(band):
            bits = ((band == c) * weights[: len(band)]).sum(axis=0)
            passes.append(f"#{c}" + _run_length("".join(chr(63 + int(v)) for v in bits).rstrip("?")))
        out.append("$".join(passes) + "-")
    out.append(_ST)
    return "".join(out)


def _run_length(chars: str) -> str:
    """Sixel's repeat introducer: '!12~' for twelve '~'; short runs are cheaper written out."""
    runs = []
    for char, group in groupby(chars):
        n = len(list(group))
        runs.append(f"!{n}{char}" if n > 3 else char * n)
    return "".join(runs)
