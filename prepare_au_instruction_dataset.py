#!/usr/bin/env python
"""Build the AU instruction dataset (train/val/test JSONL + stats.json) for AU Agent fine-tuning.

Examples:
  python prepare_au_instruction_dataset.py --openface-dir data/openface --teacher rule --out-dir data/au_instructions
  python prepare_au_instruction_dataset.py --mer-factory-dir mer_factory_output --out-dir data/au_instructions
  python prepare_au_instruction_dataset.py --alpaca au_alpaca.jsonl --out-dir data/au_instructions --export llamafactory
  python prepare_au_instruction_dataset.py --alpaca au_alpaca.jsonl --out-dir data/au_instructions --audit-filter
  OPENAI_API_KEY=... python prepare_au_instruction_dataset.py --openface-dir data/openface --teacher api \\
      --api-model gpt-4o --api-base-url https://<your-endpoint>/v1 --out-dir data/au_instructions
A killed run resumes where it stopped when rerun with the same arguments.
"""
import argparse
import sys

from my_affectgpt.au.api_teacher import TeacherAPIError
from my_affectgpt.au.openface import DEFAULT_MIN_CONFIDENCE
from my_affectgpt.au.sampling import SAMPLING_METHODS
from my_affectgpt.common.errors import cli_entry, report, InputError
from my_affectgpt.datasets.au_instructions import BuildConfig, build, default_workers
from my_affectgpt.evaluation.teacher_audit import audit_references, summary_lines


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("inputs (any combination, each repeatable)")
    src.add_argument("--openface-dir", action="append", default=[], metavar="DIR",
                     help="OpenFace CSVs: <DIR>/<video>.csv or <DIR>/<video>/<video>.csv")
    src.add_argument("--mer-factory-dir", action="append", default=[], metavar="DIR",
                     help="MER-Factory output folder (<DIR>/<video>/<video>_au_analysis.json ...)")
    src.add_argument("--alpaca", action="append", default=[], metavar="FILE",
                     help="Alpaca or ShareGPT JSONL whose inputs carry 'AU values: AU04: 2.24, ...'")
    p.add_argument("--out-dir", required=True, help="writes train/val/test.jsonl and stats.json here")
    p.add_argument("--teacher", choices=("rule", "api"), default="rule",
                   help="who writes descriptions for frames without one (default: rule)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and of --max-samples (default 0)")
    p.add_argument("--frames-per-video", type=int, default=8, metavar="K",
                   help="frames sampled per OpenFace video (default 8)")
    p.add_argument("--sampling", choices=SAMPLING_METHODS, default="uniform")
    p.add_argument("--split", type=float, nargs=3, default=(0.9, 0.05, 0.05),
                   metavar=("TRAIN", "VAL", "TEST"), help="fractions of videos (default 0.9 0.05 0.05)")
    p.add_argument("--max-samples", type=int, default=None,
                   help="keep at most N samples (a seeded subset, after de-duplication)")
    p.add_argument("--long-states", type=float, default=0.15, metavar="SHARE",
                   help="share of the train split made of composite long states: two training "
                        "frames' AUs joined so that a face region lists 5 or more, described by "
                        "the rule teacher (only when the rule teacher wrote every training row; "
                        "they come on top of --max-samples; default 0.15, 0 = none)")
    p.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                   help=f"OpenFace frames below this confidence are never used (default {DEFAULT_MIN_CONFIDENCE})")
    p.add_argument("--workers", type=int, default=default_workers(), help="parallel CSV readers")
    p.add_argument("--export", choices=("llamafactory",), default=None,
                   help="also write LLaMA-Factory Alpaca/ShareGPT files + dataset_info.json")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    aud = p.add_argument_group("teacher audit (external references: --teacher api, --alpaca, "
                               "--mer-factory-dir; always scored in stats.json)")
    aud.add_argument("--audit-filter", action="store_true",
                     help="drop external references that the AU judge finds naming an inactive AU "
                          "or missing active AUs (default: off, keep all)")
    aud.add_argument("--audit-max-missed", type=int, default=None, metavar="K",
                     help="with --audit-filter, tolerate up to K missed active AUs (default 0)")
    api = p.add_argument_group("API teacher (--teacher api; key from an environment variable only)")
    api.add_argument("--api-model", default=None, help="e.g. gpt-4o, gemini-2.0-flash, a vLLM model name")
    api.add_argument("--api-base-url", default=None, help="OpenAI-compatible base URL ending in /v1")
    api.add_argument("--api-key-env", default="OPENAI_API_KEY", help="env var holding the key")
    api.add_argument("--api-rpm", type=float, default=60, help="requests per minute (default 60)")
    return p.parse_args(argv)


@cli_entry
def main(argv=None):
    a = parse_args(argv)
    if a.teacher == "api" and not (a.api_model and a.api_base_url):
        raise InputError(None, "--teacher api needs --api-model and --api-base-url")
    if a.max_samples is not None and a.max_samples < 1:
        raise InputError(None, "--max-samples must be >= 1")
    if a.audit_max_missed is not None and not a.audit_filter:
        raise InputError(None, "--audit-max-missed needs --audit-filter")
    cfg = BuildConfig(out_dir=a.out_dir, openface_dirs=a.openface_dir,
                      mer_factory_dirs=a.mer_factory_dir, instruction_files=a.alpaca,
                      teacher=a.teacher, seed=a.seed, frames_per_video=a.frames_per_video,
                      sampling=a.sampling, split=tuple(a.split), max_samples=a.max_samples,
                      min_confidence=a.min_confidence, workers=a.workers, export=a.export,
                      progress=not a.no_progress, audit_filter=a.audit_filter,
                      audit_max_missed=a.audit_max_missed or 0, long_state_share=a.long_states,
                      api={"model": a.api_model, "base_url": a.api_base_url,
                           "api_key_env": a.api_key_env, "requests_per_minute": a.api_rpm})
    try:
        stats = build(cfg, log=lambda m: print(m, file=sys.stderr), audit=audit_references)
    except TeacherAPIError as err:  # the service failed, not the input: rerun resumes from cache
        print(f"error: API teacher: {err}", file=sys.stderr)
        return 1
    for line in stats["skipped_inputs"]:
        report(InputError(None, f"{line} (skipped)"))
    n = stats["samples"]
    print(f"wrote {n['total']} samples to {a.out_dir}: train {n['train']}, val {n['val']}, "
          f"test {n['test']} ({stats['duplicates_dropped']} duplicates dropped, "
          f"{len(stats['skipped_inputs'])} inputs skipped)")
    if stats["teacher_audit"]:
        print("\n".join(summary_lines(stats["teacher_audit"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
