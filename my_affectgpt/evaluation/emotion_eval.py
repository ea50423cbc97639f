"""Evaluate generated emotion descriptions: read predictions and ground truth, extract labels,
compute the metrics of emotion_metrics.py, write a JSON report.

Predictions (what inference writes per checkpoint, `output/results-<dataset>/<run>/<ckpt>.npz`):

- `.npz` with two parallel 1-D string arrays (numpy dtype `<U...`), `names` and `reasons`:
  ``reasons[i]`` is the text generated for video ``names[i]``. Strings only, so the file loads
  with ``np.load(path, allow_pickle=False)``; a file holding Python objects (a pickled dict) is
  refused. `write_predictions` writes this format (and the JSONL beside it).
- `.jsonl`, one object per line: ``{"name": "<video>", "answer": "<generated text>"}``.

Ground truth: a CSV with a `name` column and at least one of
- `openset`: the open-vocabulary labels ("['happy', 'excited']" or "happy, excited") -> set P/R/F1;
- `emotion` (or `label`): one emotion per sample -> hit rate. Without such a column the hit rate
  is taken from `openset` when every non-empty openset cell holds exactly one label (the
  synthetic MER-Caption+ data);
- `sentiment` (positive / negative / neutral, or a number whose sign gives it) or `valence`
  (a number) -> weighted F1 on positive vs negative samples.
Other columns are ignored.
"""
from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from my_affectgpt.common.atomic import atomic_write_bytes, atomic_write_text
from my_affectgpt.common.errors import InputError

from .emotion_labels import labels_from_list, split_label_list
from .emotion_metrics import (hit_rate, predicted_sentiment, read_wheel, sentiment_scores,
                              set_scores)

GT_COLUMNS = ("openset", "emotion", "label", "sentiment", "valence")
_SENTIMENT_WORDS = {"positive": "positive", "pos": "positive", "negative": "negative",
                    "neg": "negative", "neutral": "neutral", "neu": "neutral"}


# ---- predictions ------------------------------------------------------------------------------

def write_predictions(name2reason: Mapping[str, str], npz_path, jsonl_path=None) -> None:
    """Write predictions as `names` / `reasons` string arrays (and optionally the JSONL)."""
    names = np.array([str(n) for n in name2reason], dtype=str)
    reasons = np.array([str(name2reason[n]) for n in name2reason], dtype=str)
    buf = io.BytesIO()
    np.savez(buf, names=names, reasons=reasons)
    atomic_write_bytes(npz_path, buf.getvalue())
    if jsonl_path is not None:
        atomic_write_text(jsonl_path, "".join(
            json.dumps({"name": str(n), "answer": str(r)}, ensure_ascii=False) + "\n"
            for n, r in name2reason.items()))


def load_predictions(path) -> dict[str, str]:
    """{video name: generated text} from a .npz (names/reasons) or a .jsonl (name/answer)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "predictions file does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        pairs = _npz_pairs(path)
    elif suffix == ".jsonl":
        pairs = _jsonl_pairs(path)
    else:
        raise InputError(path, "predictions must be a .npz (names, reasons) or a .jsonl file")
    out: dict[str, str] = {}
    for name, text in pairs:
        if name in out:
            raise InputError(path, f"video name {name!r} appears twice")
        out[name] = text
    if not out:
        raise InputError(path, "holds no predictions")
    return out


def _npz_pairs(path: Path) -> list:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"names", "reasons"} - set(data.files)
            if missing:
                raise InputError(path, f"npz needs arrays 'names' and 'reasons' (has "
                                       f"{', '.join(data.files) or 'none'})")
            names, reasons = data["names"], data["reasons"]
    except ValueError as err:  # object arrays need pickle, which is not allowed
        raise InputError(path, f"cannot read without pickle ({err}); store 'names' and "
                               f"'reasons' as string arrays") from None
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise InputError(path, f"not a readable .npz file ({err})") from None
    for key, arr in (("names", names), ("reasons", reasons)):
        if arr.ndim != 1 or arr.dtype.kind != "U":
            raise InputError(path, f"'{key}' must be a 1-D string array, got {arr.dtype} "
                                   f"with shape {arr.shape}")
    if len(names) != len(reasons):
        raise InputError(path, f"'names' has {len(names)} entries but 'reasons' {len(reasons)}")
    return [(str(n).strip(), str(r)) for n, r in zip(names, reasons)]


def _jsonl_pairs(path: Path) -> list:
    pairs = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                name, text = row["name"], row["answer"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise InputError(path, f"line {lineno}: needs a JSON object with 'name' and "
                                       f"'answer'") from None
            pairs.append((str(name).strip(), "" if text is None else str(text)))
    return pairs


# ---- ground truth -----------------------------------------------------------------------------

@dataclass
class GroundTruth:
    names: list = field(default_factory=list)
    openset: dict = field(default_factory=dict)    # name -> [labels]
    emotion: dict = field(default_factory=dict)    # name -> one emotion (hit rate)
    sentiment: dict = field(default_factory=dict)  # name -> positive / negative / neutral
    sources: dict = field(default_factory=dict)    # metric -> the column it came from


def _sentiment_of(cell: str, path, row: int, column: str) -> str | None:
    value = cell.strip().lower()
    if not value:
        return None
    if value in _SENTIMENT_WORDS:
        return _SENTIMENT_WORDS[value]
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if math.isnan(number):
        raise InputError(path, f"row {row}: {column} {cell!r} is neither positive / negative / "
                               f"neutral nor a number")
    return "positive" if number > 0 else "negative" if number < 0 else "neutral"


def load_ground_truth(path) -> GroundTruth:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "ground-truth file does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(path, "not a UTF-8 text file") from None
    reader = csv.DictReader(io.StringIO(text))
    cols = {c.strip().lower(): c for c in (reader.fieldnames or []) if c}
    if "name" not in cols:
        raise InputError(path, f"ground-truth CSV needs a 'name' column (has "
                               f"{', '.join(cols) or 'none'})")
    if not set(GT_COLUMNS) & cols.keys():
        raise InputError(path, f"ground-truth CSV needs one of the columns "
                               f"{', '.join(GT_COLUMNS)} (has {', '.join(cols)})")
    emotion_col = next((c for c in ("emotion", "label") if c in cols), None)
    sentiment_col = next((c for c in ("sentiment", "valence") if c in cols), None)
    gt = GroundTruth()
    seen: set = set()
    for row_no, row in enumerate(reader, 2):
        name = (row.get(cols["name"]) or "").strip()
        if not name:
            continue
        if name in seen:
            raise InputError(path, f"row {row_no}: video name {name!r} appears twice")
        seen.add(name)
        gt.names.append(name)
        if "openset" in cols:
            labels = labels_from_list(row.get(cols["openset"]) or "")
            if labels:
                gt.openset[name] = labels
        if emotion_col:
            cell = (row.get(cols[emotion_col]) or "").strip()
            if cell:
                gt.emotion[name] = cell
        if sentiment_col:
            value = _sentiment_of(row.get(cols[sentiment_col]) or "", path, row_no,
                                  sentiment_col)
            if value:
                gt.sentiment[name] = value
    if not gt.names:
        raise InputError(path, "holds no named samples")
    if gt.openset:
        gt.sources["openset"] = cols["openset"]
    if emotion_col:
        gt.sources["hit_rate"] = cols[emotion_col]
    elif gt.openset and all(len(split_label_list(row)) == 1 for row in _raw_openset(text, cols)):
        gt.emotion = {n: labels[0] for n, labels in gt.openset.items()}
        gt.sources["hit_rate"] = cols["openset"] + " (one label per sample)"
    if sentiment_col:
        gt.sources["sentiment"] = cols[sentiment_col]
    return gt


def _raw_openset(text: str, cols: dict) -> list:
    reader = csv.DictReader(io.StringIO(text))
    return [c for c in ((r.get(cols["openset"]) or "").strip() for r in reader) if c]


# ---- evaluation -------------------------------------------------------------------------------

def load_wheels(paths: Sequence, level: str = "level1") -> dict[str, dict]:
    """{wheel name (file stem): word -> group}; equal stems get a numeric suffix."""
    wheels: dict[str, dict] = {}
    for p in paths:
        name, k = Path(p).stem, 2
        while name in wheels:
            name, k = f"{Path(p).stem}_{k}", k + 1
        wheels[name] = read_wheel(p, level)
    return wheels


def evaluate(name2text: Mapping[str, str], gt: GroundTruth, extractor, *,
             wheels: Mapping[str, Mapping[str, str]] | None = None, progress: bool = False,
             pred_source: str = "predictions") -> dict:
    """Extract labels from the predictions of the ground-truth videos and score them."""
    evaluated = [n for n in gt.names if n in name2text]
    if not evaluated:
        raise InputError(pred_source, f"no prediction name matches a ground-truth name (e.g. "
                                      f"prediction {next(iter(name2text), '')!r}, ground truth "
                                      f"{gt.names[0]!r})")
    extracted = extractor.extract_many([name2text[n] for n in evaluated], progress=progress)
    # A video without a prediction has no labels: it is scored, as a miss.
    labels = {n: [] for n in gt.names}
    labels.update(zip(evaluated, extracted))

    report: dict = {
        "extractor": extractor.name,
        "counts": {"ground_truth": len(gt.names), "predictions": len(name2text),
                   "evaluated": len(evaluated),
                   "missing_predictions": len(gt.names) - len(evaluated),
                   "extra_predictions": len(name2text) - len(evaluated)},
        "columns": dict(gt.sources),
        "hit_rate": hit_rate(gt.emotion, labels) if gt.emotion else None,
        "openset": set_scores(gt.openset, labels) if gt.openset else None,
        "wheels": {},
        "wheel_mean": None,
        "sentiment": None,
    }
    if wheels and gt.openset:
        per = {w: set_scores(gt.openset, labels, wheel) for w, wheel in wheels.items()}
        report["wheels"] = per
        report["wheel_mean"] = {k: sum(s[k] for s in per.values()) / len(per)
                                for k in ("precision", "recall", "f1")}
    if gt.sentiment:
        predicted = {n: predicted_sentiment(labels[n]) for n in gt.sentiment}
        report["sentiment"] = sentiment_scores(gt.sentiment, predicted)
    report["labels"] = labels
    return report


def format_report(report: dict) -> str:
    c = report["counts"]
    lines = [f"extractor: {report['extractor']}   evaluated {c['evaluated']} of "
             f"{c['ground_truth']} ground-truth videos ({c['missing_predictions']} without a "
             f"prediction count as misses; {c['extra_predictions']} extra predictions ignored)"]
    if report["hit_rate"]:
        h = report["hit_rate"]
        lines.append(f"hit rate        {h['hit_rate']:.4f}  ({h['hits']}/{h['n']})")
    if report["openset"]:
        o = report["openset"]
        lines.append(f"open-set        P {o['precision']:.4f}  R {o['recall']:.4f}  "
                     f"F1 {o['f1']:.4f}  (n={o['n']})")
    for name, s in report["wheels"].items():
        lines.append(f"wheel {name:<9} P {s['precision']:.4f}  R {s['recall']:.4f}  "
                     f"F1 {s['f1']:.4f}  (n={s['n']})")
    if report["wheel_mean"]:
        m = report["wheel_mean"]
        lines.append(f"wheel mean      P {m['precision']:.4f}  R {m['recall']:.4f}  "
                     f"F1 {m['f1']:.4f}")
    if report["sentiment"]:
        s = report["sentiment"]
        lines.append(f"sentiment       weighted F1 {s['weighted_f1']:.4f}  accuracy "
                     f"{s['accuracy']:.4f}  (n={s['n']}, neutral ground truth left out)")
    if len(lines) == 1:
        lines.append("no metric: the ground truth has no usable labels")
    return "\n".join(lines)


def write_report(path, report: dict) -> None:
    atomic_write_text(path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
