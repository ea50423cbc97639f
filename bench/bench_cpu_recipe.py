"""Compare variants of the CPU-profile fine-tuning recipe, chosen on a validation split.

What it measures: for each variant (a training data set under --data-root plus key=value
overrides of train_configs/au_agent_lora_cpu.yaml) and each seed, trains an adapter with
`train_au_agent.sh`, then describes the frames of the --eval files (validation split for
choosing; the test split only once, for the chosen recipe) with the settings test_au_agent.py
uses, and scores them with the AU judge (and the lexicon, labelled as such). Every output is
kept in OUT/<run>.json, so runs can be rescored later without the model.

    python bench/bench_cpu_recipe.py --data-root DIR --eval DIR/plain/val.jsonl [--device cuda] \
        [--jobs 6] [--variants shipped plain ...] [--seeds 42 1] [--set KEY=VALUE ...] [--out DIR]

On a GPU (`--device cuda`) the same fp32 recipe runs in a minute or two instead of half an hour,
so recipe choices for the 2-core default can be explored quickly; the figures are those of fp32
math on that device (they match the CPU's up to floating-point summation order). `--jobs N`
trains N runs at once (a small model leaves a GPU mostly idle); scoring runs one at a time.
Each result is appended to OUT/results.jsonl as it comes, so a run cut short keeps what it
finished.
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

# name: (data set folder under --data-root, overrides); folders from bench/recipe_data.py.
VARIANTS = {
    "untuned_base": None,
    "shipped": ("plain", []),                               # 300 steps (2400 samples)
    "steps_200": ("plain", ["data.max_train_samples=1600"]),
    "steps_200_lr_2e-3": ("plain", ["data.max_train_samples=1600", "training.learning_rate=2e-3"]),
    "steps_200_r32": ("plain", ["data.max_train_samples=1600", "lora.r=32", "lora.alpha=64"]),
    "steps_200_4_per_video": ("plain_4fpv", ["data.max_train_samples=1600"]),
}


def score_outputs(items, outputs) -> dict:
    """Judge figures, plus the lexicon's (the rule teacher's own reader) under `lexicon`."""
    from my_affectgpt.evaluation.au_metrics import Scored, score

    scores = score([Scored(it.au, o) for it, o in zip(items, outputs)])
    try:
        from my_affectgpt.au.judge import judge_scores
    except Exception:  # noqa: BLE001 - no judge here: the outputs are kept for rescoring
        return {"lexicon": scores}
    return {**judge_scores([(it.au, o) for it, o in zip(items, outputs)]), "lexicon": scores}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", required=True, help="folder of data sets (one subfolder each)")
    p.add_argument("--eval", nargs="+", required=True, help="JSONL files to describe and score")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="output/bench_cpu_recipe")
    p.add_argument("--variants", nargs="*", default=["untuned_base", "shipped"], choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="*", type=int, default=[42], help="training.seed of each run (default 42)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every run")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once (default 1)")
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--max-new-tokens", type=int, default=96, help="as test_au_agent.py (default 96)")
    a = p.parse_args()

    from my_affectgpt.au.facs import active_aus, au_state_text
    from my_affectgpt.evaluation.au_agent_eval import items_from_jsonl
    from my_affectgpt.models.base_llm import load_for_generation
    from my_affectgpt.models.generation import describe_au_texts

    root, out = Path(a.data_root).resolve(), Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    evals = {f"{Path(f).parent.name}/{Path(f).stem}": items_from_jsonl(f) for f in a.eval}
    scoring = threading.Lock()  # one model on the device at a time; training runs beside it

    def scored(name, adapter, train_s):
        with scoring:
            model, tok = load_for_generation(a.model, adapter, device=a.device, dtype="fp32")
            result = {"run": name, "train_s": round(train_s, 1)}
            samples = {}
            for split, items in evals.items():
                prompts = [au_state_text(active_aus(it.au)) for it in items]
                outs = describe_au_texts(model, tok, prompts, batch_size=64, max_new_tokens=a.max_new_tokens)
                result[split] = score_outputs(items, outs)
                samples[split] = [{"key": it.key, "au": it.au, "input": pr, "output": o}
                                  for it, pr, o in zip(items, prompts, outs)]
            del model
        (out / f"{name}.json").write_text(json.dumps({**result, "samples": samples}, indent=1))
        with open(out / "results.jsonl", "a") as f:
            f.write(json.dumps(result) + "\n")
        line = f"{name:<28} train {train_s:5.0f} s"
        for split in evals:
            r = result[split]
            line += (f" | {split}: AU-F1 {r.get('au_f1', r['lexicon']['au_f1']):.4f} halluc "
                     f"{r.get('hallucination_rate', r['lexicon']['hallucination_rate']):.4f} band "
                     f"{r.get('band_agreement', r['lexicon']['band_agreement'])}")
        print(line, flush=True)

    def train_and_score(name, dataset, overrides):
        run_dir = out / name
        data = root / dataset
        start = time.perf_counter()
        cmd = ["bash", str(REPO / "train_au_agent.sh"), "--config", str(REPO / "train_configs/au_agent_lora_cpu.yaml"),
               f"model={a.model}", f"data.train={data / 'train.jsonl'}", f"data.val={data / 'val.jsonl'}",
               f"output_dir={run_dir}", "training.report_to=[]", *overrides]
        proc = subprocess.run(cmd, env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True)
        if proc.returncode:
            print(f"{name}: training failed\n{proc.stderr[-2000:]}", file=sys.stderr, flush=True)
            return
        scored(name, str(run_dir / "checkpoint-best"), time.perf_counter() - start)

    runs = [(f"{v}_seed{s}", VARIANTS[v][0], [*VARIANTS[v][1], f"training.seed={s}", *a.set])
            for v in a.variants if VARIANTS[v] is not None for s in a.seeds]
    with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        futures = [pool.submit(train_and_score, *run) for run in runs]
        if "untuned_base" in a.variants:
            scored("untuned_base", None, 0.0)
        for f in futures:
            f.result()
    return 0


if __name__ == "__main__":
    sys.exit(main())
