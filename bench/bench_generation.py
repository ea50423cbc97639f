"""Greedy AU descriptions under different decoding set-ups, side by side.

What it measures: `generation.describe_au_texts` on the prompts the AU Agent evaluation
generates (the held-out split + the probe table), for each variant below; the prompts are cut in
halves and the variants run interleaved, half by half, so that load from other processes falls on
all of them alike. Prints seconds, each variant's speed relative to the first, and how many
outputs differ from the first variant's. Every variant runs in batches of --batch-size, so
every ratio it prints is at equal batch size (for another batch size, rerun with it).

Variants (`--variants`, first = reference):
  generate_whole_prompt  transformers `generate`, every row computes its whole prompt
  generate               transformers `generate`, the prompt head all rows share computed once
  greedy                 our greedy loop (shared head; a row that stops leaves the batch), the
                         shipped path
  greedy_1_thread        the same on one thread (torch.set_num_threads(1)): how well decoding
                         uses a second core, i.e. whether two evaluations side by side would pay
(Until commit 35732d3 there were also `greedy_batch_64` and `greedy_batch_64_1_thread`, which ran
in batches of 64 while the others ran in --batch-size: their ratios compared unequal batches.)

    python bench/bench_generation.py --adapter output/au_agent_smollm2_lora/checkpoint-best \\
        [--variants generate greedy] [--data data/au_instructions/test.jsonl] \\
        [--batch-size 32] [--max-new-tokens 96]
    (--adapter none: the untuned base model, whose outputs mostly run to the cap)
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = ("generate_whole_prompt", "generate", "greedy", "greedy_1_thread")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--adapter", default=None, help="LoRA adapter folder; none = the base model")
    p.add_argument("--base-model", default="smollm2-135m-instruct")
    p.add_argument("--data", default="data/au_instructions/test.jsonl")
    p.add_argument("--variants", nargs="+", default=["generate", "greedy"],
                   choices=VARIANTS)
    p.add_argument("--batch-size", type=int, default=32, help="every variant's batch size")
    p.add_argument("--max-new-tokens", type=int, default=96)
    a = p.parse_args()
    adapter = None if a.adapter in (None, "none") else a.adapter

    import torch

    from my_affectgpt.au.facs import DEFAULT_BANDS, active_aus, au_state_text
    from my_affectgpt.evaluation.au_agent_eval import items_from_jsonl
    from my_affectgpt.evaluation.au_probes import probes
    from my_affectgpt.models import generation
    from my_affectgpt.models.base_llm import load_for_generation

    model, tok = load_for_generation(a.base_model, adapter)
    texts = [au_state_text(active_aus(it.au)) for it in items_from_jsonl(a.data)]
    texts = sorted(set(texts + [au_state_text(active_aus(au)) for _, au in probes(DEFAULT_BANDS)]))
    shipped_greedy, shared_min = generation._greedy, generation.MIN_SHARED_HEAD
    via_generate = partial(generation._transformers_generate, do_sample=False)
    threads = torch.get_num_threads()
    setups = {  # name -> (greedy decoder, minimum shared head, threads); batch: --batch-size
        "generate_whole_prompt": (via_generate, 10 ** 9, threads),
        "generate": (via_generate, shared_min, threads),
        "greedy": (shipped_greedy, shared_min, threads),
        "greedy_1_thread": (shipped_greedy, shared_min, 1),
    }
    seconds = {name: 0.0 for name in a.variants}
    outputs = {name: [] for name in a.variants}
    try:
        for half in (texts[0::2], texts[1::2]):
            for name in a.variants:
                generation._greedy, generation.MIN_SHARED_HEAD, n_threads = setups[name]
                torch.set_num_threads(n_threads)
                t0 = time.perf_counter()
                outputs[name] += generation.describe_au_texts(model, tok, half, batch_size=a.batch_size,
                                                              max_new_tokens=a.max_new_tokens)
                seconds[name] += time.perf_counter() - t0
    finally:
        generation._greedy, generation.MIN_SHARED_HEAD = shipped_greedy, shared_min
        torch.set_num_threads(threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.base_model}"
          f"{' + ' + adapter if adapter else ' (untuned)'}, {len(texts)} distinct prompts, "
          f"batch {a.batch_size} for every variant, max {a.max_new_tokens} new tokens")
    first = a.variants[0]
    for name in a.variants:
        diff = sum(x != y for x, y in zip(outputs[name], outputs[first]))
        print(f"  {name:<22} {seconds[name]:7.1f} s  ({seconds[first] / seconds[name]:.2f}x {first})"
              f"  outputs differing from {first}: {diff} of {len(texts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
