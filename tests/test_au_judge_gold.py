"""The AU judge against the hand-annotated gold set (tests/data/au_judge_gold.jsonl).

The targets (issue 19): mention-set F1 >= 0.95 overall and >= 0.90 on GPT-4o prose, band
agreement >= 0.90 where both give a band; the floors here sit a little lower, so that a change
that makes the judge read real prose worse fails, while the measured figures (bench/RESULTS.md,
`python bench/bench_au_judge.py`) stay the record. GPT-4o rows need ../shared (skipped without).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from my_affectgpt.au.facs import ALL_CODES, DEFAULT_BANDS
from my_affectgpt.au.judge import read_description
from judge_gold import agreement_by_writer, load_gold

DATA = Path(__file__).parent / "data"
GOLD = DATA / "au_judge_gold.jsonl"
SHARED = Path(__file__).parents[1].parent / "shared"


def test_gold_set_is_well_formed_and_large_enough():
    rows = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 300 and len({r["id"] for r in rows}) == len(rows)
    writers = Counter(r["writer"] for r in rows)
    assert {"rule_teacher", "tuned_agent", "gpt4o", "adversarial"} <= set(writers)
    assert writers["gpt4o"] >= 100 and writers["tuned_agent"] >= 100
    for r in rows:
        assert set(r["present"]) <= set(ALL_CODES) and set(r["absent"]) <= set(ALL_CODES)
        assert all(b is None or b in DEFAULT_BANDS.names for b in r["present"].values())
        assert not set(r["present"]) & set(r["absent"])
        # GPT-4o prose is referred to by line, never copied here
        assert ("text" in r) != (r["writer"] == "gpt4o")
    assert (DATA / "au_judge_guideline.md").is_file()


def test_judge_agrees_with_the_gold_set():
    rows = load_gold(GOLD, SHARED)
    by_writer = agreement_by_writer(rows, lambda text: read_description(text).to_json())
    overall = by_writer["all"]
    assert overall["present_f1"] >= 0.94, overall
    assert overall["band_agreement"] >= 0.88, overall
    for writer in ("rule_teacher", "tuned_agent", "adversarial"):
        assert by_writer[writer]["present_f1"] >= 0.94, (writer, by_writer[writer])
    if "gpt4o" not in by_writer:
        pytest.skip(f"GPT-4o texts not found under {SHARED} (the other writers passed)")
    gpt = by_writer["gpt4o"]
    assert gpt["present_f1"] >= 0.88 and gpt["band_agreement"] >= 0.88, gpt


# --- the gold sets written fresh (issue 27): 2 (dev/test by writer), 3-6 (fresh held-out checks)
KINDS = {"facs_coder", "lay", "clinical", "llm_prose"}
FRESH = {  # floors a little under the measured figures (bench/RESULTS.md)
    "au_judge_gold2.jsonl": {"all": 0.97, "kind": 0.95, "absent": 0.93, "band": 0.95},
    "au_judge_gold3.jsonl": {"all": 0.97, "kind": 0.95, "absent": 0.93, "band": 0.95},
    "au_judge_gold4.jsonl": {"all": 0.95, "kind": 0.93, "absent": 0.89, "band": 0.94},
    "au_judge_gold5.jsonl": {"all": 0.96, "kind": 0.91, "absent": 0.92, "band": 0.96},
    "au_judge_gold6.jsonl": {"all": 0.95, "kind": 0.94, "absent": 0.92, "band": 0.95},
}


@pytest.mark.parametrize("name", sorted(FRESH))
def test_fresh_gold_set_is_well_formed(name):
    rows = [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 160 and len({r["id"] for r in rows}) == len(rows)
    assert set(Counter(r["writer"] for r in rows)) == KINDS
    for r in rows:
        assert set(r["present"]) <= set(ALL_CODES) and set(r["absent"]) <= set(ALL_CODES)
        assert all(b is None or b == "unclear" or b in DEFAULT_BANDS.names for b in r["present"].values())
        assert not set(r["present"]) & set(r["absent"]) and r["text"].strip()
        # the state each text was written from, fixed first
        assert set(r["written_from"]["active"]) <= set(ALL_CODES)
        assert r["agreement"] in ("both annotators", "adjudicated")
    assert (DATA / name.replace(".jsonl", "_making") / "README.md").is_file()


@pytest.mark.parametrize("name", sorted(FRESH))
def test_judge_agrees_with_the_fresh_gold_sets(name):
    """A change that makes the judge read any kind of writer worse fails."""
    floor = FRESH[name]
    rows = load_gold(DATA / name, SHARED)
    by_writer = agreement_by_writer(rows, lambda text: read_description(text).to_json())
    overall = by_writer["all"]
    assert overall["present_f1"] >= floor["all"] and overall["absent_f1"] >= floor["absent"], overall
    assert overall["band_agreement"] >= floor["band"], overall
    for kind in KINDS:
        assert by_writer[kind]["present_f1"] >= floor["kind"], (kind, by_writer[kind])


def test_fresh_sets_were_written_from_the_seeded_states(tmp_path, monkeypatch):
    """Every row's `written_from` is the state tests/data/make_gold_states.py makes again."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_gold_states", DATA / "make_gold_states.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.chdir(tmp_path)
    letters = {"A": "trace", "B": "slight", "C": "marked", "D": "severe", "E": "maximum", None: None}
    for n in (2, 3, 4, 5, 6):
        mod.main(["--set", str(n)])
        states = {s["id"]: s for p in tmp_path.glob("states_*.jsonl")
                  for s in map(json.loads, p.read_text().splitlines())}
        rows = [json.loads(line) for line in (DATA / f"au_judge_gold{n}.jsonl").read_text().splitlines()]
        assert len(rows) == len(states)
        for r in rows:
            s = states[r["id"]]
            assert r["written_from"]["active"] == {c: letters[v] for c, v in s["active"].items()}
            assert r["written_from"]["denied"] == s["deny"] and r["written_from"]["other"] == s["other"]
        for p in tmp_path.glob("states_*.jsonl"):
            p.unlink()
