#!/usr/bin/env python
"""Benchmark: does AffectGPT read the emotion from the AU branch, and only from there?

On a synthetic MER-Caption+ dataset in which only the simulated OpenFace AUs carry the emotion
(faces, frames and audio are noise, subtitles neutral; my_affectgpt.datasets.synthetic), the tiny
CPU config is trained twice with train.py, as a user would run it:

- `au_text`: face_or_frame multiface_audio_face_au_text, model.au_mode text (the AU Agent's
  descriptions of the sampled frames go into the prompt inside <Nonverbal>...</Nonverbal>);
- `no_au`:   face_or_frame multiface_audio_face_text, everything else the same.

Each trained model then answers the held-out test videos (greedy decoding); an answer counts as
correct when the first emotion word it names is the video's emotion (`synthetic.match_emotion`).
Printed: accuracy of both beside chance level (1 / number of emotions), wall times, and the
commands that ran. Target (issue 5): au_text >= 90%, no_au near chance, all in <= 15 min on 2 CPU cores.

    python bench/bench_au_signal.py [--train 480] [--test 120] [--epochs 6] [--json result.json]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from train_run import run_train  # noqa: E402  (bench/ is the script's folder)

CONFIG = REPO / "train_configs" / "affectgpt_tiny_cpu.yaml"
VARIANTS = {
    "au_text": ["datasets.mercaptionplus.face_or_frame=multiface_audio_face_au_text", "model.au_mode=text"],
    "no_au": ["datasets.mercaptionplus.face_or_frame=multiface_audio_face_text", "model.au_mode=text"],
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="bench/bench_au_signal.py",
        description="Train the tiny AffectGPT config with and without the AU branch on synthetic data "
                    "where only the AUs carry the emotion, and compare held-out accuracy.")
    p.add_argument("--train", type=int, default=480, help="training videos (default %(default)s)")
    p.add_argument("--test", type=int, default=120, help="held-out test videos (default %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="run.max_epoch (default: the config's)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default %(default)s)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per training process (OMP_NUM_THREADS; default: torch's choice)")
    p.add_argument("--options", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="extra train.py --options for both runs")
    p.add_argument("--work-dir", default=None, help="keep data and jobs here (default: a temp folder)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    return p.parse_args(argv)


def read_truth(folder: Path) -> dict:
    with (folder / "labels.csv").open(newline="", encoding="utf-8") as f:
        return {row["name"]: row["emotion"] for row in csv.DictReader(f)}


def train(variant: str, data: Path, out: Path, args, env: dict) -> tuple[float, list]:
    cmd = [sys.executable, str(REPO / "train.py"), "--cfg-path", str(CONFIG), "--options",
           f"datasets.mercaptionplus.data_root={data}", f"run.output_dir={out}",
           f"run.job_name={variant}", "run.resume=false", *VARIANTS[variant], *args.options]
    if args.epochs:
        cmd.append(f"run.max_epoch={args.epochs}")
    print(f"[{variant}] {' '.join(cmd[1:])}", flush=True)
    seconds = run_train(cmd, env, variant)
    return seconds, cmd


def evaluate(job: Path, test: Path, emotions) -> dict:
    """Accuracy of a trained job on the test folder (first emotion word of each answer)."""
    from my_affectgpt.datasets.synthetic import match_emotion
    from my_affectgpt.inference.runner import predict_in_chunks
    from my_affectgpt.training.affectgpt_loop import build_datasets, dataset_parts, load_trained

    started = time.monotonic()
    model, cfg = load_trained(job)
    dataset, _ = build_datasets(cfg, data_roots={name: test for name in cfg.datasets})
    for part in dataset_parts(dataset):
        part.ensure_au_features(progress=False)
    answers = {}
    for chunk in predict_in_chunks(model, dataset, list(range(len(dataset))), batch_size=cfg.run.batch_size_eval,
                                   max_new_tokens=cfg.model.max_new_tokens, chunk=len(dataset), progress=False):
        answers.update(chunk)
    truth = read_truth(test)
    named = {name: match_emotion(text, emotions) for name, text in answers.items()}
    correct = sum(named.get(name) == emotion for name, emotion in truth.items())
    examples = [(name, truth[name], answers.get(name)) for name in sorted(truth)[:4]]
    return {"accuracy": correct / len(truth), "correct": correct, "total": len(truth),
            "unanswered": sum(1 for n in truth if named.get(n) is None),
            "eval_seconds": time.monotonic() - started, "examples": examples}


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        import torch

        torch.set_num_threads(args.threads)
    from my_affectgpt.datasets.synthetic import parse_emotions, write_dataset

    tmp = None
    if args.work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_au_signal.")
        work = Path(tmp.name)
    else:
        work = Path(args.work_dir)
    total_started = time.monotonic()
    try:
        load_before = os.getloadavg()
        started = time.monotonic()
        folders = write_dataset(work / "data", args.train, args.test, seed=args.seed,
                                label_type="openset", overwrite=True, progress=False)
        data_seconds = time.monotonic() - started
        emotions = parse_emotions(None)
        chance = 1 / len(emotions)
        print(f"synthetic data: {args.train} train / {args.test} test videos, emotions "
              f"{', '.join(emotions)} (chance {chance:.0%}), written in {data_seconds:.1f} s", flush=True)
        results = {}
        for variant in VARIANTS:
            seconds, cmd = train(variant, folders["train"], work / "output", args, env)
            job = work / "output" / CONFIG.stem / variant
            scores = evaluate(job, folders["test"], emotions)
            results[variant] = {"train_seconds": seconds, "command": cmd[1:], **scores}
            print(f"[{variant}] accuracy {scores['accuracy']:.1%} ({scores['correct']}/{scores['total']}, "
                  f"{scores['unanswered']} without an emotion word); train {seconds:.0f} s, "
                  f"eval {scores['eval_seconds']:.0f} s; e.g. {scores['examples'][:2]}", flush=True)
        total = time.monotonic() - total_started
        load_after = os.getloadavg()
    finally:
        if tmp is not None:
            tmp.cleanup()
    summary = {"train_videos": args.train, "test_videos": args.test, "chance": chance,
               "total_seconds": total, "data_seconds": data_seconds, "cpu_count": os.cpu_count(),
               "load_average_before": load_before, "load_average_after": load_after,
               "variants": results}
    print()
    print("| run | accuracy | chance | train s | eval s |")
    print("|---|---:|---:|---:|---:|")
    for variant, r in results.items():
        print(f"| {variant} | {r['accuracy']:.1%} | {chance:.0%} | {r['train_seconds']:.0f} | {r['eval_seconds']:.0f} |")
    print(f"total wall time {total:.0f} s ({total / 60:.1f} min) on {os.cpu_count()} CPU cores; "
          f"load average before/after: {' '.join(f'{x:.2f}' for x in load_before)} / "
          f"{' '.join(f'{x:.2f}' for x in load_after)}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
