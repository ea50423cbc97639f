"""Training data sets for bench_cpu_recipe.py: the setup's default data and its variants.

    python bench/recipe_data.py --out DIR [--videos 500]

Writes DIR/plain (what `bash setup_au_agent.sh` builds: simulated OpenFace CSVs of the default
profile, 8 frames per video, rule teacher) and DIR/plain_4fpv (twice the videos, 4 frames each:
more people and expressions for the same number of samples). The sweep of 2026-12-04 also had
"varied" data sets, written by the rule teacher of that day, which varied its phrasing with a
seed (the teacher of commit a20bfc1 with this change's band words and long-state rule); the
plain wording won and is the only one now.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _prepare(csv_dir: Path, out: Path, frames: int) -> None:
    subprocess.run([sys.executable, str(REPO / "prepare_au_instruction_dataset.py"), "--openface-dir",
                    str(csv_dir), "--out-dir", str(out), "--seed", "0", "--frames-per-video", str(frames),
                    "--no-progress"], check=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--videos", type=int, default=500)
    a = p.parse_args()
    from my_affectgpt.au.simulate import write_dataset

    out = Path(a.out)
    for videos, frames, suffix in ((a.videos, 8, ""), (2 * a.videos, 4, "_4fpv")):
        csvs = out / f"openface_{videos}"
        if not (csvs / "labels.csv").is_file():
            write_dataset(csvs, videos, seed=0)
        _prepare(csvs, out / f"plain{suffix}", frames)
    return 0


if __name__ == "__main__":
    sys.exit(main())
