"""`python -m my_affectgpt.au describe CSV ...` and `python -m my_affectgpt.au openface VIDEO ...`."""
from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from ..common.errors import InputError, cli_entry, report
from .facs import IntensityBands
from .frames import sampled_frame_aus
from .openface import (DEFAULT_MIN_CONFIDENCE, find_videos, read_openface_csv,
                       resolve_openface_bin, run_openface)
from .sampling import SAMPLING_METHODS
from .teacher import RuleTeacher


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m my_affectgpt.au",
                                description="AU tools: describe sampled frames, run OpenFace.")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("describe", help="sample frames of an OpenFace CSV and describe them "
                                        "with the rule teacher")
    d.add_argument("csv", help="OpenFace 2.x CSV")
    d.add_argument("--frames", type=int, default=8, help="frames to sample (default 8)")
    d.add_argument("--sampling", choices=SAMPLING_METHODS, default="uniform")
    d.add_argument("--face-id", type=int, default=None,
                   help="face track to use (default: the one with most usable frames)")
    d.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE)
    d.add_argument("--json", action="store_true", help="print a JSON list instead of text")
    o = sub.add_parser("openface", help="run OpenFace FeatureExtraction on a video or a folder")
    o.add_argument("video", help="a video file or a folder of videos")
    o.add_argument("--out-dir", required=True, help="writes <out-dir>/<video>/<video>.csv")
    o.add_argument("--openface-bin", default=None,
                   help="FeatureExtraction binary (default: $OPENFACE_BIN, then PATH)")
    return p


def _describe(args) -> int:
    if args.frames < 1:
        raise InputError(None, "--frames must be >= 1")
    track = read_openface_csv(args.csv, face_id=args.face_id, min_confidence=args.min_confidence)
    teacher = RuleTeacher(IntensityBands())
    rows = [{"frame": f.frame, "timestamp": f.timestamp, "prompt": f.prompt,
             "description": teacher.describe(f.active)}
            for f in sampled_frame_aus(track, args.frames, args.sampling)]
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
        return 0
    print(f"{track.video}: face {track.face_id}, {int(track.usable.sum())}/{len(track.frames)} "
          f"usable frames, {len(rows)} sampled ({args.sampling})")
    for r in rows:
        print(f"\nframe {r['frame']} (t={r['timestamp']:.2f}s)  {r['prompt']}\n  {r['description']}")
    return 0


def _openface(args) -> int:
    binary = resolve_openface_bin(args.openface_bin)
    videos = find_videos(args.video)
    if not videos:
        raise InputError(args.video, "no videos found")
    failed = 0
    for v in tqdm(videos, desc="OpenFace", unit="video", disable=len(videos) < 2):
        try:
            print(run_openface(v, args.out_dir, binary))
        except InputError as err:  # one bad video must not stop a folder run
            report(err)
            failed += 1
    return 2 if failed == len(videos) else 0


@cli_entry
def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    return _describe(args) if args.command == "describe" else _openface(args)


if __name__ == "__main__":
    sys.exit(main())
