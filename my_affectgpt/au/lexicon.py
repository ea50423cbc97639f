"""Read AU mentions, their intensity wording and emotion words back out of a description.

This is the scoring side of facs.py: the rule teacher writes with the same phrases, and the
AU-Agent evaluation scores model outputs with these functions (precision, recall,
hallucination, band agreement, emotion-word rate).
"""
from __future__ import annotations

import re
from functools import lru_cache

from .facs import ACTION_UNITS, BAND_PATTERNS, EMOTION_WORDS

# A clause ends at punctuation or a coordinating word; a band word describes the AU mention
# that follows it inside the same clause.
_CLAUSE_BREAK = re.compile(r"[.;:,!?]|\band\b|\bwith\b|\bplus\b", re.I)
_SENTENCE_START = re.compile(r"[.;:!?]")


def _code_pattern(code: str) -> str:
    return rf"\bAU ?0?{int(code[2:])}\b"


@lru_cache(maxsize=None)
def _au_regexes():
    return {code: re.compile(f"{au.pattern}|{_code_pattern(code)}", re.I)
            for code, au in ACTION_UNITS.items()}


_BAND_RE = {band: re.compile(p, re.I) for band, p in BAND_PATTERNS.items()}
_EMOTION_RE = re.compile(r"\b(" + "|".join(EMOTION_WORDS) + r")\b", re.I)


def mentioned_aus(text: str) -> set:
    """AU codes the text mentions, by FACS name, a known paraphrase, or the code itself."""
    return {code for code, rx in _au_regexes().items() if rx.search(text)}


def _clause_bounds(text: str, start: int, end: int) -> tuple:
    lo, hi = 0, len(text)
    for m in _CLAUSE_BREAK.finditer(text):
        if m.end() <= start:
            lo = m.end()
        elif m.start() >= end:
            hi = m.start()
            break
    return lo, hi


def _band_in(text: str, last: bool):
    hits = [(m.start(), band) for band, brx in _BAND_RE.items() for m in brx.finditer(text)]
    return (max(hits) if last else min(hits))[1] if hits else None


def mentioned_bands(text: str) -> dict:
    """{code: band or None} for each mentioned AU: the intensity word of the clause of its
    first mention, preferring the closest one before it ("a slight X") over one after it
    ("X raised slightly"); else the last one earlier in the same sentence, which a list shares
    ("Slight X, Y and Z."); None when there is none."""
    out = {}
    for code, rx in _au_regexes().items():
        m = rx.search(text)
        if not m:
            continue
        lo, hi = _clause_bounds(text, m.start(), m.end())
        sentence = _SENTENCE_START.split(text[:lo])[-1]
        out[code] = (_band_in(text[lo:m.start()], last=True) or _band_in(text[m.end():hi], last=False)
                     or _band_in(sentence, last=True))
    return out


def emotion_words(text: str) -> list:
    """Emotion words the text uses (lower-cased, in order)."""
    return [m.group(0).lower() for m in _EMOTION_RE.finditer(text)]
