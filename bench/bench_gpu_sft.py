"""A short real run of the gpu profile's recipe (au_agent_lora_config.yaml) on one GPU.

What it measures: `train_au_agent.sh` with the production recipe (LoRA r=64 on all seven
projections, bf16, batch 4 x grad_accum 4, length-grouped batches, eval + checkpoint-best) for
`--steps` optimizer steps, on a model with Qwen2.5-7B-Instruct's architecture. Prints seconds per
optimizer step, training tokens per second, peak GPU memory (nvidia-smi, sampled every 0.2 s) and
the projected time of the full gpu-profile schedule (3 epochs over `--full-samples` samples).

    python bench/bench_gpu_sft.py --model models/Qwen2.5-7B-Instruct --data data/au_instructions
    python bench/bench_gpu_sft.py --random-qwen2.5-7b --tokenizer TOKENIZER_DIR --data data/au_instructions

`--random-qwen2.5-7b` builds the architecture of Qwen2.5-7B-Instruct (its published config.json
numbers below) with random bf16 weights: the speed and memory of training do not depend on the
weight values, so this measures the recipe where the real weights cannot be downloaded. The
tokenizer folder must hold a chat template (e.g. SmolLM2's, which uses the same <|im_start|>
format); token counts then differ a little from Qwen's tokenizer.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Qwen2.5-7B-Instruct config.json (architecture only).
QWEN25_7B = dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                 num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
                 max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
                 tie_word_embeddings=False, hidden_act="silu")


def random_qwen(folder: Path, tokenizer: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config

    tok = AutoTokenizer.from_pretrained(tokenizer)
    cfg = Qwen2Config(**QWEN25_7B, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    start = time.perf_counter()
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    print(f"random Qwen2.5-7B architecture: {n / 1e9:.2f}B parameters, written in "
          f"{time.perf_counter() - start:.0f} s", flush=True)


class MemorySampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak_mib = 0
        self.stop = threading.Event()

    def run(self):
        if shutil.which("nvidia-smi") is None:
            return
        while not self.stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True)
            vals = [int(v) for v in out.stdout.split() if v.strip().isdigit()]
            if vals:
                self.peak_mib = max(self.peak_mib, max(vals))
            time.sleep(0.2)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="local Qwen2.5-7B-Instruct folder")
    src.add_argument("--random-qwen2.5-7b", dest="random", action="store_true")
    p.add_argument("--tokenizer", help="tokenizer folder for --random-qwen2.5-7b")
    p.add_argument("--data", default="data/au_instructions", help="folder with train.jsonl and val.jsonl")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--full-samples", type=int, default=100_000)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    if a.random and not a.tokenizer:
        p.error("--random-qwen2.5-7b needs --tokenizer")

    work = Path(tempfile.mkdtemp(prefix="bench_gpu_sft_"))
    model = a.model
    if a.random:
        model = str(work / "qwen2.5-7b-random")
        random_qwen(Path(model), Path(a.tokenizer))
    out_dir = work / "run"
    data = Path(a.data)
    eval_every = max(1, a.steps // 2)
    cmd = ["bash", str(REPO / "train_au_agent.sh"), "--config", str(REPO / "au_agent_lora_config.yaml"),
           f"model={model}", f"output_dir={out_dir}", f"data.train={data / 'train.jsonl'}",
           f"data.val={data / 'val.jsonl'}", "data.max_val_samples=64", f"training.max_steps={a.steps}",
           f"training.eval_steps={eval_every}", f"training.save_steps={eval_every}", "training.report_to=[]"]
    sampler = MemorySampler()
    sampler.start()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHON": sys.executable}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    logs = []
    for line in proc.stdout:  # echo, and keep the Trainer's log dicts ({'loss': ...}, {'train_runtime': ...})
        sys.stdout.write(line)
        for m in re.finditer(r"\{'[a-z_]+': [^{}]*\}", line):
            with contextlib.suppress(ValueError, SyntaxError):
                logs.append({k: float(v) for k, v in ast.literal_eval(m.group(0)).items()})
    proc.wait()
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    if proc.returncode != 0:
        print(f"train_au_agent.sh failed with exit code {proc.returncode}", file=sys.stderr)
        return proc.returncode
    runtime = next(r["train_runtime"] for r in logs if "train_runtime" in r)
    evals = [r for r in logs if "eval_loss" in r]
    steady = (runtime - sum(r["eval_runtime"] for r in evals)) / a.steps
    samples_per_step = 4 * 4  # batch_size x grad_accum of au_agent_lora_config.yaml, 1 GPU
    full_steps = 3 * a.full_samples / samples_per_step
    result = {
        "model": "random Qwen2.5-7B architecture" if a.random else model,
        "steps": a.steps, "train_runtime_s": round(runtime, 1), "wall_s_incl_load": round(wall, 1),
        "s_per_step_excl_eval": round(steady, 3), "samples_per_s": round(samples_per_step / steady, 2),
        "peak_gpu_mem_gib": round(sampler.peak_mib / 1024, 1),
        "eval_losses": [r["eval_loss"] for r in evals],
        "best_checkpoint_exists": (out_dir / "checkpoint-best" / "adapter_config.json").is_file(),
        "projected_full_schedule_h": round(full_steps * steady / 3600, 1),
        "projected_for_samples": a.full_samples,
    }
    print(json.dumps(result, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
