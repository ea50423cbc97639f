"""bench/bench_au_routes.py: AffectGPT trained through train.py on one AU route, next to the linear
probe on the same split. A small synthetic run (only the AUs carry the emotion, so the values
route must read it), and the one-line errors."""
from __future__ import annotations

import json

import pytest

from conftest import REPO, run_cli

ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
       "TOKENIZERS_PARALLELISM": "false"}


def test_values_route_and_probe_on_the_same_synthetic_split(tmp_path):
    result = tmp_path / "result.json"
    proc = run_cli("bench/bench_au_routes.py", "--no-ravdess", "--routes", "values", "--synth-train", 96,
                   "--synth-test", 32, "--synth-emotions", "happiness,sadness,anger,surprise", "--epochs", 12,
                   "--au-frames", 4, "--threads", 1, "--work-dir", tmp_path / "work", "--json", result,
                   env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    synth = json.loads(result.read_text())["synthetic"]
    assert synth["test"] == 32 and len(synth["classes"]) == 4
    run = synth["affectgpt"]["values"]["test"]
    assert run["n"] == 32 and run["steps"] > 0 and run["last_loss"] < run["first_loss"]
    assert run["command"][:3] == ["train.py", "--cfg-path", "train_configs/affectgpt_tiny_cpu.yaml"]
    assert "model.au_mode=values" in run["command"]
    # the prototypes differ in their AUs: the probe separates them, and AffectGPT reads them too
    assert synth["probe"]["values"]["folds"]["test"]["accuracy"] >= 0.9, synth["probe"]
    assert run["accuracy"] >= 0.6, run
    assert synth["best_affectgpt"][0] == "values" and synth["gap"] == pytest.approx(
        synth["best_probe"][1] - synth["best_affectgpt"][1], abs=1e-3)
    assert "| values (values) |" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--routes", "values,pixels"], "--routes: unknown route(s) pixels; choose from"),
    (["--no-synth", "--ravdess-dir", "missing_folder"], "missing_folder: no such folder"),
])
def test_bad_arguments_are_one_line(tmp_path, args, message):
    proc = run_cli(REPO / "bench" / "bench_au_routes.py", *args, "--work-dir", tmp_path, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
