"""What does each AU route carry? A linear probe of frozen per-video representations on labelled data.

    python -m my_affectgpt.evaluation.au_probe --openface-dir DIR --labels labels.csv \\
        --group-column actor --routes values,rule_text,agent_text,hybrid \\
        --config inference_config_au_agent.yaml --json probe.json --png probe.png

Every route sees the same T uniformly sampled usable frames of each video (the AU Agent
runtime's plan: `sampled_frame_aus`, and a video with fewer usable frames repeats them as the
runtime does), pooled into one vector per video:
- `values`: the 17 `_r` intensities and AU28_c per frame, pooled by mean, max and std (54);
- `rule_text`: text features of the rule teacher's descriptions (template backend), mean over T;
- `agent_text`: the same with the fine-tuned AU Agent (hf/vllm backend from --config or
  --base-model/--adapter); skipped, with the reason, when no agent is given;
- `hybrid`: values and agent_text concatenated (rule_text without an agent; the JSON says which),
  standardized together inside each fold.
Both text routes use one text encoder (--text-encoder, default the offline MiniLM), so they
differ only in who wrote the descriptions. They go through the runtime: features are kept in a
FeatureStore per describer under --cache-dir and descriptions in the agent's SQLite cache, so a
rerun reads them back (stale ones, e.g. after a new adapter, are recomputed). The classifier and
folds are in au_probe_cv.py.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from my_affectgpt.au.openface import find_openface_csvs
from my_affectgpt.common.atomic import atomic_write_text
from my_affectgpt.common.errors import InputError, cli_entry
from my_affectgpt.models import base_llm
from my_affectgpt.models.au_agent import AUAgent, AUAgentConfig, load_agent_config, resolve_device
from my_affectgpt.models.au_values import VALUE_COLUMNS  # the values route of AffectGPT
from my_affectgpt.models.feature_store import FeatureStore, identity_hash
from my_affectgpt.models.text_encoders import (DEFAULT_PRETRAINED, TextEncoderSpec, encoder_identity,
                                               load_text_encoder)

from .au_probe_cv import chance_levels, cross_validate, format_table, make_folds, plot_report

ROUTES = ("values", "rule_text", "agent_text", "hybrid")
CHUNK_VIDEOS = 64                          # videos described together (one runtime batch pass)


# ---- labels ---------------------------------------------------------------------------------

def read_labels(path, name_col: str = "name", label_col: str = "label",
                group_col: str | None = None) -> list[dict]:
    """[{name, label, group}] in file order; any problem is one InputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "labels file not found" if not path.exists() else "not a file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as err:
        raise InputError(path, f"not a readable CSV ({err})") from None
    if not columns:
        raise InputError(path, "empty labels file (no header)")
    for flag, col in (("--name-column", name_col), ("--label-column", label_col), ("--group-column", group_col)):
        if col is not None and col not in columns:
            raise InputError(path, f"no column {col!r} ({flag}); columns present: {', '.join(columns)}")
    out, seen = [], set()
    for lineno, row in enumerate(rows, 2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        name, label = row.get(name_col, ""), row.get(label_col, "")
        if not name and not label:
            continue  # blank line
        if not name or not label:
            raise InputError(path, f"line {lineno}: empty {name_col if not name else label_col!r}")
        if name in seen:
            raise InputError(path, f"line {lineno}: video {name!r} is listed twice")
        seen.add(name)
        group = row.get(group_col, "") if group_col else None
        if group_col and not group:
            raise InputError(path, f"line {lineno}: empty {group_col!r}")
        out.append({"name": name, "label": label, "group": group})
    if not out:
        raise InputError(path, "no labelled video in the file")
    return out


# ---- per-video representations --------------------------------------------------------------

def pooled_values(slots) -> np.ndarray:
    """Mean, max and std over frames of the 18 AU values (54 numbers)."""
    m = np.array([[s.au.get(c, 0.0) for c in VALUE_COLUMNS] for s in slots], dtype=np.float64)
    return np.concatenate([m.mean(0), m.max(0), m.std(0)])


def plan_videos(rows: list[dict], openface_dir, num_frames: int, progress: bool = True):
    """(usable rows with `csv` and `values`, skipped {reason: [names]}, {name: cause} of bad files)."""
    found = dict(find_openface_csvs(openface_dir))
    planner = AUAgent(AUAgentConfig(backend="template", num_frames=num_frames, sampling="uniform"))
    kept, skipped, causes = [], {"missing": [], "no_usable_frame": [], "unreadable": []}, {}
    for row in tqdm(rows, desc="read OpenFace CSVs", unit="video", disable=not progress, dynamic_ncols=True):
        csv_path = found.get(row["name"])
        if csv_path is None:
            skipped["missing"].append(row["name"])
            continue
        try:
            plan = planner.plan_video(csv_path, row["name"])
        except InputError as err:  # not an OpenFace CSV: that video only
            skipped["unreadable"].append(row["name"])
            causes[row["name"]] = err.cause
            continue
        if plan["status"] == "empty":
            skipped["no_usable_frame"].append(row["name"])
            continue
        kept.append({**row, "csv": csv_path, "frames": [s.frame for s in plan["slots"]],
                     "values": pooled_values(plan["slots"])})
    return kept, skipped, causes


class LazyEncoder:
    """One text encoder shared by the text routes, loaded only if some features must be computed."""

    def __init__(self, spec: TextEncoderSpec, device: str):
        self.spec, self.device, self._enc = spec, device, None

    def __getattr__(self, name):  # only reached for attributes the proxy itself lacks
        if self._enc is None:
            self._enc = load_text_encoder(self.spec, device=self.device)
        return getattr(self._enc, name)


def text_route(agent: AUAgent, rows: list[dict], cache_dir, progress: bool = True, label: str = "") -> tuple:
    """Mean-pooled text features [n, D] of one describer, through its FeatureStore; and run info."""
    ident = agent.feature_identity()
    store = FeatureStore(Path(cache_dir) / f"{agent.config.backend}-{identity_hash(ident)}", ident)
    todo = [(r["name"], r["csv"]) for r in rows if store.status(r["name"], r["csv"]) != "done"]
    bar = tqdm(total=len(rows), initial=len(rows) - len(todo), desc=f"{label} features", unit="video",
               disable=not progress, dynamic_ncols=True)
    try:
        for i in range(0, len(todo), CHUNK_VIDEOS):
            chunk = todo[i:i + CHUNK_VIDEOS]
            for video, feats, meta, err in agent.videos_features(chunk, progress=progress):
                if err is not None:  # plan_videos read this file already; only a change under us gets here
                    raise err
                store.save(video, feats, meta)
            bar.update(len(chunk))
    finally:
        bar.close()
    pooled = []
    for r in rows:
        feats, meta = store.load(r["name"])
        if meta["frames"] != r["frames"]:  # the runtime and the values route must see the same frames
            raise InputError(r["csv"], "the runtime sampled other frames than the values route")
        pooled.append(feats.astype(np.float32).mean(0))
    info = {"feature_dir": str(store.root), "computed": len(todo), "reused": len(rows) - len(todo),
            "describer": agent.identity(), "agent_stats": agent.stats.as_dict()}
    return np.stack(pooled), info


def route_features(kept: list[dict], routes, common: dict, encoder, cache_dir, agent_cfg=None,
                   progress: bool = True) -> tuple[dict, dict, list]:
    """({route: [videos, dim] array}, {text route: run info}, the routes hybrid joins) for the
    planned videos `kept`. `common`: the AUAgentConfig fields both text routes share; the agent
    route (and the hybrid's text) runs only with `agent_cfg`, else the hybrid joins rule_text."""
    features = {"values": np.stack([r["values"] for r in kept])}
    route_info = {}
    if "rule_text" in routes or ("hybrid" in routes and agent_cfg is None):
        with AUAgent(AUAgentConfig(backend="template", **common), encoder=encoder) as agent:
            features["rule_text"], route_info["rule_text"] = text_route(agent, kept, cache_dir, progress, "rule_text")
    if agent_cfg is not None:
        with AUAgent(agent_cfg, encoder=encoder) as agent:
            features["agent_text"], route_info["agent_text"] = text_route(agent, kept, cache_dir, progress, "agent_text")
    hybrid_of = ["values", "agent_text" if agent_cfg is not None else "rule_text"]
    if "hybrid" in routes:
        features["hybrid"] = np.concatenate([features[k] for k in hybrid_of], axis=1)
    return features, route_info, hybrid_of


def agent_config(args, common: dict) -> tuple[AUAgentConfig | None, str | None]:
    """The fine-tuned agent's config, or (None, why the agent_text route is skipped)."""
    if not (args.config or args.base_model or args.adapter):
        return None, ("no AU Agent given (--config with au_agent_base_model / au_agent_lora_weights, "
                      "or --base-model / --adapter)")
    overrides = dict(common, base_model=args.base_model, lora_weights=args.adapter,
                     use_lora=True if args.adapter else None, max_new_tokens=args.max_new_tokens,
                     batch_size=args.batch_size, cache_path=args.description_cache)
    try:
        cfg = load_agent_config(args.config, args.section, **overrides)
    except InputError as err:
        if args.config and not (args.base_model or args.adapter) and err.path == "au_agent_base_model":
            return None, f"{args.config} names no AU Agent (au_agent_base_model / au_agent_lora_weights)"
        raise
    if cfg.backend == "template":
        return None, "the configured AU Agent is the template backend, i.e. the rule_text route"
    return cfg, None


# ---- the probe ------------------------------------------------------------------------------

def parse_routes(text: str) -> list[str]:
    routes = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in routes if r not in ROUTES]
    if bad or not routes:
        raise InputError("--routes", f"unknown route {bad[0]!r}; choose from {', '.join(ROUTES)}" if bad
                         else "no route given")
    return list(dict.fromkeys(routes))


def run_probe(args) -> dict:
    routes = parse_routes(args.routes)
    if args.num_frames < 1:
        raise InputError("--num-frames", f"must be >= 1, got {args.num_frames}")
    rows = read_labels(args.labels, args.name_column, args.label_column, args.group_column)
    progress = not args.no_progress
    kept, skipped, causes = plan_videos(rows, args.openface_dir, args.num_frames, progress)
    n_skipped = sum(len(v) for v in skipped.values())
    if n_skipped:
        detail = ", ".join(f"{len(v)} {k.replace('_', ' ')} ({', '.join(v[:3])}{', ...' if len(v) > 3 else ''})"
                           for k, v in skipped.items() if v)
        print(f"au_probe: skipped {n_skipped} of {len(rows)} labelled videos: {detail}", file=sys.stderr)
        for name, cause in causes.items():
            print(f"au_probe: {name}: {cause}", file=sys.stderr)
    if not kept:
        raise InputError(args.openface_dir, "none of the labelled videos has a usable OpenFace CSV here")
    labels = [r["label"] for r in kept]
    if len(set(labels)) < 2:
        raise InputError(args.labels, f"the usable videos hold one class only ({labels[0]!r})")
    groups = [r["group"] for r in kept] if args.group_column else None
    folds, cv = make_folds(labels, groups, args.seed)

    spec = TextEncoderSpec.parse(args.text_encoder, args.text_encoder_pretrained)
    common = dict(text_encoder=args.text_encoder, text_encoder_pretrained=args.text_encoder_pretrained,
                  num_frames=args.num_frames, sampling="uniform", device=args.device)
    encoder = LazyEncoder(spec, resolve_device(args.device))
    cache_dir = Path(args.cache_dir) if args.cache_dir else base_llm.cache_root() / "au_probe"
    skipped_routes = {}
    agent_cfg, why_not = (None, None)
    if {"agent_text", "hybrid"} & set(routes):
        agent_cfg, why_not = agent_config(args, common)
    if agent_cfg is None and "agent_text" in routes:
        skipped_routes["agent_text"] = why_not
    features, route_info, hybrid_of = route_features(kept, routes, common, encoder, cache_dir, agent_cfg, progress)

    chance = chance_levels(labels)
    results = {}
    todo = [r for r in routes if r in features]
    with tqdm(total=len(todo) * len(folds), desc="probe folds", unit="fit", disable=not progress,
              dynamic_ncols=True) as bar:
        for name in todo:
            results[name] = {**cross_validate(features[name], labels, folds, args.seed, bar),
                             "chance": round(chance["chance"], 4)}
            if name in route_info:
                results[name]["run"] = route_info[name]
            if name == "hybrid":
                results[name]["of"] = hybrid_of
    return {
        "routes": results,
        "chance": round(chance["chance"], 4),
        "n": len(kept),
        "skipped": {"videos": skipped, "counts": {k: len(v) for k, v in skipped.items()},
                    "unreadable_causes": causes, "routes": skipped_routes},
        "settings": {
            "openface_dir": str(args.openface_dir), "labels": str(args.labels),
            "name_column": args.name_column, "label_column": args.label_column,
            "group_column": args.group_column, "num_frames": args.num_frames, "sampling": "uniform",
            "text_encoder": encoder_identity(spec), "cache_dir": str(cache_dir),
            "agent": None if agent_cfg is None else {"config": args.config, "backend": agent_cfg.backend,
                                                     "base_model": agent_cfg.base_model,
                                                     "adapter": agent_cfg.adapter},
            "hybrid": "+".join(hybrid_of), "cv": cv, "seed": args.seed,
            "classifier": "StandardScaler + LogisticRegression(lbfgs multinomial, C=1, balanced, "
                          "max_iter=5000), scaler fitted per training fold",
            "chance": "majority-class share", "chance_uniform": round(chance["uniform"], 4),
            "class_counts": chance["class_counts"], "labelled": len(rows),
            "fold_spread": "mean and std (ddof=0) over folds; accuracy/macro_f1 are pooled out-of-fold",
        },
    }


# ---- command line ---------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m my_affectgpt.evaluation.au_probe",
        description="Cross-validated linear probe of what each AU route (raw values, rule-teacher "
                    "text, AU Agent text, hybrid) carries about the labels of your videos.")
    p.add_argument("--openface-dir", required=True, help="OpenFace CSVs: <dir>/<name>.csv or <dir>/<name>/<name>.csv")
    p.add_argument("--labels", required=True, help="CSV with a video name and a label per row")
    p.add_argument("--name-column", default="name", help="video name column (default name)")
    p.add_argument("--label-column", default="label", help="label column (default label)")
    p.add_argument("--group-column", help="leave-one-group-out on this column (e.g. actor); "
                                          "default: stratified 5-fold")
    p.add_argument("--routes", default=",".join(ROUTES), help=f"comma-separated, from {', '.join(ROUTES)} (default all)")
    p.add_argument("--num-frames", type=int, default=8, help="frames per video, T (default 8)")
    p.add_argument("--text-encoder", default="minilm",
                   help="for both text routes: minilm (offline, default), open_clip:ViT-B-32, ...")
    p.add_argument("--text-encoder-pretrained", default=DEFAULT_PRETRAINED,
                   help="open_clip pretrained tag or checkpoint file")
    g = p.add_argument_group("AU Agent for agent_text (flags override the config)")
    g.add_argument("--config", help="YAML with au_agent_base_model / au_agent_lora_weights / au_agent_use_lora "
                                    "(an AffectGPT or inference config works)")
    g.add_argument("--section", help="dotted config section holding them (default: searched)")
    g.add_argument("--base-model", help="base model folder or smollm2-135m-instruct")
    g.add_argument("--adapter", help="LoRA adapter folder")
    g.add_argument("--max-new-tokens", type=int, help="longest description in tokens (runtime default 160)")
    g.add_argument("--batch-size", type=int, help="prompts per generate call (runtime default)")
    g.add_argument("--description-cache", help="SQLite description cache (default: the config's "
                                               "au_agent_cache, else the runtime's, shared with extract)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, ...")
    p.add_argument("--cache-dir", help="feature stores of the text routes (default $AU_AGENT_CACHE/au_probe or ./cache/au_probe)")
    p.add_argument("--seed", type=int, default=0, help="fold shuffling and classifier seed (default 0)")
    p.add_argument("--json", required=True, help="report file")
    p.add_argument("--png", help="bar chart of accuracy and macro-F1 per route")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


@cli_entry
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = run_probe(args)
    atomic_write_text(args.json, json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    if args.png:
        plot_report(report, args.png)
    print(format_table(report))
    print(f"-> {args.json}" + (f", {args.png}" if args.png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
