#!/usr/bin/env python
"""Benchmark: the four AU routes inside AffectGPT (trained through train.py) next to the linear probe.

For each AU route (`model.au_mode` features, text, values, hybrid) the tiny CPU config
(train_configs/affectgpt_tiny_cpu.yaml) is trained with `train.py` on the AU token alone
(`face_or_frame: au`: no faces, frames, audio or subtitle), as a user would run it, and the
trained job answers the held-out videos with the open-set question (`inference_hybird.py
--zeroshot`: my_affectgpt.inference.runner.run_inference). Its answers are scored on the closed
label set: the first label the offline lexicon extractor of `evaluation.py` finds among the
dataset's classes must be the video's label (normalised as evaluation.py normalises; "calm" and
"neutral" stay two classes). evaluation.py's own hit rate is kept in the JSON too (it merges
calm into neutral through the basic emotions, and counts any label of the answer).

The probe (my_affectgpt.evaluation.au_probe: frozen per-video vectors, standardize + logistic
regression) runs on exactly the same splits and the same T uniformly sampled frames, routes
values / rule_text / hybrid (values + rule_text).

Data:
- RAVDESS actors 01-03 (real OpenFace CSVs, 180 clips, 8 emotions; --ravdess-dir): leave one
  actor out, all three rotations (train on two actors, test on the third). The MER-Caption+
  layout the dataset loader needs (track2 label CSVs per split, a ground-truth labels.csv) is
  written under the work folder; openface_output_dir points at the shared CSVs (never copied);
  the AU features of the text routes go to one feature store under the work folder, shared by
  the routes and rotations (same rule teacher + MiniLM identity).
- the synthetic set (my_affectgpt.datasets.synthetic; only the AUs carry the emotion), one
  train/test split (--synth-train / --synth-test / --synth-emotions; --no-synth skips it).

    python bench/bench_au_routes.py [--epochs 20] [--routes features,text,values,hybrid] \\
        [--options model.num_au_query_token=8 run.lr=3e-3 ...] [--json result.json]

Printed: the commands, settings, progress, a table per data set (route x rotation: AffectGPT
accuracy | probe accuracy, and the mean over rotations), wall times. --json writes every number.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from my_affectgpt.common.errors import InputError, cli_entry  # noqa: E402
from train_run import run_train  # noqa: E402  (bench/ is the script's folder)

CONFIG = REPO / "train_configs" / "affectgpt_tiny_cpu.yaml"
RAVDESS = REPO.parent / "shared" / "labelled_au" / "ravdess_openface_actors_01-03"
ROUTES = ("features", "text", "values", "hybrid")
PROBE_ROUTES = ("values", "rule_text", "hybrid")
# Which probe route carries the same information as an AffectGPT route (for the side-by-side table).
PROBE_OF = {"features": "rule_text", "text": "rule_text", "values": "values", "hybrid": "hybrid"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="bench/bench_au_routes.py",
        description="Train the tiny AffectGPT once per AU route (AU token only) through train.py on "
                    "RAVDESS leave-one-actor-out and on the synthetic set, and compare its held-out "
                    "accuracy with the linear AU probe on the same splits.")
    p.add_argument("--ravdess-dir", default=str(RAVDESS),
                   help="OpenFace CSVs + labels.csv (name,label,actor) (default %(default)s)")
    p.add_argument("--routes", default=",".join(ROUTES), help="AffectGPT AU routes (default %(default)s)")
    p.add_argument("--rotations", default=None,
                   help="held-out actors, comma-separated (default: every actor)")
    p.add_argument("--epochs", type=int, default=20, help="run.max_epoch (default %(default)s)")
    p.add_argument("--au-frames", type=int, default=8,
                   help="T: frames per video for AffectGPT (au_num_frames) and the probe (default %(default)s)")
    p.add_argument("--options", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="extra train.py --options for every run (e.g. run.lr=1e-3 model.num_au_query_token=8)")
    p.add_argument("--synth-train", type=int, default=240, help="synthetic training videos (default %(default)s)")
    p.add_argument("--synth-test", type=int, default=80, help="synthetic test videos (default %(default)s)")
    p.add_argument("--synth-emotions", default="all",
                   help="synthetic emotions: 'all' (the 8 prototypes, default) or a comma list")
    p.add_argument("--synth-epochs", type=int, default=None, help="run.max_epoch on the synthetic set "
                                                                  "(default: --epochs)")
    p.add_argument("--no-synth", action="store_true", help="skip the synthetic table")
    p.add_argument("--no-ravdess", action="store_true", help="skip the RAVDESS table")
    p.add_argument("--validate", action="store_true",
                   help="choose recipes: per rotation, train on the first training actor and score the "
                        "second; the held-out actor is not read (epochs scaled so the number of optimizer "
                        "steps stays that of the test run)")
    p.add_argument("--seed", type=int, default=0, help="synthetic data and probe seed (default %(default)s)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (OMP_NUM_THREADS) for training and inference (default: torch's choice)")
    p.add_argument("--work-dir", default=None, help="keep data, jobs and answers here (default: a temp folder)")
    p.add_argument("--json", default=None, help="also write every number to this JSON file")
    return p.parse_args(argv)


def say(text: str) -> None:
    print(text, flush=True)


def write_csv(path: Path, header, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


# ---- data: splits in the MER-Caption+ layout ---------------------------------------------------

def write_split(folder: Path, rows: list[dict]) -> Path:
    """`folder` with track2_train_mercaptionplus.csv (name, openset = the label) and labels.csv
    (name, label: the ground truth). The AU-only modality needs nothing else: the OpenFace CSVs
    are read from openface_output_dir."""
    write_csv(folder / "track2_train_mercaptionplus.csv", ("name", "openset"),
              [(r["name"], r["label"]) for r in rows])
    write_csv(folder / "labels.csv", ("name", "label"), [(r["name"], r["label"]) for r in rows])
    return folder


def ravdess_splits(ravdess: Path, work: Path, rotations: str | None, validate: bool) -> tuple[list, list[dict]]:
    """([(held-out actor, train folder, test folder, train rows, test rows)], labelled rows).

    validate: the held-out actor is not read at all; of the two training actors the first trains
    and the second validates (a new face, as in the test), so recipes are chosen without looking
    at any test actor."""
    from my_affectgpt.evaluation.au_probe import read_labels

    rows = [{"name": r["name"], "label": r["label"], "group": r["group"]}
            for r in read_labels(ravdess / "labels.csv", group_col="actor")]
    actors = sorted({r["group"] for r in rows})
    held = actors if rotations is None else [a.strip() for a in rotations.split(",") if a.strip()]
    unknown = set(held) - set(actors)
    if unknown:
        raise InputError(None, f"--rotations: unknown actor(s) {sorted(unknown)}; actors: {', '.join(actors)}")
    splits = []
    for actor in held:
        rest = [r for r in rows if r["group"] != actor]
        if validate:
            base = work / "ravdess" / f"val_{actor}"
            first = min(r["group"] for r in rest)
            train_rows = [r for r in rest if r["group"] == first]
            test_rows = [r for r in rest if r["group"] != first]
        else:
            base = work / "ravdess" / f"test_{actor}"
            train_rows, test_rows = rest, [r for r in rows if r["group"] == actor]
        splits.append((actor, write_split(base / "train", train_rows), write_split(base / "test", test_rows),
                       train_rows, test_rows))
    return splits, rows


def synthetic_split(work: Path, args) -> tuple[Path, Path, list[dict], list[dict]]:
    """The synthetic train/test folders, each with a labels.csv of the open-set words."""
    from my_affectgpt.datasets.synthetic import EMOTION_WORDS, write_dataset

    folders = write_dataset(work / "synth", args.synth_train, args.synth_test, seed=args.seed,
                            emotions=args.synth_emotions, label_type="openset", overwrite=True, progress=False)
    out = []
    for split in ("train", "test"):
        with (folders[split] / "labels.csv").open(newline="", encoding="utf-8") as f:
            rows = [{"name": r["name"], "label": EMOTION_WORDS[r["emotion"]], "group": split}
                    for r in csv.DictReader(f)]
        # labels.csv of the generator says "happiness"; evaluation and probe use the answer word
        write_csv(folders[split] / "labels.csv", ("name", "label"), [(r["name"], r["label"]) for r in rows])
        out.append(rows)
    return folders["train"], folders["test"], out[0], out[1]


# ---- AffectGPT: train.py, then the zero-shot inference run, then the closed-set score ---------

def data_options(train: Path, openface_dir: Path | None, feature_dir: Path, args) -> list[str]:
    opts = [f"datasets.mercaptionplus.data_root={train}",
            "datasets.mercaptionplus.face_or_frame=au",
            f"datasets.mercaptionplus.au_num_frames={args.au_frames}",
            "datasets.mercaptionplus.au_sampling=uniform",
            f"datasets.mercaptionplus.au_feature_dir={feature_dir}"]
    if openface_dir is not None:
        opts.append(f"datasets.mercaptionplus.openface_output_dir={openface_dir}")
    return opts


def train_job(route: str, job: str, options: list[str], out: Path, env: dict) -> tuple[float, list, dict]:
    cmd = [sys.executable, "train.py", "--cfg-path", str(CONFIG.relative_to(REPO)), "--options",
           *options, f"model.au_mode={route}", f"run.output_dir={out}", f"run.job_name={job}",
           "run.resume=false"]
    say(f"  $ python {' '.join(cmd[1:])}")
    # a fresh job and fresh answers: resume=false keeps older checkpoints of a longer run (inference
    # takes the last one), and inference skips a checkpoint whose answers exist
    shutil.rmtree(out / CONFIG.stem / job, ignore_errors=True)
    shutil.rmtree(out / "results" / f"results-{job}", ignore_errors=True)
    seconds = run_train(cmd, env, job)
    from my_affectgpt.training.affectgpt_loop import read_metrics

    metrics = read_metrics(out / CONFIG.stem / job)
    losses = [m["loss"] for m in metrics]
    info = {"first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
            "steps": metrics[-1]["step"] if metrics else 0}
    return seconds, cmd[1:], info


def closed_set_scores(answers: dict, truth: dict) -> dict:
    """Accuracy on the closed label set: the first extracted label that is one of the classes
    (evaluation.py's lexicon extractor and normalisation); plus evaluation.py's hit rate."""
    from my_affectgpt.evaluation.emotion_eval import GroundTruth, evaluate
    from my_affectgpt.evaluation.emotion_labels import normalize_label
    from my_affectgpt.evaluation.label_extractors import LexiconExtractor

    classes = {normalize_label(v) for v in truth.values()}
    names = list(truth)
    gt = GroundTruth(names=names, emotion=dict(truth), sources={"hit_rate": "label"})
    report = evaluate({n: answers.get(n, "") for n in names}, gt, LexiconExtractor())
    pred, correct, none = {}, 0, 0
    for n in names:
        first = next((lab for lab in report["labels"][n] if normalize_label(lab) in classes), None)
        pred[n] = first
        none += first is None
        correct += first is not None and normalize_label(first) == normalize_label(truth[n])
    counts = dict(Counter(str(p) for p in pred.values()))
    return {"accuracy": correct / len(names), "correct": correct, "n": len(names), "no_class_named": none,
            "hit_rate_evaluation_py": report["hit_rate"]["hit_rate"], "predicted_counts": counts}


def infer_and_score(route: str, job: str, options: list[str], out: Path, test: Path,
                    openface_dir: Path | None, feature_dir: Path, truth: dict) -> dict:
    from my_affectgpt.datasets.affectgpt_config import load_affectgpt_config as load_config
    from my_affectgpt.evaluation.emotion_eval import load_predictions
    from my_affectgpt.inference.runner import run_inference

    started = time.monotonic()
    # what `inference_hybird.py --cfg-path CONFIG --zeroshot --options ...` would be given
    test_set = (f"inference.test_datasets=[{{name: {job}, data_root: {test}, label_csv: {test / 'labels.csv'}, "
                f"openface_output_dir: {openface_dir if openface_dir else 'null'}, au_feature_dir: {feature_dir}}}]")
    cfg = load_config(CONFIG, [*options, f"model.au_mode={route}", f"run.output_dir={out}",
                               f"run.job_name={job}", f"inference.results_dir={out / 'results'}",
                               "inference.batch_size=30", test_set])
    [result] = run_inference(cfg, CONFIG, zeroshot=True, progress=False)
    answers = load_predictions(result.npz)
    scores = closed_set_scores(answers, truth)
    scores.update(eval_seconds=time.monotonic() - started, npz=str(result.npz),
                  examples=[(n, truth[n], answers.get(n)) for n in sorted(truth)[:3]])
    return scores


def run_affectgpt(tag: str, splits: list, openface_dir: Path | None, feature_dir: Path, truth_of,
                  routes: list[str], epochs: int, out: Path, args, env: dict) -> dict:
    """{route: {rotation: scores}} for every route and split."""
    results: dict = {}
    for route in routes:
        results[route] = {}
        for rotation, train, test, _, _ in splits:
            job = f"{tag}_{route}_{rotation}"
            options = [*data_options(train, openface_dir, feature_dir, args), f"run.max_epoch={epochs}",
                       *args.options]
            seconds, cmd, info = train_job(route, job, options, out, env)
            scores = infer_and_score(route, job, options, out, test, openface_dir, feature_dir, truth_of(test))
            results[route][rotation] = {"train_seconds": round(seconds, 1), "command": cmd, **info, **scores}
            say(f"  [{tag} {route} / test {rotation}] accuracy {scores['accuracy']:.3f} "
                f"({scores['correct']}/{scores['n']}; {scores['no_class_named']} name no class; "
                f"evaluation.py hit rate {scores['hit_rate_evaluation_py']:.3f}); loss "
                f"{info['first_loss']:.3f} -> {info['last_loss']:.3f} in {info['steps']} steps; "
                f"train {seconds:.0f} s, eval {scores['eval_seconds']:.0f} s; answers {scores['predicted_counts']}")
    return results


# ---- the probe on the same splits ---------------------------------------------------------------

def probe(splits: list, openface_dirs: list[Path], num_frames: int, cache_dir: Path, seed: int) -> dict:
    """{route: {"folds": {tag: scores}}}: the au_probe routes fitted on each split's training rows
    and scored on its test rows (one classifier per split: validation splits overlap).

    splits: [(tag, train folder, test folder, train rows, test rows)]; openface_dirs: where the
    videos' CSVs are, searched in order."""
    import numpy as np

    from my_affectgpt.evaluation.au_probe import LazyEncoder, plan_videos, route_features
    from my_affectgpt.evaluation.au_probe_cv import cross_validate
    from my_affectgpt.models.text_encoders import TextEncoderSpec

    wanted = {r["name"]: r for s in splits for r in (*s[3], *s[4])}
    kept, found = [], set()
    for folder in openface_dirs:
        part = [r for n, r in wanted.items() if n not in found]
        got, _, _ = plan_videos(part, folder, num_frames, progress=False)
        kept += got
        found |= {r["name"] for r in got}
    if len(found) < len(wanted):
        say(f"  probe: {len(wanted) - len(found)} of {len(wanted)} videos have no usable frames and are left out")
    index = {r["name"]: i for i, r in enumerate(kept)}
    labels = [r["label"] for r in kept]
    common = dict(text_encoder="minilm", num_frames=num_frames, sampling="uniform", device="cpu")
    encoder = LazyEncoder(TextEncoderSpec.parse("minilm"), "cpu")
    features, _, _ = route_features(kept, PROBE_ROUTES, common, encoder, cache_dir, progress=False)
    out = {route: {"folds": {}} for route in PROBE_ROUTES}
    for tag, _, _, train_rows, test_rows in splits:
        tr = np.array([index[r["name"]] for r in train_rows if r["name"] in index])
        te = np.array([index[r["name"]] for r in test_rows if r["name"] in index])
        for route in PROBE_ROUTES:
            [fold] = cross_validate(features[route], labels, [(tr, te, tag)], seed)["folds"]
            out[route]["folds"][tag] = {k: fold[k] for k in ("accuracy", "macro_f1", "n")}
    return out


# ---- tables -------------------------------------------------------------------------------------

def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")


def table(title: str, affect: dict, probe_res: dict, rotations: list[str], chance: float) -> tuple[str, dict]:
    """Markdown: one row per AffectGPT route (accuracy per rotation | probe of the matching route),
    then the probe routes alone; and the summary numbers."""
    head = " | ".join(f"held out {r}" for r in rotations)
    lines = [f"**{title}** (cells: AffectGPT accuracy / probe accuracy; chance {chance:.3f})", "",
             f"| AffectGPT route (probe route) | {head} | mean over rotations |",
             "|---|" + "---:|" * (len(rotations) + 1)]
    summary = {"affectgpt_mean": {}, "probe_mean": {}}
    for route, per in affect.items():
        pr = PROBE_OF[route]
        cells = [f"{per[r]['accuracy']:.3f} / {probe_res[pr]['folds'][r]['accuracy']:.3f}" for r in rotations]
        a = mean(per[r]["accuracy"] for r in rotations)
        b = mean(probe_res[pr]["folds"][r]["accuracy"] for r in rotations)
        summary["affectgpt_mean"][route] = round(a, 4)
        lines.append(f"| {route} ({pr}) | {' | '.join(cells)} | **{a:.3f}** / {b:.3f} |")
    for pr in PROBE_ROUTES:
        b = mean(probe_res[pr]["folds"][r]["accuracy"] for r in rotations)
        summary["probe_mean"][pr] = round(b, 4)
    lines.append("")
    lines.append("probe routes alone (mean over rotations): " + ", ".join(
        f"{k} {v:.3f}" for k, v in summary["probe_mean"].items()))
    if summary["affectgpt_mean"]:
        best_a = max(summary["affectgpt_mean"].items(), key=lambda kv: kv[1])
        best_p = max(summary["probe_mean"].items(), key=lambda kv: kv[1])
        summary.update(best_affectgpt=best_a, best_probe=best_p, gap=round(best_p[1] - best_a[1], 4))
        lines.append(f"best AffectGPT route {best_a[0]} {best_a[1]:.3f}; best probe route {best_p[0]} "
                     f"{best_p[1]:.3f}; gap {best_p[1] - best_a[1]:+.3f} (within 0.05: "
                     f"{'yes' if best_p[1] - best_a[1] <= 0.05 else 'no'})")
    return "\n".join(lines), summary


# ---- main ---------------------------------------------------------------------------------------

@cli_entry
def main(argv=None) -> int:
    args = parse_args(argv)
    routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    bad = [r for r in routes if r not in ROUTES]
    if bad:
        raise InputError(None, f"--routes: unknown route(s) {', '.join(bad)}; choose from {', '.join(ROUTES)}")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    env = dict(os.environ)
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        import torch

        torch.set_num_threads(args.threads)
    import logging

    logging.basicConfig(level=logging.WARNING)
    say("$ python " + " ".join([str(Path(sys.argv[0]).relative_to(REPO)) if Path(sys.argv[0]).is_absolute()
                               and Path(sys.argv[0]).is_relative_to(REPO) else sys.argv[0], *sys.argv[1:]]))
    settings = {"config": str(CONFIG.relative_to(REPO)), "face_or_frame": "au", "routes": routes,
                "epochs": args.epochs, "synth_epochs": args.synth_epochs or args.epochs,
                "au_num_frames": args.au_frames, "au_sampling": "uniform", "extra_options": args.options,
                "au_agent_backend": "template (rule teacher)", "au_text_encoder": "minilm (offline, 384-d)",
                "question": "open-set (inference --zeroshot), answers scored on the closed label set",
                "probe": "my_affectgpt.evaluation.au_probe: StandardScaler + LogisticRegression "
                         "(C=1, balanced), routes values / rule_text / hybrid (values + rule_text)",
                "threads": args.threads or "torch default", "cpu_count": os.cpu_count(),
                "python": platform.python_version()}
    say("settings: " + json.dumps(settings))

    tmp = None
    if args.work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_au_routes.")
        work = Path(tmp.name)
    else:
        work = Path(args.work_dir).resolve()
        work.mkdir(parents=True, exist_ok=True)
    summary: dict = {"settings": settings}
    texts = []
    total_started = time.monotonic()
    load_before = os.getloadavg()
    try:
        if not args.no_ravdess:
            started = time.monotonic()
            ravdess = Path(args.ravdess_dir).resolve()
            if not ravdess.is_dir():
                raise InputError(ravdess, "no such folder: pass --ravdess-dir DIR (OpenFace CSVs + labels.csv "
                                          "with name,label,actor) or --no-ravdess")
            splits, rows = ravdess_splits(ravdess, work, args.rotations, args.validate)
            rotations = [s[0] for s in splits]
            epochs = args.epochs
            if args.validate:  # one actor of two: as many optimizer steps as the test run
                _, _, _, tr, te = splits[0]
                epochs = round(args.epochs * (len(tr) + len(te)) / len(tr))
            classes = sorted({r["label"] for r in rows})
            chance = max(sum(r["label"] == c for r in rows) for c in classes) / len(rows)
            say(f"RAVDESS: {len(rows)} clips of {ravdess}, {len(classes)} classes ({', '.join(classes)}), "
                f"rotations (held-out actor): {', '.join(rotations)}; "
                f"{'VALIDATION (first training actor -> second), ' if args.validate else ''}"
                f"epochs {epochs}; layout under {work / 'ravdess'}")
            t0 = time.monotonic()
            probe_res = probe(splits, [ravdess], args.au_frames, work / "probe_cache", args.seed)
            probe_seconds = time.monotonic() - t0
            say("probe (RAVDESS) per rotation: " + "; ".join(
                f"{k}: " + " ".join(f"{r} {v['folds'][r]['accuracy']:.3f}" for r in rotations)
                for k, v in probe_res.items()) + f" ({probe_seconds:.0f} s)")

            def truth_of(test: Path) -> dict:
                with (test / "labels.csv").open(newline="", encoding="utf-8") as f:
                    return {r["name"]: r["label"] for r in csv.DictReader(f)}

            affect = run_affectgpt("ravdess", splits, ravdess, work / "au_features_ravdess", truth_of, routes,
                                   epochs, work / "output", args, env)
            title = ("RAVDESS actors 01-03, VALIDATION: per rotation (column = held-out actor, not read), "
                     "train on the first training actor, score the second" if args.validate
                     else "RAVDESS actors 01-03, leave one actor out")
            text, numbers = table(title, affect, probe_res, rotations, chance)
            texts.append(text)
            summary["ravdess"] = {"validate": args.validate, "epochs": epochs, "clips": len(rows), "classes": classes, "chance": chance, "rotations": rotations,
                                  "affectgpt": affect, "probe": probe_res, "probe_seconds": round(probe_seconds, 1),
                                  "seconds": round(time.monotonic() - started, 1), **numbers}
            say("\n" + text + "\n")
        if not args.no_synth:
            started = time.monotonic()
            train, test, train_rows, test_rows = synthetic_split(work, args)
            rows = train_rows + test_rows
            classes = sorted({r["label"] for r in rows})
            chance = max(sum(r["label"] == c for r in test_rows) for c in classes) / len(test_rows)
            say(f"synthetic: {len(train_rows)} train / {len(test_rows)} test videos, {len(classes)} classes "
                f"({', '.join(classes)}), written in {time.monotonic() - started:.0f} s under {work / 'synth'}")
            t0 = time.monotonic()
            splits = [("test", train, test, train_rows, test_rows)]
            probe_res = probe(splits, [train / "openface_output", test / "openface_output"], args.au_frames,
                              work / "probe_cache", args.seed)
            probe_seconds = time.monotonic() - t0
            say("probe (synthetic): " + ", ".join(f"{k} {v['folds']['test']['accuracy']:.3f}"
                                                  for k, v in probe_res.items()) + f" ({probe_seconds:.0f} s)")

            def truth_synth(folder: Path) -> dict:
                with (folder / "labels.csv").open(newline="", encoding="utf-8") as f:
                    return {r["name"]: r["label"] for r in csv.DictReader(f)}

            affect = run_affectgpt("synth", splits, None, work / "au_features_synth",
                                   truth_synth, routes, args.synth_epochs or args.epochs, work / "output",
                                   args, env)
            text, numbers = table(f"synthetic ({len(train_rows)} train / {len(test_rows)} test, only the AUs "
                                  "carry the emotion)", affect, probe_res, ["test"], chance)
            texts.append(text)
            summary["synthetic"] = {"train": len(train_rows), "test": len(test_rows), "classes": classes,
                                    "chance": chance, "affectgpt": affect, "probe": probe_res,
                                    "probe_seconds": round(probe_seconds, 1),
                                    "seconds": round(time.monotonic() - started, 1), **numbers}
            say("\n" + text + "\n")
    finally:
        if tmp is not None:
            tmp.cleanup()
    total = time.monotonic() - total_started
    load_after = os.getloadavg()
    summary.update(total_seconds=round(total, 1), load_average_before=load_before, load_average_after=load_after)
    say("\n\n".join(texts))
    say(f"total wall time {total:.0f} s ({total / 60:.1f} min) on {os.cpu_count()} CPU cores; load average "
        f"before/after: {' '.join(f'{x:.2f}' for x in load_before)} / {' '.join(f'{x:.2f}' for x in load_after)}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8")
        say(f"-> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
