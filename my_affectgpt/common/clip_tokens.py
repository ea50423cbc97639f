"""CLIP's text context: AU descriptions are written to fit it, and encoders warn when one does not.

Every open_clip CLIP text tower (ViT-B/32, ViT-L/14, ...) reads at most 77 tokens, start and end
tokens included, and silently drops the rest, so a description's tail (usually the mouth and chin
AUs) would never reach the AU features.
"""
from __future__ import annotations

from functools import lru_cache

CLIP_CONTEXT = 77


@lru_cache(maxsize=1)
def _bpe():
    from open_clip.tokenizer import SimpleTokenizer  # lazy: importing open_clip takes seconds

    return SimpleTokenizer()


def clip_token_count(text: str) -> int:
    """Tokens CLIP's BPE gives `text`, with the start and end tokens."""
    return len(_bpe().encode(text)) + 2
