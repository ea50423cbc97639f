"""Shared by the AffectGPT benches: run one `train.py` job as a subprocess, as a user would."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_train(cmd: list[str], env: dict, tag: str) -> float:
    """Run `cmd` in the repository root; return its wall seconds. On failure print the tail of its
    output and stop the bench with a one-line reason."""
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"[{tag}] train.py failed with exit code {proc.returncode}")
    return seconds
