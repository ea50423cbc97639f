"""Regex building blocks of the AU judge's tables: alternations, inflections, compiled rows with a
substring gate, and the scan over a lower-cased text."""
from __future__ import annotations

import re

try:
    import re._parser as _sre
except ImportError:          # Python < 3.11
    import sre_parse as _sre


def alt(*parts: str) -> str:
    return "(?:" + "|".join(parts) + ")"


def forms(word: str) -> list[str]:
    """raise -> raises, raised, raising, raiser(s); a trailing '!' doubles: drop! -> dropped."""
    w = word.rstrip("!")
    if w.endswith("e"):
        return [w, w + "s", w + "d", w[:-1] + "ing", w + "r", w + "rs"]
    base = w + w[-1] if word.endswith("!") else w
    s = w + "es" if w.endswith(("s", "sh", "ch", "x", "z")) else w + "s"
    return [w, s, base + "ed", base + "ing", base + "er", base + "ers"]


def W(*words: str) -> str:
    """Alternation, longest first (regex alternation takes the first branch that matches)."""
    return alt(*sorted(set(words), key=len, reverse=True))


def WS(text: str) -> str:
    """W over space-separated words; "_" joins a multi-word one."""
    return W(*(w.replace("_", r"\s+") for w in text.split()))


def V(*words: str) -> str:
    """Alternation of all inflections of `words`."""
    return W(*(f for w in words for f in forms(w)))


def _factors(items) -> frozenset | None:
    """Strings one of which every match of a parsed regex contains (None: no such guarantee)."""
    best, run = None, ""

    def better(a, b):
        if a is None or b is None:
            return a if b is None else b
        return a if (min(map(len, a)), -len(a)) >= (min(map(len, b)), -len(b)) else b
    for op, av in list(items) + [(None, None)]:
        if op is _sre.LITERAL:
            run += chr(av)
            continue
        if run:
            best, run = better(best, frozenset([run])), ""
        if op is _sre.SUBPATTERN:
            best = better(best, _factors(av[-1]))
        elif op is _sre.BRANCH:
            subs = [_factors(b) for b in av[1]]
            best = better(best, None if None in subs else frozenset().union(*subs))
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and av[0] >= 1:
            best = better(best, _factors(av[2]))
    return best


def compiled(pattern: str, bounded: bool = True) -> tuple:
    """(regex, gate): the gate is a few substrings one of which any match contains, so a text
    without them skips the regex (scanning ~100 regexes is most of the reader's time)."""
    rx = re.compile(rf"\b(?:{pattern})\b" if bounded else pattern)
    try:
        found = _factors(_sre.parse(rx.pattern))
    except Exception:        # a private parser API; without it every pattern simply runs
        found = None
    gate = tuple(sorted(f for f in found if not any(g != f and g in f for g in found))) \
        if found else None
    return rx, gate


def scan(table: list, low: str):
    """(start, end, row) for every match in lower-cased `low` of the rows of a compiled table."""
    for row in table:
        if row[1] is None or any(g in low for g in row[1]):
            for m in row[0].finditer(low):
                yield m.start(), m.end(), row


def lower(text: str) -> str:
    """Lower-case without moving any character offset ("İ".lower() has two characters)."""
    low = text.lower()
    if len(low) != len(text):
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    low = low.replace("\u2019", "'")
    # "upper_lids", "lip_corners": keys of structured answers read as words (not "AU06_r")
    return re.sub(r"(?<=[a-z])_(?=[a-z])", " ", low) if "_" in low else low
