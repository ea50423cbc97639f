"""Greedy AU descriptions: static batches (`model.generate`) against continuous batching
(`model.generate_batch`), side by side on the same prompts and model.

What it measures: wall seconds to describe the distinct AU prompts of a held-out split plus the
probe states (what test_au_agent.py generates for each model), with each method, in interleaved
halves so that load from other processes falls on both; prints the ratio and how many outputs
differ between the two methods.

    python bench/bench_generation.py --data data/au_instructions/test.jsonl \
        [--adapter output/au_agent_smollm2_lora/checkpoint-best] [--max-new-tokens 128]
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
    p.add_argument("--data", default="data/au_instructions/test.jsonl")
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--adapter", default=None, help="LoRA adapter folder (default: the untuned model)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()

    import torch

    from my_affectgpt.au.facs import DEFAULT_BANDS, active_aus, au_state_text
    from my_affectgpt.evaluation.au_agent_eval import items_from_jsonl
    from my_affectgpt.evaluation.au_probes import probes
    from my_affectgpt.models import generation
    from my_affectgpt.models.base_llm import load_for_generation

    model, tok = load_for_generation(args.model, args.adapter, device=args.device, dtype="fp32")
    texts = [au_state_text(active_aus(it.au)) for it in items_from_jsonl(args.data)]
    texts += [au_state_text(active_aus(au)) for _, au in probes(DEFAULT_BANDS)]
    texts = sorted(set(texts))
    halves = [texts[0::2], texts[1::2]]
    kw = {"batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens}
    results = {"static": {}, "continuous": {}}
    seconds = {"static": 0.0, "continuous": 0.0}
    for i, half in enumerate(halves):
        order = ("static", "continuous") if i == 0 else ("continuous", "static")
        for method in order:
            t = time.perf_counter()
            outs = generation.describe_au_texts(model, tok, half, continuous=method == "continuous", **kw)
            seconds[method] += time.perf_counter() - t
            results[method].update(zip(half, outs))
            print(f"  half {i + 1}, {method}: {time.perf_counter() - t:.1f} s", flush=True)
    differ = sum(results["static"][t] != results["continuous"][t] for t in texts)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.device}, "
          f"{len(texts)} distinct prompts, batch {args.batch_size}, max {args.max_new_tokens} new tokens, "
          f"{'adapter ' + args.adapter if args.adapter else 'untuned ' + args.model}")
    for method in ("static", "continuous"):
        print(f"{method:<11} {seconds[method]:7.1f} s  {len(texts) / seconds[method]:.2f} prompts/s  "
              f"({seconds['static'] / seconds[method]:.2f}x static)")
    print(f"outputs that differ between the methods: {differ} of {len(texts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
