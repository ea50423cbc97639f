"""Scores for AU descriptions: do they name exactly the active AUs, at the right intensity,
without emotion words? All read through the FACS lexicon the rule teacher writes with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from ..au.facs import DEFAULT_BANDS, PRESENCE_ONLY, IntensityBands, active_aus
from ..au.lexicon import emotion_words, mentioned_aus, mentioned_bands


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
    """Micro-averaged AU precision/recall/F1 over all outputs, plus per-output rates.

    - hallucination_rate: share of outputs that name at least one inactive AU;
    - emotion_word_rate: share of outputs that use an emotion word;
    - band_agreement: share of correctly mentioned intensity AUs whose intensity word is the
      input's band (a mention without any intensity word counts as a disagreement);
    - rouge_l: mean over items that have a reference (None when none has).
    """
    tp = fp = fn = 0
    n = halluc = emo = 0
    band_ok = band_total = 0
    words = 0
    rouge = []
    for it in items:
        n += 1
        active = active_aus(it.au, bands)
        said = mentioned_aus(it.output)
        tp += len(said & set(active))
        fp += len(said - set(active))
        fn += len(set(active) - said)
        halluc += bool(said - set(active))
        emo += bool(emotion_words(it.output))
        words += len(it.output.split())
        stated = mentioned_bands(it.output)
        for code in said & set(active):
            if code in PRESENCE_ONLY:
                continue
            band_total += 1
            band_ok += stated.get(code) == bands.band(active[code])
        if it.reference is not None:
            rouge.append(rouge_l(it.output, it.reference))
    precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": n,
        "au_precision": round(precision, 4),
        "au_recall": round(recall, 4),
        "au_f1": round(f1, 4),
        "hallucination_rate": round(halluc / n, 4) if n else None,
        "emotion_word_rate": round(emo / n, 4) if n else None,
        "band_agreement": round(band_ok / band_total, 4) if band_total else None,
        "rouge_l": round(sum(rouge) / len(rouge), 4) if rouge else None,
        "mean_words": round(words / n, 2) if n else None,
    }
