#!/usr/bin/env python
"""AffectGPT inference (upstream's script name): test checkpoints on test datasets, or answer for
one raw video.

    python inference_hybird.py --cfg-path inference_config_au_agent.yaml
    python inference_hybird.py --cfg-path inference_config_au_agent.yaml --zeroshot \\
        --options inference.test_epochs=30-60 inference.skip_epoch=5
    python inference_hybird.py --cfg-path inference_config_au_agent.yaml --video clip.mp4 \\
        [--openface-csv clip.csv] [--audio clip.wav] [--subtitle "..."]

The logic is in my_affectgpt/inference/ (runner.py: datasets and checkpoints; single_video.py:
one video); this script only parses arguments.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys

# Before torch loads OpenMP: idle threads sleep instead of spinning (see train.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from my_affectgpt.common.errors import cli_entry  # noqa: E402


def parse_args(argv):
    from my_affectgpt.datasets.affectgpt_config import add_config_args

    p = argparse.ArgumentParser(
        prog="inference_hybird.py",
        description="AffectGPT inference. Without --video: every selected checkpoint "
                    "(inference.test_epoch, or test_epochs=A-B with skip_epoch, else the last) answers "
                    "every video of inference.test_datasets; predictions go to "
                    "<results_dir>/results-<dataset>/<config>_<job>[-zeroshot]/<checkpoint>.npz (+ .jsonl) "
                    "for evaluation.py. A rerun skips finished checkpoints and resumes an interrupted one. "
                    "With --video: OpenFace (unless --openface-csv), the AU Agent and the model answer "
                    "for one raw video, and the AU descriptions it used are printed.",
        epilog="examples:\n"
               "  python inference_hybird.py --cfg-path inference_config_au_agent.yaml\n"
               "  python inference_hybird.py --cfg-path inference_config_au_agent.yaml --zeroshot "
               "--options inference.test_epochs=30-60 inference.skip_epoch=5\n"
               "  python inference_hybird.py --cfg-path inference_config_au_agent.yaml --video clip.mp4 "
               "--openface-csv clip.csv --subtitle \"I can't believe it.\"\n"
               "  python evaluation.py --pred output/results-<dataset>/<run>/checkpoint_000009.npz "
               "--gt <dataset>/labels.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, example="inference.test_epoch=3 inference.batch_size=4")
    p.add_argument("--zeroshot", action="store_true",
                   help="ask for the emotion labels (the open-set question) instead of a description "
                        "with reasoning; same as inference.zeroshot=true")
    p.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="test this checkpoint_*.safetensors instead of the configured selection")
    p.add_argument("--save-every", type=int, default=64, metavar="N",
                   help="write progress every N videos, so a killed run loses at most N (default 64)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    v = p.add_argument_group("one raw video (--video)")
    v.add_argument("--video", default=None, metavar="MP4", help="answer for this video only")
    v.add_argument("--openface-csv", default=None, metavar="CSV",
                   help="its OpenFace CSV (else OpenFace FeatureExtraction is run on the video)")
    v.add_argument("--openface-bin", default=None, metavar="FILE",
                   help="FeatureExtraction (else inference.openface_bin, $OPENFACE_BIN, PATH)")
    v.add_argument("--openface-out", default=None, metavar="DIR",
                   help="where OpenFace writes <stem>/<stem>.csv (else openface_output_dir of the "
                        "config, else <results_dir>/openface_output)")
    v.add_argument("--audio", default=None, metavar="WAV",
                   help="its audio (else <stem>.wav beside the video, else silence: reading the mp4's "
                        "track would need ffmpeg)")
    v.add_argument("--faces", default=None, metavar="NPY",
                   help="aligned face crops, uint8 [N, H, W, 3] (else OpenFace's, else the frames)")
    v.add_argument("--subtitle", default=None, help="what is said in the video (else empty)")
    v.add_argument("--json", default=None, metavar="FILE", help="also write the answer as JSON here")
    args = p.parse_args(argv)
    if args.video is None:
        used = [f"--{k.replace('_', '-')}" for k in ("openface_csv", "openface_bin", "openface_out",
                                                      "audio", "faces", "subtitle", "json")
                if getattr(args, k) is not None]
        if used:
            p.error(f"{', '.join(used)} only go with --video")
    return args


@cli_entry
def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from my_affectgpt.datasets.affectgpt_config import load_affectgpt_config

    cfg = load_affectgpt_config(args.cfg_path, args.options)
    zeroshot = True if args.zeroshot else None
    if args.video is not None:
        from my_affectgpt.common.atomic import atomic_write_text
        from my_affectgpt.inference.single_video import answer_video, format_answer

        result = answer_video(cfg, args.cfg_path, args.video, openface_csv=args.openface_csv,
                              openface_bin=args.openface_bin, openface_out=args.openface_out,
                              audio=args.audio, faces=args.faces, subtitle=args.subtitle,
                              zeroshot=zeroshot, checkpoint=args.checkpoint)
        print(format_answer(result), flush=True)
        if args.json:
            atomic_write_text(args.json, json.dumps(dataclasses.asdict(result), indent=1,
                                                    ensure_ascii=False) + "\n")
        return 0
    from my_affectgpt.inference.runner import run_inference

    run_inference(cfg, args.cfg_path, zeroshot=zeroshot, checkpoint=args.checkpoint,
                  save_every=args.save_every, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
