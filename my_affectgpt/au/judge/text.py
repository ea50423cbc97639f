"""A description as the judge sees it: tokens, sentences and lines, and its lexical, scope and
band spans, after the clean-ups that need no grammar: a code's gloss dropped ("AU24 (lips pressed
together)"), "they" / "them" resolved to a face part, band ranges merged ("mild to moderate"),
and the token ranges under a "Not observed:" heading."""
from __future__ import annotations

import bisect
import re

from . import notation
from . import patterns as P
from . import vocab as V
from . import words as T

TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+|[^\W\d_]+(?:['’][^\W\d_]+)*|\S")
NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
SENT_END = {".", "!", "?", ";"}


class Item:
    """A matched span (c0/c1 characters, t0/t1 tokens) or a mention built from spans."""
    __slots__ = ("c0", "c1", "t0", "t1", "kind", "name", "val", "codes", "anchor", "clausal",
                 "partner", "negated", "band", "pre", "cands", "oo", "only_denied", "grades", "denies",
                 "src")

    def __init__(self, c0, c1, kind, name="", val=None, t0=0, t1=0):
        self.c0, self.c1, self.kind, self.name, self.val, self.t0, self.t1 = \
            c0, c1, kind, name, val, t0, t1
        self.codes, self.anchor, self.clausal, self.partner = (), t0, False, None
        self.negated, self.band, self.pre, self.cands, self.oo = False, None, False, [], False
        self.only_denied, self.grades, self.denies, self.src = False, {}, False, ""


class Text:
    """One description: tokens, sentence numbers, and its lexical, scope and band spans."""

    def __init__(self, text: str):
        self.text, low = text, P.lower(text)
        self.toks = [(m.start(), m.end()) for m in TOKEN.finditer(low)]
        self.words = [low[a:b] for a, b in self.toks]
        self.starts = [a for a, _ in self.toks]
        self.sent, self.line, self.line_start, n, ln = [], [], [], 0, 0
        for i, (a, _) in enumerate(self.toks):
            breaks = low[self.toks[i - 1][1]:a].count("\n") if i else 0
            n += i > 0 and (self.words[i - 1] in SENT_END and not (
                self.words[i - 1] == "." and i > 1 and self.words[i - 2] in _ABBREVIATIONS) or breaks > 0)
            ln += breaks
            self.sent.append(n)
            self.line.append(ln)
            self.line_start.append(i if i == 0 or breaks else self.line_start[-1])
        self.denied_blocks = _denied_blocks(self, low)
        codes = [(a, b, _CODE_ROW) for a, b in notation.code_spans(low, text)]
        lex, self.gloss_tok = _glosses_dropped(self, self._spans(V.LEXICON, low, codes))
        self.lex = _pronouns_resolved(self, lex)
        self.scope = self._spans(T.SCOPES, low)
        negs = [(s.c0, s.c1) for s in self.scope if s.kind != "contrast"]
        self.band_tok = set()
        self.bands = _ranges(self, [b for b in self._spans(T.BANDS, low)  # "no trace of": no band
                                    if not any(b.c0 < e and a < b.c1 for a, e in negs)])
        self.band_tok = {x for b in self.bands for x in range(b.t0, b.t1)}

    def _spans(self, table: list, low: str, extra=()) -> list:
        """Matches of a table (and `extra` ones), overlaps resolved longest first (then by rank)."""
        found = sorted(((a - b, row[3] if isinstance(row[3], int) else 0, a, b, row)
                        for a, b, row in [*P.scan(table, low), *extra]), key=lambda x: x[:3])
        taken, out = [], []
        for _, _, a, b, row in found:
            i = bisect.bisect_right(taken, (a, 1 << 30))
            if i and taken[i - 1][1] > a or i < len(taken) and taken[i][0] < b:
                continue
            taken.insert(i, (a, b))
            t0 = bisect.bisect_left(self.starts, a)
            if t0 < len(self.toks):
                out.append(Item(a, b, row[2], row[3], row[4], t0,
                                 max(bisect.bisect_left(self.starts, b), t0 + 1)))
        return sorted(out, key=lambda s: s.c0)

    def filler(self, a: int, b: int, allowed, limit: int) -> bool:
        """Tokens a..b are only `allowed` words, -ly adverbs or band words, at most `limit`."""
        return 0 <= b - a <= limit and all(
            w in allowed or (w.endswith("ly") and len(w) > 4) or x in self.band_tok
            for x, w in zip(range(a, b), self.words[a:b]))

    def same(self, *positions) -> bool:
        return len({self.sent[p] for p in positions}) == 1

    def on_bullet_line(self, x: int) -> bool:
        """Token x is on a bullet line ("- ...", "* ...", not a bold "**Heading**")."""
        first = self.line_start[x]
        return self.words[first] in _BULLET and not (
            self.words[first] == "*" and first + 1 < len(self.words) and self.words[first + 1] == "*")


_CODE_ROW = (None, None, "code", "", None)
# a full stop after these ends no sentence: "orb. oris mildly tightened" (clinical notes)
_ABBREVIATIONS = frozenset("orb approx vs cf bilat incl resp".split())
_GLOSS_END = {".", ";", "!", "?", ",", "+", "|", "and", "with", "while", "but", "plus", "whereas"}


def _glosses_dropped(t: Text, lex: list) -> tuple:
    """A code's gloss is the code: "AU24 (lips pressed together)", "26B jaw drop, mouth open"
    assert AU24 (unmapped) and AU26 only, not what the words alone would say (AU23, AU25).
    Returns (the spans left, the tokens of every gloss)."""
    zones, keep = [], set()               # a muscle named before its code keeps its rest rule
    codes = [s for s in lex if s.kind == "code" or s.kind == "cue" and s.val == V.UNMAPPED
             and s.t0 and t.words[s.t0 - 1] == "("]             # "... (mouth stretch)"
    for k, s in enumerate(codes):
        x, stop = s.t1, codes[k + 1].t0 if k + 1 < len(codes) else len(t.words)
        if x < len(t.words) and t.words[x] == "(":
            end = next((y for y in range(x, min(x + 12, stop)) if t.words[y] == ")"), None)
            if end is not None:
                zones.append((x, end))
                continue
        while x < min(stop, s.t1 + 7) and t.same(x, s.t0) and t.words[x] not in _GLOSS_END:
            x += 1
        zones.append((s.t1, x))
        if s.t0 and t.words[s.t0 - 1] == "(":              # "a squint (FACS 44)": its gloss before
            keep.add(id(next((m for m in lex if m.t1 == s.t0 - 1 and m.kind == "muscle"), None)))
            x = s.t0 - 1
            while x > 0 and t.same(x - 1, s.t0) and t.words[x - 1] not in _GLOSS_END | {":"} \
                    and s.t0 - x < 8:
                x -= 1
            zones.append((x, s.t0))
    return ([s for s in lex if s in codes or id(s) in keep
             or not any(a <= s.t0 and s.t1 <= b for a, b in zones)],
            {x for a, b in zones for x in range(a, b)})


def _pronouns_resolved(t: Text, lex: list) -> list:
    """"they" / "them" stand for the last plural face part before them ("sucking them in",
    "a clear gap between them", "they're dragged down"): a part item at the pronoun."""
    out, last, j = [], None, 0
    for x, word in enumerate(t.words):
        while j < len(lex) and lex[j].t0 <= x:
            s = lex[j]
            out.append(s)
            j += 1
            if s.kind == "part" and s.name not in V.NON_AU_PARTS and any(
                    w.endswith("s") and not w.endswith("ss") for w in t.words[s.t0:s.t1]):
                last = s
        if word in _THEY and last is not None and x - last.t1 <= 30 and (not out or out[-1].t1 <= x):
            last = Item(t.toks[x][0], t.toks[x][1], "part", last.name, None, x, x + 1)
            out.append(last)
    return out + lex[j:]


_THEY = frozenset(("they", "them", "they're", "they’re", "they've", "they’ve", "theyre", "theyve"))


_NOT_OBSERVED = re.compile(
    r"(?:^|\n|\|)[ \t]*(?:[-*•#>]+[ \t]*)?(?:\*\*|__)?[ \t]*(?:not\s+(?:observed|present|seen|visible|"
    r"detected|noted|coded|scored|active)|absent|missing|none\s+(?:observed|seen|present))"
    r"(?:[ _](?:actions?|aus?|action\s+units|movements?|features|findings))?"     # absent_actions:
    r"[ \t]*(?:\*\*|__)?[\"']?[ \t]*:(?:[ \t]*(?:\*\*|__))?")
_BULLET = {"-", "*", "•", "–"}


def _denied_blocks(t: "Text", low: str) -> list:
    """Token ranges under a "Not observed:" / "Absent:" heading: the rest of its line and the
    bullet lines below it (answers laid out as Observed / Not observed lists)."""
    blocks = []
    for m in _NOT_OBSERVED.finditer(low):
        x = bisect.bisect_left(t.starts, m.end())
        if x >= len(t.words):
            continue
        head_line, end = t.line[x - 1] if x else 0, x
        if t.line[x] == head_line:             # "Absent: 9, 15." - the rest of its sentence
            while end < len(t.words) and t.same(end, x) and t.words[end] != "|":   # or field
                end += 1
        else:                                  # a heading over bullet lines
            while end < len(t.words) and t.on_bullet_line(end):
                end += 1
        blocks.append((x, end))
    return blocks


def _ranges(t: Text, bands: list) -> list:
    """"mild to moderate", "slight-to-marked", "moderate, possibly strong": one span whose band
    is "unclear" (or the band itself when both ends agree)."""
    out = []
    for b in bands:
        prev = out[-1] if out else None
        if prev is not None and t.same(prev.t0, b.t0) and (
                t.words[prev.t1:b.t0] in (["to"], ["-"], ["–"], ["/"], ["or"], ["-", "to", "-"])
                or t.words[prev.t1:b.t0][:1] == [","] and t.filler(prev.t1 + 1, b.t0, T.HEDGES, 2)
                and prev.t1 + 1 < b.t0):
            merged = Item(prev.c0, b.c1, "band", prev.name if prev.name == b.name
                           else notation.UNCLEAR, t0=prev.t0, t1=b.t1)
            out[-1] = merged
        else:
            out.append(b)
    return out
