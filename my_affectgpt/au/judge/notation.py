"""FACS notation in a description: where the codes are, which AUs and grades they name.

FACS coders write `6C+12D+25B`, `R14A`, `AU 4B`, `AU1 at C`, `AUs 6 and 12`, and deny with "9 and
10 coded absent", "AU15 = 0", "no 4". This module finds those spans (`code_spans`) and reads them
(`items`, `grade_after`); the reader decides polarity and scope as for any other mention. Codes
outside OpenFace's 18 are read like the rest and reported as unmapped by the reader, never moved
onto a neighbouring AU. Bare numbers count as codes only inside a score string, with a side prefix
or grade letter, or, in a text that already has a code, in a list next to a coder's word
("absent: 9, 10", "no 4", "9 and 10 coded absent"). Codes spoken and transcribed ("A U six at
C", "action unit four, trace", "twelve D", "no twenty-three") are read the same way: a number word
counts as a code after "A U" / "action unit", or, in a coder's text, with a grade letter, a band
word or a coder's word next to it.
"""
from __future__ import annotations

import re

GRADES = {"a": "trace", "b": "slight", "c": "marked", "d": "severe", "e": "maximum"}
UNCLEAR = "unclear"

_NUM = r"0*\d{1,2}"
_NOT_VALUE = r"(?![.,]\d|\s*%|\s*/\s*\d|\s*(?:ms|s|sec|frames?)\b)"   # 2.5, 40%, 3/5, 12 frames
_ITEM = rf"(?:[lrub](?=\d))?{_NUM}[a-e]?\b{_NOT_VALUE}"               # R14A, 4B, 26
_AU = r"(?:action\s+units?|aus?|facs(?:\s+aus?)?)"
_SEP = r"\s*(?:\+|&|/|,\s*(?:and|or)\s+|,|\band\b|\bor\b)\s*"
_CONT = rf"(?:{_SEP}(?:{_AU}[\s_-]?)?{_ITEM})"
_CODE = re.compile(
    rf"\b{_AU}s?[\s_-]?(?:{_NUM}[a-e]?(?:_[rc])?\b{_NOT_VALUE}){_CONT}*"   # AU12, AUs 6 and 12
    rf"|\b{_ITEM}(?:\s*\+\s*(?:{_AU}[\s_-]?)?{_ITEM})+"                   # 1B+2B+5C+26B
    rf"|\b[lrub]{_NUM}[a-e]?\b{_NOT_VALUE}"                                # R14A, L12
    rf"|\b(?![23]d\b){_NUM}[a-e]\b(?!['’-])")                              # 4B (not 3D)
_BARE_LIST = rf"{_NUM}\b{_NOT_VALUE}(?:{_SEP}{_NUM}\b{_NOT_VALUE})*"
_CODER_BEFORE = (r"(?:absent|neg(?:ative)?|no|not|none|nil|present|also|plus|codes?|coded|coding|scored|scoring|"
                 r"without|except|rather\s+than|instead\s+of)")
_BEFORE = re.compile(rf"\b{_CODER_BEFORE}\s*[:=-]?\s*(?:as\s+)?({_BARE_LIST})")
_AFTER = re.compile(rf"(?<![\w.])({_BARE_LIST})(?=\s+(?:(?:both|all|also)\s+)?(?:coded|scored|rated|absent|"
                    rf"not\s+(?:present|scored|coded|seen))\b"
                    rf"|\s*(?:=|:)\s*0(?![.,]?\d))")
_ITEM_READ = re.compile(r"([lrub])?0*(\d{1,2})([a-e])?(?![\d.])")
# numbers spoken as words (dictated notes): one ... ninety-nine
_UNITS = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
          "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
WORD_NUMBERS = {w: i for i, w in enumerate(_UNITS, 1)}
WORD_NUMBERS.update(_TENS)
WORD_NUMBERS.update({f"{t}-{u}": v + i for t, v in _TENS.items() for i, u in enumerate(_UNITS[:9], 1)})
_WORD_NUM = ("(?:(?:" + "|".join(_TENS) + r")(?:[- ](?:" + "|".join(_UNITS[:9]) + "))?|"
             + "|".join(sorted(_UNITS, key=len, reverse=True)) + ")")
_SPOKEN_AU = re.compile(rf"\b(?:a\.?\s?u\.?|action\s+units?)\s+({_WORD_NUM})\b")
_SPOKEN_GRADED = re.compile(
    rf"\b({_WORD_NUM})\b(?=(?:\s*,)?\s+(?:(?:is\s+)?at\s+|is\s+)?(?:[a-e](?:\s+[a-e])*\b(?!['’])|"
    r"(?:trace|slight|marked|severe|maximum|extreme|present|absent|not\s+there)\b))")
_SPOKEN_LISTED = re.compile(rf"\b(?:no|not\s+coding|not\s+scoring|without|plus(?:\s+a)?|also(?:\s+a)?)\s+"
                            rf"({_WORD_NUM})\b(?!\s+\w+s\b)")      # not "no two lines"
# a grade stated after the code: "AU1 at C", "AU12: D", "12(E)", "AU6 - intensity B", "B/C"
_GRADE_AFTER = re.compile(
    r"\s*(?:\(\s*)?(?:(?:at|is|=|:|-|–|—|grade[d]?|intensity|level|of|scored|coded)\s*:?\s*)*"
    r"(?:\(\s*)?([A-E])(?:\s*(?:/|-|–|to)\s*([A-E]))?(?=\s*(?:[),.;:+\n]|$|and\b|or\b|AU|\d))")


def code_spans(low: str, text: str | None = None) -> list:
    """(start, end) of the FACS codes in lower-cased `low` (its original `text` tells grade
    letters from articles), overlaps merged."""
    spans = [m.span() for m in _CODE.finditer(low)]
    bare = [m.span(1) for rx in (_BEFORE, _AFTER) for m in rx.finditer(low)]
    if spans or len(bare) >= 2:                  # a coder's text: bare lists next to coder words
        spans += bare
        spans += _between_codes(low, sorted(spans))
    spans += _spoken(low, text or low, bool(spans))
    merged = []
    for a, b in sorted(spans):
        if merged and a < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _spoken(low: str, text: str, coder: bool) -> list:
    """Codes spoken as words: always after "A U" / "action unit"; with a grade letter (a
    capital in the original: "twelve D", not "twelve a"), a band word or a coder's denial when
    the text is a coder's (it has codes, or two such spoken codes)."""
    always = [m.span() for m in _SPOKEN_AU.finditer(low)]
    graded = [m.span(1) for m in _SPOKEN_GRADED.finditer(low) if _no_article_after(text, m.end(1))]
    listed = [m.span(1) for m in _SPOKEN_LISTED.finditer(low)]
    if coder or always or len(graded) + len(listed) >= 2:
        return always + graded + listed
    return always


_LETTER_AFTER = re.compile(r"(?:\s*,)?\s+(?:(?:is\s+)?at\s+|is\s+)?([a-eA-E])\b")


def _no_article_after(text: str, end: int) -> bool:
    """No letter follows, or a capital one: a grade ("twelve D"), not an article ("twelve a")."""
    m = _LETTER_AFTER.match(text, end)
    return m is None or m.group(1).isupper()


_BARE = re.compile(rf"(?<![\w.]){_NUM}\b{_NOT_VALUE}")
_GRADED = re.compile(r"[a-e]$")


def _between_codes(low: str, spans: list) -> list:
    """Bare numbers in a space-separated score string: "20C 28 45E" (a code on both sides), or
    after a graded code at the end ("1B 5D 28."): not a value, which would follow an ungraded
    code ("AU12 3")."""
    out = []
    for m in _BARE.finditer(low):
        a, b = m.span()
        left = next((s for s in reversed(spans) if s[1] <= a), None)
        right = next((s for s in spans if s[0] >= b), None)
        near_left = left is not None and not low[left[1]:a].strip(" ,+")
        near_right = right is not None and not low[b:right[0]].strip(" ,+")
        ends = not low[b:b + 2].strip() or low[b] in ".;,)\n"
        if near_left and (near_right or ends and _GRADED.search(low[left[0]:left[1]])):
            out.append((a, b))
    return out


def items(span: str) -> list:
    """[(AU code, grade band or None)] named in one code span ("6c+12d" -> AU06 marked, AU12
    severe); "AU 4" has no grade; the side prefix is dropped."""
    body = re.sub(rf"\b(?:{_AU}s?|a\.?\s?u\.?)[\s_-]?", " ", span.lower())
    spoken = re.fullmatch(rf"\s*({_WORD_NUM})\s*", body)
    if spoken:
        number = WORD_NUMBERS[re.sub(r"\s+", "-", spoken.group(1))]
        return [(f"AU{number:02d}", None)]
    return [(f"AU{int(num):02d}", GRADES.get(letter)) for _, num, letter in _ITEM_READ.findall(body)]


def grade_after(text: str, end: int):
    """(band, end) of a grade letter written after a code ending at `end` in the original
    `text` (capital letters only: "AU12 at a moderate level" has no grade), else None; two
    letters that differ ("B/C") are the band "unclear"."""
    m = _GRADE_AFTER.match(text, end)
    if m is None:
        return None
    first, second = m.group(1).lower(), (m.group(2) or m.group(1)).lower()
    return (GRADES[first] if first == second else UNCLEAR), m.end()
