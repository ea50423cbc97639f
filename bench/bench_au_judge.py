"""How well the AU judge agrees with the hand-annotated gold sets, per writer.

    python bench/bench_au_judge.py [--gold tests/data/au_judge_gold.jsonl] [--shared ../shared]
        [--split dev|test] [--judge-from CHECKOUT] [--json OUT.json] [--show-errors]

Gold sets (annotation guideline: tests/data/au_judge_guideline.md):
- `au_judge_gold.jsonl` (the first): the rule teacher, the tuned agent on real frames, GPT-4o
  (read from ../shared/gpt_references by line number, never copied here) and adversarial cases.
- `au_judge_gold2.jsonl` (the second, written fresh): 360 texts by 8 writers of 4 kinds (FACS
  coder, lay, clinical/anatomical, language-model prose), each written from an AU state fixed
  first (`written_from`); the writers saw neither the judge nor the guideline. Writer "a" of each
  kind is the dev split, writer "b" the test split.
- `au_judge_gold3.jsonl` ... `au_judge_gold6.jsonl`: 160 texts each, written the same way by
  new writers, as fresh held-out checks (their first readings are in bench/RESULTS.md).
Each text was annotated by two annotators working blind from the guideline alone, disagreements
adjudicated by a third (all language-model agents, not human FACS coders).

Figures: mention-set precision / recall / F1 of the asserted AUs, band agreement where both give
a band ("unclear" counts as none), absent-set F1 and exact-match rate, overall and per writer;
for the fresh sets also the mention F1 against the state each text was written from. `--judge-from`
reads with the judge of another checkout (a `git worktree` of an older commit) for before/after
figures; the lexicon (the rule teacher's own reader) is scored beside it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


_READ_ALL = """
import json, sys
try:
    from my_affectgpt.au.judge import read_description
except ImportError:                      # checkouts before the judge moved to the au layer
    from my_affectgpt.evaluation.au_judge import read_description
print(json.dumps([read_description(t).to_json() for t in json.load(sys.stdin)]))
"""


def _readings(texts: list, checkout: str | None) -> list:
    """The judge's readings of `texts`: this checkout's, or (in a subprocess, so the two
    packages never mix) the judge of `checkout`."""
    if checkout is None:
        from my_affectgpt.au.judge import read_description
        return [read_description(t).to_json() for t in texts]
    res = subprocess.run([sys.executable, "-c", _READ_ALL], cwd=checkout, input=json.dumps(texts),
                         capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"error: {checkout}: its judge failed: {res.stderr.strip()[-300:]}")
    return json.loads(res.stdout)


def _num(x) -> float:
    return float("nan") if x is None else x


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gold", default=str(REPO / "tests/data/au_judge_gold.jsonl"))
    p.add_argument("--shared", default=str(REPO.parent / "shared"))
    p.add_argument("--split", choices=("dev", "test"), default=None,
                   help="only the rows of this split (gold sets that have one)")
    p.add_argument("--judge-from", default=None, metavar="CHECKOUT",
                   help="read with the judge of another checkout (before/after figures)")
    p.add_argument("--json", default=None)
    p.add_argument("--show-errors", action="store_true", help="print the texts the judge reads differently")
    a = p.parse_args()
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "tests"))
    from judge_gold import agreement_by_writer, load_gold
    from my_affectgpt.au.judge import agreement
    from my_affectgpt.au.lexicon import mentioned_bands

    rows = [r for r in load_gold(a.gold, a.shared) if a.split is None or r.get("split") == a.split]
    if not rows:
        raise SystemExit(f"error: {a.gold}: no rows (split {a.split})")
    readings = dict(zip((r["id"] for r in rows), _readings([r["text"] for r in rows], a.judge_from)))
    by_text = {r["text"]: readings[r["id"]] for r in rows}
    judge = agreement_by_writer(rows, by_text.__getitem__)
    lexicon = agreement_by_writer(rows, lambda t: {"present": mentioned_bands(t), "absent": []})
    with_state = "written_from" in rows[0]
    print(f"{'writer':<22}{'n':>5}{'mention F1':>12}{'precision':>11}{'recall':>9}{'band':>8}"
          f"{'absent F1':>11}{'exact':>8}" + ("  vs state" if with_state else "")
          + "   lexicon: mention F1 / band")
    for name, r in judge.items():
        lx = lexicon[name]
        group = [x for x in rows if name == "all" or x["writer"] == name]
        state = ""
        if with_state:                 # F1 against the state each text was written from
            truth = [{"present": x["written_from"]["active"]} for x in group]
            state = f"{agreement(truth, [readings[x['id']] for x in group])['present_f1']:>10.3f}"
        print(f"{name:<22}{r['n']:>5}{r['present_f1']:>12.3f}{r['present_precision']:>11.3f}"
              f"{r['present_recall']:>9.3f}{_num(r['band_agreement']):>8.3f}"
              f"{_num(r['absent_f1']):>11.3f}"
              f"{r['exact_match_rate']:>8.3f}{state}   {lx['present_f1']:.3f} / {_num(lx['band_agreement']):.3f}")
    if a.show_errors:
        for r in rows:
            got = readings[r["id"]]
            if got["present"] != r["present"] or sorted(got["absent"]) != sorted(r["absent"]):
                print(f"\n{r['id']}: {r['text']}\n  gold  {r['present']} absent {r['absent']}"
                      f"\n  judge {got['present']} absent {got['absent']}")
    if a.judge_from is None:
        from my_affectgpt.au.judge import read_description

        texts = [r["text"] for r in rows]
        texts = (texts * (800 // len(texts) + 1))[:800]
        t0 = time.perf_counter()
        for t in texts:
            read_description(t)
        print(f"\nspeed: 800 of these texts read in {time.perf_counter() - t0:.2f} s (one process)")
    if a.json:
        Path(a.json).write_text(json.dumps({"judge": judge, "lexicon": lexicon}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
