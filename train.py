#!/usr/bin/env python
"""Train AffectGPT (with the AU branch) from one YAML config.

    python train.py --cfg-path train_configs/affectgpt_tiny_cpu.yaml --options run.max_epoch=1
    accelerate launch --num_processes 8 train.py --cfg-path train_configs/config_with_au_agent.yaml

The recipe is my_affectgpt/training/affectgpt_loop.py; this script only parses arguments.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

# Before torch loads OpenMP: idle threads sleep instead of spinning, which on a shared CPU
# machine otherwise slows small models by up to 10x (bench/RESULTS.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from my_affectgpt.common.errors import cli_entry  # noqa: E402


def parse_args(argv):
    from my_affectgpt.datasets.affectgpt_config import add_config_args

    p = argparse.ArgumentParser(
        prog="train.py",
        description="Train AffectGPT: frozen CLIP/HuBERT encoders, fusion, the AU branch and an LLM "
                    "with LoRA, on MER-Caption+ style data. Checkpoints (trainable weights, "
                    "safetensors) and TensorBoard logs go to <run.output_dir>/<config name>/<run.job_name>/; "
                    "a rerun resumes from the last checkpoint there (run.resume: auto).",
        epilog="examples:\n"
               "  python train.py --cfg-path train_configs/affectgpt_tiny_cpu.yaml\n"
               "  python train.py --cfg-path train_configs/config_with_au_agent.yaml "
               "--options run.max_epoch=3 run.job_name=trial\n"
               "  accelerate launch --num_processes 4 train.py --cfg-path "
               "train_configs/config_with_au_agent.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, example="run.max_epoch=1 model.au_mode=text")
    p.add_argument("--dry-run", action="store_true",
                   help="check the config, print it resolved, and exit without training")
    return p.parse_args(argv)


@cli_entry
def main(argv=None) -> int:
    args = parse_args(argv)
    from my_affectgpt.common.config import config_to_yaml
    from my_affectgpt.datasets.affectgpt_config import load_affectgpt_config

    cfg = load_affectgpt_config(args.cfg_path, args.options)
    if args.dry_run:
        sys.stdout.write(config_to_yaml(cfg))
        return 0
    # Our own messages at INFO on the main process; libraries (accelerate's checkpoint chatter) at WARNING.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if int(os.environ.get("RANK", "0")) == 0:
        logging.getLogger("my_affectgpt").setLevel(logging.INFO)
    from my_affectgpt.training.affectgpt_loop import train

    result = train(cfg, args.cfg_path)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"last checkpoint: {result.checkpoint} (global step {result.global_step})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
