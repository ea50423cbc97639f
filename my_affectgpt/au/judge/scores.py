"""Scores for the AU judge (re-exported by my_affectgpt.au.judge).

`judge_scores` compares the judge's readings of texts with the AU values the texts were written
from; `agreement` compares two readings of the same texts (gold annotations and the judge). A band
"unclear" (a range such as "mild to moderate") counts as no band in both.
"""
from __future__ import annotations

from my_affectgpt.au.facs import ALL_CODES, DEFAULT_BANDS, PRESENCE_ONLY, IntensityBands, active_aus

from .notation import UNCLEAR
from .reader import read_description


def _ratio(num: int, den: int):
    return round(num / den, 4) if den else None


def _prf(tp: int, fp: int, fn: int) -> tuple:
    """Micro precision/recall/F1; nothing asserted and nothing to find is 1.0 (as au_metrics)."""
    p = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return round(p, 4), round(r, 4), round(f, 4)


def judge_scores(pairs, bands: IntensityBands = DEFAULT_BANDS) -> dict:
    """Score (au_values, text) pairs, au_values as OpenFace columns ({"AU06_r": 2.1})."""
    tp = fp = fn = n = halluc = omit = contra = emo = band_ok = band_stated = band_n = 0
    for au_values, text in pairs:
        active = active_aus(au_values, bands)
        r = read_description(text)
        said, act = set(r.present), set(active)
        n, tp, fp, fn = n + 1, tp + len(said & act), fp + len(said - act), fn + len(act - said)
        halluc, omit = halluc + bool(said - act), omit + bool(act - said)
        contra, emo = contra + bool(set(r.absent) & act), emo + bool(r.emotion_words)
        for code in said & act - PRESENCE_ONLY:
            band_n += 1
            band_stated += r.present[code] not in (None, UNCLEAR)
            band_ok += r.present[code] == bands.band(active[code])
    p, rec, f = _prf(tp, fp, fn)
    return {"n": n, "au_precision": p, "au_recall": rec, "au_f1": f,
            "hallucination_rate": _ratio(halluc, n), "omission_rate": _ratio(omit, n),
            "contradiction_rate": _ratio(contra, n), "band_agreement": _ratio(band_ok, band_n),
            "band_stated_rate": _ratio(band_stated, band_n), "emotion_word_rate": _ratio(emo, n)}


def agreement(gold, predicted) -> dict:
    """How two readings of the same texts agree (Reading or JSON dicts; recall is over gold)."""
    gold = [g.to_json() if hasattr(g, "to_json") else dict(g) for g in gold]
    predicted = [p.to_json() if hasattr(p, "to_json") else dict(p) for p in predicted]
    if len(gold) != len(predicted):
        raise ValueError(f"agreement needs readings of the same texts: {len(gold)} gold, "
                         f"{len(predicted)} predicted")
    tp = fp = fn = atp = afp = afn = exact = band_ok = band_n = 0
    per = {c: [0, 0, 0] for c in ALL_CODES}
    for g, p in zip(gold, predicted):
        gp, pp = dict(g.get("present") or {}), dict(p.get("present") or {})
        gs, ps = set(gp), set(pp)
        tp, fp, fn = tp + len(gs & ps), fp + len(ps - gs), fn + len(gs - ps)
        exact += gs == ps
        for c in (gs | ps) & set(per):
            per[c][0 if c in gs and c in ps else 1 if c in ps else 2] += 1
        both = [c for c in gs & ps if gp[c] not in (None, UNCLEAR) and pp[c] not in (None, UNCLEAR)]
        band_n, band_ok = band_n + len(both), band_ok + sum(gp[c] == pp[c] for c in both)
        ga, pa = set(g.get("absent") or ()), set(p.get("absent") or ())
        atp, afp, afn = atp + len(ga & pa), afp + len(pa - ga), afn + len(ga - pa)
    (p, r, f), (ap, ar, af) = _prf(tp, fp, fn), _prf(atp, afp, afn)
    return {"n": len(gold), "present_precision": p, "present_recall": r, "present_f1": f,
            "band_agreement": _ratio(band_ok, band_n), "band_n": band_n,
            "absent_precision": ap, "absent_recall": ar, "absent_f1": af,
            "exact_match_rate": _ratio(exact, len(gold)),
            "per_code_f1": {c: _prf(*v)[2] if sum(v) else None for c, v in per.items()}}
