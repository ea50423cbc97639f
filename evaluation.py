#!/usr/bin/env python
"""Score generated emotion descriptions against ground truth (MER-UniBench-style metrics).

Examples:
  python evaluation.py --pred output/results-mer2023/run/checkpoint_000030.npz \\
      --gt data/mer2023/label.csv --json output/eval-mer2023.json
  python evaluation.py --pred preds.jsonl --gt ovmerd.csv --wheel wheels/wheel1.csv wheels/wheel2.csv
  python evaluation.py --pred preds.npz --gt labels.csv --extractor llm \\
      --llm-base-url http://127.0.0.1:8000/v1 --llm-model Qwen2.5-7B-Instruct
  python evaluation.py --pred preds.npz --gt labels.csv --extractor llm --llm-local path/to/Qwen2.5-7B-Instruct

Predictions: .npz with string arrays `names` and `reasons`, or .jsonl lines {"name", "answer"}.
Ground truth: CSV with `name` and any of `openset` (set precision / recall / F1), `emotion` or
`label` (hit rate), `sentiment` or `valence` (weighted F1, positive vs negative). Labels are
extracted from the generated text by the offline lexicon (default) or by an LLM, then normalised
through the synonym table (my_affectgpt/evaluation/emotion_labels.py). --json also writes the
metrics and the labels extracted per video.
"""
import argparse
import sys

from my_affectgpt.common.errors import InputError, cli_entry
from my_affectgpt.evaluation.emotion_eval import (evaluate, format_report, load_ground_truth,
                                                  load_predictions, load_wheels, write_report)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pred", required=True, help="predictions: .npz (names, reasons) or .jsonl")
    p.add_argument("--gt", required=True, help="ground-truth CSV (name + openset/emotion/label/"
                                               "sentiment/valence)")
    p.add_argument("--extractor", choices=("lexicon", "llm"), default="lexicon",
                   help="how labels are read from the generated text (default: lexicon)")
    p.add_argument("--wheel", nargs="+", default=[], metavar="FILE",
                   help="emotion-wheel files (CSV word,group or level1,level2,level3; JSON "
                        "{word: group}); open-set labels are grouped before the set metrics")
    p.add_argument("--wheel-level", choices=("level1", "level2"), default="level1",
                   help="grouping level of level1/level2/level3 wheel CSVs (default: level1)")
    p.add_argument("--json", default=None, help="also write the report as JSON here")
    p.add_argument("--no-progress", action="store_true")
    llm = p.add_argument_group("LLM extractor (--extractor llm): an endpoint or a local model")
    llm.add_argument("--llm-base-url", default=None,
                     help="OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1")
    llm.add_argument("--llm-model", default=None, help="model name the endpoint serves")
    llm.add_argument("--llm-api-key-env", default=None, metavar="VAR",
                     help="environment variable holding the API key (needed unless the "
                          "endpoint is on loopback)")
    llm.add_argument("--llm-cache", default=None, metavar="FILE",
                     help="SQLite cache of endpoint answers (reruns ask only for new texts)")
    llm.add_argument("--llm-workers", type=int, default=4, help="parallel endpoint requests")
    llm.add_argument("--llm-local", default=None, metavar="MODEL",
                     help="local Hugging Face chat model folder (or an embedded model name)")
    llm.add_argument("--llm-adapter", default=None, help="LoRA adapter for --llm-local")
    llm.add_argument("--device", default="cpu", help="device of --llm-local: cpu, cuda, cuda:1")
    llm.add_argument("--batch-size", type=int, default=8, help="batch size of --llm-local")
    llm.add_argument("--max-new-tokens", type=int, default=64)
    return p.parse_args(argv)


def build_extractor(a):
    from my_affectgpt.evaluation.label_extractors import (ChatEndpoint, HFChatGenerator,
                                                          LexiconExtractor, LLMExtractor)

    if a.extractor == "lexicon":
        return LexiconExtractor()
    if bool(a.llm_base_url) == bool(a.llm_local):
        raise InputError("--extractor llm", "give either --llm-base-url with --llm-model "
                                            "(an endpoint) or --llm-local (a local model)")
    if a.max_new_tokens < 1 or a.batch_size < 1:
        raise InputError("--max-new-tokens/--batch-size", "must be >= 1")
    if a.llm_base_url:
        gen = ChatEndpoint(a.llm_base_url, a.llm_model, api_key_env=a.llm_api_key_env,
                           max_tokens=a.max_new_tokens, workers=a.llm_workers,
                           cache_path=a.llm_cache, progress=not a.no_progress)
        return LLMExtractor(gen, name=f"llm endpoint {gen.shown_url} ({gen.model})")
    gen = HFChatGenerator.load(a.llm_local, adapter=a.llm_adapter, device=a.device,
                               batch_size=a.batch_size, max_new_tokens=a.max_new_tokens,
                               progress=not a.no_progress)
    return LLMExtractor(gen, name=f"llm local {a.llm_local}")


@cli_entry
def main(argv=None):
    a = parse_args(argv)
    predictions = load_predictions(a.pred)
    gt = load_ground_truth(a.gt)
    wheels = load_wheels(a.wheel, a.wheel_level)
    if wheels and not gt.openset:
        raise InputError(a.gt, "--wheel groups open-set labels, but no row has an openset value")
    extractor = build_extractor(a)
    report = evaluate(predictions, gt, extractor, wheels=wheels, progress=not a.no_progress,
                      pred_source=a.pred)
    report = {"predictions": str(a.pred), "ground_truth": str(a.gt), **report}
    print(format_report(report))
    if a.json:
        write_report(a.json, report)
        print(f"report written to {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
