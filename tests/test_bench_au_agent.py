"""bench/bench_au_agent.py as a user runs it: the tiny random model, tiny sizes, every step of
the chain in the JSON, the same cap on both sides, and one-line errors."""
from __future__ import annotations

import json

import pytest

from conftest import REPO, run_cli

ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
       "TOKENIZERS_PARALLELISM": "false"}
STEPS = ["reference", "greedy", "our_prompt", "dedup", "batched"]


def test_tiny_run_reports_every_step_at_equal_settings(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_cli("bench/bench_au_agent.py", "--model", "tiny", "--videos", 3, "--num-frames", 4,
                   "--ref-calls", 5, "--chain-calls", 3, "--max-new-tokens", 6, "--batch-size", 4,
                   "--threads", 1, "--workdir", tmp_path / "work", "--json", out, env=ENV, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert [s["step"] for s in res["chain"]] == STEPS
    for s in res["chain"]:
        assert s["frames_per_s"] > 0 and s["tokens_per_s"] > 0, s
        assert 0 < s["mean_new_tokens_per_call"] <= 6 + 1e-9, s  # the cap, on every side
        r = s["vs_reference"]
        assert r["frames_per_s"] == pytest.approx(r["tokens_per_s"] * r["fewer_tokens_per_frame"])
        assert r["fewer_tokens_per_frame"] == pytest.approx(r["fewer_calls_per_frame"] * r["fewer_tokens_per_call"])
    assert res["max_new_tokens"] == {"reference": 6, "ours": 6}
    assert res["reference_calls"] >= 5 and res["chain"][0]["model_calls"] >= 5
    assert res["chain"][1]["model_calls"] == res["chain"][2]["model_calls"] >= 3
    steps = {s["step"]: s for s in res["chain"]}
    assert steps["batched"]["frames"] == steps["dedup"]["frames"] == res["frames"] == 12
    assert steps["batched"]["model_calls"] == steps["dedup"]["model_calls"]  # same prompts generated
    assert steps["dedup"]["derived"] and not steps["batched"]["derived"]
    assert res["warm"]["generated"] == 0 and res["warm"]["frames_per_s"] > 0
    assert res["reference_rule_calls_all_frames"] > 0
    assert res["torch"] and res["commit"] and res["load_average_before"]
    assert "x fewer new tokens per frame" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--ref-calls", "0"], "--ref-calls must be >= 1"),
    (["--videos", "many"], "argument --videos: invalid int value: 'many'"),
    (["--adapter", "missing_adapter"], "missing_adapter: no such adapter folder"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
])
def test_bad_arguments_are_one_line(tmp_path, args, message):
    proc = run_cli(REPO / "bench" / "bench_au_agent.py", *args, cwd=tmp_path, env=ENV, timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
