"""Text tokenisation from a model directory's ``tokenizer.json``, matching open_clip's text cleaning.

open_clip cleans every query before tokenising (ftfy, HTML unescape, whitespace collapse, and for
SigLIP ``canonicalize``: no punctuation, lower case); the tokenizer file then does the rest
(lower-casing for CLIP's BPE, special tokens). Padding and truncation follow Immich: pad with the
``pad_token`` of tokenizer_config.json up to ``text_cfg.context_length`` (on the side its
``padding_side`` names, right by default), truncate keeping the end-of-text token. Towers exported
with a dynamic sequence axis that ignore padding after the text (``pad_to_longest``) get right
padding only up to the longest text of the batch: the same embeddings for much less compute.
"""

from __future__ import annotations

import html
import string
import unicodedata
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

DEFAULT_CONTEXT_LENGTH = 77
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _fix_text(text: str) -> str:
    """ftfy's repair, which leaves printable ASCII without entities as it is: such text (most
    queries) skips importing ftfy, a tenth of a second at every cold start."""
    if text.isascii() and text.isprintable() and "&" not in text:
        return text
    return _ftfy()(text)


@cache
def _ftfy() -> Callable[[str], str]:
    try:
        from ftfy import fix_text
    except ImportError:  # ftfy only repairs mojibake; NFC is what matters for ordinary input
        return lambda text: unicodedata.normalize("NFC", text)
    return fix_text


def basic_clean(text: str) -> str:
    """Repair broken unicode and HTML entities, as open_clip does before tokenising."""
    return html.unescape(html.unescape(_fix_text(text))).strip()


def whitespace_clean(text: str) -> str:
    return " ".join(text.split())


def canonicalize(text: str) -> str:
    """SigLIP's text canonicalisation: underscores to spaces, punctuation removed, lower case."""
    return whitespace_clean(text.replace("_", " ").translate(_PUNCTUATION).lower())


def clean_text(text: str, mode: str) -> str:
    """Apply open_clip's ``clean`` mode: ``"lower"``, ``"whitespace"`` or ``"canonicalize"``."""
    text = basic_clean(text)
    if mode == "canonicalize":
        return canonicalize(text)
    text = whitespace_clean(text)
    return text.lower() if mode == "lower" else text


def _token_name(value: Any) -> str | None:
    """tokenizer_config.json stores special tokens either as strings or as AddedToken dicts."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class TextTokenizer:
    """Encodes texts into id and attention-mask arrays for a textual tower: ``context_length``
    wide, or with ``pad_to_longest`` (honoured for right padding only) as wide as the batch's
    longest text."""

    def __init__(
        self,
        tokenizer_file: Path,
        tokenizer_cfg: dict[str, Any],
        text_cfg: dict[str, Any],
        *,
        pad_to_longest: bool = False,
    ) -> None:
        self.context_length = int(text_cfg.get("context_length") or DEFAULT_CONTEXT_LENGTH)
        kwargs = text_cfg.get("tokenizer_kwargs") or {}
        self.clean_mode: str = kwargs.get("clean") or "whitespace"
        tokenizer = Tokenizer.from_file(tokenizer_file.as_posix())
        pad_token = _token_name(tokenizer_cfg.get("pad_token"))
        pad_id = tokenizer.token_to_id(pad_token) if pad_token is not None else None
        if pad_token is None or pad_id is None:
            pad_token, pad_id = tokenizer.id_to_token(0) or "", 0
        # Hugging Face tokenizers may pad on the left (Gemma's do); open_clip follows the tokenizer's setting.
        direction = "left" if tokenizer_cfg.get("padding_side") == "left" else "right"
        self.pad_to_longest = pad_to_longest and direction == "right"
        length = None if self.pad_to_longest else self.context_length
        tokenizer.enable_padding(length=length, pad_id=pad_id, pad_token=pad_token, direction=direction)
        tokenizer.enable_truncation(max_length=self.context_length)
        self._tokenizer = tokenizer

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(ids, attention_mask)``, both int64 of shape (n, context_length), or (n, longest)
        with ``pad_to_longest``."""
        encodings = self._tokenizer.encode_batch([clean_text(t, self.clean_mode) for t in texts])
        width = len(encodings[0].ids) if encodings else self.context_length
        ids = np.array([e.ids for e in encodings], dtype=np.int64).reshape(len(texts), width)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64).reshape(ids.shape)
        return ids, mask
