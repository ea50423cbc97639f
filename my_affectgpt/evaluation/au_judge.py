"""Command line of the AU judge (my_affectgpt.au.judge): read face descriptions, and score them
when AU values come with them.

    python -m my_affectgpt.evaluation.au_judge --input IN.jsonl --json OUT.json
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from my_affectgpt.au.facs import PRESENCE_ONLY
from my_affectgpt.au.judge import Reading, agreement, judge_scores, read_description
from my_affectgpt.common.atomic import atomic_write_text
from my_affectgpt.common.errors import InputError, cli_entry
from my_affectgpt.common.jsonl import jsonl_rows

__all__ = ["Reading", "read_description", "judge_scores", "agreement", "main"]

# --- command line ---------------------------------------------------------------------------------
_COLUMN = re.compile(r"AU(\d{1,2})(?:_([rc]))?", re.IGNORECASE)


def _read_input(path: Path) -> list:
    """[(id, text, OpenFace columns or None)]; a bad line is an InputError naming it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, "input file not found" if isinstance(err, FileNotFoundError)
                         else f"cannot read: {err}") from None
    rows = []
    for lineno, row in jsonl_rows(lines, lambda n, err: InputError(path, f"line {n}: not JSON ({err.msg})")):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise InputError(path, f"line {lineno}: needs a \"text\" string")
        au = row.get("au")
        if au is not None:                        # {"AU06_r": 2.1} or {"AU06": 2.1}
            cols = {}
            for key, value in (au.items() if isinstance(au, dict) else [(au, None)]):
                m = _COLUMN.fullmatch(str(key).strip())
                if m is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise InputError(path, f"line {lineno}: bad AU value {key!r}: {value!r}")
                code = f"AU{int(m.group(1)):02d}"
                kind = (m.group(2) or ("c" if code in PRESENCE_ONLY else "r")).lower()
                cols[f"{code}_{kind}"] = float(value)
            au = cols
        rows.append((row.get("id", lineno), row["text"], au))
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m my_affectgpt.evaluation.au_judge",
        description="Read face descriptions: the AUs each asserts (with intensity band), denies "
                    "or leaves unmapped; with AU values, also score them.")
    p.add_argument("--input", required=True,
                   help='JSONL with {"id", "text"} per line, optionally "au": AU values as '
                        'OpenFace columns {"AU06_r": 2.1} or codes {"AU06": 2.1}')
    p.add_argument("--json", required=True, help="output file: a JSON list of readings")
    return p


@cli_entry
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    rows = _read_input(Path(args.input))
    out = [{"id": rid, **read_description(text).to_json()} for rid, text, _ in rows]
    atomic_write_text(args.json, json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"read {len(out)} descriptions -> {args.json}")
    scored = [(au, text) for _, text, au in rows if au is not None]
    if scored:
        s = judge_scores(scored)
        print(f"scores over the {s['n']} descriptions with AU values:")
        for key in ("au_precision", "au_recall", "au_f1", "hallucination_rate",
                    "band_agreement", "emotion_word_rate"):
            print(f"  {key}: {s[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
