"""Terminal thumbnails: protocol detection from the environment, and each protocol's escape sequences.

The sixel output is decoded back into pixels by a small independent decoder, so the test checks the
picture, not just the framing.
"""

from __future__ import annotations

import base64
import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photoseek.present.terminal import (
    ITERM,
    KITTY,
    SIXEL,
    UnknownProtocolError,
    detect_protocol,
    render,
)
from photoseek.store.catalog import escape_undecodable
from tests.helpers import run_cli


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TERM": "xterm-kitty"}, KITTY),
        ({"TERM": "xterm-256color", "KITTY_WINDOW_ID": "1"}, KITTY),
        ({"TERM": "xterm-ghostty", "TERM_PROGRAM": "ghostty"}, KITTY),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "iTerm.app"}, ITERM),
        ({"TERM": "xterm-256color", "LC_TERMINAL": "iTerm2"}, ITERM),  # iTerm2 through ssh
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}, ITERM),
        ({"TERM": "foot"}, SIXEL),
        ({"TERM": "mlterm"}, SIXEL),
        ({"TERM": "xterm-256color", "KONSOLE_VERSION": "230804"}, SIXEL),
        ({"TERM": "xterm-256color"}, None),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "vscode"}, None),
        ({"TERM": "dumb"}, None),
        ({}, None),
        ({"TERM": "tmux-256color", "KITTY_WINDOW_ID": "1"}, None),  # tmux would swallow or mangle it
        ({"TERM": "xterm-kitty", "TMUX": "/tmp/tmux-0/default,1,0"}, None),
        ({"TERM": "xterm-256color", "PHOTOSEEK_PREVIEW": "sixel"}, SIXEL),
        ({"TERM": "xterm-kitty", "PHOTOSEEK_PREVIEW": "none"}, None),
    ],
)
def test_protocol_is_read_from_the_environment(env, expected):
    assert detect_protocol(env, is_tty=True) == expected


def test_no_protocol_when_output_is_not_a_terminal():
    assert detect_protocol({"TERM": "xterm-kitty", "KITTY_WINDOW_ID": "1", "PHOTOSEEK_PREVIEW": "kitty"}, False) is None


def test_an_unknown_override_says_what_is_accepted():
    with pytest.raises(UnknownProtocolError, match="kitty, iterm, sixel or none"):
        detect_protocol({"PHOTOSEEK_PREVIEW": "png"}, is_tty=True)


def _photo(width: int = 600, height: int = 300) -> Image.Image:
    """Four solid quadrants: few colours, so the sixel round trip can be exact up to its 1% steps."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[: height // 2, : width // 2] = (220, 30, 30)
    pixels[: height // 2, width // 2 :] = (30, 180, 60)
    pixels[height // 2 :, : width // 2] = (30, 60, 220)
    pixels[height // 2 :, width // 2 :] = (240, 220, 40)
    return Image.fromarray(pixels)


def test_kitty_sends_a_png_in_chunks_and_asks_for_no_reply():
    noise = np.random.default_rng(0).integers(0, 255, size=(300, 600, 3), dtype=np.uint8)
    sequence = render(Image.fromarray(noise), KITTY)  # noise does not compress: many chunks
    chunks = re.findall(r"\x1b_G([^;]*);([A-Za-z0-9+/=]*)\x1b\\", sequence)
    assert "".join(f"\x1b_G{k};{p}\x1b\\" for k, p in chunks) == sequence  # nothing else in between
    assert len(chunks) > 1 and all(len(payload) <= 4096 for _, payload in chunks)
    first = dict(kv.split("=") for kv in chunks[0][0].split(","))
    assert first == {"a": "T", "f": "100", "q": "2", "r": "8", "m": "1"}
    assert [k for k, _ in chunks[1:-1]] == ["m=1"] * (len(chunks) - 2) and chunks[-1][0] == "m=0"
    png = Image.open(io.BytesIO(base64.b64decode("".join(p for _, p in chunks))))
    assert png.format == "PNG" and png.size == (256, 128)


def test_iterm_sends_one_inline_file_with_its_size_and_name():
    sequence = render(_photo(), ITERM, name="/photos/été.jpg")
    match = re.fullmatch(r"\x1b\]1337;File=([^:]*):([A-Za-z0-9+/=]+)\x07", sequence)
    assert match
    args = dict(kv.split("=", 1) for kv in match.group(1).split(";"))
    data = base64.b64decode(match.group(2))
    assert args["inline"] == "1" and args["height"] == "8" and args["preserveAspectRatio"] == "1"
    assert int(args["size"]) == len(data) and base64.b64decode(args["name"]).decode() == "/photos/été.jpg"
    assert Image.open(io.BytesIO(data)).size == (256, 128)


_SIXEL_TOKEN = re.compile(r"#(\d+);2;(\d+);(\d+);(\d+)|#(\d+)|!(\d+)([?-~])|([?-~])|(\$)|(-)")


def _decode_sixel(sequence: str) -> np.ndarray:
    """A minimal sixel decoder: colour definitions, '#' selection, '!' repeats, '$' and '-'."""
    match = re.fullmatch(r'\x1bP0;1;0q"1;1;(\d+);(\d+)(.*)\x1b\\', sequence, re.S)
    assert match, sequence[:40]
    width, height, body = int(match.group(1)), int(match.group(2)), match.group(3)
    image = np.full((height, width, 3), -1, dtype=int)
    colours: dict[int, tuple[int, ...]] = {}
    x = y = 0
    current = None
    tokens = list(_SIXEL_TOKEN.finditer(body))
    assert sum(len(t.group(0)) for t in tokens) == len(body)  # nothing the decoder does not understand
    for token in tokens:
        define, r, g, b, select_, count, repeated, single, cr, lf = token.groups()
        if define:
            colours[int(define)] = tuple(round(int(v) * 255 / 100) for v in (r, g, b))
        elif select_:
            current = colours[int(select_)]
        elif cr:
            x = 0
        elif lf:
            x, y = 0, y + 6
        else:
            char, n = (repeated, int(count)) if repeated else (single, 1)
            bits = ord(char) - 63
            for _ in range(n):
                for row in range(6):
                    if bits >> row & 1:
                        image[y + row, x] = current
                x += 1
    return image


def test_sixel_round_trips_to_the_same_picture():
    photo = _photo(200, 100)  # 100 rows: the last band holds only four
    decoded = _decode_sixel(render(photo, SIXEL))
    expected = np.asarray(photo.resize((160, 80)).convert("RGB"), dtype=int)
    assert decoded.shape == expected.shape and (decoded >= 0).all()  # every pixel painted
    assert np.abs(decoded - expected).max() <= 3  # sixel colours are in 1% steps


def test_control_characters_in_file_names_cannot_reach_the_terminal():
    assert escape_undecodable("evil\x1b]0;pwned\x07name\x9b.jpg") == "evil\\x1b]0;pwned\\x07name\\x9b.jpg"


def test_preview_through_a_pipe_prints_plain_lines_only(library, monkeypatch):
    monkeypatch.setenv("KITTY_WINDOW_ID", "1")
    monkeypatch.setenv("TERM", "xterm-kitty")
    output = run_cli("search", "a photo", "--db", library.db, "--mode", "clip", "--min-score", "-1", "--preview")
    assert "\x1b" not in output, output
    assert len([line for line in output.splitlines() if re.match(r"-?\d\.\d{4}\t/", line)]) == 6, output


def _run_in_pty(args: list[str], env: dict[str, str]) -> str:
    """Run the CLI with its stdout on a pseudo-terminal, as in a real terminal window."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=terminal, stderr=subprocess.PIPE, env=env)
    os.close(terminal)
    chunks = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1)
        if ready:
            try:
                data = os.read(controller, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(controller)
    assert process.wait(10) == 0, process.stderr.read().decode()
    return b"".join(chunks).decode("utf-8")


@pytest.mark.parametrize(("env", "marker"), [({"TERM": "xterm-kitty"}, "\x1b_Ga=T"),
                                             ({"TERM_PROGRAM": "iTerm.app"}, "\x1b]1337;File="),
                                             ({"TERM": "foot"}, "\x1bP0;1;0q")])
def test_preview_in_a_terminal_draws_each_thumbnail_above_its_line(library, env, marker):
    environ = {k: v for k, v in os.environ.items() if k not in ("KITTY_WINDOW_ID", "TERM_PROGRAM", "TMUX", "TERM")}
    environ |= {"TERM": "xterm-256color", "PYTHONPATH": os.pathsep.join(sys.path), **env}
    output = _run_in_pty([sys.executable, "-m", "photoseek", "search", "a photo", "--db", str(library.db),
                          "--mode", "clip", "--min-score", "-1", "--preview"], environ)
    assert output.count(marker) == 5  # six results, one of them deleted since indexing
    assert "(no preview: " in output and "gone.png" in output
    lines = re.findall(r"^#(\d+)  (-?\d\.\d{3})  (/.*?)  (\d+)x(\d+)", output, re.M)
    assert [int(rank) for rank, *_ in lines] == [1, 2, 3, 4, 5, 6]
    assert {Path(path).name for _, _, path, *_ in lines} >= {"red.png", "blue.jpg"}
