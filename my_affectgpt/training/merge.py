"""Fold a trained LoRA adapter into its base model and export one plain model folder.

    python -m my_affectgpt.training.merge --adapter output/au_agent_qwen2.5_7b_lora/checkpoint-best \
        --out output/au_agent_qwen2.5_7b_merged

The merging itself is models/lora_merge.py (the vLLM backend of the AU Agent uses it too).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from my_affectgpt.common.errors import InputError, cli_entry
from my_affectgpt.models.lora_merge import merge


@cli_entry
def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m my_affectgpt.training.merge",
        description="Merge a LoRA adapter into its base model and export safetensors + tokenizer.")
    p.add_argument("--adapter", required=True, help="adapter folder, e.g. <output_dir>/checkpoint-best")
    p.add_argument("--base-model", default=None,
                   help="base model folder or embedded name (default: the one the adapter records)")
    p.add_argument("--out", required=True, help="folder to write the merged model to")
    p.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp16", "fp32"],
                   help="weights dtype of the export (auto: as the base model is stored)")
    p.add_argument("--cache-dir", default=None,
                   help="cache of converted embedded models (default: $AU_AGENT_CACHE or ./cache)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    a = p.parse_args(argv)
    if not (Path(a.adapter) / "adapter_config.json").is_file():
        raise InputError(a.adapter, "not a LoRA adapter folder (no adapter_config.json)")
    out = merge(a.adapter, a.out, a.base_model, a.dtype, a.cache_dir, a.overwrite)
    print(f"merged model written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
