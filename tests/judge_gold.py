"""The AU judge's gold set: hand-annotated readings of descriptions by several writers.

`tests/data/au_judge_gold.jsonl` (annotation guideline beside it) holds one reading per text:
`present` {code: band or null}, `absent`, `unmapped`, `emotion_words`, and the `writer`. Texts of
GPT-4o prose are not copied into the repository: their rows name a file under ../shared and a
line number, and are read from there (left out when that folder is absent).
"""
from __future__ import annotations

import json
from pathlib import Path

from my_affectgpt.au.judge import agreement


def load_gold(path, shared) -> list:
    """Gold rows, each with its `text`; rows whose text lives in a missing `shared` are left out."""
    rows, lines = [], {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if "text" not in row:
            src = Path(shared) / row["source"]["file"]
            if not src.is_file():
                continue
            if src not in lines:
                lines[src] = src.read_text(encoding="utf-8").splitlines()
            row["text"] = json.loads(lines[src][row["source"]["line"] - 1])[row["source"]["field"]]
        rows.append(row)
    return rows


def agreement_by_writer(rows: list, reader) -> dict:
    """{"all" and each writer: agreement() of reader(text) with the gold readings}."""
    groups = {"all": rows}
    for r in rows:
        groups.setdefault(r["writer"], []).append(r)
    return {name: agreement(group, [reader(r["text"]) for r in group]) for name, group in groups.items()}
