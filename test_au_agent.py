#!/usr/bin/env python
"""Evaluate a fine-tuned AU Agent beside the untuned base model and the rule teacher.

Examples:
  python test_au_agent.py --adapter output/au_agent_qwen2.5_7b_lora/checkpoint-best \\
      --data data/au_instructions/test.jsonl --json output/au_agent_report.json
  python test_au_agent.py --adapter output/au_agent_smollm2_lora/checkpoint-best --openface-dir my_openface_csvs
  python test_au_agent.py --adapter output/au_agent_smollm2_lora/checkpoint-best \
      --data data/au_instructions/test.jsonl --real-openface-dir ../shared/openface_samples 32 \
      --real-openface-dir ../shared/labelled_au/ravdess_openface_actors_01-03 8
Prints a metrics table and a probe table (EMFACS prototypes, each AU at each intensity band,
neutral); --json also writes them (top-level keys: eval_loss, au_precision, au_recall, au_f1,
hallucination_rate, emotion_word_rate, band_agreement, rouge_l, mean_words, descriptions_per_s).
With --real-openface-dir, a separate section scores the tuned model (and the rule teacher) on
real OpenFace frames, leaving out any video or frame of the adapter's training data (`real_frames`
in the JSON lists every frame used and every output). Every description is also read by the AU
judge against its own input, as the runtime's au_agent_verify does: the report shows the
figures without and with repair, the checks' counts (`verified`: checked, regenerated,
fell_back), the fallback rate and omission by number of active AUs (`verify_checks`).
"""
import argparse
import json
import sys
from pathlib import Path

from my_affectgpt.common.atomic import atomic_write_text
from my_affectgpt.common.errors import InputError, cli_entry
from my_affectgpt.evaluation.au_agent_eval import (evaluate, format_report, items_from_jsonl,
                                                   items_from_openface)
from my_affectgpt.evaluation.au_real_frames import parse_source, real_frame_items, training_files_of


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--adapter", required=True, help="LoRA adapter folder (e.g. .../checkpoint-best)")
    p.add_argument("--base-model", default=None,
                   help="base model folder or 'smollm2-135m-instruct' (default: the one the adapter records)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="held-out JSONL of the instruction dataset (with references)")
    src.add_argument("--openface-dir", help="OpenFace CSVs: 8 sampled frames per video, no references")
    p.add_argument("--real-openface-dir", action="append", nargs="+", default=[],
                   metavar=("DIR", "FRAMES"),
                   help="real OpenFace CSVs for a separate section: DIR, or DIR N to sample N frames "
                        "per video uniformly (default 8); repeatable")
    p.add_argument("--train-data", nargs="+", default=None, metavar="JSONL",
                   help="the adapter's training data, whose frames the real-frame section leaves out "
                        "(default: data.train and data.val of the config saved beside the adapter)")
    p.add_argument("--json", default=None, help="also write the report as JSON here")
    p.add_argument("--max-samples", type=int, default=None, help="evaluate the first N samples only")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=96,
                   help="cap per description (default 96: the rule teacher's longest is 77 CLIP "
                        "tokens, all CLIP reads; longer outputs only cost time)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--dtype", default="auto", choices=("auto", "bf16", "fp16", "fp32"))
    p.add_argument("--verify", choices=("off", "flag", "repair"), default="repair",
                   help="which outputs the main figures score: repair (default; each description "
                        "the judge fails is written again with the problem stated, then replaced "
                        "by the rule teacher's, as au_agent_verify does), flag or off (the model's "
                        "own outputs); the report shows off and repair side by side either way")
    p.add_argument("--no-baselines", action="store_true", help="skip the untuned base model")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


@cli_entry
def main(argv=None):
    a = parse_args(argv)
    if a.max_samples is not None and a.max_samples < 1:
        raise InputError(None, "--max-samples must be >= 1")
    items = (items_from_jsonl(a.data, a.max_samples) if a.data
             else items_from_openface(a.openface_dir, limit=a.max_samples))
    real = None
    if a.real_openface_dir:
        sources = [parse_source(v) for v in a.real_openface_dir]
        train = [Path(p) for p in a.train_data] if a.train_data is not None else training_files_of(a.adapter)
        real = real_frame_items(sources, train)
    report = evaluate(items, adapter=a.adapter, base=a.base_model, device=a.device, dtype=a.dtype,
                      baselines=not a.no_baselines, batch_size=a.batch_size,
                      max_new_tokens=a.max_new_tokens, progress=not a.no_progress, real=real,
                      verify_mode=a.verify)
    print(format_report(report))
    if a.json:
        atomic_write_text(a.json, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"\nreport written to {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
