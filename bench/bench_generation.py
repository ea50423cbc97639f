"""Greedy AU descriptions with and without the shared prompt head, side by side.

What it measures: `generation.describe_au_texts` on the prompts the AU Agent evaluation
generates (the held-out split + the probe table), once with the leading tokens that all prompts
share (system prompt + instruction) computed once and reused by every row (the default), once
with every row computing its whole prompt; both in halves, interleaved, so that load from other
processes falls on both alike. Prints seconds, the ratio, and how many outputs differ.

    python bench/bench_generation.py --adapter output/au_agent_smollm2_lora/checkpoint-best \\
        [--data data/au_instructions/test.jsonl] [--batch-size 32] [--max-new-tokens 96]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--adapter", default=None, help="LoRA adapter folder; none = the base model")
    p.add_argument("--base-model", default="smollm2-135m-instruct")
    p.add_argument("--data", default="data/au_instructions/test.jsonl")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=96)
    a = p.parse_args()

    import torch

    from my_affectgpt.au.facs import DEFAULT_BANDS, active_aus, au_state_text
    from my_affectgpt.evaluation.au_agent_eval import items_from_jsonl
    from my_affectgpt.evaluation.au_probes import probes
    from my_affectgpt.models import generation
    from my_affectgpt.models.base_llm import load_for_generation

    model, tok = load_for_generation(a.base_model, a.adapter)
    texts = [au_state_text(active_aus(it.au)) for it in items_from_jsonl(a.data)]
    texts = sorted(set(texts + [au_state_text(active_aus(au)) for _, au in probes(DEFAULT_BANDS)]))
    halves = [texts[0::2], texts[1::2]]
    shared_min = generation.MIN_SHARED_HEAD
    seconds = {"shared head": 0.0, "whole prompt per row": 0.0}
    outputs = {name: [] for name in seconds}
    for half in halves:
        for name in seconds:
            generation.MIN_SHARED_HEAD = shared_min if name == "shared head" else 10 ** 9
            t0 = time.perf_counter()
            outputs[name] += generation.describe_au_texts(model, tok, half, batch_size=a.batch_size,
                                                          max_new_tokens=a.max_new_tokens)
            seconds[name] += time.perf_counter() - t0
    generation.MIN_SHARED_HEAD = shared_min
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.base_model}"
          f"{' + ' + a.adapter if a.adapter else ''}, {len(texts)} distinct prompts, "
          f"batch {a.batch_size}, max {a.max_new_tokens} new tokens")
    base = seconds["whole prompt per row"]
    for name, s in seconds.items():
        print(f"  {name:<22} {s:7.1f} s  ({base / s:.2f}x whole prompt)")
    diff = sum(x != y for x, y in zip(*outputs.values()))
    print(f"  outputs that differ: {diff} of {len(texts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
