"""Scores for AU descriptions: do they name exactly the active AUs, at the right intensity,
without emotion words? Read by the AU judge (my_affectgpt.au.judge), which shares no
vocabulary with the rule teacher; the teacher's own reader (au/lexicon.py) is reported beside
it, labelled `lexicon`, wherever the two still differ.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from ..au.facs import DEFAULT_BANDS, PRESENCE_ONLY, IntensityBands, active_aus
from ..au.lexicon import emotion_words, mentioned_aus, mentioned_bands
from my_affectgpt.au.judge import judge_scores, read_description

# The faithfulness figures both readers give, for the side-by-side `lexicon` entry.
SHARED_FIGURES = ("au_precision", "au_recall", "au_f1", "hallucination_rate", "band_agreement",
                  "emotion_word_rate")


@dataclass(frozen=True)
class Scored:
    """One input (its AU values), the output to score, and an optional reference text."""
    au: Mapping[str, float]
    output: str
    reference: str | None = None


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 on lower-cased whitespace tokens (longest common subsequence)."""
    a, b = candidate.lower().split(), reference.lower().split()
    if not a or not b:
        return 0.0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, r = lcs / len(a), lcs / len(b)
    return 2 * p * r / (p + r)


def score(items: Iterable[Scored], bands: IntensityBands = DEFAULT_BANDS) -> dict:
    """The judge's figures over all outputs (judge_scores: micro AU precision/recall/F1,
    hallucination, omission and contradiction rates, band agreement, emotion-word rate), plus
    rouge_l (mean over items that have a reference, None when none has) and mean_words; and,
    when they differ, the lexicon's figures under `lexicon`."""
    items = list(items)
    out = judge_scores([(it.au, it.output) for it in items], bands)
    rouge = [rouge_l(it.output, it.reference) for it in items if it.reference is not None]
    out["rouge_l"] = round(sum(rouge) / len(rouge), 4) if rouge else None
    out["mean_words"] = round(sum(len(it.output.split()) for it in items) / len(items), 2) if items else None
    lexicon = lexicon_score(items, bands)
    if any(lexicon[k] != out.get(k) for k in SHARED_FIGURES):
        out["lexicon"] = lexicon
    return out


def lexicon_score(items: list, bands: IntensityBands = DEFAULT_BANDS) -> dict:
    """The same figures read with the rule teacher's lexicon (a mention without any intensity
    word counts as a band disagreement)."""
    tp = fp = fn = 0
    halluc = emo = band_ok = band_total = 0
    for it in items:
        active = active_aus(it.au, bands)
        said = mentioned_aus(it.output)
        tp += len(said & set(active))
        fp += len(said - set(active))
        fn += len(set(active) - said)
        halluc += bool(said - set(active))
        emo += bool(emotion_words(it.output))
        stated = mentioned_bands(it.output)
        for code in said & set(active):
            if code not in PRESENCE_ONLY:
                band_total += 1
                band_ok += stated.get(code) == bands.band(active[code])
    n = len(items)
    precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"au_precision": round(precision, 4), "au_recall": round(recall, 4), "au_f1": round(f1, 4),
            "hallucination_rate": round(halluc / n, 4) if n else None,
            "band_agreement": round(band_ok / band_total, 4) if band_total else None,
            "emotion_word_rate": round(emo / n, 4) if n else None}


COUNT_BUCKETS = ("1", "2", "3", "4", "5", "6", "7", "8", "9+")


def omission_by_count(items: Iterable[Scored], bands: IntensityBands = DEFAULT_BANDS) -> dict:
    """{bucket of active AUs: {"frames", "omission_rate"}}: how often an output leaves out an
    active AU, by how many AUs are active (long states are where it happens)."""
    rows = {b: [0, 0] for b in COUNT_BUCKETS}
    for it in items:
        active = active_aus(it.au, bands)
        if not active:
            continue
        bucket = str(len(active)) if len(active) < 9 else "9+"
        said = read_description(it.output).present
        rows[bucket][0] += 1
        rows[bucket][1] += any(c not in said for c in active)
    return {b: {"frames": n, "omission_rate": round(k / n, 4) if n else None}
            for b, (n, k) in rows.items()}
