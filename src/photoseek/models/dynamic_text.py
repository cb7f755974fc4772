"""A CLIP text tower for ONNX export whose sequence axis is dynamic (needs ``photoseek[torch]``).

open_clip's CLIP text tower masks attention causally and reads the embedding at the end-of-text
token, so the padding after that token never reaches the result: a query padded to the longest
text of its batch embeds exactly as one padded to the full context length, for a fraction of the
compute (most queries are under 20 of the 77 tokens). The tokenizer pads that way only for models
whose config.json says ``text_dynamic_length`` (see ``photoseek.models.tokenizer``).

Two things in open_clip stop a traced graph from taking other lengths: ``CLIP.encode_text`` adds
the whole positional embedding and causal mask, and ``nn.MultiheadAttention`` bakes the traced
length into its reshapes. ``DynamicLengthText`` cuts both to the input's length, and
``traceable_attention`` swaps in an attention that computes the same from the same weights with
length-free reshapes, for the duration of the export only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from open_clip.model import CLIP
from open_clip.transformer import text_global_pool
from torch import nn

_CHECK_TOLERANCE = 1e-5
_CHECK_LENGTHS = (3, 9)
"""Token counts (start and end of text included) of the texts ``check_against_open_clip`` embeds."""


def supports_dynamic_length(model: Any) -> bool:
    """True for open_clip's CLIP class with a causal mask, end-of-text pooling and plain
    batch-first self-attention: the towers whose result provably ignores padding after the text."""
    if not isinstance(model, CLIP) or model.attn_mask is None or model.text_pool_type not in ("argmax", "eos"):
        return False
    if model.text_pool_type == "eos" and model.text_eos_id is None:
        return False
    return bool(model.transformer.batch_first) and all(
        _plain_self_attention(block.attn) for block in model.transformer.resblocks
    )


def _plain_self_attention(attn: Any) -> bool:
    return (
        isinstance(attn, nn.MultiheadAttention)
        and attn.batch_first
        and attn._qkv_same_embed_dim
        and attn.in_proj_bias is not None
        and attn.bias_k is None
        and not attn.add_zero_attn
    )


class DynamicLengthText(nn.Module):
    """``CLIP.encode_text(text, normalize=True)`` with the positional embedding and the causal
    mask cut to ``text``'s length, so the traced graph follows the input's sequence axis."""

    def __init__(self, clip: CLIP) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        clip = self.clip
        length = text.shape[1]
        cast_dtype = clip.transformer.get_cast_dtype()
        x = clip.token_embedding(text).to(cast_dtype) + clip.positional_embedding[:length].to(cast_dtype)
        x = clip.transformer(x, attn_mask=clip.attn_mask[:length, :length])
        x = text_global_pool(clip.ln_final(x), text, clip.text_pool_type, eos_token_id=clip.text_eos_id)
        if isinstance(clip.text_projection, nn.Linear):
            x = clip.text_projection(x)
        elif clip.text_projection is not None:
            x = x @ clip.text_projection
        return F.normalize(x, dim=-1)


class _SelfAttention(nn.Module):
    """``nn.MultiheadAttention``'s batch-first self-attention from its own weights, written with
    reshapes that leave the sequence length to the input (-1), so a trace stays length-free."""

    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        self.mha = mha

    def forward(
        self, query: torch.Tensor, key: Any, value: Any, need_weights: bool = False, attn_mask: Any = None
    ) -> tuple[torch.Tensor, None]:
        mha = self.mha
        heads, width = mha.num_heads, mha.embed_dim
        qkv = F.linear(query, mha.in_proj_weight, mha.in_proj_bias)
        q, k, v = qkv.reshape(query.shape[0], -1, 3, heads, width // heads).permute(2, 0, 3, 1, 4).unbind(0)
        scores = (q * (width // heads) ** -0.5) @ k.transpose(-2, -1)
        if attn_mask is not None:
            scores = scores + attn_mask
        out = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(query.shape[0], -1, width)
        return mha.out_proj(out), None


@contextmanager
def traceable_attention(clip: CLIP) -> Iterator[None]:
    """Swap the text blocks' attention for ``_SelfAttention`` while inside; restore it after."""
    blocks = list(clip.transformer.resblocks)
    originals = [block.attn for block in blocks]
    try:
        for block, attn in zip(blocks, originals):
            block.attn = _SelfAttention(attn)
        yield
    finally:
        for block, attn in zip(blocks, originals):
            block.attn = attn


def check_against_open_clip(clip: CLIP, context_length: int) -> bool:
    """Embed a few texts with open_clip at full length and with ``DynamicLengthText`` (attention
    swapped) at full and at short lengths: True when all agree, so an open_clip release whose
    text tower no longer fits this code falls back to a fixed-length export instead of a wrong one."""
    end_id = clip.text_eos_id if clip.text_pool_type == "eos" else clip.vocab_size - 1
    generator = torch.Generator().manual_seed(0)
    tokens = torch.zeros(len(_CHECK_LENGTHS), context_length, dtype=torch.long)
    for row, count in enumerate(_CHECK_LENGTHS):
        tokens[row, : count - 1] = torch.randint(1, end_id, (count - 1,), generator=generator)
        tokens[row, count - 1] = end_id
    with torch.no_grad():
        reference = clip.encode_text(tokens, normalize=True)
        with traceable_attention(clip):
            tower = DynamicLengthText(clip)
            full = tower(tokens)
            short = tower(tokens[:, : max(_CHECK_LENGTHS)])
    return bool(
        torch.allclose(full, reference, atol=_CHECK_TOLERANCE, rtol=0)
        and torch.allclose(short, reference, atol=_CHECK_TOLERANCE, rtol=0)
    )
