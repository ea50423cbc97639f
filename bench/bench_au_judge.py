"""How well the AU judge agrees with the hand-annotated gold set, per writer.

    python bench/bench_au_judge.py [--gold tests/data/au_judge_gold.jsonl] [--shared ../shared]
        [--json OUT.json] [--show-errors]

The gold set (tests/data/au_judge_gold.jsonl, guideline beside it) holds descriptions by the rule
teacher, the tuned agent on real frames, GPT-4o (read from ../shared/gpt_references by line
number, never copied here) and hand-written adversarial cases, each annotated by two annotators
working blind from the guideline alone, disagreements adjudicated. Figures: mention-set
precision / recall / F1 of the asserted AUs, band agreement where both give a band, absent-set
F1 and exact-match rate, overall and per writer; the lexicon (the rule teacher's own reader) is
scored the same way beside it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def lexicon_reading(text: str) -> dict:
    from my_affectgpt.au.lexicon import mentioned_bands

    return {"present": mentioned_bands(text), "absent": []}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gold", default=str(REPO / "tests/data/au_judge_gold.jsonl"))
    p.add_argument("--shared", default=str(REPO.parent / "shared"))
    p.add_argument("--json", default=None)
    p.add_argument("--show-errors", action="store_true", help="print the texts the judge reads differently")
    a = p.parse_args()
    from my_affectgpt.au.judge import read_description
    sys.path.insert(0, str(REPO / "tests"))
    from judge_gold import agreement_by_writer, load_gold

    rows = load_gold(a.gold, a.shared)
    judge = agreement_by_writer(rows, lambda t: read_description(t).to_json())
    lexicon = agreement_by_writer(rows, lexicon_reading)
    print(f"{'writer':<22}{'n':>5}{'mention F1':>12}{'precision':>11}{'recall':>9}{'band':>8}"
          f"{'absent F1':>11}{'exact':>8}   lexicon: mention F1 / band")
    for name, r in judge.items():
        lx = lexicon[name]
        print(f"{name:<22}{r['n']:>5}{r['present_f1']:>12.3f}{r['present_precision']:>11.3f}"
              f"{r['present_recall']:>9.3f}{r['band_agreement']:>8.3f}"
              f"{r['absent_f1'] if r['absent_f1'] is not None else float('nan'):>11.3f}"
              f"{r['exact_match_rate']:>8.3f}   {lx['present_f1']:.3f} / {lx['band_agreement']:.3f}")
    if a.show_errors:
        for r in rows:
            got = read_description(r["text"]).to_json()
            if got["present"] != r["present"] or sorted(got["absent"]) != sorted(r["absent"]):
                print(f"\n{r['id']}: {r['text']}\n  gold  {r['present']} absent {r['absent']}"
                      f"\n  judge {got['present']} absent {got['absent']}")
    if a.json:
        Path(a.json).write_text(json.dumps({"judge": judge, "lexicon": lexicon}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
