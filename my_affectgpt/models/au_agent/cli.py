"""Command line of the AU Agent (`python -m my_affectgpt.models.au_agent extract|plot`).

    python -m my_affectgpt.models.au_agent extract --openface-dir data/openface --out-dir data/au_features \\
        --config train_configs/config_with_au_agent.yaml
    python -m my_affectgpt.models.au_agent plot data/openface/vid0001/vid0001.csv --out vid0001.png \\
        --backend template
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from my_affectgpt.au.sampling import SAMPLING_METHODS
from my_affectgpt.common.errors import InputError, cli_entry
from my_affectgpt.models.au_agent.config import (BACKENDS, CPU_BATCH, GPU_BATCH, VERIFY_MODES,
                                                 AUAgentConfig, load_agent_config)
from my_affectgpt.models.au_agent.extract import dist_share, extract
from my_affectgpt.models.au_agent.runtime import AUAgent

_EPILOG = """examples:
  # features for every CSV of an OpenFace folder, settings from an AffectGPT config (DESIGN.md §6)
  python -m my_affectgpt.models.au_agent extract --openface-dir data/openface \\
      --out-dir data/au_features --config train_configs/config_with_au_agent.yaml
  # no LLM, offline text encoder (rule-teacher descriptions, MiniLM 384-d)
  python -m my_affectgpt.models.au_agent extract --openface-dir data/openface \\
      --out-dir data/au_features_template --backend template --text-encoder minilm
  # one process per GPU (torchrun sets RANK/WORLD_SIZE), each a disjoint share of the videos
  accelerate launch --multi_gpu --num_processes 8 -m my_affectgpt.models.au_agent extract \\
      --openface-dir data/openface --out-dir data/au_features \\
      --config train_configs/config_with_au_agent.yaml
A rerun skips finished videos and recomputes stale ones (another adapter, prompt version,
encoder, T or sampling method) and those whose CSV changed."""


def _agent_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("AU Agent (flags override the config)")
    g.add_argument("--config", help="YAML config holding the au_agent_* keys (an AffectGPT config works)")
    g.add_argument("--section", help="dotted config section holding them, e.g. datasets.mercaptionplus "
                                     "(default: searched)")
    g.add_argument("--backend", choices=BACKENDS, help="hf (default), template (rule teacher, no LLM), vllm (GPU)")
    g.add_argument("--base-model", help="base model: Hugging Face folder or smollm2-135m-instruct")
    g.add_argument("--lora-weights", help="LoRA adapter folder (merged into the base for inference)")
    g.add_argument("--no-lora", action="store_true", help="ignore the adapter (au_agent_use_lora: false)")
    g.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    g.add_argument("--dtype", choices=("auto", "bf16", "fp16", "fp32"))
    g.add_argument("--batch-size", type=int, help=f"prompts per generate call (default {CPU_BATCH} CPU, {GPU_BATCH} GPU)")
    g.add_argument("--max-new-tokens", type=int, help="longest description in tokens (default 160)")
    g.add_argument("--cache", help="description cache (SQLite file; 'none' for memory only; default "
                                   "<model cache>/au_descriptions.sqlite)")
    g.add_argument("--model-cache-dir", help="where embedded models are converted (default $AU_AGENT_CACHE or ./cache)")
    g.add_argument("--num-frames", type=int, help="frames per video, T (default 8)")
    g.add_argument("--sampling", choices=SAMPLING_METHODS, help="uniform in time (default) or AU peaks")
    g.add_argument("--verify", choices=VERIFY_MODES,
                   help="read each description with the AU judge against its AU input: repair "
                        "(default: a failing one gets one second attempt aimed at the problem, "
                        "then the rule teacher's description), flag (only recorded), off")


def _config_from_args(args, **extra) -> AUAgentConfig:
    overrides = dict(backend=args.backend, base_model=args.base_model, lora_weights=args.lora_weights,
                     use_lora=False if args.no_lora else None, device=args.device, dtype=args.dtype,
                     batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, cache_path=args.cache,
                     model_cache_dir=args.model_cache_dir, num_frames=args.num_frames, sampling=args.sampling,
                     verify=args.verify)
    overrides.update(extra)
    return load_agent_config(args.config, args.section, **overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m my_affectgpt.models.au_agent",
        description="AU Agent runtime: describe sampled OpenFace frames and store their text features.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{extract,plot}")
    ex = sub.add_parser("extract", help="features for every video of an OpenFace folder (resumable)",
                        description="Write <out-dir>/<video>.npy (float16 [T, D]) and <video>.json per "
                                    "OpenFace CSV, skipping videos whose features are up to date.",
                        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("--openface-dir", help="OpenFace outputs (default: config openface_output_dir)")
    ex.add_argument("--out-dir", help="feature folder (default: config au_feature_dir)")
    _agent_args(ex)
    ex.add_argument("--text-encoder", help="open_clip:ViT-B-32 (default), minilm (offline, 384-d), "
                                          "sentence-transformers:FOLDER, open_clip:CONFIG.json")
    ex.add_argument("--text-encoder-pretrained", help="open_clip pretrained tag (default openai) or checkpoint file")
    ex.add_argument("--chunk-videos", type=int, default=64, help="videos described together (default 64)")
    ex.add_argument("--force", action="store_true", help="recompute every video")
    ex.add_argument("--limit", type=int, help="only the first N videos (quick trials)")
    ex.add_argument("--no-progress", action="store_true", help="no progress bar")
    pl = sub.add_parser("plot", help="picture of one video: AU curves, sampled frames, descriptions",
                        description="AU intensities over time (one line per active AU, failed frames "
                                    "shaded), the sampled frames marked, their descriptions below.")
    pl.add_argument("csv", help="one OpenFace CSV")
    pl.add_argument("--out", required=True, help="PNG file to write")
    pl.add_argument("--title", help="figure title (default: the video name and backend)")
    _agent_args(pl)
    return parser


def _run_extract(args) -> int:
    cfg = _config_from_args(args, text_encoder=args.text_encoder,
                            text_encoder_pretrained=args.text_encoder_pretrained)
    openface_dir = args.openface_dir or cfg.openface_dir
    out_dir = args.out_dir or cfg.feature_dir
    if not openface_dir:
        raise InputError("--openface-dir", "missing (or set openface_output_dir in the config)")
    if not out_dir:
        raise InputError("--out-dir", "missing (or set au_feature_dir in the config)")
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit", f"must be >= 1, got {args.limit}")
    rank, world = dist_share()
    with AUAgent(cfg) as agent:
        counts = extract(agent, openface_dir, out_dir, rank=rank, world=world,
                         chunk_videos=args.chunk_videos, force=args.force, limit=args.limit,
                         progress=not args.no_progress)
    s = counts["stats"]
    print(f"extract [{rank}/{world}]: {counts['share']} of {counts['videos']} videos: "
          f"{counts['written']} written ({counts['empty']} empty, {counts['few_frames']} with fewer "
          f"than {cfg.num_frames} frames), {counts['skipped']} up to date, {counts['failed']} failed; "
          f"{s['frames']} frames, {s['unique_prompts']} distinct prompts, {s['neutral_frames']} neutral, "
          f"{s['cache_hits']} cache hits, {s['generated']} generated in {counts['seconds']:.1f} s -> {out_dir}")
    v = counts["verified"]
    if cfg.verify != "off":
        print(f"verify ({cfg.verify}): {v['checked']} frame descriptions checked, {v['failed_first']} "
              f"failed the judge" + (f" ({v['flagged']} flagged)" if cfg.verify == "flag" else
                                     f": {v['regenerated']} repaired by a second attempt, "
                                     f"{v['fell_back']} replaced by the rule teacher")
              + (f"; per video in <out-dir>/<video>.json 'verified' ({len(counts['verified_videos'])} "
                 f"videos with failures)" if counts["verified_videos"] else ""))
    return 1 if counts["failed"] else 0


def _run_plot(args) -> int:
    from my_affectgpt.models.au_plot import plot_video

    cfg = _config_from_args(args)
    with AUAgent(cfg) as agent:
        plan = agent.plan_video(args.csv)
        if plan["status"] == "empty":
            raise InputError(args.csv, f"nothing to plot: {plan['reason']}")
        descriptions = agent.describe(plan["slots"])
    title = args.title or f"{plan['video']}  (AU Agent: {cfg.backend}" + \
        (f", {Path(cfg.base_model).name}" if cfg.backend != "template" and cfg.base_model else "") + ")"
    out = plot_video(plan["track"], plan["slots"], descriptions, args.out, bands=cfg.bands, title=title)
    print(f"plot: {len(plan['slots'])} sampled frames of {plan['video']} -> {out}")
    return 0


@cli_entry
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "extract":
        return _run_extract(args)
    return _run_plot(args)
