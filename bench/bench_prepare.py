#!/usr/bin/env python
"""Benchmark: build >= 100,000 AU instruction samples from simulated OpenFace CSVs.

Simulates the videos (not timed as part of the build), then runs
prepare_au_instruction_dataset.py exactly as a user would and prints samples/s. Run:

    python bench/bench_prepare.py [--videos 10500] [--frames-per-video 16] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from my_affectgpt.au.simulate import write_dataset  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=10500)
    p.add_argument("--frames-per-video", type=int, default=16)
    p.add_argument("--workers", type=int, default=None, help="builder workers (default: its own)")
    p.add_argument("--workdir", default=None, help="keep files here (default: a temp dir, removed)")
    p.add_argument("--min-samples", type=int, default=100_000)
    a = p.parse_args()

    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="bench_prepare_"))
    sim, out = work / "openface", work / "dataset"
    try:
        t0 = time.perf_counter()
        if not (sim / "labels.csv").is_file():
            write_dataset(sim, a.videos, seed=0, progress=True)
        t_sim = time.perf_counter() - t0
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, str(REPO / "prepare_au_instruction_dataset.py"), "--openface-dir", str(sim),
               "--out-dir", str(out), "--frames-per-video", str(a.frames_per_video), "--no-progress"]
        if a.workers:
            cmd += ["--workers", str(a.workers)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=REPO)
        t_build = time.perf_counter() - t0
        stats = json.loads((out / "stats.json").read_text())
        n = stats["samples"]["total"]
        print(f"cpu cores: {os.cpu_count()}")
        print(f"simulated {a.videos} videos in {t_sim:.1f} s (setup, not timed below)")
        print(f"built {n} samples ({stats['duplicates_dropped']} duplicates dropped) from "
              f"{a.videos} videos x {a.frames_per_video} frames in {t_build:.1f} s "
              f"= {n / t_build:,.0f} samples/s, {a.videos / t_build:,.0f} videos/s (wall, incl. startup)")
        if n < a.min_samples:
            print(f"FAIL: fewer than {a.min_samples} samples; raise --videos")
            return 1
        return 0
    finally:
        if not a.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
