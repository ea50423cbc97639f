"""Audit of the references that come from an external teacher (the API teacher, Alpaca/ShareGPT
files, MER-Factory descriptions): the independent AU judge reads each reference and compares
what it names with the AU values of its own sample, so stats.json tells how faithful the
training targets are. `--audit-filter` also drops the unfaithful ones.

Rule-teacher references are not audited: the rule teacher writes from the active AUs and names
exactly those, by construction (tests/test_prepare.py checks it), so auditing them would only
measure the judge.
"""
from __future__ import annotations

from ..au.facs import ALL_CODES, DEFAULT_BANDS, IntensityBands, active_aus
from my_affectgpt.au.judge import judge_scores, read_description

# "openface+rule", "mer-factory+rule", "alpaca+rule": answers the rule teacher wrote
RULE_SUFFIX = "+rule"
SCORE_KEYS = ("n", "au_precision", "au_recall", "au_f1", "hallucination_rate", "band_agreement",
              "emotion_word_rate")
NAMES_INACTIVE, MISSES_ACTIVE = "names_inactive_au", "misses_active_aus"
TOP = 5


def is_external(sample: dict) -> bool:
    return not sample["source"].endswith(RULE_SUFFIX)


def _scores(pairs: list, bands: IntensityBands) -> dict:
    s = judge_scores(pairs, bands)
    return {k: s[k] for k in SCORE_KEYS}


def _top(per_au: dict, key: str) -> list:
    ranked = sorted(((c, v[key]) for c, v in per_au.items() if v[key]),
                    key=lambda cv: (-cv[1], cv[0]))
    return [list(cv) for cv in ranked[:TOP]]


def drop_reason(active: set, named: set, max_missed: int) -> str | None:
    """Why a reference fails the filter, or None. Naming an inactive AU comes first, so each
    dropped reference has one reason. AU28 (presence only) counts like any AU: named while its
    `_c` is below 0.5 is naming an inactive AU."""
    if named - active:
        return NAMES_INACTIVE
    if len(active - named) > max_missed:
        return MISSES_ACTIVE
    return None


def audit_references(samples: list, bands: IntensityBands = DEFAULT_BANDS, *, drop: bool = False,
                     max_missed: int = 0, log=print) -> tuple:
    """(samples kept, the `teacher_audit` stats or None when no reference is external).

    Scores cover every external reference, dropped or not: they describe the teacher. Every
    figure is a sum over samples, so it does not depend on their order.
    """
    external = [s for s in samples if is_external(s)]
    if not external:
        return samples, None
    # per AU over the external references: active = named + missed; hallucinated = named
    # while inactive.
    per_au = {c: {"active": 0, "named": 0, "missed": 0, "hallucinated": 0} for c in ALL_CODES}
    named_of: dict = {}       # answer text -> AUs it names (API answers repeat)
    reasons: dict = {}        # id(sample) -> drop reason
    for s in external:
        active = set(active_aus(s["au"], bands))
        if s["answer"] not in named_of:
            named_of[s["answer"]] = set(read_description(s["answer"]).present)
        named = named_of[s["answer"]]
        for c in active:
            per_au[c]["active"] += 1
            per_au[c]["named" if c in named else "missed"] += 1
        for c in named - active:
            per_au[c]["hallucinated"] += 1
        reason = drop_reason(active, named, max_missed)
        if reason:
            reasons[id(s)] = reason

    by_source: dict = {}
    for s in external:
        by_source.setdefault(s["source"], []).append((s["au"], s["answer"]))
    overall = _scores([(s["au"], s["answer"]) for s in external], bands)
    audit = dict(overall, per_source={
        src: overall if len(by_source) == 1 else _scores(pairs, bands)
        for src, pairs in sorted(by_source.items())},
        per_au=per_au, most_missed=_top(per_au, "missed"),
        most_hallucinated=_top(per_au, "hallucinated"), dropped=None)
    if not drop:
        return samples, audit

    counts = {r: sum(v == r for v in reasons.values()) for r in (NAMES_INACTIVE, MISSES_ACTIVE)}
    audit["dropped"] = {"total": len(reasons)} | counts
    log(f"audit filter: dropped {len(reasons)} of {len(external)} external references "
        f"({counts[NAMES_INACTIVE]} name an inactive AU, {counts[MISSES_ACTIVE]} miss more than "
        f"{max_missed} active AUs)")
    return [s for s in samples if id(s) not in reasons], audit


def summary_lines(audit: dict) -> list:
    """A few lines for the end of a build: overall figures, then one line per source."""
    def fmt(v):
        return "n/a" if v is None else f"{v:.3f}"

    def figures(s):
        return (f"AU-F1 {fmt(s['au_f1'])}, hallucination {fmt(s['hallucination_rate'])}, "
                f"band agreement {fmt(s['band_agreement'])}, "
                f"emotion words {fmt(s['emotion_word_rate'])}")

    lines = [f"teacher audit of {audit['n']} external references: {figures(audit)}"]
    lines += [f"  {src}: n {s['n']}, {figures(s)}" for src, s in audit["per_source"].items()]
    if audit.get("dropped"):
        lines.append(f"  dropped by --audit-filter: {audit['dropped']['total']}")
    return lines
