"""Emotion metrics of MER-UniBench style, on canonical labels (emotion_labels.normalize_label).

All functions take {name: ...} mappings; a name with a ground truth but no prediction counts as
a prediction with no labels (a miss), never as a skipped sample.

Hit rate (basic-emotion datasets: one ground-truth emotion per sample)::

    hit_i    = 1 if g_i is in B(Y_i) else 0,  B(Y) = Y ∪ {basic_emotion(y) : y in Y}
    hit rate = mean_i hit_i         over the samples whose ground truth is not empty

  where g_i is the basic emotion of the ground-truth label (the label itself when it has none)
  and Y_i the predicted label set: "joyful" hits a ground truth of "happiness".

Set precision / recall / F1 (open-vocabulary datasets; MER-UniBench's set-level accuracy and
recall, AffectGPT `calculate_openset_overlap_rate`)::

    P_i = |G_i ∩ Y_i| / |Y_i|   (0 when Y_i is empty)
    R_i = |G_i ∩ Y_i| / |G_i|
    P = mean_i P_i,  R = mean_i R_i,  F1 = 2 P R / (P + R)   (0 when P + R = 0)

  over the samples whose G_i is not empty. F1 is taken from the averaged P and R, as upstream
  does, not averaged per sample.

Emotion wheels: a wheel maps words to groups at one level (read_wheel). Before the set metrics
every label is replaced by its group, and labels the wheel does not know are dropped (upstream
does the same), so G_i and Y_i become sets of groups. Each wheel gives its own P / R / F1 and
the report also averages P, R and F1 over the wheels.

Sentiment (positive vs negative; samples whose ground truth is neutral are left out)::

    F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)        for c in {positive, negative} (0 if 0/0)
    weighted F1 = sum_c (n_c / N) F1_c             n_c: samples whose ground truth is c
    accuracy    = (TP_positive + TP_negative) / N

  The predicted sentiment of a label set is the polarity with more labels; a tie goes to the
  polarity of the first polar label; no polar label gives "neutral", which is wrong for every
  evaluated sample (a false negative of its true class, a false positive of none).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterable, Mapping

from my_affectgpt.common.errors import InputError

from .emotion_labels import basic_emotion, clean_label, normalize_label, polarity, synonyms

SENTIMENT_CLASSES = ("positive", "negative")


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def hit_rate(gt: Mapping[str, str], pred: Mapping[str, Iterable[str]]) -> dict:
    """{"hit_rate", "hits", "n"} over the names of `gt` with a non-empty emotion."""
    hits = n = 0
    for name, label in gt.items():
        target = basic_emotion(label) or normalize_label(label)
        if not target:
            continue
        predicted = {normalize_label(y) for y in pred.get(name, ())}
        predicted |= {basic_emotion(y) for y in predicted} - {None}
        n += 1
        hits += target in predicted
    return {"hit_rate": hits / n if n else 0.0, "hits": hits, "n": n}


def set_scores(gt: Mapping[str, Iterable[str]], pred: Mapping[str, Iterable[str]],
               wheel: Mapping[str, str] | None = None) -> dict:
    """{"precision", "recall", "f1", "n"} over the names of `gt` with non-empty label sets."""
    precisions, recalls = [], []
    for name, labels in gt.items():
        g = group_labels(labels, wheel) if wheel is not None else canonical_set(labels)
        if not g:
            continue
        y = group_labels(pred.get(name, ()), wheel) if wheel is not None \
            else canonical_set(pred.get(name, ()))
        common = len(g & y)
        precisions.append(common / len(y) if y else 0.0)
        recalls.append(common / len(g))
    n = len(precisions)
    p = sum(precisions) / n if n else 0.0
    r = sum(recalls) / n if n else 0.0
    return {"precision": p, "recall": r, "f1": _f1(p, r), "n": n}


def canonical_set(labels: Iterable[str]) -> set:
    return {c for c in (normalize_label(x) for x in labels) if c}


def predicted_sentiment(labels: Iterable[str]) -> str:
    """positive / negative by majority of polar labels (tie: the first polar one), else neutral."""
    polar = [p for p in (polarity(x) for x in labels) if p in SENTIMENT_CLASSES]
    if not polar:
        return "neutral"
    pos, neg = polar.count("positive"), polar.count("negative")
    if pos != neg:
        return "positive" if pos > neg else "negative"
    return polar[0]


def sentiment_scores(gt: Mapping[str, str], pred: Mapping[str, str]) -> dict:
    """{"weighted_f1", "accuracy", "n", "per_class"}: gt and pred map names to sentiments."""
    stats = {c: {"tp": 0, "fp": 0, "fn": 0, "support": 0} for c in SENTIMENT_CLASSES}
    n = 0
    for name, truth in gt.items():
        if truth not in SENTIMENT_CLASSES:
            continue
        guess = pred.get(name, "neutral")
        n += 1
        stats[truth]["support"] += 1
        if guess == truth:
            stats[truth]["tp"] += 1
        else:
            stats[truth]["fn"] += 1
            if guess in stats:
                stats[guess]["fp"] += 1
    weighted = 0.0
    for s in stats.values():
        denom = 2 * s["tp"] + s["fp"] + s["fn"]
        s["f1"] = 2 * s["tp"] / denom if denom else 0.0
        weighted += s["f1"] * s["support"] / n if n else 0.0
    correct = sum(s["tp"] for s in stats.values())
    return {"weighted_f1": weighted, "accuracy": correct / n if n else 0.0, "n": n,
            "per_class": stats}


# ---- emotion wheels ---------------------------------------------------------------------------

def group_labels(labels: Iterable[str], wheel: Mapping[str, str]) -> set:
    """Wheel groups of the labels; labels the wheel does not know are dropped."""
    return {g for g in (wheel_group(x, wheel) for x in labels) if g}


def wheel_group(label: str, wheel: Mapping[str, str]) -> str | None:
    """The label's group: by its own words, else its canonical label, else the first (sorted)
    synonym of that canonical label the wheel lists — so 'joyful' finds a wheel that only
    lists 'happiness'."""
    cleaned = clean_label(label)
    canon = normalize_label(label)
    for cand in (cleaned, canon, *sorted(synonyms(canon))):
        if cand in wheel:
            return wheel[cand]
    return None


def read_wheel(path, level: str = "level1") -> dict[str, str]:
    """word -> group from a wheel file.

    - JSON: an object {"word": "group", ...}.
    - CSV with columns `word,group`: one mapping per row.
    - CSV with columns `level1,level2[,level3]` (an emotion wheel, one leaf per row; an empty
      cell repeats the value above it, as in the AffectGPT wheel sheets): `level` chooses the
      grouping. level1: every word maps to its level-1 emotion; level2: level-2 and level-3
      words map to their level-2 emotion and a level-1 word to its first (sorted) level-2 child.
    Words and groups are compared after clean_label (lower case, no qualifiers).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "wheel file does not exist")
    if level not in ("level1", "level2"):
        raise InputError("--wheel-level", f"must be level1 or level2, got {level!r}")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(path, f"invalid JSON: {err}") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise InputError(path, 'a JSON wheel must be an object {"word": "group", ...}')
        pairs = list(data.items())
    else:
        pairs = _wheel_pairs_from_csv(path, text, level)
    wheel = {}
    for word, group in pairs:
        word, group = clean_label(word), clean_label(group)
        if word and group:
            wheel.setdefault(word, group)
    if not wheel:
        raise InputError(path, "wheel file maps no word to a group")
    return wheel


def _wheel_pairs_from_csv(path: Path, text: str, level: str) -> list:
    rows = list(csv.DictReader(text.splitlines()))
    cols = {c.strip().lower(): c for c in (rows[0].keys() if rows else []) if c}
    if {"word", "group"} <= cols.keys():
        return [(r[cols["word"]] or "", r[cols["group"]] or "") for r in rows]
    if not {"level1", "level2"} <= cols.keys():
        raise InputError(path, f"wheel CSV needs columns word,group or level1,level2[,level3]; "
                               f"has {', '.join(cols) or 'none'}")
    tree: dict[str, dict[str, list]] = {}
    current = {"level1": "", "level2": "", "level3": ""}
    for r in rows:
        for key in ("level1", "level2", "level3"):
            value = (r.get(cols[key]) or "").strip() if key in cols else ""
            if value:
                current[key] = value
                if key == "level1":  # a new branch: lower levels do not carry over
                    current["level2"] = current["level3"] = ""
                elif key == "level2":
                    current["level3"] = ""
        if not current["level1"] or not current["level2"]:
            continue
        leaves = tree.setdefault(current["level1"], {}).setdefault(current["level2"], [])
        if current["level3"]:
            leaves.append(current["level3"])
    pairs = []
    for l1, branches in tree.items():
        if level == "level1":
            pairs.append((l1, l1))
            for l2, leaves in branches.items():
                pairs += [(l2, l1)] + [(l3, l1) for l3 in leaves]
        else:
            pairs.append((l1, sorted(branches)[0]))
            for l2, leaves in branches.items():
                pairs += [(l2, l2)] + [(l3, l2) for l3 in leaves]
    return pairs
