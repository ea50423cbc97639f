"""test_au_agent.py end to end with a tiny random Qwen2 + LoRA adapter: the report has every
figure, for the tuned model and both baselines, and the full probe table."""
from __future__ import annotations

import json

import pytest

from conftest import REPO, run_cli
from tiny_llm import make_tiny_qwen2
from my_affectgpt.au.simulate import write_dataset
from my_affectgpt.evaluation.au_agent_eval import evaluate, items_from_jsonl
from my_affectgpt.evaluation.au_probes import probes

KEYS = ("eval_loss", "au_precision", "au_recall", "au_f1", "hallucination_rate", "emotion_word_rate",
        "band_agreement", "rouge_l", "mean_words", "descriptions_per_s")


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("tiny")
    base = make_tiny_qwen2(root / "base")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(0)
    for name, p in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero: the tuned model must differ from its base
            torch.nn.init.normal_(p, std=0.5)
    model.save_pretrained(root / "adapter")
    return base, root / "adapter"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_dataset(root / "of", 12, seed=4, frames=(30, 50), workers=1)
    proc = run_cli(REPO / "prepare_au_instruction_dataset.py", "--openface-dir", root / "of",
                   "--out-dir", root / "ds", "--split", "0.5", "0.25", "0.25", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    return root


def test_report_from_jsonl(tiny_adapter, dataset, tmp_path):
    base, adapter = tiny_adapter
    out = tmp_path / "report.json"
    proc = run_cli(REPO / "test_au_agent.py", "--adapter", adapter, "--base-model", base,
                   "--data", dataset / "ds" / "test.jsonl", "--json", out, "--max-new-tokens", "6", "--max-samples", "8",
                   "--no-progress")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    for k in KEYS:
        assert k in report, k
    assert report["eval_loss"] > 0 and 0 <= report["au_f1"] <= 1 and report["rouge_l"] is not None
    assert set(report["baselines"]) == {"base", "rule_teacher"}
    assert report["baselines"]["base"]["eval_loss"] > 0
    assert report["generation"] in proc.stdout
    rule = report["baselines"]["rule_teacher"]
    assert (rule["au_f1"], rule["hallucination_rate"], rule["band_agreement"]) == (1.0, 0.0, 1.0)
    assert [p["probe"] for p in report["probes"]] == [label for label, _ in probes()]
    assert all(p["tuned"] is not None and p["base"] is not None for p in report["probes"])
    for label in ("prototype happiness", "AU12 severe", "neutral"):
        assert f"[{label}]" in proc.stdout
    assert "au_f1" in proc.stdout and "rule_teacher" in proc.stdout


def test_side_by_side_gives_the_same_report(tiny_adapter, dataset):
    """The untuned base generating in a worker process beside the tuned model (the CPU default)
    reports what one model after the other does, speed aside, and restores the thread count."""
    import torch

    base, adapter = tiny_adapter
    items = items_from_jsonl(dataset / "ds" / "test.jsonl", limit=6)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        kw = dict(adapter=adapter, base=str(base), max_new_tokens=6, progress=False)
        apart = evaluate(items, side_by_side=False, **kw)
        together = evaluate(items, side_by_side=True, **kw)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert together["generation"] == "tuned and untuned base side by side, 1 + 1 threads"
    assert apart["generation"].startswith("one model at a time")

    def figures(r):
        out = {k: v for k, v in r.items() if k not in ("descriptions_per_s", "generation", "baselines")}
        if "verify_checks" in out:                          # timing aside
            out["verify_checks"] = {k: v for k, v in out["verify_checks"].items() if k != "repair_seconds"}
        return out

    assert figures(together) == figures(apart)
    assert figures(together["baselines"]["base"]) == figures(apart["baselines"]["base"])
    assert together["probes"] == apart["probes"]
    # the worker ran the base without the adapter
    assert any(p["tuned"] != p["base"] for p in together["probes"])


def test_report_from_openface_csvs_without_references(tiny_adapter, dataset, tmp_path):
    base, adapter = tiny_adapter
    proc = run_cli(REPO / "test_au_agent.py", "--adapter", adapter, "--base-model", base,
                   "--openface-dir", dataset / "of", "--max-samples", "10", "--json", tmp_path / "r.json",
                   "--max-new-tokens", "8", "--no-baselines", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["n_samples"] == 10 and report["eval_loss"] is None and report["rouge_l"] is None
    assert set(report["baselines"]) == {"rule_teacher"}


def test_bad_inputs(tiny_adapter, tmp_path):
    base, adapter = tiny_adapter
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"nope": 1}\n')
    proc = run_cli(REPO / "test_au_agent.py", "--adapter", adapter, "--data", bad)
    assert proc.returncode == 2 and str(bad) in proc.stderr and "line 1" in proc.stderr
    proc = run_cli(REPO / "test_au_agent.py", "--adapter", tmp_path, "--data", bad)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_real_frame_section_never_uses_training_frames(tiny_adapter, dataset, tmp_path):
    """Real OpenFace frames are scored in their own section; videos of the training data, and
    frames whose AU values appear in it (a renamed copy), are left out and listed as such."""
    import shutil

    base, adapter = tiny_adapter
    train_files = [dataset / "ds" / "train.jsonl", dataset / "ds" / "val.jsonl"]
    train_videos = {r["video"] for f in train_files for r in map(json.loads, f.read_text().splitlines())
                    if r["source"] != "composite+rule"}          # composite states have no CSV
    test_videos = {json.loads(line)["video"] for line in (dataset / "ds" / "test.jsonl").read_text().splitlines()}
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    copied = sorted(train_videos)[0]
    shutil.copy(dataset / "of" / f"{copied}.csv", renamed / "someone_else.csv")
    out = tmp_path / "r.json"
    proc = run_cli(REPO / "test_au_agent.py", "--adapter", adapter, "--base-model", base,
                   "--data", dataset / "ds" / "test.jsonl", "--max-samples", "2", "--no-baselines",
                   "--max-new-tokens", "4", "--no-progress", "--json", out,
                   "--real-openface-dir", dataset / "of", "4", "--real-openface-dir", renamed,
                   "--train-data", *train_files)
    assert proc.returncode == 0, proc.stderr
    real = json.loads(out.read_text())["real_frames"]
    folder, copy = real["provenance"]["sources"]
    assert set(folder["used"]) == test_videos                     # only videos never trained on
    assert sorted(folder["excluded_training_videos"]) == sorted(train_videos)
    assert all(len(frames) <= 4 for frames in folder["used"].values())
    assert copy["used"] == {} and copy["excluded_training_frames"] > 0  # same frames, other name
    assert real["n_samples"] == folder["frames"] == len(real["outputs"])
    assert {o["frame"].split(":")[0] for o in real["outputs"]} == test_videos
    assert real["rule_teacher"]["au_f1"] == 1.0 and 0 <= real["tuned"]["au_f1"] <= 1
    assert "Real OpenFace frames" in proc.stdout and "excluded as training data" in proc.stdout

    bad = run_cli(REPO / "test_au_agent.py", "--adapter", adapter, "--base-model", base,
                  "--data", dataset / "ds" / "test.jsonl", "--real-openface-dir", dataset / "of", "x")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "frames per video" in bad.stderr


def test_report_shows_the_run_time_check_both_ways(tiny_adapter, dataset):
    """--verify: the main figures are those of the mode asked; both readings, the counts, the
    fallback rate and omission by number of active AUs are in the report either way."""
    from my_affectgpt.evaluation.au_agent_eval import format_report

    base, adapter = tiny_adapter
    items = items_from_jsonl(dataset / "ds" / "test.jsonl", limit=6)
    kw = dict(adapter=adapter, base=str(base), max_new_tokens=6, progress=False, baselines=False)
    repair = evaluate(items, verify_mode="repair", **kw)
    off = evaluate(items, verify_mode="off", **kw)
    checks = repair["verify_checks"]
    assert checks == {**off["verify_checks"], "repair_seconds": checks["repair_seconds"]}
    # a random tiny model fails every non-neutral frame, and the teacher takes over
    v = repair["verified"]
    assert v["checked"] == len(items) and v["fell_back"] == v["failed_first"] > 0
    assert checks["fallback_rate"] == round(v["fell_back"] / v["checked"], 4)
    assert repair["au_f1"] == checks["repair"]["au_f1"] == 1.0 and repair["hallucination_rate"] == 0
    assert off["au_f1"] == checks["off"]["au_f1"] < 1.0
    by = checks["omission_by_active"]
    from my_affectgpt.au.facs import active_aus
    assert sum(r["frames"] for r in by["off"].values()) == sum(bool(active_aus(it.au)) for it in items)
    assert all(r["omission_rate"] in (None, 0.0) for r in by["repair"].values())
    text = format_report(repair)
    assert "Run-time check (reported: verify=repair)" in text and "omission by active AUs" in text
