"""Time test_au_agent.py's evaluation with the tuned and untuned base models one after the other
and side by side (the untuned base in a second process, the threads split), in one run.

What it measures: `au_agent_eval.evaluate` on the same items, adapter and settings both ways,
alternating which goes first over --rounds; prints the wall time of each and the ratio, and
checks that the figures and the probe table agree (speed aside).

    python bench/bench_evaluation.py --adapter output/au_agent_smollm2_lora/checkpoint-best \\
        --data data/au_instructions/test.jsonl [--batch-size 64] [--rounds 1]
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
    p.add_argument("--adapter", required=True)
    p.add_argument("--data", default="data/au_instructions/test.jsonl")
    p.add_argument("--batch-size", type=int, default=64, help="as setup_au_agent.sh passes")
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args()

    import torch

    from my_affectgpt.evaluation.au_agent_eval import evaluate, items_from_jsonl

    items = items_from_jsonl(args.data)
    kw = dict(adapter=args.adapter, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
              progress=False)
    times = {False: [], True: []}
    reports = {}
    for r in range(args.rounds):
        for side_by_side in ((False, True) if r % 2 == 0 else (True, False)):
            t = time.perf_counter()
            reports[side_by_side] = evaluate(items, side_by_side=side_by_side, **kw)
            times[side_by_side].append(time.perf_counter() - t)
            print(f"  side_by_side={side_by_side}: {times[side_by_side][-1]:.1f} s", flush=True)

    def figures(rep):
        return {k: v for k, v in rep.items() if k not in ("descriptions_per_s", "generation", "baselines")}

    same = (figures(reports[True]) == figures(reports[False])
            and figures(reports[True]["baselines"]["base"]) == figures(reports[False]["baselines"]["base"])
            and reports[True]["probes"] == reports[False]["probes"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {len(items)} samples + "
          f"probes, batch {args.batch_size}, max {args.max_new_tokens} new tokens")
    one, both = sum(times[False]), sum(times[True])
    print(f"  one after the other   {one:.1f} s  ({reports[False]['generation']})")
    print(f"  side by side          {both:.1f} s  ({reports[True]['generation']}; {one / both:.2f}x)")
    print(f"  same figures and probe outputs: {same}")
    for name, rep in (("one after the other", reports[False]), ("side by side", reports[True])):
        print(f"  {name}: tuned {rep['descriptions_per_s']} / base "
              f"{rep['baselines']['base']['descriptions_per_s']} descriptions/s")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
