"""Faithfulness judge: what one free-text face description asserts about each of the 18 AUs.

`read_description(text)` follows tests/data/au_judge_guideline.md with its own vocabulary
(`vocab`): it pairs face parts with movements ("the cheeks lift", "a lift of the
cheeks"), takes direct cues (smile, muscles, FACS codes), then decides for each mention
- polarity: a prefix negation (no, not, without, lack of, neither/nor...) covers a coordinated
  list up to a sentence end, a contrast word (but, while...) or a new clause ("..., and the lips
  part"); a postfix one ("X and Y are absent", "AU04: none") denies the list before it;
- band: a band word inside the mention, in front of it in its noun phrase or after it in its
  clause, a 0-5 number after it or a FACS grade; the earliest wins; a band word serves one
  mention only, and the front word of a list's first item carries over the list when no other
  item has a word of its own ("mild X and Y": both; "pronounced X, moderate Y, and Z": Z none).
A muscle described at rest ("relaxation of the zygomaticus major") asserts nothing, a negated
one ("risorius does not stretch the mouth") is denied, and one named as the agent of another
AU's movement ("orbicularis oris draws the lips in") asserts that movement only; a bare
"orbicularis oculi" is AU06 unless its sentence also has lid tightening or a blink (then it is
those). A denied region ("no brow movement", "the mouth is still") denies its AUs, as do closed
lips and "un-" words ("unraised brows"); "the jaw moves" asserts nothing. FACS codes are
read by notation.py, layout (glosses, pronouns, band ranges, "Not observed:" lists) by text.py.
`judge_scores` and `agreement` (scores.py) score the readings.

    python -m my_affectgpt.evaluation.au_judge --input IN.jsonl --json OUT.json
"""
from __future__ import annotations

from dataclasses import dataclass

from my_affectgpt.au.facs import ALL_CODES, DEFAULT_BANDS, IntensityBands

from . import notation
from . import vocab as V
from . import words as T
from .text import NUMBER as _NUMBER
from .text import SENT_END as _SENT_END
from .text import Item as _Item
from .text import Text as _Text
from .emotion_lexicon import emotion_words

__all__ = ["Reading", "read_description"]


@dataclass(frozen=True)
class Reading:
    present: dict          # {code: band or None}
    absent: tuple
    unmapped: tuple
    emotion_words: tuple

    def to_json(self) -> dict:
        return {"present": {c: self.present[c] for c in sorted(self.present)},
                "absent": sorted(self.absent), "unmapped": list(self.unmapped),
                "emotion_words": list(self.emotion_words)}


def _is_clausal(t: _Text, part: _Item, move: _Item) -> bool:
    """"the lips part", "cheeks are raised" make a clause; "lid tightening", "jaw drop" don't."""
    w = t.words[move.t0]
    if T.LINK_VERBS & set(t.words[part.t1:move.t0]):
        return True
    if w.endswith(("ing", "er", "ers", "ment", "ion", "ure")):
        return False
    plural = (t.words[part.t1 - 1].endswith("s")
              or part.t0 > 0 and t.words[part.t0 - 1] in T.DETERMINERS)
    return w.endswith(("ed", "en")) or (w.endswith("s") and not w.endswith("ss")) or plural


def _mentions(t: _Text) -> tuple[list, list]:
    """AU mentions and unmapped movements, from the lexical spans of `t`."""
    lex, ments, unmapped, partner_of = t.lex, [], [], {}   # part index -> (mention, move, side)

    def add(first, last, codes, anchor, clausal=False, partner=None):
        if codes is None or codes == V.NEUTRAL:
            return None
        m = _Item(first.c0, last.c1, "mention", t0=first.t0, t1=last.t1)
        m.codes = () if codes == V.UNMAPPED else tuple(codes)
        m.denies = isinstance(codes, V.Denied)         # "the mouth is still", "unraised"
        m.anchor, m.clausal, m.partner = anchor, clausal, partner
        (unmapped if codes == V.UNMAPPED else ments).append(m)
        return m

    rest_end = -1                                          # a muscle at rest ended here
    for i, s in enumerate(lex):
        if s.kind == "muscle" and _at_rest(t, s):
            rest_end = s.t1
            continue
        if s.kind == "muscle" and _denied_after(t, s):      # "orbicularis oris not tightened"
            m = add(s, s, s.val, s.t0)
            if m is not None:
                m.negated, m.src = True, "muscle"
            continue
        n0 = len(ments)
        if s.kind == "code":
            if s.t0 == rest_end + 1 and t.words[rest_end] == "(":
                continue                                   # "the frontalis (AU1+2) is inactive"
            items = notation.items(t.text[s.c0:s.c1])
            after = notation.grade_after(t.text, s.c1)     # "AU1 at C", "AU12: D"
            grades = {c: g or (after[0] if after else None) for c, g in items}
            m = add(s, s, tuple(c for c in grades if c in ALL_CODES) or None, s.t0)
            if m is not None:
                m.grades = {c: g for c, g in grades.items() if g}
            for c in grades:
                if c not in ALL_CODES:
                    u = add(s, s, V.UNMAPPED, s.t0)
                    u.name = c                             # reported as "AU27", not the span
        elif s.kind in ("cue", "muscle"):
            m = add(s, s, s.val, s.t0)
            if m is not None:
                m.oo, m.src = s.name == V.ORBICULARIS_OCULI, s.kind
        elif s.kind == "move":
            left = right = None
            if i and lex[i - 1].kind == "part" and i - 1 not in partner_of \
                    and t.same(lex[i - 1].t0, s.t0) \
                    and t.filler(lex[i - 1].t1, s.t0, T.LEFT_FILLER, 5):
                left = i - 1
            if i + 1 < len(lex) and lex[i + 1].kind == "part" and t.same(lex[i + 1].t0, s.t0) \
                    and t.filler(s.t1, lex[i + 1].t0, T.RIGHT_FILLER, 4):
                right = i + 1
            trail = _trailing(t, lex, right, s.name) if right is not None else None
            if left is not None and right is not None and ":" in t.words[lex[left].t1:s.t0] \
                    and (trail or V.combo(s.name, lex[right].name) is not None):
                left = None                  # "Brows: a lift of the outer brows": a heading
            cl = V.combo(s.name, lex[left].name) if left is not None else None
            used = s.name
            if cl is not None:
                m = add(lex[left], s, cl, s.t0, _is_clausal(t, lex[left], s))
                partner_of[left] = (m, s, "left")
            elif right is not None and (trail or V.combo(s.name, lex[right].name) is not None) \
                    and not (lex[right].name == "teeth"         # "sucked in over the teeth":
                             and T.LOCATIVE & set(t.words[s.t1:lex[right].t0])):   # a place
                move, last = trail or (s, lex[right])
                m = add(s, last, V.combo(move.name, lex[right].name), s.t0)
                partner_of[right] = (m, s, "right")
                used = move.name             # "moving the lip corners up": an upward move
            else:
                subj = _orphan_subject(t, lex, i)
                own = V.combo(s.name, lex[subj].name, explicit=True) if subj is not None else None
                if own is not None:                # "the chin bunched and dimpled": the chin's
                    add(s, s, own, s.t0)
                elif V.combo(s.name, None) is not None:
                    add(s, s, V.combo(s.name, None), s.t0)
                elif subj is not None:
                    add(s, s, V.combo(s.name, lex[subj].name), s.t0)
            for m in ments[n0:]:
                m.only_denied = used in V.DENY_ONLY_MOVES
    _coordinated_parts(t, lex, partner_of, add)
    return sorted(ments, key=lambda m: m.t0), unmapped


def _at_rest(t: _Text, s: _Item) -> bool:
    """A muscle described at rest (guideline rule 6): "relaxation of the zygomaticus major",
    "a relaxed orbicularis oris", "the frontalis (AU1+2) is inactive / silent / at rest"."""
    x = s.t0 - 1
    while x >= max(0, s.t0 - 3) and t.words[x] in T.DETERMINERS | {"of"}:
        x -= 1
    if x >= 0 and t.words[x] in V.REST_BEFORE and t.same(x, s.t0):
        return True
    x, skip = s.t1, T.LINK_VERBS | T.ADVERBS | T.DETERMINERS | {
        "at", "in", "complex", "group", "muscles", "-", "–", "/", "and", "procerus", "supercilii"}
    if x < len(t.words) and t.words[x] == "(":              # a parenthesis: "(AU12)"
        close = next((y for y in range(x, min(x + 8, len(t.words))) if t.words[y] == ")"), None)
        x = close + 1 if close is not None else x
    while x < min(s.t1 + 8, len(t.words)) and t.same(x, s.t0) and (
            t.words[x] in skip or t.words[x].endswith("ly")):
        x += 1
    if x >= len(t.words) or not t.same(x, s.t0):
        return False
    return t.words[x] in V.REST_AFTER


def _denied_after(t: _Text, s: _Item) -> bool:
    """A muscle whose own action is negated (guideline rule 6): "DAO not contracted", "the
    mentalis is not active", "risorius does not stretch the mouth", "buccinator produces no
    dimpling", "the medial frontalis shows no recruitment"."""
    x = s.t1
    if x < len(t.words) and t.words[x] == "(":              # "(the levator of the upper lid)"
        close = next((y for y in range(x, min(x + 12, len(t.words))) if t.words[y] == ")"), None)
        x = close + 1 if close is not None else x
    while x < min(s.t1 + 14, len(t.words)) and (t.words[x] in T.LINK_VERBS | T.ADVERBS
                                                 or t.words[x].endswith("ly")):
        x += 1
    if x + 1 >= len(t.words) or not t.same(x, s.t0):
        return False
    w, nxt = t.words[x], t.words[x + 1]
    if w in ("no", "none") and t.words[x - 1] in _AGENT_VERBS | T.LINK_VERBS or \
            w in _AGENT_VERBS and nxt in ("no", "none"):     # "shows no recruitment"
        return True
    return w in ("not", "never", *T.NOT_FORMS) and (
        nxt.endswith(("ed", "en", "ing")) or nxt in V.REST_STATE or nxt in _AGENT_VERBS
        or nxt in {"act", "contract", "fire", "pull", "raise", "lift", "lower", "stretch",
                   "tighten", "widen", "elevate", "depress", "oppose", "engage", "move"})


_AGENT_VERBS = frozenset("shows show showed gives give gave produces produce produced causes cause "
                         "caused exhibits exhibit exhibited displays display has have had".split())


def _agents_dropped(t: _Text, ments: list) -> list:
    """"Orbicularis oris draws the lips in over the teeth": a muscle whose clause goes on to
    describe a movement of other AUs is that movement's agent, and asserts only the movement
    (guideline rule 6). Orbicularis oculi keeps its own rule (AU06, or tied to AU07/AU45)."""
    drop = set()
    for m in ments:
        if m.src != "muscle" or m.oo or m.negated:
            continue
        x = m.t1
        if x < len(t.words) and t.words[x] == "(":          # "(the sphincter of the mouth)"
            x = next((y + 1 for y in range(x, min(x + 12, len(t.words))) if t.words[y] == ")"), x)
        while x < len(t.words) and (t.words[x] in T.ADVERBS or t.words[x].endswith("ly")
                                    or x in t.band_tok or t.words[x] == ","):
            x += 1                     # its verb follows at once: "draws both lips inward"
        verb = next((n for n in ments if n is not m and n.src != "muscle"
                     and (n.t0 == x or n.anchor == x)), None)
        if verb is not None and t.same(x, m.t0) and not set(verb.codes) & set(m.codes):
            drop.add(id(m))
        y = m.t0 - 1                   # the agent of a passive: "lips sucked inward by orbicularis oris"
        while y > 0 and t.words[y] in T.DETERMINERS:
            y -= 1
        done = next((n for n in reversed(ments) if n is not m and n.src != "muscle" and n.t1 <= y
                     and not {",", ";", ":"} & set(t.words[n.t1:y])), None) \
            if y > 0 and t.words[y] in ("by", "via") else None
        if done is not None and t.same(y, m.t0) and not set(done.codes) & set(m.codes):
            drop.add(id(m))
    return [m for m in ments if id(m) not in drop]


def _trailing(t: _Text, lex: list, j: int, verb: str):
    """"pulls the lip corners down": a direction word after the part sets the movement
    ("squeezes her eyes shut": the verb and the direction together)."""
    x = lex[j].t1
    while x < len(t.words) and (x in t.band_tok or t.words[x].endswith("ly")):
        x += 1
    name = V.DIRECTIONS.get(t.words[x]) if x < len(t.words) else None
    name = V.VERB_DIRECTIONS.get((verb, name), name)
    if name is None or V.combo(name, lex[j].name) is None:
        return None
    nxt = lex[j + 1] if j + 1 < len(lex) else None
    if nxt is not None and nxt.t0 <= x:
        nxt.kind = "used"                     # the direction word was also read as a movement
        return _Item(0, 0, "move", name), nxt
    return _Item(0, 0, "move", name), _Item(t.toks[x][0], t.toks[x][1], "dir", t0=x, t1=x + 1)


_AFTER_ORPHAN = frozenset("and or but in at to with nor over against toward towards into onto across "
                          "behind from while between beneath under below above by via as so until "
                          "all".split())


def _heading_part(t: _Text, lex: list, i: int):
    """The part named by the heading of a bullet list ("**Forehead & brows**" over "- Slight
    lowering as well"): the last face part of the nearest line above that is not a bullet."""
    s = lex[i]
    if not t.on_bullet_line(s.t0):
        return None
    for j in range(i - 1, -1, -1):
        x = lex[j].t0
        if t.line[x] == t.line[s.t0] or t.on_bullet_line(x):
            continue
        if t.line[s.t0] - t.line[x] > 8:
            return None
        return j if lex[j].kind == "part" and lex[j].name not in V.NON_AU_PARTS else None
    return None


def _orphan_subject(t: _Text, lex: list, i: int):
    """The part of a movement without its own: "the brows are raised and drawn together",
    "relaxed, not lowered", "...; instead they are pulled down"; in a bullet list, the part
    of its heading."""
    found = _orphan_in_sentence(t, lex, i)
    return found if found is not None else _heading_part(t, lex, i)


def _orphan_in_sentence(t: _Text, lex: list, i: int):
    s, x = lex[i], lex[i].t0 - 1
    while x >= max(0, s.t0 - 4) and t.filler(x, x + 1, T.LEFT_FILLER - T.DETERMINERS, 1):
        x -= 1
    if x >= 0 and t.words[x] in T.PRONOUNS:
        return next((j for j in range(i - 1, -1, -1)
                     if lex[j].kind == "part" and s.t0 - lex[j].t1 <= 25), None)
    if i == 0 or not t.same(lex[i - 1].t0, s.t0):
        return None
    between = {w for x, w in enumerate(t.words[lex[i - 1].t1:s.t0], lex[i - 1].t1)
               if x not in t.band_tok and x + 1 not in t.band_tok} - {"any"}
    # ("a touch tightened", "a faint downward pull": the article belongs to the band)
    if not between & T.ORPHAN_COORD or between & T.DETERMINERS and "with" not in between \
            or not t.filler(lex[i - 1].t1, s.t0, T.ORPHAN_OK | T.DETERMINERS, 7):
        return None
    nxt = t.words[s.t1] if s.t1 < len(t.words) and t.same(s.t1, s.t0) else "."
    if nxt[0].isalpha() and nxt not in _AFTER_ORPHAN \
            and s.t1 not in t.band_tok and not nxt.endswith("ly"):
        return None                          # "the lower face": it modifies a noun of its own
    for j in range(i - 1, -1, -1):
        if not t.same(lex[j].t0, s.t0) or s.t0 - lex[j].t1 > 16:
            return None
        if lex[j].kind == "part":
            return j
    return None


def _coordinated_parts(t: _Text, lex: list, partner_of: dict, add) -> None:
    """"the cheeks and lip corners are raised", "raised brows and cheeks": parts share a move."""
    parts = [i for i, s in enumerate(lex) if s.kind == "part"]
    for order, step, side in ((reversed(parts), 1, "left"), (parts, -1, "right")):
        for i in order:
            j = i + step
            if i in partner_of or j not in partner_of or partner_of[j][2] != side:
                continue
            a, b = lex[min(i, j)], lex[max(i, j)]
            gap = set(t.words[a.t1:b.t0])
            if partner_of[j][0] is None or not t.same(a.t0, b.t0) or b.t0 - a.t1 > 4 \
                    or not gap or not gap <= T.LIST_SEP or not gap & (T.COORDINATORS | {"nor"}) \
                    or "," in gap and gap & {"and", "or"} and gap & T.DETERMINERS:
                continue                     # "..., and his chin pushed up": a new clause
            pm, move, _ = partner_of[j]
            m = add(lex[i], lex[i], V.combo(move.name, lex[i].name), move.t0, partner=pm)
            if m is not None:
                m.only_denied = pm.only_denied
            partner_of[i] = (m, move, side)


def _negate(t: _Text, ments: list) -> None:
    """Mark the mentions a negation covers (see the module docstring)."""
    def deny_back(pos) -> bool:              # postfix: "Brow lowering and X are absent"
        k = next((k for k in range(len(ments) - 1, -1, -1) if ments[k].t1 <= pos), None)
        if k is None or not t.same(ments[k].t0, pos) or not all(   # a code's gloss counts as it
                w in T.POSTFIX_GAP or _NUMBER.fullmatch(w) or x in t.gloss_tok
                for x, w in enumerate(t.words[ments[k].t1:pos], ments[k].t1)):
            return False
        ments[k].negated = True
        while k > 0 and set(t.words[ments[k - 1].t1:ments[k].t0]) <= T.LIST_SEP \
                and not ments[k - 1].grades:      # "1B+2B+26A, 12 not present": 12 only
            k -= 1
            ments[k].negated = True
        return True

    prefix = []
    for s in t.scope:
        if s.kind in ("post", "neg"):
            follows = t.words[s.t1] if s.t1 < len(t.words) else "."
            alone = s.kind == "post" or (follows in _SENT_END | {",", ")", "\"", "'", "}", "]"}
                                         and t.words[s.t0] in {"no", "none", "absent", "not"})
            if not (alone and deny_back(s.t0)):
                prefix.append(s)
    ends = sorted([s.t0 for s in t.scope if s.kind == "contrast"]    # or a field separator
                  + [x for x, w in enumerate(t.words) if w == "|"])
    for trig in prefix:
        stop = next((e for e in ends if e >= trig.t1), len(t.words))
        narrow = t.words[trig.t0] in ("rather", "instead")  # "instead of a smile, a frown"
        last, verb_seen = trig.t1, False
        for m in ments:
            if m.anchor < trig.t1 or m.t1 <= trig.t0:
                continue
            if m.anchor >= stop or not t.same(m.anchor, trig.t0):
                break
            if m.t0 >= trig.t1:              # the trigger is not inside the mention
                gap = t.words[last:m.t0]
                if narrow and "," in gap:
                    break
                new_clause = False
                for k, w in enumerate(gap):  # "No X is seen, and a smile", "..., she smiles"
                    verb_seen |= w in T.LINK_VERBS
                    new_clause |= (verb_seen and w in (",", "and")
                                   or w in T.SUBJECTS and k and gap[k - 1] in (",", "and")
                                   or w in ("whose", "which", "where", "who"))
                core = [w for x, w in enumerate(gap, last) if w not in T.DETERMINERS
                        and x not in t.band_tok and not w.endswith("ly")]
                new_clause |= any(x in t.band_tok for x in range(last, m.t0)) and "," in gap
                if new_clause or core and (m.clausal and core[-1] in (",", "and") or core[-1]
                                           == "and" and T.DETERMINERS & set(gap)):
                    break                    # "..., and the lips part", "and a smile"
            m.negated = True
            last = max(last, m.t1)
    for m in ments:
        m.negated |= m.partner is not None and m.partner.negated
        m.negated |= any(a <= m.t0 < b for a, b in t.denied_blocks)


_CLOSERS = frozenset(", ; . : ) !".split())


def _assign_bands(t: _Text, ments: list, bands: IntensityBands) -> None:
    """Give each mention the band the text gives it (see the module docstring)."""
    owned = {x for m in ments for x in range(m.t0, m.t1)}
    claimed = set()
    for m in ments:                                  # inside: "the corners pulled slightly up"
        for b in t.bands:
            if m.t0 <= b.t0 and b.t1 <= m.t1:
                m.cands.append((b.t0, b.name))
                claimed.add(id(b))
    for b in t.bands:          # closing its phrase: "medial frontalis marked, lateral ... trace"
        m = next((m for m in reversed(ments) if m.t1 <= b.t0), None)
        if id(b) in claimed or m is None or b.t1 < len(t.words) and t.words[b.t1] not in _CLOSERS \
                or not t.filler(m.t1, b.t0, T.ADVERBS | {"is", "are", "was", "were"}, 2) \
                or not t.same(m.t0, b.t0):
            continue
        m.cands.append((b.t0, b.name))
        claimed.add(id(b))
    pre_ok = T.PRE_FILLER | T.DETERMINERS
    for m in ments:                                  # in front: "a slight lift of the cheeks"
        end = m.t0
        for b in reversed(t.bands):
            if b.t1 > end:
                continue
            gap = t.words[b.t1:end]
            ok = t.filler(b.t1, end, pre_ok, 4) if end == m.t0 else set(gap) <= T.BAND_JOIN
            if not ok or id(b) in claimed or owned.intersection(range(b.t1, end)) \
                    or (t.words[b.t1 - 1].endswith("ly") and "," in gap):
                break                                # "slightly, a smile": no adverb on a noun
            m.cands.append((b.t0, b.name))
            m.pre = True
            claimed.add(id(b))
            end = b.t0                               # "a slight but clear smile"
    for m in ments:                                  # after: "the cheeks lift slightly"
        after = _past_gloss(t, m.t1)                 # "AU12 lip corner puller: marked"
        b = next((b for b in t.bands if b.t0 >= after and id(b) not in claimed), None)
        if b is not None and t.filler(after, b.t0, T.POST_FILLER, 4) and t.same(b.t0, m.t0) \
                and not owned.intersection(range(after, b.t0)):
            m.cands.append((b.t0, b.name))
            claimed.add(id(b))
        for x in range(after, min(after + 7, len(t.words))):   # a number: "AU12 (3.2)"
            if x in owned or not t.same(x, m.t0):
                break
            if _NUMBER.fullmatch(t.words[x]):
                v = float(t.words[x])
                if v <= 5 and (x + 1 == len(t.words) or t.words[x + 1] != "%"):
                    m.negated |= v == 0
                    m.cands += [(x, bands.band(v))] if v else []
                break
            if t.words[x] not in T.NUM_FILLER:
                break
    lists = []
    for m in ments:
        if m.cands:
            first = min(m.cands)
            m.band, m.pre = first[1], m.pre and first[0] < m.t0
        start = min([m.t0] + [x for x, _ in m.cands if x < m.t0])     # its own front word
        gap = set(t.words[lists[-1][-1].t1:start]) if lists else set()
        if gap and gap <= {",", "and", "or", "&", "/"}:
            lists[-1].append(m)
        else:
            lists.append([m])
    for head, *rest in lists:        # "mild cheek raising and lip corner pulling": shared, unless
        if head.pre and head.band and not any(m.cands for m in rest):    # others have their own
            for m in rest:
                m.band, m.pre = head.band, True
    for m in ments:
        if m.band is None and m.partner is not None:
            m.band = m.partner.band


def _past_gloss(t: _Text, x: int) -> int:
    """The first token after a code's gloss that starts at x, or a band word or number inside
    it: "AU05 upper lid raiser 1.8", "AU12 lip corner puller: marked"."""
    while x in t.gloss_tok and x not in t.band_tok and not _NUMBER.fullmatch(t.words[x]):
        x += 1
    return x


def read_description(text: str) -> Reading:
    """What `text` asserts about each AU: present (with band), absent, unmapped, emotion words."""
    t = _Text(text or "")
    ments, unmapped = _mentions(t)
    _negate(t, sorted(ments + unmapped, key=lambda m: m.t0))
    ments = [m for m in ments if m.negated or not m.only_denied]    # "no jaw movement" only
    ments = [m for m in ments if not (m.denies and m.negated)]      # "not still": nothing said
    for m in ments:
        m.negated |= m.denies                                       # "the mouth is still"
    ments = _agents_dropped(t, ments)
    for m in ments:             # orbicularis oculi tied to the lids tightening or to a blink
        tied = {c for n in ments if n is not m and n.negated == m.negated
                and t.same(n.t0, m.t0) for c in n.codes if c in ("AU07", "AU45")}
        if m.oo and tied:
            m.codes = tuple(sorted(tied))
    _assign_bands(t, ments, DEFAULT_BANDS)
    present, absent = {}, set()
    for m in ments:
        codes = m.codes
        if codes == ("AU25", "AU26") and m.band in ("trace", "slight"):
            codes = ("AU25",)                     # "slightly open" asserts lips part only
        if m.negated:
            absent.update(codes)
        for c in () if m.negated else codes:
            if present.get(c) is None:            # the first band given wins
                present[c] = m.grades.get(c, m.band)
    phrases = []
    for m in sorted(unmapped, key=lambda m: m.t0):
        p = m.name or " ".join(t.text[m.c0:m.c1].split())
        if not m.negated and p not in phrases:
            phrases.append(p)
    return Reading(present={c: present[c] for c in sorted(present)},
                   absent=tuple(sorted(absent - set(present))), unmapped=tuple(phrases),
                   emotion_words=tuple(emotion_words(t.text)))
