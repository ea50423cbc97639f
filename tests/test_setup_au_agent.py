"""setup_au_agent.sh, the one-key main job: argument errors, and a whole run on a tiny model.

The whole run works in a copy of the repository (setup writes data/, output/ and cache/ beside
itself) with a tiny random Qwen2 as the base model and 40 simulated videos, so every step runs
for real (simulate -> dataset -> accelerate launch + Trainer -> test_au_agent.py -> summary) in
about a minute; the 2-core timing of the real cpu profile is in bench/RESULTS.md.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tiny_llm import make_tiny_qwen2

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _setup(*args, cwd=REPO, timeout=60):
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1")
    return subprocess.run(["bash", str(Path(cwd) / "setup_au_agent.sh"), *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_help_lists_the_options():
    r = _setup("--help")
    assert r.returncode == 0
    for option in ("--profile", "--openface-dir", "--mer-factory-dir", "--model", "--videos",
                   "--skip-install", "--real-openface-dir"):
        assert option in r.stdout


@pytest.mark.parametrize("args, says", [
    (["--videos", "many"], "--videos must be a positive number"),
    (["--openface-dir", "no/such/folder"], "no/such/folder: folder does not exist"),
    (["--profile", "tpu"], "--profile must be auto, cpu or gpu"),
    (["--frobnicate"], "--frobnicate: unknown option"),
    (["--real-openface-dir", "no/such/folder"], "no/such/folder: --real-openface-dir needs an existing folder"),
])
def test_bad_arguments_exit_2_with_one_line(args, says):
    r = _setup("--skip-install", *args)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and says in r.stderr


def _copy_of_repo(dst: Path) -> Path:
    """The files a fresh clone has (tracked + new, not ignored), without data/ output/ cache/."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    for name in filter(None, listed.stdout.split("\0")):
        if (REPO / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dst / name)
    return dst


def test_whole_run_on_a_tiny_model(tmp_path):
    repo = _copy_of_repo(tmp_path / "repo")
    tiny = make_tiny_qwen2(tmp_path / "tiny_qwen2")
    real = SHARED / "openface_samples"
    if not real.is_dir():  # stand-in for real CSVs: the section's plumbing is what is tested here
        from my_affectgpt.au.simulate import write_dataset

        real = tmp_path / "stand_in_real"
        # other names than the training videos (sim_00000...), which the real-frame section leaves out
        for csv in write_dataset(tmp_path / "stand_in_sim", 3, seed=99, frames=(30, 40), workers=1):
            real.mkdir(exist_ok=True)
            csv.rename(real / f"stand_in_{csv.name}")
    r = _setup("--skip-install", "--profile", "cpu", "--model", tiny, "--videos", 40,
               "--real-openface-dir", real, 2, cwd=repo, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    for n in range(1, 6):
        assert f"==== [{n}/5]" in r.stdout
    adapter = "output/au_agent_smollm2_lora/checkpoint-best"
    assert (repo / adapter / "adapter_config.json").is_file() and f"adapter: {adapter}" in r.stdout
    report = json.loads((repo / "output/au_agent_smollm2_lora/au_agent_report.json").read_text())
    for key in ("eval_loss", "au_precision", "au_recall", "au_f1", "hallucination_rate",
                "emotion_word_rate", "band_agreement", "rouge_l", "mean_words", "descriptions_per_s"):
        assert key in report
    assert report["n"] > 0 and report["eval_loss"] > 0
    assert set(report["baselines"]) == {"base", "rule_teacher"}
    assert report["baselines"]["rule_teacher"]["au_f1"] == 1.0  # the teacher wrote the references
    for split in ("train", "val", "test"):
        assert (repo / f"data/au_instructions/{split}.jsonl").stat().st_size > 0
    # The separate real-frame section: 2 frames per real video, none from the training data.
    real_report = report["real_frames"]
    (source,) = real_report["provenance"]["sources"]
    assert source["frames_per_video"] == 2 and 0 < real_report["n_samples"] <= 2 * source["videos"]
    assert real_report["provenance"]["training_data"] == ["data/au_instructions/train.jsonl",
                                                          "data/au_instructions/val.jsonl"]
    assert "real OpenFace frames" in r.stdout and "tuned, off (real)" in r.stdout
    assert "run-time check, real frames:" in r.stdout and "tuned, verify repair" in r.stdout


def _processes_in(folder: Path) -> list:
    """Command lines of the processes whose working directory is `folder` (Linux /proc)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if Path(os.readlink(proc / "cwd")) == folder:
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200])
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs Linux /proc")
def test_failed_data_step_stops_the_model_conversion(tmp_path):
    """The embedded model converts beside the data step; when that step fails, setup exits 2
    with the data step's one-line error and stops the conversion (no process left behind, no
    half-written model folder)."""
    repo = _copy_of_repo(tmp_path / "repo")
    empty = tmp_path / "no_csvs"
    empty.mkdir()
    r = _setup("--skip-install", "--profile", "cpu", "--openface-dir", empty, cwd=repo, timeout=120)
    assert r.returncode == 2 and str(empty) in r.stderr and "Traceback" not in r.stderr
    for _ in range(50):  # SIGTERM is handled at the next Python instruction
        alive = _processes_in(repo)
        if not alive:
            break
        time.sleep(0.1)
    assert not alive, f"still running in the repository: {alive}"
    models = repo / "cache" / "models"
    assert not models.exists() or not [p for p in models.iterdir() if ".tmp-" in p.name]
