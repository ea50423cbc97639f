"""AffectGPT inference end to end: a synthetic MER-Caption+ dataset, two epochs of the tiny CPU
config through train.py, inference_hybird.py on the test split (batched, chunked, resumed),
evaluation.py on its npz, and single raw videos with an OpenFace CSV, with a stand-in
FeatureExtraction executable, and without OpenFace at all."""
from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from omegaconf import OmegaConf

from conftest import REPO, run_cli
from my_affectgpt.common.errors import InputError

# Tiny models on a shared 2-core machine run fastest on one thread (see conftest.one_thread).
ENV = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def _subtitle(root: Path, name: str) -> str:
    with (root / "subtitle_chieng.csv").open(newline="", encoding="utf-8") as f:
        return next(r["english"] for r in csv.DictReader(f) if r["name"] == name)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A synthetic dataset, a config with relative paths beside it, and a 2-epoch training job."""
    root = tmp_path_factory.mktemp("inference")
    _ok(run_cli("-m", "my_affectgpt.datasets.synthetic", "--out", root / "ds", "--train", 8, "--test", 6,
                "--label-type", "openset", "--no-progress", env=ENV))
    cfg = OmegaConf.load(REPO / "train_configs" / "affectgpt_tiny_cpu.yaml")
    cfg.datasets.mercaptionplus.data_root = "ds/train"          # relative to the config file
    cfg.run.output_dir = "out"
    cfg.run.max_epoch, cfg.run.max_steps, cfg.run.batch_size_train = 2, 2, 8   # 1 step per epoch
    cfg.inference = {"test_datasets": [{"name": "synth", "data_root": "ds/test",
                                        "label_csv": "ds/test/labels.csv"}],
                     "batch_size": 2, "max_new_tokens": 8, "results_dir": "results"}
    cfg_path = root / "tiny.yaml"
    OmegaConf.save(cfg, cfg_path)
    _ok(run_cli("train.py", "--cfg-path", cfg_path, env=ENV))
    job = root / "out" / "tiny" / "default"
    assert (job / "checkpoint_000000.safetensors").is_file() and (job / "checkpoint_000001.safetensors").is_file()
    return SimpleNamespace(root=root, cfg_path=cfg_path, job=job, test=root / "ds" / "test",
                           run_dir=root / "results" / "results-synth" / "tiny_default")


@pytest.fixture(scope="module")
def predictions(trained):
    """Both checkpoints on the test split, description mode, progress every 2 videos."""
    proc = _ok(run_cli("inference_hybird.py", "--cfg-path", trained.cfg_path, "--options",
                       "inference.test_epochs=0-1", "--save-every", 2, "--no-progress", env=ENV))
    return proc


def _read_npz(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        names, reasons = data["names"], data["reasons"]
    assert names.ndim == reasons.ndim == 1 and names.dtype.kind == reasons.dtype.kind == "U"
    assert names.shape == reasons.shape
    return dict(zip(names.tolist(), reasons.tolist()))


def test_dataset_inference_evaluation_and_resume(trained, predictions):
    expected = sorted(r["name"] for r in csv.DictReader((trained.test / "labels.csv").open()))
    answers = {}
    for epoch in (0, 1):
        npz = trained.run_dir / f"checkpoint_{epoch:06d}.npz"
        jsonl = npz.with_suffix(".jsonl")
        preds = _read_npz(npz)
        assert sorted(preds) == expected and len(preds) == 6
        rows = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
        assert {r["name"]: r["answer"] for r in rows} == preds
        assert not npz.with_suffix(".partial").exists()
        answers[epoch] = preds
    assert "checkpoint_000001.safetensors: 6 predictions (6 generated, 0 resumed)" in predictions.stdout

    # evaluation.py scores the npz against the dataset's labels
    report_path = trained.root / "report.json"
    proc = _ok(run_cli("evaluation.py", "--pred", trained.run_dir / "checkpoint_000001.npz",
                       "--gt", trained.test / "labels.csv", "--json", report_path, "--no-progress", env=ENV))
    assert "hit rate" in proc.stdout
    report = json.loads(report_path.read_text())
    assert report["counts"]["ground_truth"] == 6 and report["counts"]["evaluated"] == 6
    assert set(report["hit_rate"]) == {"hit_rate", "hits", "n"} and report["hit_rate"]["n"] == 6
    assert 0.0 <= report["hit_rate"]["hit_rate"] <= 1.0
    assert set(report["labels"]) == set(expected)

    # a second run has nothing to do: no model is loaded, no file is rewritten
    stamps = {p: p.stat().st_mtime_ns for p in trained.run_dir.iterdir()}
    proc = _ok(run_cli("inference_hybird.py", "--cfg-path", trained.cfg_path, "--options",
                       "inference.test_epochs=0-1", "--no-progress", env=ENV))
    assert "nothing to do" in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in trained.run_dir.iterdir()} == stamps

    # a run killed within checkpoint 0 after one chunk: the rerun keeps that chunk, answers the
    # rest exactly as before and leaves no progress folder behind
    from my_affectgpt.datasets.mercaptionplus import QUESTIONS
    from my_affectgpt.inference.runner import partial_results

    npz = trained.run_dir / "checkpoint_000000.npz"
    npz.unlink()
    npz.with_suffix(".jsonl").unlink()
    partial = partial_results(npz, trained.job / "checkpoint_000000.safetensors", QUESTIONS["description"],
                              8, trained.test.resolve())
    kept = {expected[0]: "kept answer one", expected[1]: "kept answer two"}
    partial.add(kept)
    (partial.folder / ".part_000001.jsonl.abc.tmp").write_text('{"name": "test_0000')  # a write cut short
    proc = _ok(run_cli("inference_hybird.py", "--cfg-path", trained.cfg_path, "--options",
                       "inference.test_epochs=0-1", "--save-every", 2, "--no-progress", env=ENV))
    assert "checkpoint_000000.safetensors: resuming, 2 of 6 videos already answered" in proc.stdout
    assert "6 predictions (4 generated, 2 resumed)" in proc.stdout
    assert "checkpoint_000001.npz exists, skipped" in proc.stdout
    resumed = _read_npz(npz)
    assert resumed == {**answers[0], **kept}
    assert not partial.folder.exists() and npz.with_suffix(".jsonl").is_file()


def test_single_video_matches_the_dataset_answer(trained, predictions, tmp_path):
    """mp4 + OpenFace CSV (+ the MER layout's faces and wav beside it): the same answer as the
    dataset run, and the AU descriptions the dataset's feature store holds."""
    name = "test_00001"
    out_json = tmp_path / "answer.json"
    proc = _ok(run_cli("inference_hybird.py", "--cfg-path", trained.cfg_path,
                       "--video", trained.test / "video" / f"{name}.mp4",
                       "--openface-csv", trained.test / "openface_output" / name / f"{name}.csv",
                       "--subtitle", _subtitle(trained.test, name), "--json", out_json, env=ENV))
    result = json.loads(out_json.read_text())
    dataset_answer = _read_npz(trained.run_dir / "checkpoint_000001.npz")[name]
    assert result["answer"] == dataset_answer
    assert result["checkpoint"].endswith("checkpoint_000001.safetensors")   # the last by default
    stored = json.loads((trained.test / "au_features" / f"{name}.json").read_text())
    assert [a["description"] for a in result["au_frames"]] == stored["descriptions"]
    assert len(result["au_frames"]) == 4 and result["notices"] == []
    assert f"answer: {dataset_answer}" in proc.stdout
    for description in stored["descriptions"]:
        assert description in proc.stdout


def test_zeroshot_asks_for_labels_into_its_own_run(trained, predictions, one_thread):
    from my_affectgpt.datasets.affectgpt_config import load_affectgpt_config as load_config
    from my_affectgpt.inference.runner import run_inference

    cfg = load_config(trained.cfg_path, ["inference.test_epoch=1", "inference.zeroshot=true"])
    results = run_inference(cfg, trained.cfg_path, progress=False)
    npz = trained.run_dir.with_name("tiny_default-zeroshot") / "checkpoint_000001.npz"
    assert [(r.status, r.npz, r.predictions, r.generated) for r in results] == [("done", npz, 6, 6)]
    assert len(_read_npz(npz)) == 6
    assert (trained.run_dir / "checkpoint_000001.npz").is_file()      # the description run is untouched


STAND_IN = '''#!{python}
"""FeatureExtraction stand-in: writes <out_dir>/<stem>.csv (and aligned faces for -simalign)."""
import shutil, sys
from pathlib import Path
import numpy as np, cv2
args = sys.argv[1:]
Path({log!r}).write_text(" ".join(args))
video, out = Path(args[args.index("-f") + 1]), Path(args[args.index("-out_dir") + 1])
out.mkdir(parents=True, exist_ok=True)
shutil.copy({csv!r}, out / f"{{video.stem}}.csv")
if "-simalign" in args:
    aligned = out / f"{{video.stem}}_aligned"
    aligned.mkdir()
    for i in range(6):
        cv2.imwrite(str(aligned / f"frame_det_00_{{i + 1:06d}}.bmp"), np.full((40, 40, 3), 30 * i, np.uint8))
print("FeatureExtraction stand-in done")
'''


def test_single_video_runs_openface(trained, tmp_path):
    """No CSV: OpenFace (a stand-in executable from $OPENFACE_BIN) runs into the MER-Factory
    layout; no wav anywhere: silence, said in one line."""
    video = tmp_path / "clip.mp4"
    shutil.copy(trained.test / "video" / "test_00002.mp4", video)
    source_csv = trained.test / "openface_output" / "test_00002" / "test_00002.csv"
    binary, log = tmp_path / "FeatureExtraction", tmp_path / "argv.txt"
    binary.write_text(STAND_IN.format(python=sys.executable, log=str(log), csv=str(source_csv)))
    binary.chmod(0o755)
    proc = _ok(run_cli("inference_hybird.py", "--cfg-path", trained.cfg_path, "--video", video, "--zeroshot",
                       env={**ENV, "OPENFACE_BIN": str(binary)}))
    produced = trained.root / "results" / "openface_output" / "clip" / "clip.csv"
    assert produced.read_bytes() == source_csv.read_bytes()
    assert (produced.parent / "clip_aligned").is_dir()      # faces were needed: -simalign
    argv = log.read_text().split()
    assert argv[:2] == ["-f", str(video)] and "-aus" in argv and "-simalign" in argv
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "silence" in notes[0] and "--audio" in notes[0]
    assert "question: Please recognize all possible emotional states of the character." in proc.stdout
    assert proc.stdout.count("  frame ") == 4 and "answer: " in proc.stdout


def test_single_video_without_openface_says_so(trained, tmp_path, monkeypatch):
    if shutil.which("FeatureExtraction"):
        pytest.skip("an OpenFace FeatureExtraction is on PATH here")
    monkeypatch.delenv("OPENFACE_BIN", raising=False)
    video = tmp_path / "never_seen.mp4"     # no CSV from an earlier run under this name either
    shutil.copy(trained.test / "video" / "test_00003.mp4", video)
    proc = run_cli("inference_hybird.py", "--cfg-path", trained.cfg_path, "--video", video, env=ENV)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {video}: no --openface-csv given")
    assert "OPENFACE_BIN" in lines[0] and proc.stdout == ""


# ---- the parts, in process ------------------------------------------------------------------

def test_checkpoint_selection(tmp_path):
    from my_affectgpt.inference.checkpoints import select_checkpoints

    for epoch in (0, 30, 35, 45, 50, 60, 61):
        (tmp_path / f"checkpoint_{epoch:06d}.safetensors").write_bytes(b"")
    (tmp_path / "checkpoint_000070.state").mkdir()          # training state alone is no checkpoint

    def epochs(**kw):
        return [int(p.stem.split("_")[1]) for p in select_checkpoints(tmp_path, **kw)]

    assert epochs() == [61]
    assert epochs(test_epoch=35) == [35]
    assert epochs(test_epochs="30-60", skip_epoch=5) == [30, 35, 45, 50, 60]    # 40, 55 missing
    assert epochs(test_epochs="0-1") == [0]
    for kw, key in ((dict(test_epoch=40), "inference.test_epoch"),
                    (dict(test_epochs="1-29"), "inference.test_epochs"),
                    (dict(test_epochs="60-30"), "inference.test_epochs"),
                    (dict(test_epochs="x"), "inference.test_epochs"),
                    (dict(test_epoch=30, test_epochs="30-60"), "inference.test_epoch"),
                    (dict(test_epochs="30-60", skip_epoch=0), "inference.skip_epoch")):
        with pytest.raises(InputError) as err:
            select_checkpoints(tmp_path, **kw)
        assert err.value.path == key
    with pytest.raises(InputError, match="no checkpoint"):
        select_checkpoints(tmp_path / "checkpoint_000070.state")


def test_partial_results_survive_kills_and_reject_other_settings(tmp_path):
    from my_affectgpt.inference.partial import PartialResults

    folder = tmp_path / "checkpoint_000003.partial"
    first = PartialResults(folder, {"question": "q", "max_new_tokens": 8})
    assert first.load() == {}
    first.add({"a": "x"})
    first.add({"b": "y", "c": "z\nw"})
    (folder / ".part_000002.jsonl.123.tmp").write_text('{"name": "d", "ans')   # killed mid-write
    again = PartialResults(folder, {"question": "q", "max_new_tokens": 8})
    assert again.load() == {"a": "x", "b": "y", "c": "z\nw"}
    again.add({"d": "v"})
    assert sorted(p.name for p in folder.glob("part_*.jsonl")) == [f"part_00000{i}.jsonl" for i in range(3)]
    other = PartialResults(folder, {"question": "q", "max_new_tokens": 16})
    assert other.load() == {} and not folder.exists()


def test_test_dataset_names(tmp_path):
    from my_affectgpt.inference.runner import sample_names

    root = tmp_path / "d"
    (root / "video").mkdir(parents=True)
    (root / "openface_output" / "v3").mkdir(parents=True)
    (root / "openface_output" / "v3" / "v3.csv").write_text("frame,AU01_r\n1,0.5\n")
    of = root / "openface_output"
    assert sample_names(root, None, of) == ["v3"]                        # OpenFace CSVs
    (root / "video" / "v2.mp4").write_bytes(b"")
    (root / "video" / "v1.avi").write_bytes(b"")
    (root / "video" / "notes.txt").write_text("")
    assert sample_names(root, None, of) == ["v1", "v2"]                  # video/
    (root / "track2_train_mercaptionplus.csv").write_text("name,openset\nb,happy\na,sad\n")
    assert sample_names(root, None, of) == ["a", "b"]                    # MER-Caption+ label CSVs
    (tmp_path / "gt.csv").write_text("name,emotion\nz,happy\ny,sad\nz,happy\n")
    assert sample_names(root, tmp_path / "gt.csv", of) == ["z", "y"]     # label_csv, its order
    with pytest.raises(InputError, match="no videos found"):
        sample_names(tmp_path / "empty", None, None)
    (tmp_path / "bad.csv").write_text("video,emotion\nz,happy\n")
    with pytest.raises(InputError, match="'name' column"):
        sample_names(root, tmp_path / "bad.csv", of)


def test_production_config_describes_the_trained_model():
    """inference_config_au_agent.yaml loads, holds the seed's AU keys, and builds the model the
    production training config trains (same model section, same sample reading)."""
    from my_affectgpt.datasets.affectgpt_config import load_affectgpt_config as load_config

    infer = load_config(REPO / "inference_config_au_agent.yaml")
    train = load_config(REPO / "train_configs" / "config_with_au_agent.yaml")
    assert OmegaConf.to_container(infer.model) == OmegaConf.to_container(train.model)
    entry, trained_entry = infer.datasets.mercaptionplus, train.datasets.mercaptionplus
    for key in ("use_au_agent", "au_agent_base_model", "au_agent_lora_weights", "openface_output_dir"):
        assert key in entry
    assert entry.au_agent_base_model == str(REPO / "models" / "Qwen2.5-7B-Instruct")
    differ = {k for k in entry if entry[k] != trained_entry[k]}
    assert differ <= {"data_root", "openface_output_dir", "au_feature_dir"}
    assert infer.inference.ckpt_dir == str(REPO / "output" / "config_with_au_agent" / "default")
    assert infer.inference.test_datasets and infer.inference.test_datasets[0].label_csv
