"""Compare variants of the CPU-profile fine-tuning recipe on the held-out test split.

What it measures: for each variant (key=value overrides of train_configs/au_agent_lora_cpu.yaml)
and each seed, trains an adapter with `train_au_agent.sh`, then scores it on `test.jsonl` exactly
as test_au_agent.py does (AU-F1, hallucination, band agreement, eval loss, probe figures), always
in fp32, and lists the hallucinated AUs of the worst outputs. The untuned base (variant
untuned_base) is scored once.

    python bench/bench_cpu_recipe.py --data data/au_instructions [--device cuda] [--jobs 6] \
        [--variants shipped steps_150] [--seeds 42 1 2] [--set KEY=VALUE ...] [--out DIR]

On a GPU (`--device cuda`) the same fp32 recipe runs in minutes instead of hours, so recipe
choices for the 2-core default can be explored quickly; the figures are those of fp32 math on
that device (they match the CPU's up to floating-point summation order). `--jobs N` trains N
runs at once (a small model leaves a GPU mostly idle); scoring runs one at a time. Each result
is also appended to OUT/results.jsonl as it comes, so a run cut short keeps what it finished.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

VARIANTS = {
    "untuned_base": None,               # no training: the base model as it ships
    "shipped": [],                      # all layers, first 1600 samples (200 steps)
    "steps_120": ["data.max_train_samples=960"],
    "steps_150": ["data.max_train_samples=1200"],
    "steps_150_lr_1.5e-3": ["data.max_train_samples=1200", "training.learning_rate=1.5e-3"],
    "steps_150_lr_2e-3": ["data.max_train_samples=1200", "training.learning_rate=2e-3"],
    "steps_160_lr_1.5e-3": ["data.max_train_samples=1280", "training.learning_rate=1.5e-3"],
    "steps_175": ["data.max_train_samples=1400"],
    "first_2000_samples": ["data.max_train_samples=2000"],  # 250 steps: the recipe until 2026-11-26
    "top_10_layers": ["lora.top_layers=10"],
    "top_15_layers": ["lora.top_layers=15", "data.max_train_samples=2000"],
    "top_20_layers": ["lora.top_layers=20", "data.max_train_samples=2000"],
    "all_2476_samples": ["data.max_train_samples=null"],
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/au_instructions")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="output/bench_cpu_recipe")
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="*", type=int, default=[42], help="training.seed of each run (default 42)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every run")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once (default 1)")
    a = p.parse_args()

    from my_affectgpt.au.facs import DEFAULT_BANDS, active_aus, au_state_text
    from my_affectgpt.au.lexicon import mentioned_aus
    from my_affectgpt.evaluation.au_agent_eval import _run_model, items_from_jsonl
    from my_affectgpt.evaluation.au_probes import probes
    from my_affectgpt.models.base_llm import load_for_generation

    data, out = Path(a.data).resolve(), Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    items = items_from_jsonl(data / "test.jsonl")
    probe_states = probes(DEFAULT_BANDS)
    gen = {"batch_size": 64, "max_new_tokens": 96}  # as setup_au_agent.sh runs test_au_agent.py
    scoring = threading.Lock()  # one model on the device at a time; training runs beside it

    def scored(name, adapter, train_s):
        with scoring:
            model, tok = load_for_generation("smollm2-135m-instruct", adapter, device=a.device, dtype="fp32")
            scores, outputs, _ = _run_model(name, model, tok, items, probe_states, gen, False)
            del model
        recs = []
        for it, o in zip(items, outputs):
            act, men = set(active_aus(it.au)), mentioned_aus(o)
            recs.append({"input": au_state_text(active_aus(it.au)), "output": o, "reference": it.reference,
                         "hallucinated": sorted(men - act), "missed": sorted(act - men)})
        (out / f"{name}.json").write_text(json.dumps({"scores": scores, "train_s": train_s, "samples": recs}, indent=1))
        with open(out / "results.jsonl", "a") as f:
            f.write(json.dumps({"run": name, "train_s": round(train_s, 1), **scores}) + "\n")
        lines = [f"{name:<28} train {train_s:5.0f} s  AU-F1 {scores['au_f1']:.4f}  hallucination "
                 f"{scores['hallucination_rate']:.4f}  band {scores['band_agreement']:.4f}  eval_loss "
                 f"{scores['eval_loss']}  probe F1 {scores['probe_scores']['au_f1']:.4f} / hallucination "
                 f"{scores['probe_scores']['hallucination_rate']:.4f}"]
        lines += [f"    hallucinated {r['hallucinated']}: {r['input']} -> {r['output'][:200]}"
                  for r in [r for r in recs if r["hallucinated"]][:3]]
        print("\n".join(lines), flush=True)

    def train_and_score(name, overrides):
        run_dir = out / name
        start = time.perf_counter()
        cmd = ["bash", str(REPO / "train_au_agent.sh"), "--config", str(REPO / "train_configs/au_agent_lora_cpu.yaml"),
               f"data.train={data / 'train.jsonl'}", f"data.val={data / 'val.jsonl'}",
               f"output_dir={run_dir}", "training.report_to=[]", *overrides]
        proc = subprocess.run(cmd, env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True)
        if proc.returncode:
            print(f"{name}: training failed\n{proc.stderr[-2000:]}", file=sys.stderr, flush=True)
            return
        scored(name, str(run_dir / "checkpoint-best"), time.perf_counter() - start)

    runs = [(f"{v}_seed{s}", [*VARIANTS[v], f"training.seed={s}", *a.set])
            for v in a.variants if VARIANTS[v] is not None for s in a.seeds]
    with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        futures = [pool.submit(train_and_score, name, ov) for name, ov in runs]
        if "untuned_base" in a.variants:
            scored("untuned_base", None, 0.0)
        for f in futures:
            f.result()
    return 0


if __name__ == "__main__":
    sys.exit(main())
