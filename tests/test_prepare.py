"""prepare_au_instruction_dataset.py end to end: layout of DESIGN.md §4, split by video,
de-duplication, stats, exports, other sources, bad inputs, and resume after SIGKILL."""
from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from my_affectgpt.au.facs import ACTION_UNITS, active_aus, au_state_text
from my_affectgpt.au.lexicon import mentioned_aus
from my_affectgpt.au.prompts import chat_messages
from my_affectgpt.au.simulate import write_dataset

SCRIPT = REPO / "prepare_au_instruction_dataset.py"
OUTPUTS = ("train.jsonl", "val.jsonl", "test.jsonl", "stats.json")


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    write_dataset(d, 60, seed=5, frames=(40, 80), second_face_prob=0.2, workers=1)
    return d


@pytest.fixture(scope="module")
def built(sim_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds")
    proc = run_cli(SCRIPT, "--openface-dir", sim_dir, "--teacher", "rule", "--out-dir", out,
                   "--seed", "1", "--frames-per-video", "6", "--export", "llamafactory")
    assert proc.returncode == 0, proc.stderr
    return out, proc


def load(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


def digests(out: Path) -> dict:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def test_samples_follow_the_design_layout(built):
    out, proc = built
    assert "wrote" in proc.stdout
    samples = [s for split in ("train", "val", "test") for s in load(out / f"{split}.jsonl")]
    train = load(out / "train.jsonl")
    assert len(samples) > 200
    for s in samples:
        assert set(s) == {"id", "video", "frame", "source", "au", "messages"}
        assert s["id"] == f"{s['video']}_f{s['frame']:04d}"
        assert s["source"] == "openface+rule" or s["source"] == "composite+rule" and s in train
        assert [m["role"] for m in s["messages"]] == ["system", "user", "assistant"]
        prompt = au_state_text(active_aus(s["au"]))
        assert s["messages"][:2] == chat_messages(prompt)           # the au field is the truth
        assert mentioned_aus(s["messages"][2]["content"]) == set(active_aus(s["au"]))
    assert len({s["id"] for s in samples}) == len(samples)


def test_train_split_holds_composite_long_states_spread_through_it(built):
    """Long region lists are rare in real frames and a small model learns to cut them short;
    15% of the train split are two frames' AUs joined into states where one face region lists
    5+ AUs (long_states.py), spread so that any prefix of the file holds the same share."""
    out, _ = built
    train = load(out / "train.jsonl")
    composite = [i for i, s in enumerate(train) if s["source"] == "composite+rule"]
    assert abs(len(composite) / len(train) - 0.15) < 0.01
    half = len(train) // 2
    assert abs(sum(i < half for i in composite) / half - 0.15) < 0.02
    regions = [[ACTION_UNITS[c].region for c in active_aus(train[i]["au"])] for i in composite]
    assert all(max(r.count(g) for g in set(r)) >= 5 for r in regions)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["sources"]["composite+rule"] == {"train": len(composite), "val": 0, "test": 0}
    assert stats["settings"]["long_state_share"] == 0.15
    assert all(s["source"] == "openface+rule" for split in ("val", "test") for s in load(out / f"{split}.jsonl"))


def test_split_by_video_and_no_duplicate_pairs(built):
    out, _ = built
    videos = {split: {s["video"] for s in load(out / f"{split}.jsonl")} for split in ("train", "val", "test")}
    assert not (videos["train"] & videos["val"] or videos["train"] & videos["test"] or videos["val"] & videos["test"])
    assert len(videos["val"]) >= 1 and len(videos["test"]) >= 1
    assert len(videos["train"]) > 5 * len(videos["val"])
    pairs = [(s["messages"][1]["content"], s["messages"][2]["content"])
             for split in ("train", "val", "test") for s in load(out / f"{split}.jsonl")]
    assert len(pairs) == len(set(pairs))


def test_stats_match_the_files(built):
    out, _ = built
    stats = json.loads((out / "stats.json").read_text())
    by_split = {split: load(out / f"{split}.jsonl") for split in ("train", "val", "test")}
    assert stats["samples"] == {k: len(v) for k, v in by_split.items()} | {"total": sum(map(len, by_split.values()))}
    composite = {k: sum(s["source"] == "composite+rule" for s in v) for k, v in by_split.items()}
    assert stats["sources"]["openface+rule"] == {k: len(v) - composite[k] for k, v in by_split.items()}
    recount = {}
    for rows in by_split.values():
        for s in rows:
            for code in active_aus(s["au"]):
                recount[code] = recount.get(code, 0) + 1
    assert {c: v["count"] for c, v in stats["au_frequency"].items() if v["count"]} == recount
    assert stats["duplicates_dropped"] > 0          # neutral frames repeat
    assert stats["answer_words"]["p50"] <= stats["answer_words"]["p90"] <= stats["answer_words"]["max"]
    assert stats["settings"]["seed"] == 1 and stats["skipped_inputs"] == []


def test_llamafactory_export(built):
    out, _ = built
    info = json.loads((out / "llamafactory" / "dataset_info.json").read_text())
    train = load(out / "train.jsonl")
    alpaca = json.loads((out / "llamafactory" / info["au_agent_train_alpaca"]["file_name"]).read_text())
    sharegpt = json.loads((out / "llamafactory" / info["au_agent_train_sharegpt"]["file_name"]).read_text())
    assert len(alpaca) == len(sharegpt) == len(train)
    assert alpaca[0] == {"instruction": train[0]["messages"][1]["content"], "input": "",
                         "output": train[0]["messages"][2]["content"],
                         "system": train[0]["messages"][0]["content"]}
    assert info["au_agent_train_sharegpt"]["formatting"] == "sharegpt"
    assert sharegpt[0]["conversations"][1] == {"from": "gpt", "value": train[0]["messages"][2]["content"]}


def test_same_seed_same_bytes_whatever_the_worker_count(sim_dir, built, tmp_path):
    out, _ = built
    proc = run_cli(SCRIPT, "--openface-dir", sim_dir, "--out-dir", tmp_path, "--seed", "1",
                   "--frames-per-video", "6", "--export", "llamafactory", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert digests(tmp_path) == digests(out)


def test_max_samples_and_other_seed(sim_dir, tmp_path):
    proc = run_cli(SCRIPT, "--openface-dir", sim_dir, "--out-dir", tmp_path, "--max-samples", "50",
                   "--seed", "2", "--frames-per-video", "6", "--long-states", "0")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "stats.json").read_text())["samples"]["total"] == 50
    assert sum(len(load(tmp_path / f"{s}.jsonl")) for s in ("train", "val", "test")) == 50


def test_bad_file_in_a_folder_is_reported_and_skipped(sim_dir, tmp_path):
    folder = tmp_path / "of"
    folder.mkdir()
    for p in sorted(sim_dir.glob("sim_0000*.csv")):
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "broken.csv").write_text("frame;timestamp;AU01_r\n1;0;0.5\n")
    proc = run_cli(SCRIPT, "--openface-dir", folder, "--out-dir", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    bad = [line for line in proc.stderr.splitlines() if "broken.csv" in line]
    assert len(bad) == 1 and "wrong delimiter" in bad[0] and "Traceback" not in proc.stderr
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert len(stats["skipped_inputs"]) == 1 and stats["videos"]["train"] > 0


@pytest.mark.parametrize("content", [b"", b"\x00\x01binary", b"frame,success\n1,1\n"])
def test_only_bad_input_exits_2_and_writes_nothing(tmp_path, content):
    folder = tmp_path / "of"
    folder.mkdir()
    (folder / "v.csv").write_bytes(content)
    out = tmp_path / "out"
    proc = run_cli(SCRIPT, "--openface-dir", folder, "--out-dir", out)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and str(folder / "v.csv") in proc.stderr
    assert not any(p.is_file() and not p.name.startswith(".") for p in out.rglob("*")) if out.exists() else True
    assert not (out / "train.jsonl").exists()


def test_missing_folder_exits_2_with_one_line(tmp_path):
    proc = run_cli(SCRIPT, "--openface-dir", tmp_path / "nope", "--out-dir", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_alpaca_and_sharegpt_inputs(tmp_path):
    alpaca = tmp_path / "au_alpaca.jsonl"
    rows = [{"instruction": "Describe the AUs.", "input": "AU values: AU04: 2.24, AU07: 1.87",
             "output": "A marked brow lowerer and a slight lid tightener.", "video": "clip_a"},
            {"instruction": "Describe the AUs.", "input": "AU values: AU12: 3.1",
             "output": "A strong lip corner puller.", "video": "clip_b"},
            {"conversations": [{"from": "human", "value": "AU values: AU01: 1.2, AU02: 1.1"},
                               {"from": "gpt", "value": "Slight inner and outer brow raisers."}],
             "video": "clip_c"}]
    alpaca.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_cli(SCRIPT, "--alpaca", alpaca, "--out-dir", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    samples = {s["video"]: s for split in ("train", "val", "test") for s in load(tmp_path / "out" / f"{split}.jsonl")}
    assert samples["clip_a"]["au"] == {"AU04_r": 2.24, "AU07_r": 1.87}
    assert samples["clip_a"]["messages"][1]["content"].endswith("AU04 brow lowerer 2.2; AU07 lid tightener 1.9")
    assert samples["clip_a"]["messages"][2]["content"] == rows[0]["output"]
    assert samples["clip_c"]["source"] == "sharegpt"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "x", "input": "no values here", "output": "y"}\n')
    proc = run_cli(SCRIPT, "--alpaca", bad, "--out-dir", tmp_path / "out2")
    assert proc.returncode == 2 and "line 1" in proc.stderr and str(bad) in proc.stderr
    assert not (tmp_path / "out2").exists()


def test_mer_factory_per_frame_outputs(tmp_path):
    video = tmp_path / "mer" / "clip_x"
    video.mkdir(parents=True)
    (video / "clip_x_au_analysis.json").write_text(json.dumps({
        "source_path": "clip_x.mp4",
        "per_frame_au_descriptions": [
            {"frame": 3, "timestamp": 0.1, "active_aus": {"AU06_r": 2.1, "AU12_r": 3.0},
             "fine_grained_description": "Cheeks lifted with a strong lip corner pull."},
            {"frame": 9, "timestamp": 0.3, "active_aus": {"AU04_r": 1.5}}]}))
    proc = run_cli(SCRIPT, "--mer-factory-dir", tmp_path / "mer", "--out-dir", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    samples = {s["frame"]: s for split in ("train", "val", "test") for s in load(tmp_path / "out" / f"{split}.jsonl")}
    assert samples[3]["source"] == "mer-factory"
    assert samples[3]["messages"][2]["content"] == "Cheeks lifted with a strong lip corner pull."
    assert samples[9]["source"] == "mer-factory+rule"          # no description: the teacher wrote one
    assert mentioned_aus(samples[9]["messages"][2]["content"]) == {"AU04"}
    audit = json.loads((tmp_path / "out" / "stats.json").read_text())["teacher_audit"]
    assert list(audit["per_source"]) == ["mer-factory"] and audit["n"] == 1   # 9: rule-written
    assert audit["au_f1"] == 1.0 and audit["band_agreement"] == 0.5   # "cheeks lifted": no band


def test_api_teacher_end_to_end(sim_dir, tmp_path, monkeypatch):
    from test_api_teacher import FakeOpenAI
    server = FakeOpenAI()
    try:
        folder = tmp_path / "of"
        folder.mkdir()
        for p in sorted(sim_dir.glob("sim_0000*.csv"))[:4]:
            (folder / p.name).write_bytes(p.read_bytes())
        args = [SCRIPT, "--openface-dir", folder, "--teacher", "api", "--api-model", "m",
                "--api-base-url", server.url, "--out-dir", tmp_path / "out", "--frames-per-video", "4",
                "--api-rpm", "100000"]
        proc = run_cli(*args)
        assert proc.returncode == 0, proc.stderr
        samples = [s for split in ("train", "val", "test") for s in load(tmp_path / "out" / f"{split}.jsonl")]
        prompts = {s["messages"][1]["content"].split("AUs: ", 1)[1] for s in samples}
        assert {s["messages"][2]["content"] for s in samples} == {f"described: {p}" for p in prompts}
        assert sorted(server.texts()) == sorted(prompts)           # each distinct prompt asked once
        audit = json.loads((tmp_path / "out" / "stats.json").read_text())["teacher_audit"]
        assert list(audit["per_source"]) == ["openface+api"] and audit["n"] >= len(samples)
        assert proc.returncode == 0 and run_cli(*args).returncode == 0
        assert len(server.requests) == len(prompts)               # the rerun is served by the cache
    finally:
        server.close()


def test_killed_build_resumes_to_identical_files(tmp_path):
    sim = tmp_path / "sim"
    write_dataset(sim, 480, seed=9, frames=(60, 120), workers=2)
    args = ["--openface-dir", str(sim), "--out-dir", None, "--seed", "3", "--workers", "1", "--no-progress"]

    def cmd(out):
        return [sys.executable, str(SCRIPT)] + [str(out) if a is None else a for a in args]

    ref = tmp_path / "ref"
    assert subprocess.run(cmd(ref), cwd=REPO, capture_output=True).returncode == 0

    out = tmp_path / "out"
    proc = subprocess.Popen(cmd(out), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / ".work" / "chunk_000003.json").exists():
        assert proc.poll() is None and time.time() < deadline, "build ended before it could be killed"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "train.jsonl").exists()                      # killed halfway, nothing final
    done = len(list((out / ".work").glob("chunk_*.json")))
    assert 4 <= done < 15

    resumed = subprocess.run(cmd(out), cwd=REPO, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    assert digests(out) == digests(ref)
    assert set(digests(ref)) == set(OUTPUTS)


# --- teacher audit: external references scored by the AU judge ----------------------------------
# Hand-labelled references (what each names, by reading it): the figures below are counted from
# these labels, not computed by the judge.
AUDIT_ROWS = [
    # faithful, right bands
    {"input": "AU values: AU04: 2.24, AU07: 1.87", "video": "a",
     "output": "A marked brow lowerer and a slight lid tightener."},
    # right AU, wrong band (3.1 is severe)
    {"input": "AU values: AU12: 3.1", "video": "b", "output": "A marked lip corner puller."},
    # names AU04, which is inactive
    {"input": "AU values: AU01: 1.2, AU02: 1.1", "video": "d",
     "output": "Slight inner and outer brow raisers and a slight brow lowerer."},
    # names presence-only AU28 while AU28_c is 0: an inactive AU like any other
    {"input": "AU values: AU28_c: 0, AU17: 1.4", "video": "e",
     "output": "The lips are sucked in and a slight chin raiser shows."},
    # misses AU06 and AU25
    {"input": "AU values: AU06: 2.1, AU12: 3.0, AU25: 1.2", "video": "f",
     "output": "A strong lip corner puller."},
    # right AUs, but names an emotion
    {"input": "AU values: AU12: 2.5", "video": "g",
     "output": "A marked lip corner puller; the person looks happy."},
    # no reference: the rule teacher writes one, which is not audited
    {"input": "AU values: AU09: 1.5", "video": "h"},
    # ShareGPT, faithful, with AU28 present
    {"conversations": [{"from": "human", "value": "AU values: AU28: 1, AU17: 0.7"},
                       {"from": "gpt",
                        "value": "The lips are sucked in and a faint chin raiser shows."}],
     "video": "c"},
]


def write_audit_jsonl(path: Path) -> Path:
    path.write_text("".join(json.dumps({"instruction": "Describe the AUs."} | r
                                       if "input" in r else r) + "\n" for r in AUDIT_ROWS))
    return path


def all_samples(out: Path) -> dict:
    return {s["video"]: s for split in ("train", "val", "test")
            for s in load(out / f"{split}.jsonl")}


def row(active, named, missed, hallucinated) -> dict:
    return {"active": active, "named": named, "missed": missed, "hallucinated": hallucinated}


def test_teacher_audit_matches_a_hand_count(tmp_path):
    from my_affectgpt.datasets.au_instructions import BuildConfig, build
    from my_affectgpt.evaluation.teacher_audit import audit_references
    lines = []
    stats = build(BuildConfig(out_dir=tmp_path / "out", progress=False,
                              instruction_files=[write_audit_jsonl(tmp_path / "a.jsonl")]),
                  log=lines.append, audit=audit_references)
    audit = stats["teacher_audit"]
    # 7 external references (h is rule-written): named & active 2+1+2+1+1+1+2 = 10, named but
    # inactive 2 (d, e), missed 2 (f); 9 bands stated on active intensity AUs, 8 right (b wrong).
    assert {k: audit[k] for k in ("n", "au_precision", "au_recall", "au_f1", "hallucination_rate",
                                  "band_agreement", "emotion_word_rate")} == {
        "n": 7, "au_precision": round(10 / 12, 4), "au_recall": round(10 / 12, 4),
        "au_f1": round(10 / 12, 4), "hallucination_rate": round(2 / 7, 4),
        "band_agreement": round(8 / 9, 4), "emotion_word_rate": round(1 / 7, 4)}
    assert audit["per_source"] == {
        "alpaca": {"n": 6, "au_precision": 0.8, "au_recall": 0.8, "au_f1": 0.8,
                   "hallucination_rate": round(2 / 6, 4), "band_agreement": 0.875,
                   "emotion_word_rate": round(1 / 6, 4)},
        "sharegpt": {"n": 1, "au_precision": 1.0, "au_recall": 1.0, "au_f1": 1.0,
                     "hallucination_rate": 0.0, "band_agreement": 1.0, "emotion_word_rate": 0.0}}
    touched = {c: v for c, v in audit["per_au"].items() if any(v.values())}
    assert touched == {"AU01": row(1, 1, 0, 0), "AU02": row(1, 1, 0, 0), "AU04": row(1, 1, 0, 1),
                       "AU06": row(1, 0, 1, 0), "AU07": row(1, 1, 0, 0), "AU12": row(3, 3, 0, 0),
                       "AU17": row(2, 2, 0, 0), "AU25": row(1, 0, 1, 0), "AU28": row(1, 1, 0, 1)}
    assert audit["most_missed"] == [["AU06", 1], ["AU25", 1]]
    assert audit["most_hallucinated"] == [["AU04", 1], ["AU28", 1]]
    assert audit["dropped"] is None and not any("audit filter" in line for line in lines)
    assert set(all_samples(tmp_path / "out")) == set("abcdefgh")      # off by default: all kept
    assert all_samples(tmp_path / "out")["h"]["source"] == "alpaca+rule"
    saved = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert saved["teacher_audit"] == audit and saved["settings"]["audit_filter"] is False


def test_audit_filter_drops_exactly_the_unfaithful_references(tmp_path):
    from my_affectgpt.datasets.au_instructions import BuildConfig, build
    from my_affectgpt.evaluation.teacher_audit import audit_references
    lines = []
    stats = build(BuildConfig(out_dir=tmp_path / "out", progress=False, audit_filter=True,
                              instruction_files=[write_audit_jsonl(tmp_path / "a.jsonl")]),
                  log=lines.append, audit=audit_references)
    assert set(all_samples(tmp_path / "out")) == set("abcgh")          # d, e inactive; f misses 2
    assert stats["teacher_audit"]["dropped"] == {"total": 3, "names_inactive_au": 2,
                                                 "misses_active_aus": 1}
    assert stats["teacher_audit"]["n"] == 7                          # the audit covers all of them
    assert stats["samples"]["total"] == 5 and stats["settings"]["audit_max_missed"] == 0
    assert lines == ["audit filter: dropped 3 of 7 external references (2 name an inactive AU, "
                     "1 miss more than 0 active AUs)"]


def test_audit_filter_cli(tmp_path):
    alpaca = write_audit_jsonl(tmp_path / "a.jsonl")
    proc = run_cli(SCRIPT, "--alpaca", alpaca, "--out-dir", tmp_path / "out", "--audit-filter",
                   "--audit-max-missed", "2", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert set(all_samples(tmp_path / "out")) == set("abcfgh")         # f misses 2: tolerated
    assert ("audit filter: dropped 2 of 7 external references (2 name an inactive AU, "
            "0 miss more than 2 active AUs)") in proc.stderr.splitlines()
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert (stats["settings"]["audit_filter"], stats["settings"]["audit_max_missed"]) == (True, 2)
    out = proc.stdout.splitlines()
    assert out[1] == ("teacher audit of 7 external references: AU-F1 0.833, hallucination 0.286, "
                      "band agreement 0.889, emotion words 0.143")
    assert any(line.startswith("  alpaca: n 6,") for line in out)
    assert any(line.startswith("  sharegpt: n 1,") for line in out)
    for bad, msg in ((["--audit-filter", "--audit-max-missed", "-1"],
                      "--audit-max-missed must be >= 0"),
                     (["--audit-max-missed", "1"], "--audit-max-missed needs --audit-filter"),
                     (["--long-states", "1"], "--long-states must be in [0, 1), got 1.0")):
        proc = run_cli(SCRIPT, "--alpaca", alpaca, "--out-dir", tmp_path / "bad", *bad)
        assert proc.returncode == 2 and msg in proc.stderr and proc.stderr.count("\n") == 1
        assert not (tmp_path / "bad").exists()


def test_audit_filter_that_drops_everything_says_so(tmp_path):
    alpaca = tmp_path / "a.jsonl"
    alpaca.write_text(json.dumps(AUDIT_ROWS[2]) + "\n")
    proc = run_cli(SCRIPT, "--alpaca", alpaca, "--out-dir", tmp_path / "out", "--audit-filter")
    assert proc.returncode == 2 and "--audit-filter dropped all 1 references" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_no_external_reference_no_audit(built):
    out, proc = built
    assert json.loads((out / "stats.json").read_text())["teacher_audit"] is None
    assert "teacher audit" not in proc.stdout
