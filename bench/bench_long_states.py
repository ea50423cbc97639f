#!/usr/bin/env python
"""Benchmark: how often a tuned AU Agent leaves an AU out of long states, and where.

Long states (7 or more active AUs) come from simulated videos of a seed that no data split uses
(99 by default): neither the test split nor real frames, so recipes can be chosen on it. The
agent describes each state once (verify off), and the AU judge reads each description against
its state, as the run-time check does (models/au_agent/verify.py). The output gives:
- how many descriptions fail;
- each AU's omissions against its count among the states;
- the omission rate of the mouth's AUs by how many AUs the mouth lists, where long lists fail.

    python bench/bench_long_states.py --adapter output/au_agent_smollm2_lora/checkpoint-best \\
        [--states 240] [--videos 300] [--seed 99] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--adapter", required=True, help="LoRA adapter folder (e.g. .../checkpoint-best)")
    p.add_argument("--base-model", default="smollm2-135m-instruct")
    p.add_argument("--states", type=int, default=240, help="distinct long states described")
    p.add_argument("--videos", type=int, default=300, help="simulated videos they are drawn from")
    p.add_argument("--seed", type=int, default=99, help="simulation seed (no data split uses 99)")
    p.add_argument("--min-active", type=int, default=7)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    return p.parse_args(argv)


def long_states(videos: int, seed: int, min_active: int, n: int) -> list:
    """Canonical AU texts of distinct simulated frames with >= min_active active AUs."""
    from my_affectgpt.au.simulate import write_dataset
    from my_affectgpt.models.au_agent import AUAgent, AUAgentConfig

    with tempfile.TemporaryDirectory() as tmp:
        csvs = write_dataset(Path(tmp) / "of", videos, seed=seed, workers=2)
        planner = AUAgent(AUAgentConfig(backend="template", num_frames=8))
        texts = [s.prompt for c in csvs for s in planner.plan_video(c)["slots"]
                 if len(s.active) >= min_active]
    texts = list(dict.fromkeys(texts))
    random.Random(0).shuffle(texts)
    return texts[:n]


def main(argv=None) -> int:
    a = parse_args(argv)
    import torch

    from my_affectgpt.au.facs import ACTION_UNITS, ALL_CODES, parse_au_state_text
    from my_affectgpt.models.au_agent import verify
    from my_affectgpt.models.base_llm import load_for_generation
    from my_affectgpt.models.generation import describe_au_texts

    torch.set_num_threads(a.threads)
    prompts = long_states(a.videos, a.seed, a.min_active, a.states)
    model, tok = load_for_generation(a.base_model, a.adapter, device="cpu", dtype="fp32")
    answers = describe_au_texts(model, tok, prompts, batch_size=a.batch_size, max_new_tokens=96)
    failing, active_n, missed = 0, Counter(), Counter()
    mouth = {}                                   # mouth AUs listed -> [omitted, listed]
    for prompt, answer in zip(prompts, answers):
        state, problems = parse_au_state_text(prompt), verify.check(prompt, answer)
        failing += bool(problems)
        active_n.update(state.keys())
        missed.update(problems.missing)
        mouth_aus = [c for c in state if ACTION_UNITS[c].region == "mouth"]
        row = mouth.setdefault(min(len(mouth_aus), 5), [0, 0])
        row[0] += sum(c in problems.missing for c in mouth_aus)
        row[1] += len(mouth_aus)
    report = {"adapter": a.adapter, "states": len(prompts), "seed": a.seed, "failing": failing,
              "missed_by_au": {c: [missed[c], active_n[c]] for c in ALL_CODES if active_n[c]},
              "mouth_omission_by_list_length": {f"{k}+" if k == 5 else str(k): round(v[0] / v[1], 3)
                                                for k, v in sorted(mouth.items()) if v[1]}}
    print(f"{failing} of {len(prompts)} long-state descriptions fail the judge (seed {a.seed})")
    print("omitted / active: "
          + ", ".join(f"{c} {m}/{n}" for c, (m, n) in report["missed_by_au"].items() if m))
    print("mouth AUs omitted, by mouth list length: "
          + ", ".join(f"{k}: {v}" for k, v in report["mouth_omission_by_list_length"].items()))
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
